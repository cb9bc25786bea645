"""Ground truth over the real RabbitMQ: put a known delay at one point of a
probe's path and check that the phase it belongs to moves by that much, and
that the other phases do not, within max(1 ms, 5 % of the delay).

    starvation        the service spins without yielding, right after it
                      took a probe, until D after it: its sleeper can only
                      wake at D, not at `sleep` -> overhead and in_service
                      move by D - sleep
    queue backlog     N casts that each hold the service's one RPC worker T
                      (executor_thread_pool_size = 1) are queued just ahead
                      of the probe -> to_service moves by about N*T: it
                      becomes the time from the probe's sending to the end
                      of the last of them, as the service logs it (same
                      clock; the probe's own trip is hidden in that wait)
    slow return path  a TCP proxy (tcp_proxy.py) between the prober and
                      RabbitMQ holds back all the broker sends the prober
                      by D -> from_service moves by D

Each test runs a probed service on eventlet, then one on native threads,
and the real prober (inflight.prober.Prober: its timings and its clock
offsets) in a process of its own: this file, run as a script (Pinger). It
sends one probe at a time, in lockstep with the test, which puts the delay
in place before the probes it picks. The baseline is probes without the
delay, sent in turn with the delayed ones in the same run, rather than a
run before: on a shared machine the legs' medians drift by milliseconds
from one run to the next, and in turn both sets see the same drift.

"Now and then" the delay is on every other probe of one service. "Lasting",
it is on every probe of service A, and B is the baseline: probed in turn
with A, never delayed. That matters for the one-way legs, corrected with a
clock offset estimated per service from its own probes (inflight.skew): to
an estimate that takes both legs as equally long, a one-way delay on every
probe of the window looks like a clock offset of half the delay, and comes
out split evenly between to_service and from_service (as it did before
inflight.skew kept to the offsets the probes prove).
"""

import inflight.cmd  # noqa: F401,I100 - the backend, before oslo.messaging

import collections  # noqa: I100
import json
import logging
import os
import queue
import signal
import statistics
import subprocess
import sys
import time

from oslo_config import cfg
import oslo_messaging
import pytest

from harness import BrokerProxy, read_line
from inflight import broker
from inflight import config
from inflight.cloud import record
from inflight import methods
from inflight.outputs import statsd as metrics
from inflight import prober
from inflight import rpcapi
from inflight.timings import PHASES


# The legs are told apart by milliseconds: no other test may load the
# machine meanwhile.
pytestmark = pytest.mark.alone

MODES = ('eventlet', 'threading')
TOPIC = 'compute'
SLEEP = 0.05      # seconds each probe asks the service to sleep
WARMUP = 2        # first probes of each service: connections being made
PROBES = 16       # probes compared, delayed and baseline each
HOG = 0.1         # starvation: the service spins until HOG after each probe
BACKLOG = 4       # queue backlog: casts queued ahead of a probe...
SLOW = 0.025      # ... each holding the service's one RPC worker this long
RETURN_DELAY = 0.05   # slow return path: broker -> prober held back this long


def tolerance(delay):
    """How far (ms) a median may miss its expected shift, for `delay` ms."""
    return max(1.0, 0.05 * delay)


# --- The prober, in a process of its own ------------------------------------

