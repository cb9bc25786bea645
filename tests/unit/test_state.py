"""What a service looked like when it took a probe: its RPC executor's
workers and queue, read from within one of its workers, and eventlet's hub."""

import threading

from eventlet import event as green_event
import eventlet
from oslo_config import cfg
import futurist
import oslo_messaging
from oslo_messaging._metrics import client as messaging_metrics
from oslo_messaging._tracing import client as tracing
import pytest

from inflight import mixin
from inflight import probe
from inflight import state

POOL = 4


class Holder:
    """An endpoint whose hold() keeps its RPC worker until released."""

    target = oslo_messaging.Target(version='1.0')

    def __init__(self):
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)   # one release, one worker

    def hold(self, ctxt):
        self.started.release()
        self.release.acquire(timeout=30)


class Recorder:
    """Stands in for InflightAPI: keeps each result, signals it."""

    def __init__(self):
        self.results = []
        self.arrived = threading.Semaphore(0)

    def inflight_result(self, ctxt, host, result):
        self.results.append(result)
        self.arrived.release()

    def next(self):
        assert self.arrived.acquire(timeout=10), 'no result came'
        return self.results[-1]


@pytest.fixture
def served():
    """A real RPC server on threads (the fake transport), POOL workers, a
    Holder and a served InflightEndpoint; a client to cast to it."""
    conf = cfg.ConfigOpts()
    conf([])
    # oslo.messaging 18.3 registers these on cfg.CONF only; its client needs
    # them on the configuration it is given (as its ConfFixture does).
    conf.register_opts(tracing.oslo_messaging_tracing,
                       group='oslo_messaging_tracing')
    conf.register_opts(messaging_metrics.oslo_messaging_metrics,
                       group='oslo_messaging_metrics')
    transport = oslo_messaging.get_rpc_transport(conf, url='fake:/')
    holder = Holder()
    endpoint = mixin.InflightEndpoint('cmp1', transport,
                                      later=lambda seconds, end, *args: end(*args))
    endpoint._api = Recorder()
    target = oslo_messaging.Target(topic='compute', server='cmp1')
    server = oslo_messaging.get_rpc_server(transport, target,
                                           [holder, endpoint],
                                           executor='threading')
    endpoint.serve(server)
    conf.set_override('executor_thread_pool_size', POOL)  # the server's own
    server.start()
    client = oslo_messaging.get_rpc_client(transport, target)
    yield server, holder, endpoint, client
    holder.release.release(100)
    server.stop()
    server.wait()
    transport.cleanup()


def cast_probe(client):
    client.prepare(namespace='baseapi', version='1.0').cast(
        {}, 'inflight_ignore_errors',
        probe=probe.new_probe(1.0, 0.0, 'prober1')._asdict())


def hold(client, holder, count):
    for _ in range(count):
        client.cast({}, 'hold')
    for _ in range(count):
        assert holder.started.acquire(timeout=10)


def test_an_idle_service_has_no_worker_busy_but_the_probes(served):
    server, holder, endpoint, client = served
    cast_probe(client)
    assert endpoint._api.next().state == {
        'executor_busy': 0, 'executor_max': POOL, 'executor_waiting': 0}


@pytest.mark.parametrize('held', [1, POOL - 1])
def test_busy_counts_the_workers_held_by_other_messages(served, held):
    server, holder, endpoint, client = served
    hold(client, holder, held)
    cast_probe(client)
    assert endpoint._api.next().state == {
        'executor_busy': held, 'executor_max': POOL, 'executor_waiting': 0}


def test_waiting_counts_the_messages_behind_the_probe(served):
    server, holder, endpoint, client = served
    hold(client, holder, POOL)            # every worker held
    cast_probe(client)
    for _ in range(3):
        client.cast({}, 'hold')
    # All four wait for a worker, the probe first.
    executor = server._work_executor
    wait_until(lambda: executor.queue_size == 4)
    holder.release.release()              # one worker freed: the probe's
    assert endpoint._api.next().state == {
        'executor_busy': POOL - 1, 'executor_max': POOL,
        'executor_waiting': 3}


def wait_until(condition, timeout=10.0):
    """Wait for `condition()` to hold, failing after `timeout` seconds."""
    ticks = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        ticks.wait(0.01)
    raise AssertionError('not so within %ss' % timeout)


def test_no_server_no_figures():
    assert state.read(None, 'threading') is None
    e = mixin.InflightEndpoint('cmp1', later=lambda seconds, end, *args: end(*args))
    e._api = Recorder()
    e.inflight({}, probe.new_probe(1.0, 0.0, 'prober1')._asdict())
    assert e._api.next().state is None


class Broken:
    @property
    def _work_executor(self):
        raise RuntimeError('an oslo.messaging of another shape')


@pytest.mark.parametrize('server', [
    object(), Broken(), type('NotStarted', (), {'_work_executor': None})(),
    type('Other', (), {'_work_executor': futurist.SynchronousExecutor()})(),
])
def test_an_executor_it_does_not_know_gives_no_figures(server):
    assert state.executor_figures(server) is None
    assert state.read(server, 'threading') is None


def test_it_never_waits_for_the_executors_lock():
    # futurist holds it through a whole shutdown, which waits for the work
    # in hand: a probe among that work must not wait for it.
    executor = futurist.ThreadPoolExecutor(2)
    server = type('Server', (), {'_work_executor': executor})()
    try:
        executor.submit(lambda: None).result(10)
        got = []
        with executor._shutdown_lock:     # as shutdown(wait=True) holds it
            reader = threading.Thread(
                target=lambda: got.append(state.executor_figures(server)))
            reader.start()
            reader.join(5)
            assert not reader.is_alive(), 'it waited for the lock'
        assert got == [{'executor_busy': 0, 'executor_max': 2,
                        'executor_waiting': 0}]
    finally:
        executor.shutdown(wait=False)


def test_on_eventlet_the_green_pool_and_the_hub():
    executor = futurist.GreenThreadPoolExecutor(POOL)
    server = type('Server', (), {'_work_executor': executor})()
    release = green_event.Event()
    seen = []

    def held():
        release.wait()

    def sleeping():
        eventlet.sleep(60)

    sleepers = [eventlet.spawn(sleeping) for _ in range(5)]
    try:
        eventlet.sleep(0)
        before = state.hub_figures()
        for _ in range(POOL - 1):
            executor.submit(held)
        executor.submit(lambda: seen.append(state.read(server, 'eventlet')))
        executor.submit(held)             # no worker left: it waits
        for _ in range(5):
            eventlet.sleep(0)
        assert seen, 'the probe never ran'
        figures = seen[0]
        assert figures['executor_busy'] == POOL - 1   # itself not counted
        assert figures['executor_max'] == POOL
        assert figures['executor_waiting'] == 1       # the one after it
        # Each sleeping greenthread holds one of the hub's timers.
        assert before['hub_timers'] >= 5 and figures['hub_timers'] >= 5
        assert set(figures) == set(probe.STATE)
    finally:
        for sleeper in sleepers:
            sleeper.kill()
        release.send()
        executor.shutdown()
