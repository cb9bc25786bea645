"""Ground truth over the real RabbitMQ for what a service looked like when it
took a probe: hold N of its RPC workers (executor_thread_pool_size = POOL)
with casts of the probed service's hold(), each until the test lets it go,
probe it with `inflight ping --json`, and compare the figures the result
brought back with what the test put in place, on eventlet and on threads.

    N < POOL       busy = N, waiting = 0
    N = POOL + W   every worker held, the probe queued, W more casts queued
                   behind it; one worker let go takes the probe: busy =
                   POOL - 1 (the probe's own worker is not counted),
                   waiting = W

Each step waits for a condition, not for time: the service prints when a
hold starts and ends, and logs each message as its RPC server hands it to
the executor (oslo.messaging's DEBUG line, --log-arrivals), so that the
test knows the probe and the casts behind it wait there before it lets a
worker go.

This file, run as a script (Caster), casts hold() for the test, in a
process of its own: oslo.messaging's client reads the global cfg.CONF.
"""

import inflight.cmd  # noqa: F401,I100 - the backend, before oslo.messaging

import json  # noqa: I100
import queue
import subprocess
import sys
import threading
import time

from oslo_config import cfg
import oslo_messaging
import pytest

from harness import read_line
from inflight import config


# How many workers were busy, and what waited, depends on time.
pytestmark = pytest.mark.alone

MODES = ('eventlet', 'threading')
TOPIC = 'compute'
POOL = 4
HELD = 2          # fewer than POOL
BEHIND = 3        # casts queued behind the probe, every worker held


class Caster:
    """Test side: casts hold(gate) to the service, in order, on request."""

    def __init__(self, processes, conf, host):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(conf), TOPIC, host],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        processes.procs.append(self.proc)
        assert read_line(self.proc, 60).split() == ['READY']

    def hold(self, *gates):
        """Cast hold(gate) for each of `gates`; once it returns, RabbitMQ
        has them all on the service's queue, in that order."""
        self.proc.stdin.write('hold %s\n' % ' '.join(map(str, gates)))
        self.proc.stdin.flush()
        assert read_line(self.proc, 60).split() == ['CAST', str(len(gates))]


def caster_main(config_file, topic, host):
    conf = cfg.CONF
    config.parse_args(conf, ['--config-file', config_file], 'inflight')
    transport = oslo_messaging.get_rpc_transport(conf)
    client = oslo_messaging.get_rpc_client(transport, oslo_messaging.Target(
        topic=topic, server=host, version='6.4'))
    print('READY', flush=True)
    for line in sys.stdin:
        gates = line.split()[1:]
        for gate in gates:
            # Casts are confirmed by RabbitMQ (confirm_publish) before
            # they return: on the queue in the order sent.
            client.cast({}, 'hold', gate=gate)
        print('CAST', len(gates), flush=True)
    transport.cleanup()