class Pinger:
    """Test side: this file run as a script, in lockstep with the test."""

    def __init__(self, processes, tmp_path, transport_url, exchange):
        conf = tmp_path / 'pinger.conf'
        conf.write_text(
            '[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n'
            'host = accuracy.test\n[inflight]\nsleep = %s\n'
            'probe_timeout = 5\n' % (transport_url, exchange, SLEEP))
        self.log = tmp_path / 'pinger.log'
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(conf)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=open(self.log, 'a'), text=True)
        processes.procs.append(self.proc)
        assert self._read() == ('READY', '')

    def _read(self):
        # Lockstep: the pinger prints one line, then waits for the next.
        line = read_line(self.proc, 60)
        assert line, self.log.read_text()[-3000:]
        word, _, rest = line.strip().partition(' ')
        return word, rest

    def _write(self, line):
        self.proc.stdin.write(line + '\n')
        self.proc.stdin.flush()

    def run(self, hosts, count, before_probe=lambda seq, host: None):
        """`count` probes, one at a time, to `hosts` in turn: each one's
        seq (from 1), host and phases (ms), but for the first WARMUP of each
        host. `before_probe(seq, host)` runs just before that probe is sent;
        what it returns, if anything, the pinger does first: `backlog N T`
        casts N `slow(T)` to the host, and gives the probe `sent`, the
        time.time() just before it was sent, and `backlog`, how many
        backlogs that host had before this one."""
        self._write('run %d %s' % (count, ' '.join(hosts)))
        while True:
            word, rest = self._read()
            if word == 'DONE':
                break
            assert word == 'NEXT', (word, rest)
            seq, host = rest.split()
            self._write(before_probe(int(seq), host) or 'go')
        probes = json.loads(rest)
        assert not [p for p in probes if p['lost']], probes
        return [p for p in probes if p['seq'] > WARMUP * len(hosts)]

    def close(self):
        """Let the pinger remove its reply queue and end."""
        self.proc.stdin.close()
        self.proc.wait(30)


