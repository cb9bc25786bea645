"""The prober's accounting: every probe ends received or lost, exactly once."""

import collections

import pytest

from inflight import db
from inflight import metrics
from inflight import probe
from inflight import prober

CMP1 = db.Service(1, 'cmp1', 'nova-compute', 'compute', None, None)
CMP2 = db.Service(2, 'cmp2', 'nova-compute', 'compute', None, None)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class CastRecorder:
    """Stands in for BaseAPI: keeps the probes cast, or fails for `down`."""

    def __init__(self, down=()):
        self.probes = []
        self.down = set(down)

    def inflight(self, ctxt, host, probe):
        if host in self.down:
            raise ConnectionError('broker unreachable')
        self.probes.append((host, probe))


def answer(p, received_at, slept=None):
    """The result a service would send back for probe `p`."""
    return probe.Result(p.id, 'cmp', received_at, received_at + p.sleep,
                        p.sleep, p.sleep if slept is None else slept
                        )._asdict()


@pytest.fixture
def setup(statsd):
    wall, mono, api = Clock(), Clock(), CastRecorder()
    p = prober.Prober(lambda topic: api,
                      metrics.Metrics('127.0.0.1', statsd.port, 'inflight'),
                      'prober1', sleep=1.0, timeout=2.0, clock=wall,
                      monotonic=mono)
    return p, api, wall, mono


def test_a_result_is_timed_and_counted_received(setup, statsd):
    p, api, wall, mono = setup
    assert p.send([CMP1]) == [CMP1]
    (host, sent), = api.probes
    assert host == 'cmp1' and sent.reply_host == 'prober1'
    wall.now += 1.5
    service, t = p.receive(answer(sent, received_at=sent.sent_at + 0.25,
                                  slept=1.1))
    assert service == CMP1
    assert t.to_service == pytest.approx(0.25)
    assert t.round_trip == pytest.approx(1.5)
    assert t.overhead == pytest.approx(0.1)
    assert p.counts == collections.Counter({'sent': 1, 'received': 1})
    statsd.wait_for(lambda m: len(m) >= 7)
    assert statsd.values('inflight.compute.cmp1.round_trip') == [
        pytest.approx(1500.0)]
    assert statsd.total('.received') == 1


def test_overdue_probe_is_lost_once_then_late_once(setup, statsd):
    p, api, wall, mono = setup
    p.send([CMP1])
    (_, sent), = api.probes
    mono.now += 2.9
    assert p.expire() == []
    mono.now += 0.2          # past sleep + timeout
    assert p.expire() == [CMP1]
    assert p.expire() == []
    assert p.abandon() == []
    result = answer(sent, sent.sent_at + 1)
    assert p.receive(result) is None
    assert p.receive(result) is None   # a duplicate is not late again
    assert p.counts == collections.Counter({'sent': 1, 'lost': 1, 'late': 1, 'rejected': 1})
    statsd.wait_for(lambda m: statsd.total('.late') == 1)
    assert statsd.total('.lost') == 1


def test_failed_cast_counts_sent_and_lost_at_once(statsd):
    api = CastRecorder(down={'cmp2'})
    p = prober.Prober(lambda topic: api,
                      metrics.Metrics('127.0.0.1', statsd.port, 'inflight'),
                      'prober1', sleep=0.0, timeout=1.0)
    assert p.send([CMP1, CMP2]) == [CMP1]
    assert p.pending() == 1
    assert p.counts == collections.Counter({'sent': 2, 'lost': 1})
    statsd.wait_for(lambda m: statsd.total('.lost') == 1)
    assert statsd.total('compute.cmp2.lost') == 1


def test_abandon_counts_every_probe_out_lost(setup):
    p, api, wall, mono = setup
    p.send([CMP1, CMP2])
    assert p.wait_settled(0.01) is False
    assert sorted(s.host for s in p.abandon()) == ['cmp1', 'cmp2']
    assert p.pending() == 0
    assert p.wait_settled(0) is True


@pytest.mark.parametrize('bad', [
    None, 'x', {}, {'id': 'p'},
    {'id': 'p', 'host': 'h', 'received_at': 'soon', 'replied_at': 1.0,
     'requested_sleep': 1.0, 'slept': 1.0},
    {'id': 'p', 'host': 'h', 'received_at': float('nan'), 'replied_at': 1.0,
     'requested_sleep': 1.0, 'slept': 1.0},
    {'id': 'p', 'host': 'h', 'received_at': 1.0, 'replied_at': 1.0,
     'requested_sleep': 1.0, 'slept': -1.0},
])
def test_malformed_results_are_rejected(setup, bad):
    p, api, wall, mono = setup
    p.send([CMP1])
    assert p.receive(bad) is None
    assert p.counts['rejected'] == 1
    assert p.pending() == 1
