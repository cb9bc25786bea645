"""Database faults mid-run: the services table's MariaDB stalls behind a
proxy that holds its traffic both ways, as a failover or a partition does.
Probing goes on with the services known, one warning says so, the table is
read again once the database answers, and SIGTERM still ends in time."""

import time

import pytest

from harness import TcpProxy, add_row, daemon_conf, received_from
from harness import TEARDOWN_SECONDS
from inflight.cloud import db
import servers


# How soon SIGTERM stops the daemon is timed.
pytestmark = pytest.mark.alone

STEADY = 'inflight.compute.steady_test'


@pytest.fixture
def mariadb():
    url, drop = servers.scratch_database('mariadb')
    engine = db.create_engine(url, read_only=False)
    db.sync(engine)
    yield url, engine
    engine.dispose()
    drop()


# `mariadb` first: set up first, it is torn down last, once the processes
# (the proxy among them) are gone.
def test_a_stalled_database_holds_up_no_probe(
        mariadb, processes, broker_url, exchange, statsd, tmp_path):
    url, engine = mariadb
    processes.service('threading', broker_url, exchange, 'compute',
                      'steady.test', url)
    proxy = TcpProxy(processes, servers.MARIADB)
    through_proxy = url.replace(':%d/' % servers.MARIADB[1],
                                ':%d/' % proxy.port)
    timeout = 2.0
    daemon = processes.daemon(daemon_conf(
        tmp_path, broker_url, exchange, through_proxy, statsd.port,
        sleep=0.05, probe_timeout=timeout, register_service='false'))
    statsd.wait_for(received_from(statsd, 'inflight', 'compute.steady_test',
                                  5))

    proxy.stall()
    processes.wait_for_log(statsd, 'Could not read the services table')
    assert 'no answer in' in processes.log()
    add_row(engine, 'joined.test', 'compute')    # seen once it answers
    received = statsd.total(STEADY + '.received')
    statsd.wait_for(lambda m: statsd.total(STEADY + '.received') >=
                    received + 20)               # probing goes on
    assert statsd.total('inflight.compute.joined_test.sent') == 0
    proxy.restore()
    statsd.wait_for(lambda m: statsd.total('inflight.compute.joined_test'
                                           '.sent') >= 1)
    log = processes.log()
    assert log.count('Could not read the services table') == 1
    assert 'Read the services table again after' in log

    proxy.stall()                               # and stop meanwhile
    processes.wait_for_log(statsd, 'Could not read the services table',
                           times=2)
    signalled = time.monotonic()
    daemon.terminate()
    assert daemon.wait(30) == 0
    assert time.monotonic() - signalled <= timeout + TEARDOWN_SECONDS
    # Let the database go of what the stalled connections hold (a read's
    # metadata lock would hold up dropping the database).
    proxy.cut()
    statsd.drain()
    assert statsd.total(STEADY + '.sent') == (
        statsd.total(STEADY + '.received') + statsd.total(STEADY + '.lost'))
    assert statsd.total(STEADY + '.lost') == 0
    assert 'Traceback' not in processes.log()
