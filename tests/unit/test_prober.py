"""The prober: every probe ends received or lost, exactly once, and falls
back to the pings a service answers when it does not answer the mixin."""

import collections
import queue
import threading

import oslo_messaging
import pytest

from inflight.cloud import record
from inflight import methods
from inflight.outputs import statsd as metrics
from inflight import probe
from inflight import prober
from inflight import rpcapi

CMP1 = record.Service.of('compute', 'cmp1', id=1, binary='nova-compute')
CMP2 = record.Service.of('compute', 'cmp2', id=2, binary='nova-compute')


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeAPI:
    """Stands in for BaseAPI and its RPC client.

    `answers[host]` is the set of kinds that host answers (the inflight
    endpoint when not given); another kind is refused at once, as
    oslo.messaging does (NoSuchMethod), or times out for hosts in `deaf`,
    the clock (`clock`, set by the harness) moving on by the timeout. Hosts
    in `down` cannot be reached.
    """

    def __init__(self, answers=None, deaf=(), down=()):
        self.answers = answers or {}
        self.deaf, self.down = set(deaf), set(down)
        self.casts = []     # (host, probe) the inflight endpoint took
        self.calls = []     # (host, kind) of every call
        self.client = self
        self.clock = None

    def _kinds(self, host):
        return self.answers.get(host, {'inflight'})

    def _wait_out(self, timeout):
        if self.clock is not None:
            self.clock.now += timeout
        raise oslo_messaging.MessagingTimeout('no answer')

    def inflight(self, ctxt, host, probe):
        if host in self.down:
            raise ConnectionError('broker unreachable')
        self.casts.append((host, probe))

    def inflight_call(self, ctxt, host, probe, timeout):
        self.calls.append((host, 'inflight'))
        if host in self.down:
            raise ConnectionError('broker unreachable')
        if host in self.deaf:
            self._wait_out(timeout)
        if 'inflight' not in self._kinds(host):
            raise oslo_messaging.NoSuchMethod(rpcapi.METHOD)
        self.casts.append((host, probe))

    def prepare(self, server, namespace=None, timeout=None, **kwargs):
        self._server, self._namespace = server, namespace
        self._timeout = timeout
        return self

    def call(self, ctxt, method, **kwargs):
        kind = 'baseapi' if self._namespace == 'baseapi' else method
        self.calls.append((self._server, kind))
        if self._server in self.deaf:
            self._wait_out(self._timeout)
        if kind not in self._kinds(self._server):
            raise oslo_messaging.NoSuchMethod(method)
        return kwargs if kind == 'baseapi' else 'pong'


class Inline:
    """An executor that runs what it is given at once: casts and calls
    happen within send(), so the test can look right after."""

    def submit(self, function, *args):
        function(*args)

    def shutdown(self, **kwargs):
        pass


class Harness:
    def __init__(self, statsd, api, retry=300.0, overrides=None):
        self.api = api
        self.wall, self.mono = Clock(), Clock()
        self.outcomes = queue.Queue()
        book = methods.MethodBook(overrides, richer_retry_interval=retry,
                                  monotonic=self.mono)
        self.prober = prober.Prober(
            lambda service: api,
            metrics.Metrics('127.0.0.1', statsd.port, 'inflight'),
            'prober1', sleep=1.0, timeout=2.0, method_book=book,
            on_outcome=[lambda *o: self.outcomes.put(o)],
            clock=self.wall, monotonic=self.mono, executor=Inline())
        api.clock = self.mono

    def outcome(self):
        return self.outcomes.get(timeout=10)

    def answer_last_cast(self, received_after=0.25, slept=1.1, state=None):
        host, sent = self.api.casts[-1]
        result = probe.Result(sent.id, host, sent.sent_at + received_after,
                              sent.sent_at + received_after + slept, 1.0,
                              slept, state)
        return self.prober.receive(result._asdict())

    def expire_all(self):
        self.mono.now += 3.01     # past sleep + timeout
        return self.prober.expire()


@pytest.fixture
def harness(statsd):
    return lambda *args, **kwargs: Harness(statsd, *args, **kwargs)


