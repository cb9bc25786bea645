"""End to end over the real RabbitMQ: nova-inflight probes services in other
processes, one on eventlet and one on native threads, and a real UDP socket
receives what it sends to statsd."""

import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

from inflight import db

HERE = os.path.dirname(__file__)
SLEEP = 0.2
PHASES = ('to_service', 'in_service', 'overhead', 'from_service',
          'round_trip')
# Wall-clock readings on one machine: allow for their resolution.
EPSILON_MS = 1.0


def read_line(proc, timeout=30.0):
    """The next line `proc` prints, waiting at most `timeout` seconds."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, 'no output from %s in %ss' % (proc.args, timeout)
    return proc.stdout.readline()


class Processes:
    """Starts processes for one test and stops whatever is left at its end."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.procs = []

    def service(self, mode, broker_url, exchange, topic, host, db_url):
        conf = self.tmp_path / ('%s.conf' % host)
        log = self.tmp_path / ('%s.log' % host)
        conf.write_text(
            '[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n'
            % (broker_url, exchange))
        proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'probed_service.py'), mode,
             str(conf), topic, host, '--db', db_url],
            stdout=subprocess.PIPE, stderr=open(log, 'w'), text=True)
        self.procs.append(proc)
        line = read_line(proc)
        assert line.split() == ['READY', mode], log.read_text()[-3000:]
        return proc

    def daemon(self, conf_path, **env):
        log = open(self.tmp_path / 'nova-inflight.log', 'a')
        proc = subprocess.Popen(
            [sys.executable, '-m', 'inflight.cmd.inflight',
             '--config-file', conf_path],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **env))
        self.procs.append(proc)
        return proc

    def log(self):
        return (self.tmp_path / 'nova-inflight.log').read_text()

    def stop_all(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


def daemon_conf(tmp_path, broker_url, exchange, db_url, statsd_port,
                prefix='inflight', **inflight):
    options = dict(probe_interval=0.1, probes_per_tick=10, sleep=SLEEP,
                   probe_timeout=5.0, refresh_interval=0.3,
                   register_service='true')
    options.update(inflight)
    path = tmp_path / 'inflight.conf'
    path.write_text(
        '[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n'
        'host = prober.test\n'
        '[database]\nconnection = %s\n'
        '[statsd]\nport = %d\nprefix = %s\n[inflight]\n%s\n'
        % (broker_url, exchange, db_url, statsd_port, prefix,
           '\n'.join('%s = %s' % kv for kv in options.items())))
    return str(path)


@pytest.fixture
def services_db(sqlite_url):
    engine = db.create_engine(sqlite_url, read_only=False)
    db.sync(engine)
    yield sqlite_url, engine
    engine.dispose()


def add_row(engine, host, topic, **values):
    row = dict(host=host, binary='nova-%s' % topic, topic=topic,
               report_count=0, disabled=False, deleted=0)
    row.update(values)
    with engine.begin() as conn:
        conn.execute(db.services.insert().values(**row))


def received_from(statsd, prefix, service, count):
    """A predicate: `count` results of `service` have reached statsd."""
    name = '%s.%s.received' % (prefix, service)
    return lambda metrics: statsd.total(name) >= count


def stop_daemon(proc, statsd):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    statsd.drain()


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
                'inflight.prober_test')   # the prober probes itself too
    for service in services:
        statsd.wait_for(received_from(statsd, 'inflight', service, 3))
    stop_daemon(daemon, statsd)

    for service in services:
        phase = {p: statsd.values('inflight.%s.%s' % (service, p))
                 for p in PHASES}
        assert len(set(map(len, phase.values()))) == 1, phase
        for to, in_, over, back, rtt in zip(*(phase[p] for p in PHASES)):
            assert in_ >= SLEEP * 1000 - EPSILON_MS
            assert 0 <= over <= in_ - SLEEP * 1000 + EPSILON_MS
            assert to >= -EPSILON_MS and back >= -EPSILON_MS
            assert rtt >= in_
            assert to + in_ + back == pytest.approx(rtt, abs=0.01)
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
        probe_timeout=0.3, sleep=0.05, register_service='false'))
    stopped = 'inflight.compute.cmp-stopped_test'
    statsd.wait_for(received_from(statsd, 'inflight',
                                  'compute.cmp-stopped_test', 1))
    service.send_signal(signal.SIGSTOP)
    statsd.wait_for(lambda m: statsd.total(stopped + '.lost') >= 3)
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
    assert b'READY=1' in notify.recv(4096).split(b'\n')
    statsd.wait_for(received_from(statsd, 'inflight', 'inflight.prober_test',
                                  1))
    stop_daemon(daemon, statsd)
    notify.close()
