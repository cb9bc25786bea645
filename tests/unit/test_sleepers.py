"""Where probes sleep on native threads: one thread, each end in its turn."""

import ctypes
import os
import sys
import threading

import pytest

from inflight import sleepers

PR_GET_TIMERSLACK = 30


class Ends:
    """Records the ends run, in order, and the thread that ran each."""

    def __init__(self):
        self.ran = []
        self.lock = threading.Lock()
        self.arrived = threading.Semaphore(0)

    def end(self, name):
        with self.lock:
            self.ran.append((name, threading.current_thread()))
        self.arrived.release()

    def wait(self, count):
        for _ in range(count):
            assert self.arrived.acquire(timeout=10), 'an end did not run'
        return [name for name, _ in self.ran]


def test_an_end_due_now_does_not_wait_for_one_due_later():
    s, ends = sleepers.Sleepers(), Ends()
    s.later(30.0, ends.end, 'late')
    s.later(0.0, ends.end, 'now')
    assert ends.wait(1) == ['now']
    assert len(s) == 1                 # the late one still sleeps


def test_ends_run_by_when_they_are_due_not_by_arrival():
    now = [100.0]
    s, ends = sleepers.Sleepers(monotonic=lambda: now[0]), Ends()
    s.later(0.3, ends.end, 'third')
    s.later(0.1, ends.end, 'first')
    s.later(0.2, ends.end, 'second')
    now[0] += 1.0                      # all three due: woken by the next
    s.later(0.0, ends.end, 'due now')
    assert ends.wait(4) == ['first', 'second', 'third', 'due now']


def test_one_thread_started_at_the_first_probe_for_them_all():
    before = threading.active_count()
    s, ends = sleepers.Sleepers(), Ends()
    assert threading.active_count() == before   # a service never probed
    for i in range(20):
        s.later(0.0, ends.end, i)
    ends.wait(20)
    threads = {thread for _, thread in ends.ran}
    assert len(threads) == 1
    assert threads.pop().name == 'inflight-sleeper'


def test_an_end_that_fails_does_not_stop_the_others(caplog):
    s, ends = sleepers.Sleepers(), Ends()
    s.later(0.0, lambda: 1 / 0)
    s.later(0.0, ends.end, 'after')
    assert ends.wait(1) == ['after']
    assert 'An inflight sleeper failed' in caplog.text


def test_no_end_is_missed_while_others_come_from_many_threads():
    s, ends = sleepers.Sleepers(), Ends()
    # Ends due now, soon and in a while, from four threads at once: each
    # one that comes earliest wakes the thread, whatever it was doing.
    def add(first):
        for i in range(first, first + 200):
            s.later((i % 7) * 0.0005, ends.end, i)
    adders = [threading.Thread(target=add, args=(n * 200,)) for n in range(4)]
    for adder in adders:
        adder.start()
    for adder in adders:
        adder.join()
    assert sorted(ends.wait(800)) == list(range(800))
    assert len(s) == 0


def test_a_forked_process_gets_a_thread_of_its_own():
    s, ends = sleepers.Sleepers(), Ends()
    s.later(0.0, ends.end, 'parent')
    ends.wait(1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                       # the child: only this thread
        try:
            ended = threading.Event()
            s.later(0.0, ended.set)
            os.write(write, b'y' if ended.wait(10) else b'n')
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    os.close(read)
    assert answer == b'y'


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='timer slack is a Linux setting')
def test_the_sleepers_thread_is_woken_on_time():
    """Linux's default timer slack (50 us) would add to every lateness."""
    s, ends = sleepers.Sleepers(), Ends()
    slack = []
    prctl = ctypes.CDLL(None).prctl
    s.later(0.0, lambda: (slack.append(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)),
                          ends.end('read')))
    ends.wait(1)
    assert slack == [1]
    assert prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) > 1   # this thread's is not