class ServiceLines:
    """What the probed service prints (HOLDING / RELEASED <gate>), read by
    a thread of its own: several lines may come at once."""

    def __init__(self, proc):
        self.lines = queue.Queue()
        threading.Thread(target=self._read, args=(proc.stdout,),
                         daemon=True).start()

    def _read(self, stdout):
        for line in stdout:
            self.lines.put(line.split())

    def expect(self, word, gates, timeout=30.0):
        """Wait until the service printed `word <gate>` for each of `gates`."""
        waiting = {str(gate) for gate in gates}
        deadline = time.monotonic() + timeout
        while waiting:
            try:
                seen = self.lines.get(timeout=max(
                    0.01, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail('the service did not print %s for %s within '
                            '%ss' % (word, sorted(waiting), timeout))
            if seen[0] == word:
                waiting.discard(seen[1])


ARRIVAL = 'Poll the incoming message with unique_id'


def arrivals(tmp_path, host):
    """Messages the service's RPC server handed to its executor so far."""
    return (tmp_path / ('%s.log' % host)).read_text().count(ARRIVAL)


@pytest.fixture
def held_service(processes, broker_url, exchange, services_db, tmp_path):
    """Start(mode): (the service's host, its ServiceLines, a Caster, the
    ping's configuration file, the gates' folder); every hold let go at the
    end, so that the service stops at once."""
    gates = tmp_path / 'gates'
    gates.mkdir()

    def start(mode):
        host = 'held-%s-%s.test' % (mode, exchange.rsplit('-', 1)[1])
        proc = processes.service(mode, broker_url, exchange, TOPIC, host,
                                 services_db[0], pool_size=POOL,
                                 log_arrivals=True)
        conf = tmp_path / 'ping.conf'
        conf.write_text(
            '[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n'
            'host = pinger.test\n[inflight]\nsleep = 0.05\n'
            'probe_timeout = 30\n' % (broker_url, exchange))
        return (host, ServiceLines(proc), Caster(processes, conf, host),
                conf, gates)
    yield start
    (gates / 'all').touch()


def ping(conf, host, count=1):
    """Start `inflight ping --json` of the service, with the inflight kind."""
    return subprocess.Popen(
        [sys.executable, '-m', 'inflight.cmd.manage', '--config-file',
         str(conf), 'ping', TOPIC, host, '--method', 'inflight', '-c',
         str(count), '-i', '0.01', '--json'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def figures(pinging):
    """The figures each probe of a finished ping brought back."""
    out, err = pinging.communicate(timeout=60)
    assert pinging.returncode == 0, err
    probes = json.loads(out)['probes']
    assert all(not p['lost'] for p in probes), probes
    return [p['state'] for p in probes]


def wait_for(condition, what, timeout=30.0):
    """Wait for `condition()`, looking every 10 ms, for up to `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, '%s: not within %ss' % (
            what, timeout)
        time.sleep(0.01)


def executor(state):
    return {name: state[name] for name in (
        'executor_busy', 'executor_max', 'executor_waiting')}


@pytest.mark.parametrize('mode', MODES)
def test_the_figures_say_how_many_workers_were_busy_and_what_waited(
        mode, held_service, tmp_path):
    host, lines, caster, conf, gates = held_service(mode)
    hub = {'hub_timers', 'hub_listeners'} if mode == 'eventlet' else set()

    # Idle: nothing busy but the probe itself, which is not counted. (The
    # first POOL messages start the pool's threads: an idle thread just
    # started may not say it is idle yet, so look after them.)
    assert all(executor(s)['executor_max'] == POOL
               for s in figures(ping(conf, host, POOL)))
    idle = figures(ping(conf, host, 2))
    for state in idle:
        assert executor(state) == {'executor_busy': 0, 'executor_max': POOL,
                                   'executor_waiting': 0}, idle
        assert set(state) - set(executor(state)) == hub, state

    # HELD workers held: busy = HELD, and nothing waits.
    held = [gates / ('a%d' % i) for i in range(HELD)]
    caster.hold(*held)
    lines.expect('HOLDING', held)
    [some_held] = figures(ping(conf, host))
    assert executor(some_held) == {'executor_busy': HELD,
                                   'executor_max': POOL,
                                   'executor_waiting': 0}, some_held
    if mode == 'eventlet':
        # Each holder sleeps between two looks at its gate: one more timer
        # each, beyond those of the idle service.
        idle_timers = min(state['hub_timers'] for state in idle)
        assert some_held['hub_timers'] >= idle_timers + HELD, (idle,
                                                               some_held)
        assert some_held['hub_listeners'] >= 1, some_held   # its AMQP socket
    for gate in held:
        gate.touch()
    lines.expect('RELEASED', held)

    # Every worker held; the probe, then BEHIND casts, wait for one.
    held = [gates / ('b%d' % i) for i in range(POOL)]
    behind = [gates / ('c%d' % i) for i in range(BEHIND)]
    caster.hold(*held)
    lines.expect('HOLDING', held)
    before = arrivals(tmp_path, host)
    pinging = ping(conf, host)
    wait_for(lambda: arrivals(tmp_path, host) == before + 1,
             'the probe handed to the executor, waiting for a worker')
    caster.hold(*behind)
    wait_for(lambda: arrivals(tmp_path, host) == before + 1 + BEHIND,
             'the casts behind it handed over too')
    held[0].touch()                   # one worker free: the probe takes it
    [all_held] = figures(pinging)
    assert executor(all_held) == {'executor_busy': POOL - 1,
                                  'executor_max': POOL,
                                  'executor_waiting': BEHIND}, all_held
    if mode == 'eventlet':
        assert all_held['hub_timers'] >= idle_timers + POOL - 1, all_held
    (gates / 'all').touch()
    lines.expect('RELEASED', held + behind)
    print('%s service, pool of %d: idle %s; %d held %s; all held, %d cast '
          'behind the probe %s' % (mode, POOL, idle[-1], HELD, some_held,
                                   BEHIND, all_held))


if __name__ == '__main__':
    caster_main(*sys.argv[1:])
