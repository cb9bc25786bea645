"""A service that leaves the table (or this prober) is forgotten by every
per-service store; the manager keeps its own schedule."""

import datetime
import json

from oslo_config import cfg
from prometheus_client import parser
import prometheus_client

from inflight.cloud import record
from inflight import deaf
from inflight import manager
from inflight import methods
from inflight import opts
from inflight import outputs
from inflight.outputs import prometheus
from inflight.outputs import status
from inflight import prober
from inflight import probes
from inflight import ring
from inflight import skew
from inflight import timings

START = 1_800_000_000.0
SEEN = datetime.datetime.fromtimestamp(
    START, datetime.timezone.utc).replace(tzinfo=None)
CMP1 = record.Service.of('compute', 'cmp1', id=1, last_seen_up=SEEN)
CMP2 = record.Service.of('compute', 'cmp2', id=2, last_seen_up=SEEN)


class Clock:
    def __init__(self, now=START):
        self.now = now

    def __call__(self):
        return self.now


class Unanswered:
    """A BaseAPI whose casts reach no one."""

    def inflight(self, ctxt, host, probe):
        pass


class Inline:
    """An executor that runs what it is given at once."""

    def submit(self, function, *args):
        function(*args)

    def shutdown(self, **kwargs):
        pass


class Recorded:
    """An output keeping the deaf gauges and the calls it took."""

    def __init__(self):
        self.deaf_gauges, self.read, self.forgotten = [], [], []

    def deaf(self, service, deaf):
        self.deaf_gauges.append((service.host, int(deaf)))

    def known(self, services):
        self.read.append(sorted(s.host for s in services))

    def forget(self, services):
        self.forgotten.append(sorted(s.host for s in services))

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def conf_for(**inflight):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    settings = dict(cycle_seconds=0, probes_per_tick=2, probe_interval=1.0,
                    sleep=1.0, probe_timeout=2.0, refresh_interval=60.0)
    settings.update(inflight)
    for name, value in settings.items():
        conf.set_override(name, value, 'inflight')
    return conf


def wired(table, share=None):
    """The daemon's pieces, wired as InflightService.start wires them, on
    a fake clock: (manager, prober, watch, recorded, exporter, status)."""
    clock = Clock()
    conf = conf_for()
    recorded = Recorded()
    exporter = prometheus.Exporter()
    status_file = status.StatusFile('/nonexistent/status.json', 2.0,
                                    'prober1', clock=clock, start=False)
    fan = outputs.Outputs([recorded, exporter, status_file])
    services = ring.ServiceRing()
    watch = deaf.DeafWatch(fan, deaf_after=3, down_time=60,
                           newest_row=services.newest_row)
    probes_ = prober.Prober(
        lambda service: Unanswered(), fan, 'prober1', 1.0, 2.0,
        methods.MethodBook(), on_outcome=[watch.outcome], clock=clock,
        monotonic=clock, executor=Inline())
    m = manager.InflightManager(
        conf, probes_, services, lambda: list(table), known=[fan.known],
        forget=[probes_.forget, watch.forget, fan.forget], share=share,
        clock=clock, monotonic=clock, spawn=lambda read: read())
    return m, probes_, watch, recorded, exporter, status_file, clock


def series_hosts(exporter):
    text = prometheus_client.generate_latest(exporter.registry).decode()
    return {sample.labels.get('host')
            for family in parser.text_string_to_metric_families(text)
            for sample in family.samples}


def lose_three_each(m, clock):
    for _ in range(3):
        m.check_inflight(None)
        clock.now += 3.5       # past sleep + timeout
        m.prober.expire()


