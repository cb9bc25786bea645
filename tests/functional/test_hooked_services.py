"""The hook over the real broker: services whose code has no inflight in it
answer with the full breakdown once their configuration names the driver;
and no probe of any kind leaves an ERROR or a traceback in a probed
service's log, hooked or not."""

import subprocess
import sys
import time

import pytest

from harness import add_row, daemon_conf, received_from, stop_daemon
from inflight.timings import PHASES


def service_log(tmp_path, host):
    return (tmp_path / ('%s.log' % host)).read_text()


@pytest.mark.parametrize('mode', ['eventlet', 'threading'])
def test_a_hooked_service_gives_the_full_breakdown_quietly(
        mode, processes, broker_url, exchange, services_db, statsd,
        tmp_path):
    db_url, engine = services_db
    # Nova-like: a manager and a baseapi ping, no inflight code; the hook
    # switched on by a line in its configuration file.
    processes.service(mode, broker_url, exchange, 'conductor', 'hooked.test',
                      db_url, answers=('baseapi', 'hook'))
    processes.service(mode, broker_url, exchange, 'compute', 'plain.test',
                      db_url, answers=('baseapi',))
    add_row(engine, 'silent.test', 'compute')         # nothing consumes
    daemon = processes.daemon(daemon_conf(
        tmp_path, broker_url, exchange, db_url, statsd.port,
        register_service='false'))
    hooked, plain = 'conductor.hooked_test', 'compute.plain_test'
    statsd.wait_for(received_from(statsd, 'inflight', hooked, 5))
    statsd.wait_for(received_from(statsd, 'inflight', plain, 5))
    statsd.wait_for(lambda m: statsd.total(
        'inflight.compute.silent_test.lost') >= 2)
    stop_daemon(daemon, statsd)
    for phase in PHASES:
        assert len(statsd.values('inflight.%s.%s' % (hooked, phase))) >= 5
    assert statsd.values('inflight.%s.to_service' % plain) == []
    assert len(statsd.values('inflight.%s.ping_round_trip' % plain)) >= 5
    # The hook told its endpoint the RPC server: what its executor was
    # doing comes with each result (oslo.messaging's default pool of 64).
    received = len(statsd.values('inflight.%s.in_service' % hooked))
    assert statsd.values('inflight.%s.executor_max' % hooked) == \
        [64.0] * received
    assert len(statsd.values('inflight.%s.executor_busy' % hooked)) == \
        received
    assert len(statsd.values('inflight.%s.hub_timers' % hooked)) == (
        received if mode == 'eventlet' else 0)
    assert statsd.values('inflight.%s.executor_max' % plain) == []
    # Learnt on the first answer each, and without a lost probe.
    assert statsd.total('inflight.%s.lost' % hooked) == 0
    assert statsd.total('inflight.%s.lost' % plain) == 0
    for host in ('hooked.test', 'plain.test'):
        log = service_log(tmp_path, host)
        assert 'ERROR' not in log and 'Traceback' not in log, log[-3000:]
    assert 'answers inflight probes' in processes.log()


def test_inflight_ping_learns_an_unhooked_service_without_waiting(
        processes, broker_url, exchange, services_db, tmp_path):
    db_url, _ = services_db
    processes.service('threading', broker_url, exchange, 'compute',
                      'plain.test', db_url, answers=('baseapi',))
    conf = tmp_path / 'ping.conf'
    conf.write_text('[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n'
                    'host = pinger.test\n[inflight]\nprobe_timeout = 10\n'
                    % (broker_url, exchange))
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, '-m', 'inflight.cmd.manage', '--config-file',
         str(conf), 'ping', 'compute', 'plain.test', '-c', '5', '-i', '0.2'],
        capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [line.split()[1] for line in lines[1:6]] == ['baseapi'] * 5
    # Had any probe waited out its timeout (10 s), the run would be longer.
    assert took < 10, took
    log = service_log(tmp_path, 'plain.test')
    assert 'ERROR' not in log and 'Traceback' not in log, log[-3000:]
