"""Hostile and malformed messages through oslo.messaging's real dispatcher.

Generated messages go to the mixin's endpoint and to the prober's results
endpoint. Nothing crashes, every message is accounted for, the mixin never
sleeps beyond its maximum nor holds more sleepers than its bound, and its
results only ever go to the inflight topic.
"""

import collections
import threading

from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st
import oslo_messaging
from oslo_messaging.rpc import dispatcher as rpc_dispatcher

from inflight import manager
from inflight import methods
from inflight.outputs import statsd as metrics
from inflight import mixin
from inflight import probe as probe_msg
from inflight import prober
from inflight import rpcapi

MAX_SLEEP = 2.0
MAX_SLEEPING = 4
BATCHES = 250
PER_BATCH = 40             # 250 x 40 = 10,000 messages each way


class Incoming:
    """What the dispatcher is handed by a server for one message."""

    def __init__(self, message):
        self.ctxt, self.message, self.client_timeout = {}, message, None


class Sleeps:
    """The mixin's sleep: records what it was asked and how many at once."""

    def __init__(self):
        self.asked = []
        self.now = self.most = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, seconds):
        with self.lock:
            self.asked.append(seconds)
            self.now += 1
            self.most = max(self.most, self.now)
        self.gate.wait(10)
        with self.lock:
            self.now -= 1

    def later(self, seconds, function, *args):
        """The sleepers' later(), each end in a thread of its own."""
        threading.Thread(target=self._end, args=(seconds, function, args),
                         daemon=True).start()

    def _end(self, seconds, function, args):
        self(seconds)
        function(*args)


class Casts:
    """Stands in for the transport under InflightAPI: where casts go."""

    def __init__(self):
        self.targets = []
        self.done = threading.Semaphore(0)

    def inflight_result(self, ctxt, host, result):
        self.targets.append((rpcapi.TOPIC, host))
        self.done.release()


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-10**20, 10**20), st.booleans(), st.none(),
                    st.text(max_size=5))
texts = st.one_of(st.text(max_size=300), st.binary(max_size=20), numbers)
hosts = st.one_of(st.sampled_from(['prober1', 'compute.cmp1', 'x' * 256,
                                   'inflight', 'a b', 'evil\n', '']),
                  st.text(max_size=30))
probes = st.fixed_dictionaries(
    {}, optional={'id': texts, 'sent_at': numbers,
                  'sleep': st.one_of(numbers, st.sampled_from(
                      [1e9, -1.0, 0.0, 0.5, MAX_SLEEP * 3])),
                  'reply_host': hosts, 'extra': texts})
json_like = st.one_of(numbers, st.lists(numbers, max_size=3),
                      st.dictionaries(st.text(max_size=5), numbers,
                                      max_size=3))
valid_probes = st.builds(
    lambda sleep, host: probe_msg.new_probe(1000.0, sleep, host)._asdict(),
    st.sampled_from([1e9, 0.0, 0.25, MAX_SLEEP, MAX_SLEEP * 3]),
    st.sampled_from(['prober1', 'ops1.example.org']))
arguments = st.one_of(
    st.fixed_dictionaries({'probe': st.one_of(valid_probes, probes,
                                              json_like)}),
    st.dictionaries(st.sampled_from(['probe', 'result', 'junk']), json_like,
                    max_size=2))
routed = st.fixed_dictionaries({
    'method': st.just(rpcapi.METHOD), 'namespace': st.just(rpcapi.NAMESPACE),
    'version': st.just('1.0'),
    'args': st.fixed_dictionaries({'probe': valid_probes})})
mixin_messages = st.one_of(routed, routed, st.fixed_dictionaries({
    'method': st.sampled_from([rpcapi.METHOD, rpcapi.METHOD, 'inflight',
                               'ping', '_measure', '__init__']),
    'namespace': st.sampled_from([rpcapi.NAMESPACE, rpcapi.NAMESPACE, None,
                                  'inflight']),
    'version': st.sampled_from(['1.0', '1.0', '1.9', '2.0', 'x']),
    'args': arguments}))


def dispatch(dispatcher, message):
    """Dispatch one message; 'ok', or the kind of error a server would log."""
    try:
        dispatcher.dispatch(Incoming(message))
        return 'ok'
    except (oslo_messaging.NoSuchMethod, oslo_messaging.UnsupportedVersion,
            ValueError):     # ValueError: a version that is not one
        return 'unroutable'
    except TypeError:
        return 'bad arguments'