def test_a_service_that_leaves_the_table_is_forgotten_everywhere():
    table = [CMP1, CMP2]
    m, p, watch, recorded, exporter, status_file, clock = wired(table)
    m.refresh_services(None)
    lose_three_each(m, clock)
    assert watch.is_deaf(CMP2)
    assert ('cmp2', 1) in recorded.deaf_gauges
    assert series_hosts(exporter) >= {'cmp1', 'cmp2'}
    assert {r['host'] for r in status_file.snapshot()['rows']} == {
        'cmp1', 'cmp2'}
    p.offsets.correct(CMP2, timings.Timings(0.5, 1.0, 0.0, 0.1, 1.6, 0.6))

    table.remove(CMP2)
    m.refresh_services(None)
    assert recorded.read[-1] == ['cmp1']
    assert recorded.forgotten[-1] == ['cmp2']
    assert not watch.is_deaf(CMP2)
    assert recorded.deaf_gauges[-1] == ('cmp2', 0)   # statsd keeps a 1
    assert 'cmp2' not in series_hosts(exporter)
    assert 'cmp1' in series_hosts(exporter)
    assert {r['host'] for r in status_file.snapshot()['rows']} == {
        'cmp1'}
    # The offset learnt from the old samples is not applied to a new one.
    _, offset = p.offsets.correct(
        CMP2, timings.Timings(0.01, 1.0, 0.0, 0.01, 1.02, 0.02))
    assert offset == 0.0


def test_a_service_back_in_the_table_starts_afresh():
    table = [CMP1, CMP2]
    m, p, watch, recorded, *_, clock = wired(table)
    m.refresh_services(None)
    plan = p.methods.plan(CMP2)
    p.methods.answered(CMP2, 'baseapi', plan)
    assert p.methods.plan(CMP2).kinds == ('baseapi',)
    table.remove(CMP2)
    m.refresh_services(None)
    table.append(CMP2)
    m.refresh_services(None)
    assert p.methods.plan(CMP2).kinds == probes.ORDER
    assert recorded.forgotten == [['cmp2']]


def test_a_new_share_forgets_what_moved_to_another_prober():
    table = [CMP1, CMP2]
    mine = {'cmp1', 'cmp2'}
    m, p, watch, recorded, exporter, status_file, clock = wired(
        table, share=lambda services: [s for s in services
                                       if s.host in mine])
    m.refresh_services(None)
    assert len(m.ring) == 2
    mine.discard('cmp1')
    m.reshare()
    assert [s.host for s in m.ring.services()] == ['cmp2']
    assert recorded.forgotten == [['cmp1']]
    assert recorded.read == [['cmp1', 'cmp2']]   # the table, not the share


def test_a_deaf_gauge_never_sent_is_not_cleared():
    watch_out = Recorded()
    watch = deaf.DeafWatch(watch_out, 3, 60, lambda key: (None, SEEN))
    watch.lost(CMP1)             # not up: gauged 0
    watch.forget([CMP1, CMP2])
    assert watch_out.deaf_gauges == [('cmp1', 0)]


def test_the_offsets_of_one_service_go_and_the_others_stay():
    offsets = skew.ClockOffsets()
    proved = timings.Timings(0.5, 1.0, 0.0, 0.1, 1.6, 0.6)
    _, before = offsets.correct(CMP1, proved)
    offsets.correct(CMP2, proved)
    offsets.forget([CMP2])
    loose = timings.Timings(0.3, 1.0, 0.0, 0.3, 1.6, 0.6)
    assert offsets.correct(CMP1, loose)[1] == before
    assert offsets.correct(CMP2, loose)[1] == 0.0


class Tasks(manager.InflightManager):
    """A manager whose tasks only say when they ran."""

    def __init__(self, conf, clock):
        super().__init__(conf, None, ring.ServiceRing(), list,
                         monotonic=clock)
        self.clock, self.runs = clock, []

    def refresh_services(self, context):
        self.runs.append(('refresh_services', self.clock.now))

    def check_inflight(self, context):
        self.runs.append(('check_inflight', self.clock.now))


def test_tasks_run_when_due_and_the_idle_time_is_until_the_next():
    clock = Clock(0.0)
    m = Tasks(conf_for(refresh_interval=10.0, probe_interval=3.0), clock)
    waits = []
    while clock.now < 20:
        waits.append(m.periodic_tasks())
        clock.now += waits[-1]
    assert m.runs == [
        ('refresh_services', 0), ('check_inflight', 0),
        ('check_inflight', 3), ('check_inflight', 6), ('check_inflight', 9),
        ('refresh_services', 10), ('check_inflight', 12),
        ('check_inflight', 15), ('check_inflight', 18)]
    assert waits[:4] == [3, 3, 3, 1]