def test_a_result_is_timed_and_counted_received(harness, statsd):
    h = harness(FakeAPI())
    h.prober.send([CMP1])
    (host, sent), = h.api.casts
    assert host == 'cmp1' and sent.reply_host == 'prober1'
    h.wall.now += 1.5
    t = h.answer_last_cast(received_after=0.25, slept=1.1)
    assert t.round_trip == pytest.approx(1.5)
    assert t.overhead == pytest.approx(0.1)
    assert t.queue_total == pytest.approx(0.4)   # 0.25 there, 0.15 back
    # Same clocks as far as this probe can tell: the legs stay as read.
    assert t.to_service == pytest.approx(0.25)
    assert t.from_service == pytest.approx(0.15)
    assert h.outcome() == (CMP1, 'inflight', t, None)
    assert h.prober.counts == collections.Counter(sent=1, received=1)
    statsd.wait_for(lambda m: statsd.values(
        'inflight.compute.cmp1.method.inflight') == [1])
    statsd.wait_for(lambda m: statsd.total('.received') == 1)
    assert statsd.values('inflight.compute.cmp1.round_trip') == [
        pytest.approx(1500.0)]
    assert statsd.values('inflight.compute.cmp1.clock_offset') == [0.0]


def test_the_services_figures_reach_statsd_and_the_listeners(harness, statsd):
    h = harness(FakeAPI())
    h.prober.send([CMP1])
    figures = {'executor_busy': 3, 'executor_max': 8, 'executor_waiting': 1}
    t = h.answer_last_cast(state=dict(figures, threads_alive=4))
    assert h.outcome() == (CMP1, 'inflight', t, figures)
    statsd.wait_for(lambda m: statsd.total('.received') == 1)
    for name, count in figures.items():
        assert statsd.values('inflight.compute.cmp1.' + name) == [count]
    assert statsd.values('inflight.compute.cmp1.threads_alive') == []


def test_a_result_with_malformed_figures_is_rejected(harness, statsd):
    h = harness(FakeAPI())
    h.prober.send([CMP1])
    assert h.answer_last_cast(state={'executor_busy': -1}) is None
    assert h.prober.counts == collections.Counter(sent=1, rejected=1)
    assert h.prober.pending() == 1     # still out: its real result may come


def test_a_mixin_service_that_stops_answering_is_lost_once_then_late(
        harness, statsd):
    h = harness(FakeAPI())
    h.prober.send([CMP1])
    h.answer_last_cast()
    h.prober.send([CMP1])
    (_, sent) = h.api.casts[-1]
    h.mono.now += 2.9
    assert h.prober.expire() == []
    assert h.expire_all() == [CMP1]
    assert h.prober.expire() == []
    # The first probe learnt it has the endpoint: one call, then casts.
    assert h.api.calls == [('cmp1', 'inflight')]
    result = probe.Result(sent.id, 'cmp1', 1.0, 2.0, 1.0, 1.0)._asdict()
    assert h.prober.receive(result) is None
    assert h.prober.receive(result) is None   # a duplicate: not late again
    assert h.prober.counts == collections.Counter(
        sent=2, received=1, lost=1, late=1, rejected=1)
    statsd.wait_for(lambda m: statsd.total('.late') == 1)
    assert statsd.total('.lost') == 1


def test_falls_back_to_the_ping_the_service_answers_and_remembers_it(
        harness, statsd):
    h = harness(FakeAPI(answers={'cmp1': {'oslo_rpc_server_ping'}}))
    started = h.mono.now
    h.prober.send([CMP1])
    # Each kind it lacks is refused at once: learnt without any wait.
    service, kind, t, _ = h.outcome()
    assert (service, kind) == (CMP1, 'oslo_rpc_server_ping')
    assert h.mono.now == started and h.prober.pending() == 0
    assert t.to_service is None and t.round_trip >= 0
    assert h.api.calls == [('cmp1', 'inflight'), ('cmp1', 'baseapi'),
                           ('cmp1', 'oslo_rpc_server_ping')]
    h.prober.send([CMP1])               # remembered: straight to the ping
    assert h.outcome()[1] == 'oslo_rpc_server_ping'
    assert h.api.calls[3:] == [('cmp1', 'oslo_rpc_server_ping')]
    assert h.api.casts == []
    assert h.prober.counts == collections.Counter(sent=2, received=2)
    statsd.wait_for(lambda m: statsd.total('.received') == 2)
    assert statsd.values(
        'inflight.compute.cmp1.method.oslo_rpc_server_ping') == [1]
    assert statsd.values('inflight.compute.cmp1.method.inflight') == [0]
    assert statsd.values('inflight.compute.cmp1.to_service') == []
    assert len(statsd.values('inflight.compute.cmp1.ping_round_trip')) == 2
    assert statsd.values('inflight.compute.cmp1.round_trip') == []


