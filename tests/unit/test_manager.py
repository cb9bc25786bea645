"""The manager: the table's outages keep the ring, back off, log once."""

import logging
import threading

from oslo_config import cfg

from inflight.cloud import record
from inflight import handover
from inflight import manager
from inflight import opts
from inflight import ring

CMP1 = record.Service.of('compute', 'cmp1', id=1, binary='nova-compute')
CMP2 = record.Service.of('compute', 'cmp2', id=2, binary='nova-compute')


def in_ring_order(services):
    return sorted(services, key=lambda s: ring.order(s.key))


def inline(function):
    """Runs the table read at once, in the caller's thread."""
    function()


class Table:
    """The services table, answering or failing as told."""

    def __init__(self):
        self.rows, self.down, self.reads = [CMP1], False, 0

    def __call__(self):
        self.reads += 1
        if self.down:
            raise ConnectionError('database is gone')
        return list(self.rows)


def make(refresh_interval=60.0):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    conf.set_override('refresh_interval', refresh_interval, 'inflight')
    table = Table()
    return manager.InflightManager(conf, None, ring.ServiceRing(), table,
                                   spawn=inline), table


def test_an_outage_keeps_the_ring_backs_off_and_logs_once(caplog):
    caplog.set_level(logging.INFO)
    m, table = make()
    m.refresh_services(None)
    assert len(m.ring) == 1
    table.down = True
    spacings = []
    for _ in range(9):
        m.refresh_services(None)
        spacings.append(m.spacing['refresh_services'])
    assert len(m.ring) == 1 and m.ring.next() == CMP1
    assert spacings == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert caplog.text.count('Could not read the services table') == 1
    table.down, table.rows = False, [CMP1, CMP2]
    m.refresh_services(None)
    assert len(m.ring) == 2                    # changes picked up
    assert m.spacing['refresh_services'] == 60
    assert 'Read the services table again after 9 failed tries' in caplog.text


def test_a_new_worker_starts_where_the_cycle_stands_by_the_clock():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    conf.set_override('cycle_seconds', 60.0, 'inflight')
    rows = in_ring_order([record.Service.of('compute', 'h%d' % i, id=i,
                                            binary='n') for i in range(10)])
    for now, at in ((1800.0, 0), (1830.0, 5), (1857.0, 9)):
        m = manager.InflightManager(conf, None, ring.ServiceRing(),
                                    lambda: rows, clock=lambda: now,
                                    spawn=inline)
        m.refresh_services(None)
        assert m.ring.next() == rows[at]


class Prober:
    """Takes note of the services it is asked to probe."""

    def __init__(self):
        self.sent, self.counts = [], {}

    def expire(self):
        pass

    def pending(self):
        return 0

    def send(self, services):
        self.sent += [s.host for s in services]


def test_a_new_worker_goes_on_where_the_last_left_the_ring():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    conf.set_override('cycle_seconds', 0, 'inflight')
    conf.set_override('probes_per_tick', 3, 'inflight')
    rows = in_ring_order([record.Service.of('compute', 'h%d' % i, id=i,
                                            binary='n') for i in range(10)])
    place = handover.SharedSlot()
    sent = []
    for ticks in (2, 2, 3):        # three workers, one after another
        p = Prober()
        m = manager.InflightManager(conf, p, ring.ServiceRing(),
                                    lambda: rows, place=place, spawn=inline)
        m.refresh_services(None)
        for _ in range(ticks):
            m.check_inflight(None)
        sent += p.sent
    assert sent == [rows[i % 10].host for i in range(21)]
    assert place.load() == [list(rows[0].key), 2]
    # Nothing, or something not a place, in the slot: from the top.
    for value in (None, 'junk', [['compute', 'h1'], 1],
                  [['', 'a', 'b'], 'x']):
        place.save(value)
        m = manager.InflightManager(conf, Prober(), ring.ServiceRing(),
                                    lambda: rows, place=place, spawn=inline)
        m.refresh_services(None)
        assert m.ring.next() == rows[0]


def test_a_table_read_that_hangs_holds_up_no_probe(caplog):
    caplog.set_level(logging.INFO)
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    conf.set_override('cycle_seconds', 0, 'inflight')
    conf.set_override('probes_per_tick', 1, 'inflight')
    table, answer, readers = Table(), threading.Event(), []

    def read():
        if table.reads:
            answer.wait(30)          # the database stops answering
        return table()

    def spawn(function):
        readers.append(threading.Thread(target=function))
        readers[-1].start()

    p = Prober()
    m = manager.InflightManager(conf, p, ring.ServiceRing(), read,
                                spawn=spawn)
    m.refresh_services(None)
    readers[0].join()
    m.check_inflight(None)
    m.refresh_services(None)         # this read hangs
    for _ in range(3):
        m.check_inflight(None)       # probing goes on meanwhile
        m.refresh_services(None)     # due again: no second read started
    assert p.sent == ['cmp1'] * 4
    assert len(readers) == 2
    assert m.spacing['refresh_services'] == 4     # backing off
    assert caplog.text.count('Could not read the services table') == 1
    assert 'no answer in' in caplog.text
    table.rows = [CMP1, CMP2]
    answer.set()
    readers[1].join()
    assert len(m.ring) == 2
    assert 'Read the services table again after 3 failed tries' in \
        caplog.text


def test_a_database_error_is_warned_on_one_line(caplog):
    import sqlalchemy as sa
    m, table = make()

    def refused():
        raise sa.exc.OperationalError(
            'SELECT', None, Exception('(1045, "Access denied")'))

    m._list_services = refused
    m.refresh_services(None)
    warning, = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING]
    assert 'Access denied' in warning and '\n' not in warning
    assert 'sqlalche.me' not in warning
