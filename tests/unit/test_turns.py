"""The tests' turns in a parallel run (tests/turns.py): an alone test runs
with no other, the others side by side, and an alone test waiting keeps new
ones from starting. Each Turns opens the files anew, as a worker does, so
that two in one process lock one another as two workers would."""

import fcntl
import pathlib
import threading
import time

import pytest

import turns


def taken(path, kind):
    """Whether `path` is locked against `kind` (fcntl.LOCK_SH or LOCK_EX)."""
    with open(path, 'a') as f:
        try:
            fcntl.flock(f, kind | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'not within %ss' % timeout
        time.sleep(0.01)


def test_tests_that_share_run_side_by_side(tmp_path):
    one, two = turns.Turns(tmp_path), turns.Turns(tmp_path)
    with one.turn(alone=False), two.turn(alone=False):
        assert taken(tmp_path / 'lock', fcntl.LOCK_EX)
        assert not taken(tmp_path / 'lock', fcntl.LOCK_SH)
    assert not taken(tmp_path / 'lock', fcntl.LOCK_EX)
    one.close()
    two.close()


def test_an_alone_test_runs_with_no_other(tmp_path):
    with turns.Turns(tmp_path).turn(alone=True):
        assert taken(tmp_path / 'lock', fcntl.LOCK_SH)
        assert not taken(tmp_path / 'turnstile', fcntl.LOCK_EX)


def test_an_alone_test_waiting_lets_no_new_test_start(tmp_path):
    sharing, waiting = turns.Turns(tmp_path), turns.Turns(tmp_path)
    entered = threading.Event()

    def alone():
        with waiting.turn(alone=True):
            entered.set()

    with sharing.turn(alone=False):
        thread = threading.Thread(target=alone)
        thread.start()
        # It holds the turnstile while it waits for the lock: a test that
        # would share cannot get past it.
        until(lambda: taken(tmp_path / 'turnstile', fcntl.LOCK_EX))
        assert not entered.is_set()
    thread.join(10)
    assert entered.is_set()
    assert not taken(tmp_path / 'turnstile', fcntl.LOCK_EX)
    assert not taken(tmp_path / 'lock', fcntl.LOCK_EX)


def test_outside_a_parallel_run_there_are_no_turns(tmp_path):
    class Config:
        pass
    assert turns.folder_for_workers(Config()) is None
    worker = Config()
    worker.workerinput = {'inflight_turns': str(tmp_path)}
    assert turns.folder_for_workers(worker) == str(tmp_path)


def test_in_a_parallel_run_this_test_holds_its_turn(request):
    folder = turns.folder_for_workers(request.config)
    if folder is None:
        pytest.skip('not a parallel run (-n 0)')
    # Shared, as it is not marked alone: an alone test could not start.
    assert taken(pathlib.Path(folder) / 'lock', fcntl.LOCK_EX)
    assert not taken(pathlib.Path(folder) / 'lock', fcntl.LOCK_SH)