def test_tries_the_richer_kind_again_now_and_then(harness, statsd):
    api = FakeAPI(answers={'cmp1': {'baseapi'}})
    h = harness(api, retry=60.0)
    h.prober.send([CMP1])
    assert h.outcome()[1] == 'baseapi'
    h.mono.now += 60
    h.prober.send([CMP1])               # the endpoint again: still lacking
    assert h.outcome()[1] == 'baseapi'  # handed on at once, not lost
    assert h.api.calls[-2:] == [('cmp1', 'inflight'), ('cmp1', 'baseapi')]
    api.answers['cmp1'] = {'baseapi', 'inflight'}     # it gained the hook
    h.mono.now += 60
    h.prober.send([CMP1])               # the endpoint again; now it is there
    h.answer_last_cast()
    assert h.outcome()[1] == 'inflight'
    h.prober.send([CMP1])               # and from then on, casts alone
    assert len(api.casts) == 2 and h.api.calls[-1] == ('cmp1', 'inflight')
    assert h.prober.counts == collections.Counter(sent=4, received=3)
    statsd.wait_for(lambda m: statsd.values(
        'inflight.compute.cmp1.method.inflight') == [0, 1])
    assert statsd.values('inflight.compute.cmp1.method.baseapi') == [1, 0]


def test_a_service_answering_nothing_counts_lost_once_at_its_deadline(
        harness):
    h = harness(FakeAPI(deaf={'cmp1'}))
    started = h.mono.now
    h.prober.send([CMP1])
    assert h.outcome() == (CMP1, 'baseapi', None, None)
    # One deadline for the probe, whatever kinds it tried: sleep + timeout.
    assert h.mono.now == pytest.approx(started + 1.0 + 2.0)
    assert h.api.calls == [('cmp1', 'inflight'), ('cmp1', 'baseapi')]
    assert h.prober.counts == collections.Counter(sent=1, lost=1)
    h.prober.send([CMP1])               # the next probe starts over
    assert h.api.calls[2] == ('cmp1', 'inflight')


def test_failed_cast_falls_back_then_counts_lost(harness, statsd):
    h = harness(FakeAPI(down={'cmp2'}, deaf={'cmp2'}))
    h.prober.send([CMP1, CMP2])
    assert h.outcome() == (CMP2, 'baseapi', None, None)
    assert [host for host, _ in h.api.casts] == ['cmp1']   # cmp2's failed
    statsd.wait_for(lambda m: statsd.total('compute.cmp2.lost') == 1)
    assert statsd.total('compute.cmp2.sent') == 1


class ForgingAPI(FakeAPI):
    """While its baseapi ping is out, a result bearing the ping's probe id
    (the ping puts it on the wire) comes back first."""

    def __init__(self, prober_of):
        super().__init__(answers={'cmp1': {'baseapi'}})
        self.prober_of = prober_of

    def call(self, ctxt, method, **kwargs):
        if self._namespace == 'baseapi' and method == 'ping':
            forged = probe.Result(kwargs['arg'], 'cmp1', 1.0, 2.0, 1.0, 1.0)
            assert self.prober_of().receive(forged._asdict()) is None
        return super().call(ctxt, method, **kwargs)


