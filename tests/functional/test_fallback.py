"""Over the real RabbitMQ: services without the mixin are probed with the
pings they answer, deaf ones are flagged, and `inflight ping` probes one."""

import datetime
import json
import signal
import subprocess
import sys

from harness import Heartbeat, add_row, daemon_conf, received_from, stop_daemon
from inflight.timings import PHASES

FAST = dict(sleep=0.1, probe_timeout=0.5, richer_retry_interval=1.0,
            deaf_after=2, register_service='false')


def gauges(statsd, name):
    return statsd.values(name)


def test_unmodified_services_fall_back_and_deaf_ones_are_flagged(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, engine = services_db
    processes.service('threading', broker_url, exchange, 'conductor',
                      'rpcping.test', db_url, answers=(), rpc_ping=True)
    processes.service('eventlet', broker_url, exchange, 'compute',
                      'nova.test', db_url, answers=('baseapi',))
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    add_row(engine, 'fresh.test', 'compute', last_seen_up=now)
    add_row(engine, 'stale.test', 'compute',
            last_seen_up=now - datetime.timedelta(hours=1))
    daemon = processes.daemon(daemon_conf(
        tmp_path, broker_url, exchange, db_url, statsd.port, **FAST))
    p = 'inflight.'
    for service in ('conductor.rpcping_test', 'compute.nova_test'):
        statsd.wait_for(received_from(statsd, 'inflight', service, 3))
    statsd.wait_for(lambda m: gauges(statsd, p + 'compute.fresh_test.deaf')
                    == [0, 1])
    statsd.wait_for(lambda m: statsd.total(p + 'compute.stale_test.lost') >= 3)
    stop_daemon(daemon, statsd)

    assert gauges(statsd, p + 'conductor.rpcping_test.method.'
                  'oslo_rpc_server_ping') == [1]
    assert gauges(statsd, p + 'compute.nova_test.method.baseapi') == [1]
    for service in ('conductor.rpcping_test', 'compute.nova_test'):
        assert statsd.values(p + service + '.ping_round_trip')
        assert statsd.values(p + service + '.to_service') == []
        assert statsd.total(p + service + '.lost') == 0
        assert statsd.total(p + service + '.sent') == statsd.total(
            p + service + '.received')
    assert gauges(statsd, p + 'compute.stale_test.deaf') == [0]
    assert statsd.total(p + 'compute.stale_test.received') == 0
    log = processes.log()
    assert 'compute.fresh.test is up by its heartbeat but deaf' in log
    assert 'stale.test is up' not in log
    assert 'conductor.rpcping.test answers oslo_rpc_server_ping probes' in log


def test_deaf_stays_deaf_across_table_reads_until_its_heartbeat_stops(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, engine = services_db
    add_row(engine, 'deaf.test', 'compute')       # nothing consumes its queue
    heartbeat = Heartbeat(engine, 'deaf.test', 0.25)
    heartbeat.start()
    try:
        # Reads as far apart as service_down_time, as by default: probes
        # sent before a read are lost after it.
        daemon = processes.daemon(daemon_conf(
            tmp_path, broker_url, exchange, db_url, statsd.port,
            defaults=dict(service_down_time=2), refresh_interval=2,
            sleep=0.1, probe_timeout=0.5, deaf_after=2,
            probe_methods='compute:inflight', register_service='false'))
        name = 'inflight.compute.deaf_test'
        statsd.wait_for(lambda m: gauges(statsd, name + '.deaf') == [0, 1])
        lost = statsd.total(name + '.lost')
        # About 6 s of probes lost, 3 reads of the table or more.
        statsd.wait_for(lambda m: statsd.total(name + '.lost') >= lost + 60)
        assert gauges(statsd, name + '.deaf') == [0, 1]
    finally:
        heartbeat.stop()
    # Down by its heartbeat after a read 2 s or more after its last one.
    statsd.wait_for(lambda m: gauges(statsd, name + '.deaf') == [0, 1, 0])
    stop_daemon(daemon, statsd)
    assert gauges(statsd, name + '.deaf') == [0, 1, 0]
    log = processes.log()
    assert log.count('compute.deaf.test is up by its heartbeat but deaf') == 1
    assert 'answers probes again' not in log


def test_returns_to_the_mixin_once_the_service_answers_it(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, engine = services_db
    service = processes.service('threading', broker_url, exchange, 'compute',
                                'upgraded.test', db_url,
                                answers=('baseapi', 'gated-mixin'))
    daemon = processes.daemon(daemon_conf(
        tmp_path, broker_url, exchange, db_url, statsd.port, **FAST))
    name = 'inflight.compute.upgraded_test'
    statsd.wait_for(lambda m: gauges(statsd, name + '.method.baseapi') == [1])
    assert statsd.values(name + '.to_service') == []
    service.send_signal(signal.SIGUSR1)     # now it has the mixin
    statsd.wait_for(lambda m: gauges(statsd, name + '.method.inflight')
                    == [0, 1])
    statsd.wait_for(lambda m: len(statsd.values(name + '.to_service')) >= 2)
    stop_daemon(daemon, statsd)
    assert gauges(statsd, name + '.method.baseapi') == [1, 0]
    assert statsd.total(name + '.lost') == 0
    assert statsd.total(name + '.sent') == statsd.total(name + '.received')
    assert 'compute.upgraded.test answers inflight probes' in processes.log()


def inflight_ping(conf, *args):
    return subprocess.run(
        [sys.executable, '-m', 'inflight.cmd.manage', '--config-file', conf,
         'ping', *args], capture_output=True, text=True, timeout=120)


def ping_conf(tmp_path, broker_url, exchange):
    path = tmp_path / 'ping.conf'
    path.write_text('[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n'
                    'host = pinger.test\n[inflight]\nsleep = 0.1\n'
                    'probe_timeout = 0.5\n' % (broker_url, exchange))
    return str(path)


def test_inflight_ping_each_kind_of_service(
        processes, broker_url, exchange, services_db, tmp_path):
    db_url, _ = services_db
    processes.service('eventlet', broker_url, exchange, 'compute',
                      'mixin.test', db_url)
    processes.service('threading', broker_url, exchange, 'compute',
                      'nova.test', db_url, answers=('baseapi',))
    processes.service('threading', broker_url, exchange, 'conductor',
                      'rpcping.test', db_url, answers=(), rpc_ping=True)
    conf = ping_conf(tmp_path, broker_url, exchange)

    run = inflight_ping(conf, 'compute', 'mixin.test', '-c', '3',
                        '-i', '0.05')
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith('INFLIGHT compute.mixin.test: 3 probes')
    for seq, line in enumerate(lines[1:4], 1):
        words = line.split()
        assert words[:2] == ['seq=%d' % seq, 'inflight']
        assert [w.split('=')[0] for w in words[2:8]] == list(PHASES)
        assert float(words[3].split('=')[1]) >= 100.0 - 1.0
    assert '3 probes sent, 3 received, 0.0% loss' in run.stdout
    assert [line.split()[0] for line in lines[-6:]] == list(PHASES)

    run = inflight_ping(conf, 'compute', 'nova.test', '-c', '2', '-i',
                        '0.05', '--json')
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert [p['kind'] for p in report['probes']] == ['baseapi', 'baseapi']
    assert all(set(p) == {'seq', 'kind', 'lost', 'round_trip'}
               for p in report['probes'])
    assert report['summary']['received'] == 2
    assert set(report['summary']['phases']) == {'round_trip'}

    run = inflight_ping(conf, 'conductor', 'rpcping.test', '-c', '1')
    assert run.returncode == 0, run.stderr
    assert 'seq=1 oslo_rpc_server_ping' in run.stdout

    run = inflight_ping(conf, 'compute', 'absent.test', '-c', '2', '-i',
                        '0.05')
    assert run.returncode == 1
    assert run.stdout.count('lost') == 2
    assert '2 probes sent, 0 received, 100.0% loss' in run.stdout

    run = inflight_ping(conf, 'compute', 'nova.test', '-c', '1',
                        '--method', 'inflight')
    assert run.returncode == 1     # it has no mixin, and no fallback asked


def test_inflight_ping_usage_and_config_errors(tmp_path, broker_url,
                                               exchange):
    conf = ping_conf(tmp_path, broker_url, exchange)
    for args in (['compute'], ['compute', 'h', '-c', '0'],
                 ['compute', 'h', '-i', 'soon'],
                 ['compute', 'h', '--method', 'telnet']):
        run = inflight_ping(conf, *args)
        assert run.returncode == 2, args
        assert 'Traceback' not in run.stderr
    bad = tmp_path / 'bad.conf'
    bad.write_text('[DEFAULT]\ntransport_url = nonsense\n')
    run = inflight_ping(str(bad), 'compute', 'h')
    assert run.returncode == 2
    assert run.stderr.startswith('inflight: error: [DEFAULT] transport_url')


def test_inflight_ping_gives_up_on_an_unreachable_broker(tmp_path):
    conf = tmp_path / 'nobroker.conf'
    conf.write_text('[DEFAULT]\ntransport_url = rabbit://guest:guest@'
                    '127.0.0.1:1/\n[inflight]\nprobe_timeout = 1\n')
    run = inflight_ping(str(conf), 'compute', 'h', '-c', '1')
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        'inflight ping: error: no broker answered at '
        'rabbit://guest:***@127.0.0.1:1/ within 1s: [Errno 111] Connection '
        'refused']
    assert run.stdout == ''


def test_the_kind_is_learnt_on_the_first_answer(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, _ = services_db
    processes.service('threading', broker_url, exchange, 'compute',
                      'nova.test', db_url, answers=('baseapi',))
    # One probe every 2 s, each over within about 0.7 s (its mixin probe
    # waits out sleep + probe_timeout, to the next tick): every probe is
    # planned after the one before it was answered.
    daemon = processes.daemon(daemon_conf(
        tmp_path, broker_url, exchange, db_url, statsd.port, sleep=0.1,
        probe_timeout=0.5, cycle_seconds=2, richer_retry_interval=3600,
        register_service='false'))
    name = 'inflight.compute.nova_test'
    statsd.wait_for(received_from(statsd, 'inflight', 'compute.nova_test', 3))
    stop_daemon(daemon, statsd)
    assert gauges(statsd, name + '.method.baseapi') == [1]
    learnt_and_received = [n for n, _, _ in statsd.metrics
                           if n in (name + '.method.baseapi',
                                    name + '.received')]
    # Learnt with the first answer, before it was counted received.
    assert learnt_and_received[:2] == [name + '.method.baseapi',
                                       name + '.received']
    assert processes.log().count(
        'compute.nova.test answers baseapi probes') == 1
    # Only the first probe tried the endpoint: the others were baseapi
    # only. And that try cost the service no ERROR, only a DEBUG line.
    service_log = (tmp_path / 'nova.test.log').read_text()
    assert service_log.count('Method inflight_ignore_errors not found') == 1
    assert 'ERROR' not in service_log and 'Traceback' not in service_log
    assert statsd.total(name + '.sent') == statsd.total(name + '.received')


def test_inflight_ping_into_a_pipe_closed_early_ends_quietly(
        broker_url, exchange, tmp_path):
    """`inflight ping ... | head -1`: no traceback once head has gone."""
    proc = subprocess.Popen(
        [sys.executable, '-m', 'inflight.cmd.manage', '--config-file',
         ping_conf(tmp_path, broker_url, exchange), 'ping', 'compute',
         'nothing.test', '-c', '3', '-i', '0.1'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith('INFLIGHT compute.nothing.test')
    proc.stdout.close()                   # as head does after one line
    assert proc.wait(60) == 1
    assert proc.stderr.read() == ''


def test_inflight_ping_into_a_pipe_already_closed_leaves_nothing(
        broker_url, broker_vhost, exchange, tmp_path):
    """`inflight ping ... | a-command-that-failed`: its queue goes all the
    same, though not a line could be printed."""
    proc = subprocess.Popen(
        [sys.executable, '-m', 'inflight.cmd.manage', '--config-file',
         ping_conf(tmp_path, broker_url, exchange), 'ping', 'compute',
         'nothing.test', '-c', '2', '-i', '0.1'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()                   # before anything was printed
    assert proc.wait(60) == 1
    assert proc.stderr.read() == ''
    queues, _ = broker_vhost.contents()
    assert 'inflight.pinger.test.ping-%d' % proc.pid not in queues, queues
