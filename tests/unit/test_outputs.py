"""Outputs: every call reaches every output; one that fails breaks nothing."""

import logging

from inflight.cloud import record
from inflight import outputs
from inflight import timings

CMP1 = record.Service.of('compute', 'cmp1', id=1, binary='nova-compute')


class Recording:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


class Failing:
    closed = False

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise OSError('%s: disk full' % name)
        return fail


class FakeClock:
    now = 0.0

    def __call__(self):
        return self.now


def test_each_call_reaches_every_output_in_turn():
    first, second = Recording(), Recording()
    fan = outputs.Outputs([first, second])
    breakdown = timings.round_trip_only(0.004)
    fan.sent([CMP1])
    fan.received(CMP1, 'baseapi', breakdown, state={'executor_busy': 1})
    fan.deaf(CMP1, True)
    fan.close()
    expected = [('sent', ([CMP1],), {}),
                ('received', (CMP1, 'baseapi', breakdown),
                 {'state': {'executor_busy': 1}}),
                ('deaf', (CMP1, True), {}),
                ('close', (), {})]
    assert first.calls == expected and second.calls == expected


def test_a_failing_output_is_logged_once_a_minute_and_the_next_still_hears(
        caplog):
    clock = FakeClock()
    after = Recording()
    fan = outputs.Outputs([Failing(), after], monotonic=clock)
    with caplog.at_level(logging.WARNING, 'inflight.outputs'):
        for _ in range(5):
            fan.lost([CMP1])
        clock.now = outputs.WARN_EVERY
        fan.late([CMP1])
        fan.close()
    assert [r.getMessage() for r in caplog.records] == [
        'The Failing output failed to take lost: lost: disk full',
        'The Failing output failed to take late: late: disk full']
    assert [name for name, _, _ in after.calls] == ['lost'] * 5 + [
        'late', 'close']