def test_a_result_for_a_ping_probe_leaves_the_ping_to_count(harness):
    h = harness(ForgingAPI(lambda: h.prober), overrides={'compute': 'baseapi'})
    h.prober.send([CMP1])
    service, kind, t, _ = h.outcome()
    assert (service, kind) == (CMP1, 'baseapi') and t.round_trip >= 0
    assert h.prober.counts == collections.Counter(sent=1, received=1,
                                                  rejected=1)
    assert h.prober.pending() == 0


def test_abandon_counts_every_probe_out_lost_without_fallback(harness):
    h = harness(FakeAPI())
    h.prober.send([CMP1, CMP2])
    assert h.prober.wait_settled(0.01) is False
    assert sorted(s.host for s in h.prober.abandon()) == ['cmp1', 'cmp2']
    assert {kind for _, kind in h.api.calls} == {'inflight'}   # no fallback
    assert h.prober.pending() == 0
    assert h.prober.wait_settled(0) is True
    assert h.prober.counts == collections.Counter(sent=2, lost=2)


@pytest.mark.parametrize('bad', [
    None, 'x', {}, {'id': 'p'},
    {'id': 'p', 'host': 'h', 'received_at': 'soon', 'replied_at': 1.0,
     'requested_sleep': 1.0, 'slept': 1.0},
    {'id': 'p', 'host': 'h', 'received_at': float('nan'), 'replied_at': 1.0,
     'requested_sleep': 1.0, 'slept': 1.0},
    {'id': 'p', 'host': 'h', 'received_at': 1.0, 'replied_at': 1.0,
     'requested_sleep': 1.0, 'slept': -1.0},
])
def test_malformed_results_are_rejected(harness, bad):
    h = harness(FakeAPI())
    h.prober.send([CMP1])
    assert h.prober.receive(bad) is None
    assert h.prober.counts['rejected'] == 1
    assert h.prober.pending() == 1


class HangingAPI(FakeAPI):
    """Calls hang until released, as to services that never answer."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.cast = threading.Event()

    def call(self, ctxt, method, **kwargs):
        self.release.wait(30)
        raise oslo_messaging.MessagingTimeout('no answer')

    def inflight(self, ctxt, host, probe):
        super().inflight(ctxt, host, probe)
        self.cast.set()


def test_calls_that_hang_do_not_hold_up_casts():
    api = HangingAPI()
    silent = record.Service.of('silent', 'silent', id=3, binary='nova-compute')
    p = prober.Prober(lambda service: api, metrics.NullMetrics(), 'prober1',
                      sleep=1.0, timeout=2.0, max_calls=2,
                      method_book=methods.MethodBook(
                          {'silent': 'baseapi', 'compute': 'inflight'}))
    try:
        p.send([silent] * 4)           # every call thread taken, and more
        p.send([CMP1])
        assert api.cast.wait(10)       # the cast went all the same
    finally:
        api.release.set()
        p.abandon()


class ThreadNoting(FakeAPI):
    """Notes the thread each cast goes from."""

    def __init__(self):
        super().__init__()
        self.threads = []

    def inflight(self, ctxt, host, probe):
        super().inflight(ctxt, host, probe)
        self.threads.append(threading.current_thread())


def test_a_cast_goes_from_the_thread_that_sends_the_probe():
    """Handing each cast to a thread of its own cost more than the cast:
    a context switch or two per probe, and 0.1 ms on its round trip."""
    api = ThreadNoting()
    p = prober.Prober(lambda service: api, metrics.NullMetrics(), 'prober1',
                      sleep=1.0, timeout=2.0,
                      method_book=methods.MethodBook({'compute': 'inflight'}))
    try:
        p.send([CMP1, CMP2])
        assert api.threads == [threading.current_thread()] * 2
        assert p.pending() == 2
    finally:
        p.abandon()


def test_no_cast_goes_once_stopping():
    api = ThreadNoting()
    p = prober.Prober(lambda service: api, metrics.NullMetrics(), 'prober1',
                      sleep=1.0, timeout=2.0,
                      method_book=methods.MethodBook({'compute': 'inflight'}))
    p.abandon()
    p.send([CMP1])
    assert api.threads == []
    assert p.counts == collections.Counter(sent=1, lost=1)
