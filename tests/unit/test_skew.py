"""Clock offsets from the probes: legs corrected, never negative, sum exact."""

import pytest

from inflight.cloud import record
from inflight import skew
from inflight import timings

CMP1 = record.Service.of('compute', 'cmp1', id=1, binary='nova-compute')


def probe(to, back, offset, in_service=1.0):
    """Raw Timings of a probe whose legs took `to` and `back` seconds, read
    with a service clock `offset` seconds ahead of the prober's."""
    return timings.Timings(to + offset, in_service, 0.0, back - offset,
                           to + in_service + back, to + back)


def test_offset_of_the_lowest_delay_sample_corrects_the_legs():
    offsets = skew.ClockOffsets(window=8)
    offsets.correct(CMP1, probe(0.020, 0.030, 5.0))    # queued: delay 50 ms
    t, offset = offsets.correct(CMP1, probe(0.001, 0.001, 5.0))
    assert offset == pytest.approx(5.0)
    assert t.to_service == pytest.approx(0.001)
    t, offset = offsets.correct(CMP1, probe(0.040, 0.002, 5.0))
    assert offset == pytest.approx(5.0)                # still the 2 ms one
    assert t.to_service == pytest.approx(0.040)
    assert t.from_service == pytest.approx(0.002)
    assert t.queue_total == pytest.approx(0.042)


@pytest.mark.parametrize('offset', [-5.0, 0.0, 5.0])
def test_legs_are_never_negative_and_add_up_to_the_queue_total(offset):
    offsets = skew.ClockOffsets(window=2)
    offsets.correct(CMP1, probe(0.0005, 0.0005, offset))
    # The path got slower one way: the stale best sample overcorrects.
    t, _ = offsets.correct(CMP1, probe(0.0001, 0.010, offset + 0.003))
    assert t.to_service >= 0 and t.from_service >= 0
    assert t.to_service + t.from_service == pytest.approx(t.queue_total)


def test_the_window_slides():
    offsets = skew.ClockOffsets(window=2)
    offsets.correct(CMP1, probe(0.001, 0.001, 1.0))
    offsets.correct(CMP1, probe(0.010, 0.010, 2.0))
    _, offset = offsets.correct(CMP1, probe(0.010, 0.010, 2.0))
    assert offset == pytest.approx(2.0)     # the 1 s sample slid out


def test_services_are_kept_apart():
    offsets = skew.ClockOffsets()
    offsets.correct(CMP1, probe(0.001, 0.001, 3.0))
    other = record.Service.of('compute', 'cmp2')
    _, offset = offsets.correct(other, probe(0.001, 0.001, -3.0))
    assert offset == pytest.approx(-3.0)


def test_clocks_in_step_and_a_slow_way_back_leave_the_legs_alone():
    offsets = skew.ClockOffsets(window=8)
    for _ in range(8):                     # every sample: 40 ms slower back
        t, offset = offsets.correct(CMP1, probe(0.001, 0.041, 0.0))
    assert offset == 0.0
    assert t.to_service == pytest.approx(0.001)
    assert t.from_service == pytest.approx(0.041)


def test_an_offset_within_what_the_probes_can_tell_is_not_applied():
    offsets = skew.ClockOffsets()
    t, offset = offsets.correct(CMP1, probe(0.002, 0.002, 0.0015))
    assert offset == 0.0                   # 1.5 ms < delay / 2 = 2 ms
    assert t.to_service == pytest.approx(0.0035)
