"""Pacing: every service once per cycle, evenly, within the cap."""

import pytest

from inflight import pacing


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def run(pacer, clock, services, seconds, tick, in_flight=0):
    """Probes sent on each tick over `seconds`."""
    sent = []
    for _ in range(round(seconds / tick)):
        sent.append(pacer.due(services, in_flight))
        clock.now += tick
    return sent


def test_covers_every_service_once_per_cycle_evenly():
    clock = Clock()
    pacer = pacing.Pacer(60.0, 1000, monotonic=clock)
    tick = pacer.spacing(600, 1.0)
    assert tick == pytest.approx(0.1)
    sent = run(pacer, clock, 600, 120.0, tick)
    assert sum(sent) == pytest.approx(1200, abs=1)
    assert max(sent) == 1                   # one a tick, no bursts
    assert sum(sent[:600]) == pytest.approx(600, abs=1)


def test_large_rings_tick_often_and_send_a_few_each_time():
    clock = Clock()
    pacer = pacing.Pacer(60.0, 100000, monotonic=clock)
    tick = pacer.spacing(100000, 1.0)
    assert tick == 0.01
    sent = run(pacer, clock, 100000, 60.0, tick)
    assert sum(sent) == pytest.approx(100000, rel=0.001)
    assert max(sent) - min(sent[1:]) <= 1


def test_small_rings_tick_at_the_interval():
    clock = Clock()
    pacer = pacing.Pacer(60.0, 1000, monotonic=clock)
    assert pacer.spacing(5, 1.0) == 1.0
    sent = run(pacer, clock, 5, 60.0, 1.0)
    assert sum(sent) == pytest.approx(5, abs=1)
    assert [i for i, n in enumerate(sent) if n][:3] == [0, 12, 24]


def test_the_cap_holds_back_and_says_so(caplog):
    clock = Clock()
    pacer = pacing.Pacer(10.0, 50, monotonic=clock)
    assert pacer.check(1000, 1.0) is False          # 100/s x 1 s > 50
    assert 'a cycle will take at least 20s' in caplog.text
    sent = run(pacer, clock, 1000, 1.0, 0.1, in_flight=45)
    assert max(sent) <= 5
    assert 'probing falls behind' in caplog.text
    assert caplog.text.count('probing falls behind') == 1   # once a cycle
    assert pacing.Pacer(60.0, 1000).check(600, 1.0) is True


def test_no_burst_after_a_stall():
    clock = Clock()
    pacer = pacing.Pacer(10.0, 10000, monotonic=clock)
    pacer.due(100, 0)
    clock.now += 3600                        # an hour without a tick
    assert pacer.due(100, 0) == 100          # one cycle's worth, no more
