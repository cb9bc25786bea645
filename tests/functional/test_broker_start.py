"""The broker at start, as an operator meets it: a login it refuses stops
nova-inflight with one line; a broker that does not answer yet is waited
for, and systemd hears the daemon is ready only once it can probe."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid

import pytest

from harness import BrokerProxy, daemon_conf, prober_service
from harness import received_from, stop_daemon

def wrong(broker_url):
    """The test's broker, with a password it refuses."""
    return broker_url.replace('guest:guest@', 'guest:not-the-password@')


def masked(url):
    return url.replace('guest:guest@', 'guest:***@').replace(
        'guest:not-the-password@', 'guest:***@')


def notifications(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / 'notify'))
    return sock


def next_notification(sock, timeout=30.0):
    sock.settimeout(timeout)
    return sock.recv(4096).decode()


def test_a_refused_login_stops_the_daemon_with_one_line(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, _ = services_db
    daemon = processes.daemon(daemon_conf(tmp_path, wrong(broker_url),
                                          exchange, db_url, statsd.port))
    assert daemon.wait(30) == 2
    lines = processes.log().splitlines()
    assert lines == ['nova-inflight: error: the broker at %s refused the '
                     'login: ACCESS_REFUSED - Login was refused using '
                     'authentication mechanism AMQPLAIN. For details see the '
                     'broker logfile.' % masked(broker_url)], lines


def test_inflight_ping_with_a_refused_login_says_so_in_one_line(
        broker_url, exchange, sqlite_url, statsd, tmp_path):
    conf = daemon_conf(tmp_path, wrong(broker_url), exchange, sqlite_url,
                       statsd.port, probe_timeout=1)
    run = subprocess.run(
        [sys.executable, '-m', 'inflight.cmd.manage', '--config-file', conf,
         'ping', 'compute', 'cmp1.test', '-c', '1'],
        capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stdout == ''
    [line] = run.stderr.splitlines()
    assert line.startswith('inflight: error: the broker at %s refused the '
                           'login: ACCESS_REFUSED' % masked(broker_url)), line


def test_a_broker_down_at_start_is_waited_for(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, _ = services_db
    proxy = BrokerProxy(processes, broker_url)
    proxy.cut()
    notify = notifications(tmp_path)
    daemon = processes.daemon(
        daemon_conf(tmp_path, proxy.url, exchange, db_url, statsd.port),
        NOTIFY_SOCKET=str(tmp_path / 'notify'))
    # Each try tells systemd why it waits; three tries, one log line.
    for _ in range(3):
        status = next_notification(notify)
        assert status.startswith('STATUS=Waiting for the broker at %s: '
                                 % masked(proxy.url)), status
    assert processes.log().count('Waiting for the broker') == 1
    assert daemon.poll() is None
    proxy.restore()
    while (state := next_notification(notify)).startswith('STATUS=Waiting'):
        pass
    assert state == 'STATUS=Probing'
    assert next_notification(notify) == 'READY=1'
    statsd.wait_for(received_from(statsd, 'inflight',
                                  prober_service(exchange), 1))
    stop_daemon(daemon, statsd)
    notify.close()
    log = processes.log()
    assert 'Traceback' not in log and 'ERROR' not in log
    assert 'The broker at %s answers' % masked(proxy.url) in log


def probing(processes, url, exchange, db_url, statsd, tmp_path):
    """nova-inflight on `url`, once it has probed itself."""
    daemon = processes.daemon(daemon_conf(tmp_path, url, exchange, db_url,
                                          statsd.port))
    statsd.wait_for(received_from(statsd, 'inflight',
                                  prober_service(exchange), 1))
    return daemon


@pytest.mark.parametrize('when', ['at start', 'after SIGHUP'])
def test_sigterm_while_waiting_for_the_broker_exits_cleanly(
        when, processes, broker_url, exchange, services_db, statsd, tmp_path):
    """At start, or in a new worker after SIGHUP, which connects afresh."""
    db_url, _ = services_db
    proxy = BrokerProxy(processes, broker_url)
    if when == 'at start':
        proxy.cut()
        daemon = processes.daemon(daemon_conf(tmp_path, proxy.url, exchange,
                                              db_url, statsd.port))
    else:
        daemon = probing(processes, proxy.url, exchange, db_url, statsd,
                         tmp_path)
        proxy.cut()
        daemon.send_signal(signal.SIGHUP)
    processes.wait_for_log(statsd, 'Waiting for the broker')
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    log = processes.log()
    assert 'nova-inflight stopped before it began probing' in log
    assert 'Traceback' not in log and 'AttributeError' not in log


def test_sighup_with_a_refused_login_goes_on_with_the_last_valid(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, _ = services_db
    daemon = probing(processes, broker_url, exchange, db_url, statsd,
                     tmp_path)
    name = prober_service(exchange)
    daemon_conf(tmp_path, wrong(broker_url), exchange, db_url, statsd.port)
    daemon.send_signal(signal.SIGHUP)
    processes.wait_for_log(statsd, 'goes on with the last valid configuration')
    received = statsd.total('inflight.%s.received' % name)
    statsd.wait_for(received_from(statsd, 'inflight', name, received + 2))
    assert daemon.poll() is None
    stop_daemon(daemon, statsd)
    log = processes.log()
    assert ('The configuration files are not valid, so this worker goes on '
            'with the last valid configuration: the broker at %s refused the '
            'login' % masked(broker_url)) in log
    assert 'Traceback' not in log
    assert 'not-the-password' not in log


def test_sighup_while_waiting_reads_the_files_again(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, _ = services_db
    proxy = BrokerProxy(processes, broker_url)
    proxy.cut()
    daemon = processes.daemon(daemon_conf(tmp_path, proxy.url, exchange,
                                          db_url, statsd.port))
    processes.wait_for_log(statsd, 'Waiting for the broker')
    daemon_conf(tmp_path, broker_url, exchange, db_url, statsd.port)
    daemon.send_signal(signal.SIGHUP)
    statsd.wait_for(received_from(statsd, 'inflight',
                                  prober_service(exchange), 1))
    stop_daemon(daemon, statsd)           # the same process, started afresh
    log = processes.log()
    assert 'Reading the configuration files again' in log
    assert 'Traceback' not in log


@pytest.fixture
def broker_user(broker_url):
    """A RabbitMQ user of the test's own: (name, password), removed after."""
    ctl = shutil.which('rabbitmqctl')
    if ctl is None or os.geteuid() != 0:
        reason = 'rabbitmqctl (as root) is needed to add a broker user'
        if os.environ.get('INFLIGHT_REQUIRE_BROKER') == '1':
            pytest.fail(reason)
        pytest.skip(reason)
    name = 'inflight-test-%s' % uuid.uuid4().hex[:8]
    password = uuid.uuid4().hex

    def run(*args):
        subprocess.run([ctl, '-q', *args], check=True, capture_output=True,
                       timeout=60)
    run('add_user', name, password)
    vhost = broker_url.rpartition('/')[2] or '/'
    run('set_permissions', '-p', vhost, name, '.*', '.*', '.*')
    yield name, password, run
    run('delete_user', name)


def test_a_password_changed_on_the_broker_stops_the_daemon(
        processes, broker_url, broker_user, exchange, services_db, statsd,
        tmp_path):
    """No configuration is left that the broker takes: exit, not a loop."""
    db_url, _ = services_db
    name, password, rabbitmqctl = broker_user
    url = broker_url.replace('guest:guest@', '%s:%s@' % (name, password))
    daemon = probing(processes, url, exchange, db_url, statsd, tmp_path)
    rabbitmqctl('change_password', name, uuid.uuid4().hex)
    daemon.send_signal(signal.SIGHUP)     # a new worker logs in afresh
    assert daemon.wait(30) == 1
    log = processes.log()
    assert log.count('nova-inflight cannot go on and stops: the broker at %s '
                     'refused the login' % url.replace(password, '***')) == 1
    assert 'Traceback' not in log and password not in log
    assert 'goes on with the last valid' not in log   # it is that one
