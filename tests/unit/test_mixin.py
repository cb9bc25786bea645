"""The service side: answers at once, sleeps apart, bounded and clamped."""

import threading

import pytest

from inflight import mixin
from inflight import probe
from inflight import rpcapi


class ResultsRecorder:
    """Stands in for InflightAPI: keeps results, signals each one."""

    def __init__(self):
        self.results = []
        self.arrived = threading.Semaphore(0)

    def inflight_result(self, ctxt, host, result):
        self.results.append((host, result))
        self.arrived.release()

    def wait(self, count):
        for _ in range(count):
            assert self.arrived.acquire(timeout=10), 'no result came'


class GatedLater:
    """The sleepers' later(): records the sleeps asked, and runs each end in
    a thread of its own once opened."""

    def __init__(self):
        self.asked = []
        self.gate = threading.Event()

    def __call__(self, seconds, function, *args):
        self.asked.append(seconds)
        threading.Thread(target=self._end, args=(function, args),
                         daemon=True).start()

    def _end(self, function, args):
        self.gate.wait(10)
        function(*args)


def endpoint(max_sleep=5.0, max_sleeping=100, later=None):
    e = mixin.InflightEndpoint('cmp1', max_sleep=max_sleep,
                               max_sleeping=max_sleeping, later=later)
    e._api = ResultsRecorder()
    return e


def a_probe(sleep=0.0):
    return probe.new_probe(1000.0, sleep, 'prober1')._asdict()


def test_answers_and_casts_the_result_to_the_prober():
    e = endpoint()
    sent = a_probe(sleep=0.0)
    assert e.inflight({}, sent) is None
    e._api.wait(1)
    (host, result), = e._api.results
    assert host == 'prober1'
    assert result.id == sent['id'] and result.host == 'cmp1'
    assert result.replied_at >= result.received_at
    assert result.slept >= 0


def test_runs_on_native_threads_without_eventlet():
    assert mixin.InflightEndpoint('cmp1').mode == 'threading'


def test_requested_sleep_is_clamped_to_the_maximum():
    later = GatedLater()
    later.gate.set()
    e = endpoint(max_sleep=0.5, later=later)
    e.inflight({}, a_probe(sleep=1e9))
    e._api.wait(1)
    assert later.asked == [0.5]
    assert e._api.results[0][1].requested_sleep == 0.5


def test_sleepers_are_bounded_and_extra_probes_dropped():
    later = GatedLater()
    e = endpoint(max_sleeping=2, later=later)
    for _ in range(3):
        e.inflight({}, a_probe(sleep=1.0))
    assert len(later.asked) == 2
    later.gate.set()
    e._api.wait(2)
    assert len(e._api.results) == 2
    e.inflight({}, a_probe())     # room again once they are done
    e._api.wait(1)
    assert e.counts == {'accepted': 3, 'busy': 1}


def test_a_sleeper_that_cannot_start_gives_its_place_back(caplog):
    def later(seconds, function, *args):
        raise RuntimeError("can't start new thread")

    e = endpoint(max_sleeping=1, later=later)
    for _ in range(2):
        e.inflight({}, a_probe())
    assert e.sleeping == 0
    assert e.counts == {'accepted': 2}
    assert caplog.text.count('Could not start the sleeper') == 2


@pytest.mark.parametrize('bad', [
    None, [], {}, {'id': 'x', 'sent_at': 1.0, 'sleep': 'long',
                   'reply_host': 'p'},
    {'id': 'x', 'sent_at': 1.0, 'sleep': -1.0, 'reply_host': 'p'},
    {'id': 'x', 'sent_at': float('inf'), 'sleep': 1.0, 'reply_host': 'p'},
    {'id': 'x', 'sent_at': 1.0, 'sleep': 1.0, 'reply_host': ''},
])
def test_malformed_probes_are_dropped(bad, caplog):
    e = endpoint()
    assert e.inflight({}, bad) is None
    assert 'malformed' in caplog.text
    assert e._api.results == []


def test_mixin_adds_its_endpoint_to_the_manager():
    class Manager:
        def __init__(self, host):
            self.host = host
            self.additional_endpoints = []

    class ComputeManager(mixin.InflightMixin, Manager):
        inflight_max_sleep = 0.25

    m = ComputeManager('cmp9')
    assert m.additional_endpoints == [m.inflight_endpoint]
    assert m.inflight_endpoint.host == 'cmp9'
    assert m.inflight_endpoint.max_sleep == 0.25
    assert m.inflight_endpoint.target.namespace == rpcapi.NAMESPACE


def test_the_endpoint_answers_the_method_the_prober_sends():
    e = endpoint()
    assert e.target.namespace == rpcapi.NAMESPACE
    assert e.target.version == rpcapi.BaseAPI.BASE_RPC_API_VERSION
    sent = a_probe()
    assert getattr(e, rpcapi.METHOD)({}, sent) is None
    e._api.wait(1)
    assert e._api.results[0][1].id == sent['id']


class BrokerGone(ResultsRecorder):
    def inflight_result(self, ctxt, host, result):
        super().inflight_result(ctxt, host, result)
        raise ConnectionResetError(104, 'Connection reset by peer')


def in_the_caller(seconds, function, *args):
    """A later() that ends the probe before inflight() returns."""
    function(*args)


def test_a_result_it_cannot_send_is_one_warning_without_traceback(caplog):
    e = endpoint(max_sleeping=1, later=in_the_caller)
    e._api = BrokerGone()
    sent = a_probe()
    with caplog.at_level('WARNING', logger='inflight.mixin'):
        e.inflight({}, sent)
    # The one sleeper's place came back once it was done, logging too.
    assert e.sleeping == 0
    [record] = caplog.records
    assert record.levelname == 'WARNING' and record.exc_info is None
    assert record.getMessage() == (
        'Could not send the result of probe %s to prober1: [Errno 104] '
        'Connection reset by peer' % sent['id'])
