"""The service side: where probes sleep, apart from the RPC worker that took them.

`concurrency()` says how this process runs work apart (eventlet's
greenthreads once it is monkey-patched, else native threads); `later_for()`
gives the function that runs a probe's end after its sleep, in the way
that fits:

* on eventlet, a greenthread per probe that sleeps in the hub;
* on native threads, `Sleepers`: one thread that waits for the earliest
  end due and runs each in turn. A pool of threads, one per probe asleep,
  cost the probed service 15 context switches a probe where an endpoint
  that answers at once costs 9 (benchmark 1's services); this thread, 10.
"""

import ctypes
import heapq
import itertools
import logging
import os
import sys
import threading
import time
import weakref

LOG = logging.getLogger(__name__)

# prctl(2): a thread's timer slack, by which Linux may defer its wake-ups.
PR_SET_TIMERSLACK = 29


def wake_on_time():
    """Ask Linux to wake this thread when its sleep ends, not up to 50 us
    later (the default timer slack, which lets the kernel group wake-ups):
    a sleeper's lateness is then the process's, not the kernel's grouping.
    Only this thread; elsewhere, or if refused, nothing changes."""
    if not sys.platform.startswith('linux'):
        return False
    try:
        return ctypes.CDLL(None).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _start_thread(function, *args):
    threading.Thread(target=function, args=args, daemon=True).start()


def concurrency():
    """How this process runs work apart: ('eventlet'|'threading', spawn, sleep)."""
    eventlet = sys.modules.get('eventlet')  # never imported: never patched
    if eventlet and eventlet.patcher.is_monkey_patched('thread'):
        return 'eventlet', eventlet.spawn_n, eventlet.sleep
    return 'threading', _start_thread, time.sleep


def _sleep_then(sleep, seconds, function, args):
    sleep(seconds)
    function(*args)


def later_for(mode):
    """later(seconds, function, *args): run function(*args) apart from the
    caller, `seconds` from now, as suits the process's `mode`."""
    if mode == 'eventlet':
        _, spawn, sleep = concurrency()
        return lambda seconds, function, *args: spawn(
            _sleep_then, sleep, seconds, function, args)
    return Sleepers().later


def _in_child(sleepers):
    """In a forked process: no thread, and nothing asleep yet."""
    sleepers = sleepers()
    if sleepers is not None:
        sleepers._start()


class Sleepers:
    """Probes sleeping, ended in turn by one native thread of their own.

    The thread starts with the first probe, is woken on time
    (wake_on_time), and runs each end when it is due, the earliest first.
    An end that takes long (a result the broker does not take at once)
    holds up those due after it: their lateness then shows it.
    """

    def __init__(self, monotonic=time.monotonic):
        self._monotonic = monotonic
        self._order = itertools.count()
        self._start()
        # A process forked from this one has none of its threads.
        this = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _in_child(this))

    def _start(self):
        self._lock = threading.Lock()   # the heap's
        # The thread's bell: held while it waits, released to wake it.
        self._bell = threading.Lock()
        self._bell.acquire()
        self._heap = []           # (when, order, function, args)
        self._running = False     # the thread is started

    def later(self, seconds, function, *args):
        """Run function(*args) `seconds` from now, in the sleepers' thread."""
        entry = (self._monotonic() + seconds, next(self._order), function,
                 args)
        with self._lock:
            start, self._running = not self._running, True
            heapq.heappush(self._heap, entry)
            earliest = self._heap[0] is entry
        if start:
            threading.Thread(target=self._run, daemon=True,
                             name='inflight-sleeper').start()
        elif earliest:
            self._ring()

    def _ring(self):
        """Wake the thread: the earliest end changed."""
        try:
            self._bell.release()
        except RuntimeError:
            pass                  # rung already, and not yet heard

    def __len__(self):
        return len(self._heap)

    def _next(self):
        """Wait for the earliest end due; it, taken off the heap."""
        while True:
            with self._lock:
                if not self._heap:
                    wait = -1     # till the bell
                else:
                    wait = max(self._heap[0][0] - self._monotonic(), 0.0)
                    if not wait:
                        return heapq.heappop(self._heap)
            self._bell.acquire(timeout=wait)

    def _run(self):
        wake_on_time()
        while True:
            _, _, function, args = self._next()
            try:
                function(*args)
            except Exception:  # noqa: BLE001 - the thread must go on
                LOG.exception('An inflight sleeper failed')