def test_the_mixin_survives_hostile_probes():
    sleeps, casts = Sleeps(), Casts()
    endpoint = mixin.InflightEndpoint('cmp1', max_sleep=MAX_SLEEP,
                                      max_sleeping=MAX_SLEEPING,
                                      later=sleeps.later)
    endpoint._api = casts
    dispatcher = rpc_dispatcher.RPCDispatcher(
        [endpoint], oslo_messaging.NoOpSerializer())
    outcomes = collections.Counter()

    @settings(max_examples=BATCHES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(mixin_messages, min_size=PER_BATCH, max_size=PER_BATCH),
           st.booleans())
    def batch(messages, hold):
        if hold:
            sleeps.gate.clear()        # sleepers pile up: the bound holds
        for message in messages:
            outcomes[dispatch(dispatcher, message)] += 1
        sleeps.gate.set()
        while len(casts.targets) < endpoint.counts['accepted']:
            assert casts.done.acquire(timeout=10)

    batch()
    total = BATCHES * PER_BATCH
    assert sum(outcomes.values()) == total
    dispatched = outcomes['ok']
    assert sum(endpoint.counts.values()) == dispatched
    assert endpoint.counts['accepted'] == len(casts.targets)
    assert endpoint.counts['rejected'] > 0 and endpoint.counts['busy'] > 0
    assert max(sleeps.asked) <= MAX_SLEEP
    assert sleeps.most <= MAX_SLEEPING
    assert {topic for topic, _ in casts.targets} == {rpcapi.TOPIC}
    for _, host in casts.targets:
        assert 0 < len(host) <= 255 and host.isprintable() and ' ' not in host


class NoAPI:
    """Takes casts and keeps the id of the last probe."""

    last = None

    def inflight(self, ctxt, host, probe):
        self.last = probe.id


class Inline:
    """Runs each send at once, so that the probe is out when send() ends."""

    def submit(self, function, *args):
        function(*args)

    def shutdown(self, **kwargs):
        pass


def test_the_prober_counts_every_hostile_result(statsd):
    from oslo_config import cfg
    from inflight import opts
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    api = NoAPI()
    p = prober.Prober(lambda service: api,
                      metrics.Metrics('127.0.0.1', statsd.port, 'fuzz'),
                      'prober1', sleep=0.0, timeout=60.0, executor=Inline(),
                      method_book=methods.MethodBook({'compute': 'inflight'}))
    results = manager.InflightManager(conf, p, None, None)
    dispatcher = rpc_dispatcher.RPCDispatcher(
        [results], oslo_messaging.NoOpSerializer())
    from inflight.cloud import record
    service = record.Service.of('compute', 'cmp1', id=1, binary='n')
    sent, answered = [], []

    result_fields = st.fixed_dictionaries(
        {}, optional={'id': st.one_of(texts, st.just('KNOWN')),
                      'host': texts, 'received_at': numbers,
                      'replied_at': numbers, 'requested_sleep': numbers,
                      'slept': numbers, 'extra': texts})
    messages = st.fixed_dictionaries({
        'method': st.sampled_from(['inflight_result'] * 4 + ['inflight']),
        'version': st.sampled_from(['1.0', '1.0', '1.1', '3.0']),
        'args': st.one_of(st.fixed_dictionaries({'result': result_fields}),
                          st.just({'result': 'VALID'}),
                          st.just({'result': 'DUPLICATE'}), arguments)})
    outcomes = collections.Counter()

    @settings(max_examples=BATCHES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(messages, min_size=PER_BATCH, max_size=PER_BATCH))
    def batch(batch_messages):
        for message in batch_messages:
            # Some results name a probe really out (or answered already).
            args = dict(message['args'])
            result = args.get('result')
            if result == 'DUPLICATE' and answered:
                args['result'] = answered[-1]
            elif result == 'VALID' or (isinstance(result, dict) and
                                       result.get('id') == 'KNOWN'):
                p.send([service])
                sent.append(1)
                probe_id = api.last
                if result == 'VALID':
                    result = probe_msg.Result(probe_id, 'cmp1', 1.0, 1.5,
                                              0.5, 0.5)._asdict()
                    answered.append(result)
                args['result'] = dict(result, id=probe_id)
            outcomes[dispatch(dispatcher, dict(message, args=args))] += 1

    batch()
    total = BATCHES * PER_BATCH
    assert sum(outcomes.values()) == total
    counted = p.counts['received'] + p.counts['rejected'] + p.counts['late']
    assert counted == outcomes['ok']
    assert p.counts['sent'] == len(sent)
    assert p.counts['received'] + p.pending() == len(sent)
    assert p.counts['rejected'] > 0 and p.counts['received'] > 0
    p.abandon()
