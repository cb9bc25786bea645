"""Up but deaf: lost probes in a row from a service whose heartbeat is fresh."""

import datetime
import logging

from oslo_config import cfg
import pytest

from inflight.cloud import record
from inflight import deaf
from inflight import manager
from inflight import methods
from inflight.outputs import statsd as metrics
from inflight import opts
from inflight import prober
from inflight import ring

READ_AT = datetime.datetime(2026, 11, 22, 12, 0, 0)


def service(host, seen_ago=None, created_ago=None):
    ago = lambda s: None if s is None else READ_AT - datetime.timedelta(  # noqa
        seconds=s)
    return record.Service.of('compute', host, id=1, binary='nova-compute',
                             last_seen_up=ago(seen_ago),
                             created_at=ago(created_ago))


@pytest.mark.parametrize('svc, up', [
    (service('a', seen_ago=10), True),
    (service('b', seen_ago=60), True),
    (service('c', seen_ago=61), False),
    (service('d', seen_ago=-30), True),        # a clock ahead of ours
    (service('e', created_ago=5), True),       # never heartbeated yet
    (service('f', seen_ago=300, created_ago=5), False),
    (service('g'), False),
])
def test_nova_up_rule(svc, up):
    assert deaf.is_up(svc, READ_AT, 60) is up


@pytest.fixture
def services():
    return ring.ServiceRing()


@pytest.fixture
def watch(statsd, services):
    return deaf.DeafWatch(metrics.Metrics('127.0.0.1', statsd.port, 'p'),
                          deaf_after=3, down_time=60,
                          newest_row=services.newest_row)


def test_fresh_heartbeat_and_lost_probes_make_deaf_until_it_answers(
        watch, services, statsd, caplog):
    svc = service('cmp1', seen_ago=5)
    services.refresh([svc], READ_AT)
    for _ in range(2):
        watch.lost(svc)
    assert not watch.is_deaf(svc)
    watch.lost(svc)
    assert watch.is_deaf(svc)
    assert 'compute.cmp1 is up by its heartbeat but deaf' in caplog.text
    watch.lost(svc)
    watch.answered(svc)
    assert not watch.is_deaf(svc)
    statsd.wait_for(lambda m: len(m) == 3)
    assert statsd.values('p.compute.cmp1.deaf') == [0, 1, 0]  # on change


def test_stale_heartbeat_is_down_not_deaf(watch, services, statsd):
    svc = service('cmp2', seen_ago=600)
    services.refresh([svc], READ_AT)
    for _ in range(5):
        watch.lost(svc)
    assert not watch.is_deaf(svc)
    statsd.wait_for(lambda m: len(m) == 1)
    assert statsd.values('p.compute.cmp2.deaf') == [0]


def test_an_answer_resets_the_count(watch, services):
    svc = service('cmp3', seen_ago=5)
    services.refresh([svc], READ_AT)
    watch.lost(svc)
    watch.lost(svc)
    watch.answered(svc)
    watch.lost(svc)
    watch.lost(svc)
    assert not watch.is_deaf(svc)


def test_judged_on_the_newest_row_not_the_one_the_probe_was_sent_with(
        watch, services):
    sent_with = service('cmp4', seen_ago=600)     # an old read of the row
    services.refresh([service('cmp4', seen_ago=5)], READ_AT)
    for _ in range(3):
        watch.lost(sent_with)
    assert watch.is_deaf(sent_with)
    services.refresh([], READ_AT)                  # it left the table
    watch.lost(sent_with)
    assert not watch.is_deaf(sent_with)


# Ten minutes of Nova's: a service reports every REPORT_INTERVAL seconds, from
# 3 s past each ten (so that reads and heartbeats never coincide), and is
# down DOWN_TIME seconds after its last report.
START = 1_800_000_000.0
REPORT_INTERVAL = 10
DOWN_TIME = 60
TICK = 5                # probe_interval: one probe a tick
SLEEP, TIMEOUT = 1.0, 10.0


