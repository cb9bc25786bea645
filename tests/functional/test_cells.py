"""A cloud with two cells and cell0: the API database maps them, cell1's
services table is in MariaDB and cell2's in PostgreSQL, each cell has a
RabbitMQ vhost of its own, and cell0 holds a control service whose queue is
on the top-level broker. Every service is probed on its own cell's broker
and answers there, under names that carry the cell; a cell whose database,
then broker, goes down holds up none of the others, and says so once."""

import statistics
import time
import uuid

import pytest

from harness import TcpProxy, BrokerProxy, daemon_conf, prober_host
from harness import TEARDOWN_SECONDS
from inflight.cloud import cells
from inflight.cloud import db
import servers


# How soon SIGTERM stops the daemon is timed.
pytestmark = pytest.mark.alone

CELL1 = 'c0ffee00-0000-4000-8000-000000000001'
CELL2 = 'c0ffee00-0000-4000-8000-000000000002'
SUPER = 'inflight.cell0.conductor.super_test'
CMP1 = 'inflight.cell1.compute.cmp1_test'
CMP2 = 'inflight.cell2.compute.cmp2_test'
JOINED = 'inflight.cell2.compute.joined_test'


@pytest.fixture
def cell_vhosts():
    """Two RabbitMQ vhosts of the test's own, one a cell: their URLs."""
    servers.require('RabbitMQ', servers.BROKER, 'INFLIGHT_REQUIRE_BROKER')
    rabbitmqctl = servers.Rabbitmqctl()
    if not rabbitmqctl.usable():
        servers.unavailable('no vhosts of its own for the cells: %s'
                            % rabbitmqctl.error, 'INFLIGHT_REQUIRE_BROKER')
    names = [servers.VHOST_PREFIX + 'cell%d-%s' % (i, uuid.uuid4().hex[:8])
             for i in (1, 2)]
    for name in names:
        rabbitmqctl.add_vhost(name)
    yield [servers.vhost_url(name) for name in names], names, rabbitmqctl
    for name in names:
        rabbitmqctl.delete_vhost(name)


@pytest.fixture
def databases():
    """The API database and cell0's, cell1's in MariaDB, cell2's in
    PostgreSQL: {name: (URL, engine)}, each with its table."""
    made, drops = {}, []
    try:
        for name, kind, sync in (('api', 'mariadb', cells.sync),
                                 ('cell0', 'mariadb', db.sync),
                                 ('cell1', 'mariadb', db.sync),
                                 ('cell2', 'postgresql', db.sync)):
            url, drop = servers.scratch_database(kind)
            drops.append(drop)
            engine = db.create_engine(url, read_only=False)
            sync(engine)
            made[name] = url, engine
        yield made
    finally:
        for _, engine in made.values():
            engine.dispose()
        for drop in drops:
            drop()


def _count(statsd, name):
    return statsd.total(name)


def _grows(statsd, name, by):
    """A predicate: `name` grows `by` from now."""
    start = _count(statsd, name)
    return lambda metrics: _count(statsd, name) >= start + by


def _figures(statsd, names, seconds):
    """{name: (probes received a second, median round trip in ms)} over
    the next `seconds`."""
    before = {name: (_count(statsd, name + '.received'),
                     len(statsd.values(name + '.round_trip')))
              for name in names}
    statsd.receive_for(seconds)
    return {name: ((_count(statsd, name + '.received') - received) / seconds,
                   statistics.median(
                       statsd.values(name + '.round_trip')[trips:]))
            for name, (received, trips) in before.items()}


