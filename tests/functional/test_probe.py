"""End to end over the real RabbitMQ: nova-inflight probes services in other
processes, one on eventlet and one on native threads, and a real UDP socket
receives what it sends to statsd."""

import signal
import socket
import statistics

import pytest

from harness import add_row, daemon_conf, prober_service, received_from
from harness import stop_daemon, SLEEP
from inflight.timings import PHASES


# Pacing, clock offsets and how soon signals are obeyed are timed.
pytestmark = pytest.mark.alone

# Wall-clock readings on one machine: allow for their resolution.
EPSILON_MS = 1.0


def test_timings_of_eventlet_and_threading_services(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, engine = services_db
    processes.service('eventlet', broker_url, exchange, 'compute',
                      'cmp-eventlet.test', db_url)
    processes.service('threading', broker_url, exchange, 'conductor',
                      'ctl-threading.test', db_url)
    add_row(engine, 'cmp-disabled.test', 'compute', disabled=True)
    add_row(engine, 'api.test', None, binary='nova-osapi_compute')
    add_row(engine, 'cmp-deleted.test', 'compute', deleted=99)
    daemon = processes.daemon(daemon_conf(tmp_path, broker_url, exchange,
                                          db_url, statsd.port))
    services = ('compute.cmp-eventlet_test', 'conductor.ctl-threading_test',
                prober_service(exchange))   # the prober probes itself too
    for service in services:
        statsd.wait_for(received_from(statsd, 'inflight', service, 3))
    stop_daemon(daemon, statsd)

    for service in services:
        phase = {p: statsd.values('inflight.%s.%s' % (service, p))
                 for p in PHASES}
        assert len(set(map(len, phase.values()))) == 1, phase
        for to, in_, over, back, rtt, queue in zip(*(phase[p]
                                                    for p in PHASES)):
            assert in_ >= SLEEP * 1000 - EPSILON_MS
            assert 0 <= over <= in_ - SLEEP * 1000 + EPSILON_MS
            assert to >= 0 and back >= 0
            assert rtt >= in_
            assert queue == pytest.approx(rtt - in_, abs=0.01)
            assert to + back == pytest.approx(queue, abs=0.01)
        sent = statsd.total('inflight.%s.sent' % service)
        assert sent == (statsd.total('inflight.%s.received' % service) +
                        statsd.total('inflight.%s.lost' % service))
    names = ' '.join(name for name, _, _ in statsd.metrics)
    for absent in ('disabled', 'deleted', 'api_test', 'None'):
        assert absent not in names


def test_a_stopped_service_counts_lost_once_then_late(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, engine = services_db
    service = processes.service('threading', broker_url, exchange, 'compute',
                                'cmp-stopped.test', db_url)
    add_row(engine, 'cmp-ghost.test', 'compute')    # nothing consumes
    daemon = processes.daemon(daemon_conf(
        tmp_path, broker_url, exchange, db_url, statsd.port,
        probe_timeout=0.3, sleep=0.05, register_service='false',
        deaf_after=5))
    stopped = 'inflight.compute.cmp-stopped_test'
    statsd.wait_for(lambda m: statsd.values(stopped + '.method.inflight'))
    # Past the first probes, handed on while the service warmed up:
    settled = statsd.total(stopped + '.received') + 10
    statsd.wait_for(lambda m: statsd.total(stopped + '.received') >= settled)
    service.send_signal(signal.SIGSTOP)
    before = statsd.total(stopped + ".lost")
    statsd.wait_for(lambda m: statsd.total(stopped + '.lost') >= before + 3)
    service.send_signal(signal.SIGCONT)
    statsd.wait_for(lambda m: statsd.total(stopped + '.late') >= 3)
    stop_daemon(daemon, statsd)

    lost = statsd.total(stopped + '.lost')
    assert statsd.total(stopped + '.late') <= lost
    assert statsd.total(stopped + '.sent') == (
        statsd.total(stopped + '.received') + lost)
    ghost = 'inflight.compute.cmp-ghost_test'
    assert statsd.total(ghost + '.received') == 0
    assert statsd.total(ghost + '.sent') == statsd.total(ghost + '.lost') > 0


def test_sighup_reloads_the_configuration(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, engine = services_db
    processes.service('threading', broker_url, exchange, 'compute',
                      'cmp-reload.test', db_url)
    conf = daemon_conf(tmp_path, broker_url, exchange, db_url, statsd.port,
                       prefix='before')
    daemon = processes.daemon(conf)
    statsd.wait_for(received_from(statsd, 'before', 'compute.cmp-reload_test',
                                  1))
    daemon_conf(tmp_path, broker_url, exchange, db_url, statsd.port,
                prefix='after')
    daemon.send_signal(signal.SIGHUP)
    statsd.wait_for(received_from(statsd, 'after', 'compute.cmp-reload_test',
                                  1))
    assert daemon.poll() is None
    stop_daemon(daemon, statsd)
    log = processes.log()
    assert 'Traceback' not in log
    assert log.count('nova-inflight stopped') == 2   # once per worker


def test_tells_systemd_it_is_ready(processes, broker_url, exchange,
                                   services_db, statsd, tmp_path):
    db_url, engine = services_db
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / 'notify'))
    notify.settimeout(30)
    daemon = processes.daemon(
        daemon_conf(tmp_path, broker_url, exchange, db_url, statsd.port),
        NOTIFY_SOCKET=str(tmp_path / 'notify'))
    # It says what it does, then that it is ready.
    assert notify.recv(4096) == b'STATUS=Probing'
    assert b'READY=1' in notify.recv(4096).split(b'\n')
    statsd.wait_for(received_from(statsd, 'inflight', prober_service(exchange),
                                  1))
    stop_daemon(daemon, statsd)
    notify.close()
    log = processes.log()
    # Lines an operator reads: sentences, and no library noise at stop.
    assert 'during closing channel' not in log
    assert "{'" not in log


def leg_medians(statsd, service):
    name = 'inflight.%s.' % service
    return {p: statistics.median(statsd.values(name + p)) for p in (
        'to_service', 'from_service', 'queue_total', 'in_service')}


def test_legs_survive_a_service_clock_five_seconds_off(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, engine = services_db
    for mode, host, offset in (('threading', 'same.test', 0.0),
                               ('threading', 'ahead.test', 5.0),
                               ('eventlet', 'behind.test', -5.0)):
        processes.service(mode, broker_url, exchange, 'compute', host,
                          db_url, clock_offset=offset)
    daemon = processes.daemon(daemon_conf(
        tmp_path, broker_url, exchange, db_url, statsd.port, sleep=0.05,
        register_service='false'))
    services = ('compute.same_test', 'compute.ahead_test',
                'compute.behind_test')
    for service in services:
        statsd.wait_for(received_from(statsd, 'inflight', service, 20))
    stop_daemon(daemon, statsd)

    same = leg_medians(statsd, services[0])
    for service, offset in zip(services[1:], (5000.0, -5000.0)):
        off = leg_medians(statsd, service)
        for leg in ('to_service', 'from_service', 'queue_total'):
            assert off[leg] == pytest.approx(same[leg], abs=max(
                1.0, 0.05 * same[leg]) + 1.0), (service, leg, off, same)
        gauge = statsd.values('inflight.%s.clock_offset' % service)
        # A negative gauge goes as "0" then the value: keep the values.
        assert statistics.median([g for g in gauge if g]) == pytest.approx(
            offset, abs=2.0)
        assert min(statsd.values('inflight.%s.to_service' % service)) >= 0
        assert min(statsd.values('inflight.%s.from_service' % service)) >= 0


def test_paced_by_cycle_every_service_in_turn(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, engine = services_db
    hosts = ('p1.test', 'p2.test', 'p3.test')
    for host in hosts:
        processes.service('threading', broker_url, exchange, 'compute', host,
                          db_url)
    daemon = processes.daemon(daemon_conf(
        tmp_path, broker_url, exchange, db_url, statsd.port, sleep=0.05,
        register_service='false', cycle_seconds=0.6, max_in_flight=10))
    for host in hosts:
        statsd.wait_for(received_from(statsd, 'inflight',
                                      'compute.' + host.replace('.', '_'), 3))
    stop_daemon(daemon, statsd)
    sent = [statsd.total('inflight.compute.%s.sent' % h.replace('.', '_'))
            for h in hosts]
    assert max(sent) - min(sent) <= 1     # in turn: none probed twice ahead
    assert 'Probing 3 enabled services' in processes.log()