class Nova:
    """The services table of one compute service, as Nova writes it."""

    def __init__(self, clock, stops_at=None):
        self.clock = clock
        self.stops_at = stops_at
        self.reads = []

    def last_report(self, at):
        """When the service last reported, as of `at`."""
        if self.stops_at is not None:
            at = min(at, self.stops_at)
        reports = (at - START - 3) // REPORT_INTERVAL
        return START + 3 + reports * REPORT_INTERVAL

    def __call__(self):
        now = self.clock()
        self.reads.append(now)
        return [record.Service.of('compute', 'cmp1', id=1,
                                  binary='nova-compute',
                                  last_seen_up=deaf.utc(self.last_report(now)),
                                  created_at=deaf.utc(START - 3600))]

    def up_by_newest_read(self, at):
        """Nova's verdict, as of the newest read before `at`."""
        read = max(r for r in self.reads if r <= at)
        return read - self.last_report(read) <= DOWN_TIME


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now


class Deaf(metrics.NullMetrics):
    """Metrics that keep the deaf gauges sent, and drop the rest."""

    def __init__(self):
        self.gauges = []

    def deaf(self, service, deaf):
        self.gauges.append(int(deaf))


class Unanswered:
    """A BaseAPI whose casts reach no one."""

    def __init__(self):
        self.casts = []

    def inflight(self, ctxt, host, probe):
        self.casts.append(probe.sent_at)


class Inline:
    """An executor that runs what it is given at once."""

    def submit(self, function, *args):
        function(*args)

    def shutdown(self, **kwargs):
        pass


def run_nova(refresh_interval, seconds, stops_at=None):
    """The daemon's manager, prober, ring and watch on a fake clock,
    against `Nova`: (the table, the deaf gauges sent, each lost probe's
    (time, deaf or not))."""
    clock = Clock()
    nova = Nova(clock, stops_at)
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    for name, value in (('cycle_seconds', 0), ('probes_per_tick', 1),
                        ('probe_interval', TICK), ('sleep', SLEEP),
                        ('probe_timeout', TIMEOUT),
                        ('refresh_interval', refresh_interval)):
        conf.set_override(name, value, 'inflight')
    sent = Deaf()
    services = ring.ServiceRing()
    watch = deaf.DeafWatch(sent, deaf_after=3, down_time=DOWN_TIME,
                           newest_row=services.newest_row)
    losses = []
    api = Unanswered()
    probes = prober.Prober(
        lambda service: api, sent, 'prober1', SLEEP, TIMEOUT,
        methods.MethodBook({'compute': 'inflight'}),
        on_outcome=[watch.outcome, lambda service, kind, timings, state:
                    losses.append((clock.now, watch.is_deaf(service)))],
        clock=clock, monotonic=clock, executor=Inline())
    m = manager.InflightManager(conf, probes, services, nova, clock=clock,
                                spawn=lambda read: read())
    for second in range(seconds):
        clock.now = START + second
        if second % refresh_interval == 0:
            m.refresh_services(None)
        if second % TICK == 0:
            m.check_inflight(None)
    # The case at hand: probes sent before a read and lost after it.
    assert any(cast < read < cast + SLEEP + TIMEOUT
               for read in nova.reads[1:] for cast in api.casts)
    return nova, sent.gauges, losses


@pytest.mark.parametrize('refresh_interval', [30, 60, 90])
def test_deaf_throughout_stays_deaf_across_table_reads(refresh_interval,
                                                       caplog):
    caplog.set_level(logging.INFO)
    nova, gauges, losses = run_nova(refresh_interval, 600)
    assert len(nova.reads) >= 600 // refresh_interval
    assert gauges == [0, 1]                     # never a 0 in between
    assert [d for _, d in losses] == [False] * 2 + [True] * (len(losses) - 2)
    assert caplog.text.count('compute.cmp1 is up by its heartbeat but '
                             'deaf') == 1


@pytest.mark.parametrize('refresh_interval', [30, 60, 90])
def test_a_service_whose_heartbeat_stops_is_down_not_deaf(refresh_interval,
                                                          caplog):
    caplog.set_level(logging.INFO)
    nova, gauges, losses = run_nova(refresh_interval, 600,
                                    stops_at=START + 300)
    assert gauges == [0, 1, 0]
    assert [d for _, d in losses] == [
        i >= 2 and nova.up_by_newest_read(at)
        for i, (at, _) in enumerate(losses)]
    assert not nova.up_by_newest_read(losses[-1][0])
    assert caplog.text.count('is up by its heartbeat but deaf') == 1
    assert 'answers probes again' not in caplog.text