# The servers' fixtures first: set up first, they are torn down last, once
# the processes (the proxies among them) are gone.
def test_every_cell_is_probed_on_its_own_broker(
        cell_vhosts, databases, processes, broker_url, exchange, statsd,
        tmp_path, capsys):
    (vhost1_url, vhost2_url), vhost_names, rabbitmqctl = cell_vhosts
    cell0_url = databases['cell0'][0]
    api_url, api = databases['api']
    # cell1 through proxies, its database and broker; its URLs templates
    # filled in from the prober's own [database] and [DEFAULT] ones.
    db_proxy = TcpProxy(processes, servers.MARIADB)
    mq_proxy = BrokerProxy(processes, vhost1_url)
    cell1_db = databases['cell1'][0].rpartition('/')[2]
    cells.add_cell(api, cells.CELL0_UUID, 'cell0', cell0_url,
                   cells.NO_TRANSPORT)
    cells.add_cell(api, CELL1, 'cell1',
                   '{scheme}://{username}@{hostname}:%d/%s'
                   % (db_proxy.port, cell1_db),
                   '{scheme}://{username}:{password}@{hostname}:%d/%s'
                   % (mq_proxy.port, vhost_names[0]))
    cells.add_cell(api, CELL2, 'cell2', databases['cell2'][0], vhost2_url)

    probed = [
        processes.service('threading', broker_url, exchange, 'conductor',
                          'super.test', cell0_url),
        processes.service('threading', mq_proxy.url, exchange, 'compute',
                          'cmp1.test', databases['cell1'][0]),
        processes.service('threading', vhost2_url, exchange, 'compute',
                          'cmp2.test', databases['cell2'][0])]
    timeout = 2.0
    conf = daemon_conf(tmp_path, broker_url, exchange, cell0_url,
                       statsd.port, sleep=0.05, probe_timeout=timeout,
                       refresh_interval=2.0, register_service='false')
    with open(conf, 'a') as f:
        f.write('[api_database]\nconnection = %s\n' % api_url)
    began = time.monotonic()
    daemon = processes.daemon(conf)
    for name in (SUPER, CMP1, CMP2):
        statsd.wait_for(lambda m, name=name:
                        _count(statsd, name + '.received') >= 5)
    # The results came back on each cell's own broker.
    results = 'inflight.%s' % prober_host(exchange)
    for vhost in vhost_names:
        assert results in rabbitmqctl.contents(vhost)[0]
    figures = _figures(statsd, (SUPER, CMP1, CMP2), 2.0)

    db_proxy.cut()
    processes.wait_for_log(statsd, 'services table of cell cell1')
    engine2 = databases['cell2'][1]
    db.register_service(engine2, 'joined.test', 'nova-compute', 'compute')
    statsd.wait_for(lambda m: _count(statsd, JOINED + '.sent') >= 1)
    # cell1 probed all the same, from its rows last read.
    statsd.wait_for(_grows(statsd, CMP1 + '.received', 10))

    mq_proxy.cut()
    processes.wait_for_log(statsd, 'The broker of cell cell1 at')
    statsd.wait_for(_grows(statsd, CMP1 + '.lost', 10))
    statsd.wait_for(_grows(statsd, CMP2 + '.received', 10))
    statsd.wait_for(_grows(statsd, SUPER + '.received', 10))
    log = processes.log()
    assert log.count('Could not read the services table of cell cell1') == 1
    assert log.count('does not answer, its probes count lost') == 1
    assert log.count('Could not read the services table of cell') == 1
    assert 'Could not read the services table,' not in log  # the API DB's

    db_proxy.restore()
    mq_proxy.restore()
    processes.wait_for_log(statsd, 'Read the services table of cell cell1 '
                           'again')
    processes.wait_for_log(statsd, 'The broker of cell cell1 at')
    processes.wait_for_log(statsd, 'answers again')
    assert 'broker of cell cell1 at %s' % mq_proxy.url.replace(
        ':guest@', ':***@') in processes.log()
    statsd.wait_for(_grows(statsd, CMP1 + '.received', 5))

    mq_proxy.cut()                    # and stop with a cell broker down
    signalled = time.monotonic()
    daemon.terminate()
    assert daemon.wait(30) == 0
    assert time.monotonic() - signalled <= timeout + TEARDOWN_SECONDS
    mq_proxy.restore()
    for proc in probed:               # while their proxies are there
        proc.terminate()
    for proc in probed:
        proc.wait(30)
    statsd.drain()
    assert 'Traceback' not in processes.log()
    with capsys.disabled():
        print('\ncells: %.0fs; ' % (time.monotonic() - began) + '; '.join(
            '%s %.1f probes/s, round trip %.1f ms' % (name, rate, trip)
            for name, (rate, trip) in figures.items()))


def test_a_cell_broker_refusing_the_login_is_served_once_it_takes_it(
        cell_vhosts, processes, broker_url, exchange, statsd, tmp_path):
    """Its results server is started again at each check, until the
    broker takes the login: one warning, one line when it answers, and no
    traceback."""
    (vhost1_url, _), vhost_names, rabbitmqctl = cell_vhosts
    user, password = 'inflight-test-%s' % uuid.uuid4().hex[:8], \
        uuid.uuid4().hex
    cell_url = vhost1_url.replace('guest:guest@',
                                  '%s:%s@' % (user, password), 1)
    api_url = 'sqlite:///%s' % (tmp_path / 'api.sqlite')
    cell_db = 'sqlite:///%s' % (tmp_path / 'cell1.sqlite')
    api = db.create_engine(api_url, read_only=False)
    cells.sync(api)
    db.sync(db.create_engine(cell_db, read_only=False))
    cells.add_cell(api, CELL1, 'cell1', cell_db, cell_url)
    api.dispose()
    processes.service('threading', vhost1_url, exchange, 'compute',
                      'cmp1.test', cell_db)
    conf = daemon_conf(tmp_path, broker_url, exchange, cell_db, statsd.port,
                       sleep=0.05, probe_timeout=2.0,
                       register_service='false')
    with open(conf, 'a') as f:
        f.write('[api_database]\nconnection = %s\n' % api_url)
    processes.daemon(conf)
    masked = cell_url.replace(password, '***')
    processes.wait_for_log(statsd, 'The broker of cell cell1 at %s does not '
                           'answer' % masked)
    rabbitmqctl.run('add_user', user, password)
    try:
        rabbitmqctl.run('set_permissions', '-p', vhost_names[0], user,
                        '.*', '.*', '.*')
        statsd.wait_for(lambda m: _count(statsd, CMP1 + '.received') >= 3)
    finally:
        rabbitmqctl.run('delete_user', user)
    log = processes.log()
    assert log.count('does not answer') == 1, log[-3000:]
    assert log.count('The broker of cell cell1 at %s answers again'
                     % masked) == 1
    assert 'Traceback' not in log and password not in log, log[-3000:]