def test_a_spacing_changed_meanwhile_counts_from_the_last_run():
    clock = Clock(0.0)
    m = Tasks(conf_for(refresh_interval=60.0, probe_interval=5.0), clock)
    m.periodic_tasks()
    m.spacing['refresh_services'] = 2.0      # as a failed read backs off
    assert m.periodic_tasks() == 2.0
    clock.now = 2.0
    m.periodic_tasks()
    assert m.runs[-1] == ('refresh_services', 2.0)


def test_a_task_that_raises_is_logged_and_the_others_run(caplog):
    clock = Clock(0.0)

    class Failing(Tasks):
        def refresh_services(self, context):
            raise RuntimeError('boom')

    m = Failing(conf_for(), clock)
    assert m.periodic_tasks() == 1.0
    assert m.runs == [('check_inflight', 0.0)]
    assert 'The periodic task refresh_services failed' in caplog.text


def test_the_status_rows_carry_the_cell(tmp_path):
    path = tmp_path / 'status.json'
    out = status.StatusFile(str(path), 2.0, 'prober1', start=False)
    out.sent([record.Service.of('compute', 'cmp1', cell='cell1')])
    out.write()
    row, = json.loads(path.read_text())['rows']
    assert (row['cell'], row['topic'], row['host']) == (
        'cell1', 'compute', 'cmp1')


class Answering:
    """A BaseAPI whose casts are answered when the test says."""

    def __init__(self):
        self.probes = []

    def inflight(self, ctxt, host, probe):
        self.probes.append(probe)


def test_a_probe_out_as_its_service_moves_ends_without_learning_it_again():
    """Forgotten once its probe out has ended, not before: that end would
    otherwise learn it again, and keep a series of a service that another
    prober now probes."""
    table = [CMP1, CMP2]
    mine = {'cmp1', 'cmp2'}
    m, p, watch, recorded, exporter, status_file, clock = wired(
        table, share=lambda services: [s for s in services
                                       if s.host in mine])
    api = Answering()
    p._api_for = lambda service: api
    m.refresh_services(None)
    for service in table:                    # known to answer inflight casts
        p.methods.answered(service, 'inflight', p.methods.plan(service))
    m.check_inflight(None)                   # both probed, both out
    assert len(api.probes) == p.pending() == 2
    mine.discard('cmp1')
    m.reshare()
    assert recorded.forgotten == []          # its probe is still out
    for probe in api.probes:                 # the results come back
        clock.now += 0.01
        p.receive({'id': probe.id, 'host': 'cmp', 'received_at': clock.now,
                   'replied_at': clock.now + 1.0, 'requested_sleep': 1.0,
                   'slept': 1.0})
    clock.now += 1.1
    assert p.pending() == 0
    m.check_inflight(None)
    assert recorded.forgotten == [['cmp1']]
    assert p.methods.plan(CMP1).kinds == probes.ORDER    # nothing learnt
    assert 'cmp1' not in series_hosts(exporter)
    assert {r['host'] for r in status_file.snapshot()['rows']} == {'cmp2'}


def test_a_service_moving_back_before_its_probe_ended_is_kept():
    table = [CMP1, CMP2]
    mine = {'cmp1', 'cmp2'}
    m, p, watch, recorded, *_, clock = wired(table, share=lambda services: [
        s for s in services if s.host in mine])
    p._api_for = lambda service: Answering()
    m.refresh_services(None)
    for service in table:
        p.methods.answered(service, 'inflight', p.methods.plan(service))
    m.check_inflight(None)
    assert p.pending() == 2
    mine.discard('cmp1')
    m.reshare()
    mine.add('cmp1')
    m.reshare()
    clock.now += 3.5                         # past sleep + timeout: lost
    m.check_inflight(None)
    assert recorded.forgotten == []
    assert CMP1.key in {s.key for s in m.ring.services()}
