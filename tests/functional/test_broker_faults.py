"""Broker faults mid-run: the connection cut, stalled, or the broker
application restarted. nova-inflight and the probed services reconnect by
themselves, probes caught in the outage count lost once, and probing
resumes within a bounded time."""

import shutil
import subprocess
import time

import pytest

from harness import BrokerProxy, daemon_conf, received_from, stop_daemon


# It stops RabbitMQ, which the other tests use, and times the recovery.
pytestmark = pytest.mark.alone

RECOVERY = 90.0     # seconds, at most, for probing to resume
SERVICE = 'compute.faulty_test'
NAME = 'inflight.' + SERVICE


def fast_heartbeats(conf_path):
    """Missed heartbeats noticed in seconds, not a minute."""
    with open(conf_path, 'a') as conf:
        conf.write('[oslo_messaging_rabbit]\nheartbeat_timeout_threshold = 6\n'
                   'kombu_reconnect_delay = 0.5\nrabbit_retry_interval = 1\n'
                   'rabbit_retry_backoff = 1\nrabbit_interval_max = 2\n')
    return conf_path


def probing(processes, broker_url, exchange, db_url, statsd, tmp_path,
            daemon_url):
    processes.service('threading', broker_url, exchange, 'compute',
                      'faulty.test', db_url)
    daemon = processes.daemon(fast_heartbeats(daemon_conf(
        tmp_path, daemon_url, exchange, db_url, statsd.port, sleep=0.05,
        probe_timeout=1.0, register_service='false')))
    statsd.wait_for(received_from(statsd, 'inflight', SERVICE, 5))
    return daemon


def outage(statsd, recover, hold):
    """Keep the fault `hold` seconds (and till probes are lost), end it,
    and time how long till probes are answered again."""
    lost = statsd.total(NAME + '.lost')
    statsd.receive_for(hold)
    statsd.wait_for(lambda m: statsd.total(NAME + '.lost') >= lost + 5,
                    timeout=60)
    received = statsd.total(NAME + '.received')
    started = time.monotonic()
    recover()
    statsd.wait_for(lambda m: statsd.total(NAME + '.received') >= received + 5,
                    timeout=RECOVERY)
    return time.monotonic() - started


def accounted(statsd, daemon, processes):
    assert daemon.poll() is None, 'nova-inflight died'
    stop_daemon(daemon, statsd)
    sent = statsd.total(NAME + '.sent')
    lost = statsd.total(NAME + '.lost')
    assert sent == statsd.total(NAME + '.received') + lost
    assert statsd.total(NAME + '.late') <= lost
    print('sent %d, received %d, lost %d, late %d' % (
        sent, statsd.total(NAME + '.received'), lost,
        statsd.total(NAME + '.late')))
    assert 'nova-inflight stopped' in processes.log()


# A stall lasts past the heartbeat threshold (6 s): the dead connection
# must be noticed, not merely resumed.
@pytest.mark.parametrize('fault, hold', [('cut', 5.0), ('stall', 12.0)])
def test_connection_cut_or_stalled_and_restored(
        fault, hold, processes, broker_url, exchange, services_db, statsd,
        tmp_path):
    db_url, _ = services_db
    proxy = BrokerProxy(processes, broker_url)
    daemon = probing(processes, broker_url, exchange, db_url, statsd,
                     tmp_path, proxy.url)
    getattr(proxy, fault)()
    recovery = outage(statsd, proxy.restore, hold)
    print('%s: probing resumed %.1f s after the restore' % (fault, recovery))
    accounted(statsd, daemon, processes)


def rabbitmqctl(*args):
    subprocess.run(['rabbitmqctl', *args], check=True, capture_output=True,
                   timeout=120)


@pytest.mark.skipif(not shutil.which('rabbitmqctl'),
                    reason='rabbitmqctl is not on this machine')
def test_broker_application_restarted(processes, broker_url, exchange,
                                      services_db, statsd, tmp_path):
    db_url, _ = services_db
    daemon = probing(processes, broker_url, exchange, db_url, statsd,
                     tmp_path, broker_url)
    try:
        rabbitmqctl('stop_app')
        recovery = outage(statsd, lambda: rabbitmqctl('start_app'), 5.0)
    finally:
        rabbitmqctl('start_app')      # whatever happened, leave it running
    print('stop_app/start_app: probing resumed %.1f s after start_app'
          % recovery)
    accounted(statsd, daemon, processes)
