"""Turns for the tests of a parallel run (pytest-xdist): a test marked
`alone` runs while no other test does; the others run side by side.

A readers-writer lock on two files every worker opens: a test takes the
run's lock shared, or exclusive when alone. The turnstile, taken by every
test on its way to the lock and held by an alone test until it has it,
keeps the tests that share from passing it forever."""

import contextlib
import fcntl
import os
import pathlib


class Turns:
    """The lock files in `folder`, made by the run's controller."""

    def __init__(self, folder):
        folder = pathlib.Path(folder)
        self._turnstile = open(folder / 'turnstile', 'a')
        self._lock = open(folder / 'lock', 'a')

    @contextlib.contextmanager
    def turn(self, alone):
        """Hold the run's lock, exclusive if `alone`, for the block."""
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def close(self):
        self._turnstile.close()
        self._lock.close()


def folder_for_workers(config):
    """The lock files' folder a worker was handed; None outside a
    parallel run."""
    workerinput = getattr(config, 'workerinput', None)
    if workerinput is None:
        return None
    folder = workerinput.get('inflight_turns')
    return folder if folder and os.path.isdir(folder) else None
