"""The arithmetic of the five phases, and metric names."""

import pytest

from inflight.outputs import statsd as metrics
from inflight import probe
from inflight import timings


def test_breakdown_of_a_probe():
    result = probe.Result(id='p', host='cmp1', received_at=100.010,
                          replied_at=101.025, requested_sleep=1.0,
                          slept=1.012)
    t = timings.breakdown(100.0, result, 101.030)
    assert t.to_service == pytest.approx(0.010)
    assert t.in_service == pytest.approx(1.015)
    assert t.overhead == pytest.approx(0.012)
    assert t.from_service == pytest.approx(0.005)
    assert t.round_trip == pytest.approx(1.030)
    assert t.to_service + t.in_service + t.from_service == pytest.approx(
        t.round_trip)
    assert t.queue_total == pytest.approx(0.015)


def test_phases_are_named_in_path_order():
    assert timings.PHASES == ('to_service', 'in_service', 'overhead',
                              'from_service', 'round_trip', 'queue_total')


@pytest.mark.parametrize('raw, safe', [
    ('cmp1.dc.example.org', 'cmp1_dc_example_org'),
    ('compute', 'compute'),
    ('node-7_b', 'node-7_b'),
    ('a:b|c@d e\nf', 'a_b_c_d_e_f'),
    ('héte', 'h_te'),
    ('', '_'),
])
def test_graphite_safe(raw, safe):
    assert metrics.graphite_safe(raw) == safe


def test_metric_name():
    assert (metrics.metric_name('compute', 'cmp1.example.org', 'round_trip')
            == 'compute.cmp1_example_org.round_trip')