def pinger_main(config_file):
    """Pinger side: the real Prober, reply queue and clock offsets, one
    probe at a time; a fresh Prober (fresh offsets) for each run."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    conf = cfg.CONF    # oslo.messaging reads some options from it alone
    config.parse_args(conf, ['--config-file', config_file], 'inflight')
    transport = oslo_messaging.get_rpc_transport(conf)
    reply_host = '%s.%d' % (conf.host, os.getpid())
    outcomes = queue.Queue()
    run = {}
    backlogs = collections.Counter()   # cast to each host so far

    class Results:
        target = oslo_messaging.Target(
            version=rpcapi.InflightAPI.RPC_API_VERSION)

        def inflight_result(self, context, result):
            run['prober'].receive(result)

    server = oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic=rpcapi.TOPIC,
                                         server=reply_host), [Results()])
    server.start()
    print('READY', flush=True)
    commands = iter(sys.stdin)
    for command in commands:
        _, count, *hosts = command.split()
        run['prober'] = runner = prober.Prober(
            lambda service: rpcapi.BaseAPI(transport, service.topic),
            metrics.NullMetrics(), reply_host, conf.inflight.sleep,
            conf.inflight.probe_timeout,
            methods.MethodBook({TOPIC: 'inflight'}),
            on_outcome=[lambda service, kind, t, state: outcomes.put(t)])
        probes = []
        for seq in range(1, int(count) + 1):
            host = hosts[(seq - 1) % len(hosts)]
            print('NEXT %d %s' % (seq, host), flush=True)
            words = next(commands).split()
            probe = dict(seq=seq, host=host)
            if words[0] == 'backlog':
                # A cast returns once RabbitMQ confirmed it (oslo.messaging
                # publishes with confirm_publish): it is on the queue before
                # the probe is.
                client = oslo_messaging.get_rpc_client(
                    transport, oslo_messaging.Target(
                        topic=TOPIC, server=host, version='6.4'))
                for _ in range(int(words[1])):
                    client.cast({}, 'slow', seconds=float(words[2]))
                probe['backlog'] = backlogs[host]
                backlogs[host] += 1
                probe['sent'] = time.time()
            runner.send([record.Service.of(TOPIC, host)])
            while True:
                runner.expire()
                try:
                    timings = outcomes.get(timeout=0.05)
                    break
                except queue.Empty:
                    pass
            probe['lost'] = timings is None
            if timings is not None:
                probe.update((phase, seconds * 1000.0) for phase, seconds
                             in timings._asdict().items())
            probes.append(probe)
        runner.abandon()
        print('DONE', json.dumps(probes), flush=True)
    server.stop()
    server.wait()
    transport.cleanup()
    broker.remove(conf, ['%s.%s' % (rpcapi.TOPIC, reply_host)])


# --- Comparing ---------------------------------------------------------------

def medians(probes):
    return {phase: statistics.median(p[phase] for p in probes)
            for phase in PHASES}


def check(what, baseline, delayed, delay, expected):
    """Each phase's median shift from `baseline` to `delayed` is within
    tolerance(delay) of `expected` (phase -> ms, or None: not checked)."""
    base, late = medians(baseline), medians(delayed)
    table = ['%s: medians of %d and %d probes (ms)' % (
                 what, len(baseline), len(delayed)),
             '%-13s %9s %9s %9s %9s' % ('phase', 'baseline', 'delayed',
                                        'shift', 'expected')]
    misses = []
    for phase in PHASES:
        shift = late[phase] - base[phase]
        want = expected[phase]
        table.append('%-13s %9.2f %9.2f %9.2f %9s' % (
            phase, base[phase], late[phase], shift,
            '-' if want is None else '%.2f' % want))
        if want is not None and abs(shift - want) > tolerance(delay):
            misses.append(phase)
    table.append('tolerance %.2f ms' % tolerance(delay))
    table = '\n'.join(table)
    print(table)
    assert not misses, 'off: %s\n%s' % (', '.join(misses), table)


def moved(phases, delay):
    """The expected shifts: `delay` for `phases`, 0 for the others; none
    for round_trip, in_service + queue_total (its median is noisier, with
    both legs' noise, and checked already through theirs)."""
    expected = {phase: delay if phase in phases else 0.0 for phase in PHASES}
    expected['round_trip'] = None
    return expected


def now_and_then(probes):
    """(baseline, delayed): the odd probes, and the even ones."""
    return ([p for p in probes if p['seq'] % 2],
            [p for p in probes if not p['seq'] % 2])


def lasting(probes, a, b):
    """(baseline, delayed): the probes of b, and those of a."""
    return ([p for p in probes if p['host'] == b],
            [p for p in probes if p['host'] == a])


# --- The tests ---------------------------------------------------------------

@pytest.fixture
def service(processes, broker_url, exchange, services_db):
    # RabbitMQ names a service's queue topic.host whatever the exchange:
    # hosts of the test's own keep other tests' probes off its queues.
    hosts = []

    def start(mode, name='a', **options):
        hosts.append('%s-%s-%s.test' % (name, mode,
                                        exchange.rsplit('-', 1)[1]))
        return hosts[-1], processes.service(
            mode, broker_url, exchange, TOPIC, hosts[-1], services_db[0],
            **options)
    return start


@pytest.fixture
def pinger(processes, tmp_path, exchange):
    started = []

    def start(transport_url):
        started.append(Pinger(processes, tmp_path, transport_url, exchange))
        return started[-1]
    yield start
    for each in started:
        each.close()


@pytest.mark.parametrize('mode', MODES)
def test_a_starved_service_shows_in_overhead_only(
        mode, service, pinger, broker_url, tmp_path):
    # On native threads a spinning thread gives up the GIL every switch
    # interval (5 ms): make it long, so that the spin holds the GIL through.
    host, proc = service(mode, hog=HOG, switch_interval=(
        30.0 if mode == 'threading' else None))
    hogging = []

    def before_probe(seq, host):
        if bool(hogging) != (seq % 2 == 0):   # starve the even probes
            proc.send_signal(signal.SIGUSR2)
            assert read_line(proc).split() == [
                'RESTING' if hogging else 'HOGGING']
            hogging[:] = [] if hogging else [True]
    probes = pinger(broker_url).run([host], WARMUP + 2 * PROBES,
                                    before_probe)
    log = (tmp_path / ('%s.log' % host)).read_text().splitlines()
    spins = [float(line.split()[1]) for line in log
             if line.startswith('HOG ')][WARMUP // 2:]
    assert len(spins) == PROBES
    # What the service did: spun from the taking of each probe to HOG after
    # (a little more where the machine gave the CPU to another process).
    assert min(spins) >= HOG * 1000.0
    assert statistics.median(spins) <= HOG * 1000.0 + 1.0, spins
    late = statistics.median(spins) - SLEEP * 1000.0
    check('%s service spinning to %.2f ms after every other probe, sleep '
          '%.0f ms' % (mode, late + SLEEP * 1000.0, SLEEP * 1000.0),
          *now_and_then(probes), late,
          moved(('overhead', 'in_service'), late))


BACKLOG_AHEAD = 'backlog %d %r' % (BACKLOG, SLOW)   # for Pinger.run


def backlogged_shift(baseline, backlogged, tmp_path):
    """(The shift (ms) to_service should show, the backlog (ms) ahead of
    the delayed probes when they left). A probe reaches the service long
    before its backlog ends: its to_service becomes that wait, and the trip
    it takes in the baseline is hidden in it."""
    ends = {}   # each service logs the end of every slow cast, in turn
    for host in {p['host'] for p in backlogged}:
        log = (tmp_path / ('%s.log' % host)).read_text().splitlines()
        ends[host] = [float(line.split()[1]) for line in log
                      if line.startswith('SLOW ')]
    wait = statistics.median(
        (ends[p['host']][BACKLOG * (p['backlog'] + 1) - 1] - p['sent']) *
        1000.0 for p in backlogged)
    return wait - medians(baseline)['to_service'], wait


@pytest.mark.parametrize('mode', MODES)
def test_a_queue_backlog_now_and_then_shows_in_to_service_only(
        mode, service, pinger, broker_url, tmp_path):
    host, _ = service(mode, pool_size=1)   # one message at a time
    probes = pinger(broker_url).run(
        [host], WARMUP + 2 * PROBES,
        lambda seq, host: None if seq % 2 else BACKLOG_AHEAD)
    baseline, backlogged = now_and_then(probes)
    shift, wait = backlogged_shift(baseline, backlogged, tmp_path)
    check('%s service, %d x %.0f ms queued ahead of every other probe, '
          'ending %.2f ms after it left' % (
              mode, BACKLOG, SLOW * 1000.0, wait), baseline, backlogged,
          wait, moved(('to_service', 'queue_total'), shift))


@pytest.mark.parametrize('mode', MODES)
def test_a_lasting_queue_backlog_shows_in_to_service_only(
        mode, service, pinger, broker_url, tmp_path):
    a, _ = service(mode, 'a', pool_size=1)
    b, _ = service(mode, 'b', pool_size=1)
    probes = pinger(broker_url).run(
        [a, b], 2 * (WARMUP + PROBES),
        lambda seq, host: BACKLOG_AHEAD if host == a else None)
    baseline, backlogged = lasting(probes, a, b)
    shift, wait = backlogged_shift(baseline, backlogged, tmp_path)
    check('%s services, %d x %.0f ms queued ahead of every probe of one, '
          'ending %.2f ms after it left' % (
              mode, BACKLOG, SLOW * 1000.0, wait), baseline, backlogged,
          wait, moved(('to_service', 'queue_total'), shift))


@pytest.mark.parametrize('mode', MODES)
def test_a_slow_return_path_now_and_then_shows_in_from_service_only(
        mode, service, pinger, processes, broker_url):
    host, _ = service(mode)
    proxy = BrokerProxy(processes, broker_url)
    probes = pinger(proxy.url).run(
        [host], WARMUP + 2 * PROBES,
        lambda seq, host: proxy.delay(0.0 if seq % 2 else RETURN_DELAY))
    back = RETURN_DELAY * 1000.0
    check('%s service, results held back %.0f ms on every other probe' % (
        mode, back), *now_and_then(probes), back,
          moved(('from_service', 'queue_total'), back))


@pytest.mark.parametrize('mode', MODES)
def test_a_lasting_slow_return_path_shows_in_from_service_only(
        mode, service, pinger, processes, broker_url):
    a, _ = service(mode, 'a')
    b, _ = service(mode, 'b')
    proxy = BrokerProxy(processes, broker_url)
    probes = pinger(proxy.url).run(
        [a, b], 2 * (WARMUP + PROBES),
        lambda seq, host: proxy.delay(RETURN_DELAY if host == a else 0.0))
    back = RETURN_DELAY * 1000.0
    check('%s services, results of one held back %.0f ms' % (mode, back),
          *lasting(probes, a, b), back,
          moved(('from_service', 'queue_total'), back))


if __name__ == '__main__':
    pinger_main(sys.argv[1])
