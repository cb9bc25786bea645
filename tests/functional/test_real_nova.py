"""Real, unmodified Nova 34.0.0 (see real_nova.py), on eventlet and on
native threads: quiet when nobody probes it, and every one of its services
measured by nova-inflight, configured as the README says."""

import pathlib
import statistics
import subprocess
import sys
import time

import pytest

from harness import stop_daemon
from inflight.outputs import statsd as metrics
import real_nova

COUNT = 3   # round trips awaited from each service

INFLIGHT_CONF = '''[statsd]
port = %d
[inflight]
cycle_seconds = 1
sleep = 0.1
probe_timeout = 2
richer_retry_interval = 3
'''


@pytest.mark.parametrize('mode', real_nova.MODES)
def test_unmodified_nova_is_quiet_and_probed_by_round_trip(
        mode, nova_cloud, processes, statsd, tmp_path):
    cloud = nova_cloud(mode)
    services = cloud.services()
    assert sorted(services) == sorted((s, cloud.host)
                                      for s in real_nova.SERVICES)

    # Left alone for a heartbeat of each service, Nova logs no error, even
    # with a reader's transaction open on its services table meanwhile.
    with cloud.reading_services():
        cloud.wait_for_heartbeats(real_nova.SERVICES,
                                  more_than=cloud.heartbeats())
    assert cloud.problems() == {}

    probed = cloud.mark()
    conf = tmp_path / 'inflight.conf'
    conf.write_text(INFLIGHT_CONF % statsd.port)
    daemon = processes.daemon(str(cloud.conf), str(conf))
    started = time.monotonic()
    names = {s: 'inflight.' + metrics.service_name(*s, real_nova.CELL)
             for s in services}
    statsd.wait_for(lambda m: all(
        len(statsd.values(name + '.ping_round_trip')) >= COUNT
        for name in names.values()), timeout=60)
    # (Probes still out when the daemon stops count lost: look before.)
    lost = {s: statsd.total(name + '.lost') for s, name in names.items()}
    stop_daemon(daemon, statsd)
    seconds = time.monotonic() - started

    assert lost == {s: 0 for s in services}
    for service, name in names.items():
        # They answer Nova's own ping only: a round trip, no breakdown.
        assert statsd.values(name + '.method.baseapi')[-1] == 1, service
        assert statsd.values(name + '.to_service') == [], service
    # inflight ping, as an operator runs it against the conductor: every
    # probe answered, no probe_timeout waited out, the summary at once.
    began = time.monotonic()
    ping = subprocess.Popen(
        [sys.executable, '-m', 'inflight.cmd.manage', '--config-file',
         str(cloud.conf), 'ping', 'conductor', cloud.host, '-c', '5', '-i',
         '0.2'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed = [(time.monotonic(), line) for line in ping.stdout]
    assert ping.wait(60) == 0, ping.stderr.read()
    took = time.monotonic() - began
    answers = [at for at, line in printed if line.startswith('seq=')]
    summary, = [at for at, line in printed
                if line.startswith('5 probes sent, 5 received')]
    assert len(answers) == 5
    assert took < 8, took
    assert summary - answers[-1] < 1, summary - answers[-1]
    print('%s: inflight ping -c 5 -i 0.2 of nova-conductor took %.2f s, '
          'its summary %.3f s after the last answer'
          % (mode, took, summary - answers[-1]))
    # Learning that they lack the endpoint left no trace in their logs.
    assert cloud.problems(since=probed) == {}
    print('%s: %d services probed for %.0f s, no ERROR in their logs'
          % (mode, len(services), seconds))


def readme_step():
    """The configuration lines README.md gives for services you cannot
    change: the first ini block of that section, as written."""
    text = (pathlib.Path(__file__).parents[2] / 'README.md').read_text()
    section = text.split('### The full breakdown from services you cannot '
                         'change', 1)[1]
    return section.split('```ini\n', 1)[1].split('```', 1)[0]


@pytest.mark.parametrize('mode', real_nova.MODES)
def test_nova_with_the_readme_step_gives_the_full_breakdown_quietly(
        mode, nova_cloud, processes, statsd, tmp_path):
    step = readme_step()
    assert step == '[oslo_messaging_notifications]\ndriver = inflight\n'
    cloud = nova_cloud(mode, extra_conf=step)
    services = cloud.services()
    for name in real_nova.SERVICES:
        assert 'The RPC server on %s.%s answers inflight probes' % (
            name, cloud.host) in cloud.log(name), name
    assert 'The RPC server on compute-alt.%s answers inflight probes' % (
        cloud.host) in cloud.log('compute')
    probed = cloud.mark()
    conf = tmp_path / 'inflight.conf'
    conf.write_text(INFLIGHT_CONF % statsd.port)
    daemon = processes.daemon(str(cloud.conf), str(conf))
    names = {s: 'inflight.' + metrics.service_name(*s, real_nova.CELL)
             for s in services}
    statsd.wait_for(lambda m: all(
        len(statsd.values(name + '.in_service')) >= COUNT
        for name in names.values()), timeout=60)
    lost = {s: statsd.total(name + '.lost') for s, name in names.items()}
    problems = cloud.problems(since=probed)
    stop_daemon(daemon, statsd)

    assert lost == {s: 0 for s in services}
    assert problems == {}
    for service, name in names.items():
        assert statsd.values(name + '.method.inflight')[-1] == 1, service
        for phase in ('to_service', 'in_service', 'overhead',
                      'from_service', 'queue_total', 'round_trip'):
            values = statsd.values('%s.%s' % (name, phase))
            assert len(values) >= COUNT, (service, phase)
        # The service slept as asked (0.1 s), in its own event loop.
        assert min(statsd.values(name + '.in_service')) >= 100.0 - 1.0
        # What its RPC server was doing came with each result: an idle Nova
        # has its pool's workers free and nothing waiting.
        received = len(statsd.values(name + '.in_service'))
        pool = statsd.values(name + '.executor_max')
        assert len(pool) == received and len(set(pool)) == 1, pool
        busy = statsd.values(name + '.executor_busy')
        assert len(busy) == received and max(busy) < pool[0], busy
        assert statsd.values(name + '.executor_waiting') == [0.0] * received
        timers = statsd.values(name + '.hub_timers')
        assert len(timers) == (received if mode == 'eventlet' else 0)
        print('%s nova-%s: executor busy at most %d of %d, hub timers %s'
              % (mode, service[0], max(busy), pool[0],
                 '%d to %d' % (min(timers), max(timers)) if timers else
                 'none (threads)'))
        print('%s nova-%s: in_service median %.1f ms, overhead median '
              '%.2f ms, to_service median %.2f ms' % (
                  mode, service[0], statistics.median(statsd.values(
                      name + '.in_service')), statistics.median(
                      statsd.values(name + '.overhead')), statistics.median(
                      statsd.values(name + '.to_service'))))
