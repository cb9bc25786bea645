"""Several real nova-inflight sharing a few hundred services through Redis:
every service probed once per cycle, by one prober; a prober killed, then
another started, and the shares rebalance; Redis gone, and each prober goes
on with its share, saying so once.

Each prober sends its metrics under a prefix of its own, so that the test
sees who probed what, and when: the figures are printed (`bin/run-tests
-n 0 -s tests/functional/test_probers.py` shows them)."""

import collections
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from harness import HERE, add_row, die_with_parent, read_line
import servers


# Whether each service is probed once a cycle is a matter of time.
pytestmark = pytest.mark.alone

CYCLE = 3.0             # cycle_seconds
MEMBER_TIMEOUT = 3      # the Redis URL's timeout: a dead member's expiry
CHECK = 0.5             # [coordination] check_interval
PROCESSES, PER_PROCESS = 4, 50     # 200 services
STEADY = 3              # cycles measured between two events
SETTLED = 1.5           # cycles in which every service is seen, once


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Redis:
    """A redis-server of the test's own, that it may stop and start."""

    def __init__(self, processes):
        if shutil.which('redis-server') is None:
            servers.unavailable('redis-server is not installed',
                                'INFLIGHT_REQUIRE_REDIS')
        self.processes, self.port, self.proc = processes, free_port(), None

    def start(self):
        self.proc = self.processes.command(
            ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no'], 'redis.log')
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(('127.0.0.1', self.port), 0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, 'redis-server not up'
                time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Probes:
    """The statsd counters of the probers, each probe sent and each result
    received timed on arrival: (monotonic time, prober, service)."""

    def __init__(self, statsd):
        self.statsd, self.sent, self.received = statsd, [], []

    def receive_for(self, seconds):
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            seen = len(self.statsd.metrics)
            self.statsd.receive_for(min(0.05, ends - time.monotonic()))
            now = time.monotonic()
            for name, value, kind in self.statsd.metrics[seen:]:
                prober, _, rest = name.partition('.')
                service, _, leaf = rest.rpartition('.')
                counted = {'sent': self.sent, 'received': self.received}
                if kind == 'c' and leaf in counted:
                    for _ in range(int(value)):
                        counted[leaf].append((now, prober, service))

    def until(self, predicate, timeout, why=lambda: ''):
        """Receive until predicate() holds; the time it took. Past
        `timeout`, fail saying why(): what did not hold."""
        began = time.monotonic()
        while not predicate():
            assert time.monotonic() - began < timeout, 'not within %ss%s' % (
                timeout, why())
            self.receive_for(0.05)
        return time.monotonic() - began

    def between(self, start, end):
        """service -> [(time, prober)] of the probes sent in [start, end)."""
        found = collections.defaultdict(list)
        for at, prober, service in self.sent:
            if start <= at < end:
                found[service].append((at, prober))
        return found


def count(services, probes, start, end):
    """Per service: probes in the window, and how many of the gaps between
    two probes of it were doubles (< half a cycle) or skips (> 1.5); and
    of the probes sent, how many were answered."""
    window = probes.between(start, end)
    per_service = [len(window.get(s, ())) for s in services]
    doubles = skips = 0
    for service in services:
        times = [at for at, _ in window.get(service, ())]
        gaps = [b - a for a, b in zip(times, times[1:])]
        doubles += sum(gap < CYCLE / 2 for gap in gaps)
        skips += sum(gap > CYCLE * 1.5 for gap in gaps)
    by = owners(probes, start, end)
    received = sum(start <= at < end for at, _, _ in probes.received)
    return dict(min=min(per_service), max=max(per_service),
                sent=sum(per_service), received=received,
                cycles=round((end - start) / CYCLE, 1),
                doubles=doubles, skips=skips,
                unprobed=len(set(services) - set(by)),
                shared=sum(len(p) > 1 for p in by.values()))


def owners(probes, start, end):
    """service -> the set of probers that probed it in [start, end)."""
    return {s: {p for _, p in found}
            for s, found in probes.between(start, end).items()}


def prober_conf(tmp_path, name, broker_url, exchange, db_url, statsd_port,
                redis_port):
    path = tmp_path / ('%s.conf' % name)
    path.write_text(
        '[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n'
        'host = %s-%s.test\n'
        '[database]\nconnection = %s\n'
        '[statsd]\nport = %d\nprefix = %s\n'
        '[inflight]\ncycle_seconds = %s\nprobe_interval = 0.1\nsleep = 0.05\n'
        'probe_timeout = 2\nrefresh_interval = 2\nstatus_file =\n'
        # The services' kind is known: no call to learn it, on every move.
        'probe_methods = compute:inflight\n'
        '[coordination]\nbackend_url = redis://127.0.0.1:%d?timeout=%d\n'
        'check_interval = %s\n'
        % (broker_url, exchange, name, exchange[-12:], db_url, statsd_port,
           name, CYCLE, redis_port, MEMBER_TIMEOUT, CHECK))
    return str(path)


def start_services(tmp_path, processes, broker_url, exchange, engine):
    """PROCESSES processes answering PER_PROCESS services each."""
    conf = tmp_path / 'services.conf'
    conf.write_text('[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n'
                    % (broker_url, exchange))
    names, procs = [], []
    for p in range(PROCESSES):
        hosts = ['cmp%d-%03d.test' % (p, i) for i in range(PER_PROCESS)]
        for host in hosts:
            add_row(engine, host, 'compute')
        names += ['compute.' + h.replace('.', '_') for h in hosts]
        with open(tmp_path / ('services-%d.log' % p), 'w') as log:
            proc = subprocess.Popen(
                [sys.executable, os.path.join(HERE, 'many_services.py'),
                 str(conf), 'compute', *hosts],
                stdout=subprocess.PIPE, stderr=log, text=True,
                preexec_fn=die_with_parent)
        processes.procs.append(proc)
        procs.append(proc)
    for proc in procs:
        assert read_line(proc, 60).split() == ['READY', str(PER_PROCESS)]
    return names


def kill_9(proc):
    """SIGKILL to the daemon's worker, then to its launcher: the prober dies
    without leaving the group."""
    workers = []
    for children in glob.glob('/proc/%d/task/*/children' % proc.pid):
        with open(children) as f:
            workers += [int(pid) for pid in f.read().split()]
    assert workers, 'the launcher has no worker'
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    proc.kill()
    proc.wait(10)


def log_of(tmp_path, name):
    return (tmp_path / ('%s.log' % name)).read_text()


def memberships(tmp_path):
    """What each prober said of the group, and of its ring, and what went
    wrong, for a failure's message."""
    said = []
    for path in sorted(tmp_path.glob('p*.log')):
        said += ['%s: %s' % (path.stem, line.split(' [-] ', 1)[-1])
                 for line in path.read_text().splitlines()
                 if 'inflight.cloud.partition' in line or ' Probing ' in line
                 or ' WARNING ' in line or ' ERROR ' in line]
    return '\n'.join(said)


def last_sent(probes):
    """prober -> seconds since it last sent a probe, for a failure's
    message."""
    now, last = time.monotonic(), {}
    for at, prober, _ in probes.sent:
        last[prober] = at
    return ', '.join('%s %.1fs ago' % (p, now - at)
                     for p, at in sorted(last.items()))


def test_probers_share_every_service_once_per_cycle(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    began = time.monotonic()
    phases = []
    redis = Redis(processes)
    redis.start()
    db_url, engine = services_db
    services = start_services(tmp_path, processes, broker_url, exchange,
                              engine)
    probes = Probes(statsd)

    def prober(name):
        conf = prober_conf(tmp_path, name, broker_url, exchange, db_url,
                           statsd.port, redis.port)
        return processes.command(
            [sys.executable, '-m', 'inflight.cmd.inflight',
             '--config-file', conf], '%s.log' % name)

    def sharing(names, count, timeout):
        """Wait until each of `names` says, after now, that `count` probers
        share; the time it took."""
        said = '%d probers share the services' % count
        marks = {n: len(log_of(tmp_path, n)) if (
            tmp_path / ('%s.log' % n)).exists() else 0 for n in names}
        return probes.until(
            lambda: all(said in log_of(tmp_path, n)[marks[n]:]
                        for n in names),
            timeout, lambda: ': %r not said by all of %s; they said:\n%s' % (
                said, sorted(names), memberships(tmp_path)))

    def unsettled(names, since):
        """What keeps the shares from being settled since `since`: every
        service probed in the last SETTLED cycles, each by one of `names`
        and none by two. (A window of one cycle exactly would miss a
        service whose probe came a few ms late on a loaded machine.)"""
        now = time.monotonic()
        if now - since < SETTLED * CYCLE:
            return 'not %s cycles yet' % SETTLED
        seen = owners(probes, now - SETTLED * CYCLE, now)
        wrong = {s: by for s, by in seen.items()
                 if len(by) != 1 or not by <= set(names)}
        unprobed = sorted(set(services) - set(seen))
        if not wrong and not unprobed:
            return ''
        return '; in the last %s cycles %d services unprobed %s, %d probed ' \
            'by others or by two %s; last probes sent: %s' % (
                SETTLED, len(unprobed), unprobed[:5], len(wrong),
                sorted(wrong.items())[:5], last_sent(probes))

    def settle(names, since, cycles):
        probes.until(lambda: not unsettled(names, since), cycles * CYCLE,
                     lambda: ': %s; the probers said:\n%s' % (
                         unsettled(names, since), memberships(tmp_path)))

    phases.append(('services up', time.monotonic() - began))
    procs = {name: prober(name) for name in ('p1', 'p2', 'p3')}
    sharing(procs, 3, 60)
    up = time.monotonic()
    phases.append(('probers joined', up - began))
    settle(('p1', 'p2', 'p3'), up, 4)
    figures = {}
    start = time.monotonic()
    probes.receive_for(STEADY * CYCLE)
    figures['3 probers'] = count(services, probes, start, time.monotonic())
    shares = collections.Counter(
        min(by) for by in owners(probes, start, time.monotonic()).values())

    kill_9(procs['p3'])
    killed = time.monotonic()
    seen_gone = sharing(('p1', 'p2'), 2, 4 * MEMBER_TIMEOUT)
    settle(('p1', 'p2'), killed + seen_gone, 4)
    moved = count(services, probes, killed, killed + seen_gone + CYCLE)
    start = time.monotonic()
    probes.receive_for(STEADY * CYCLE)
    figures['2 probers, after p3 killed'] = count(
        services, probes, start, time.monotonic())

    procs['p4'] = prober('p4')
    started = time.monotonic()
    joined = sharing(('p1', 'p2', 'p4'), 3, 60)
    settle(('p1', 'p2', 'p4'), started + joined, 4)
    start = time.monotonic()
    probes.receive_for(STEADY * CYCLE)
    figures['3 probers, after p4 started'] = count(
        services, probes, start, time.monotonic())
    before = owners(probes, start, time.monotonic())

    redis.stop()
    gone = time.monotonic()
    said = 'Could not reach the coordination backend'
    probes.until(lambda: all(said in log_of(tmp_path, n)
                             for n in ('p1', 'p2', 'p4')), 30)
    probes.receive_for(STEADY * CYCLE)
    figures['3 probers, Redis gone'] = count(
        services, probes, gone, time.monotonic())
    during = owners(probes, gone, time.monotonic())

    print('\n%d services, %d probes sent, test ran %.0fs; cycle %ss, member '
          'timeout %ss, check every %ss' % (
              len(services), len(probes.sent), time.monotonic() - began,
              CYCLE, MEMBER_TIMEOUT, CHECK))
    print('phases: %s' % phases)
    print('shares of 3 probers: %s' % dict(sorted(shares.items())))
    print('p3 killed: its share probed by the others after %.1fs, the '
          'window around it: %s' % (seen_gone, moved))
    print('p4 started: its share taken %.1fs after it started' % joined)
    for name, figure in figures.items():
        print('%s: probes per service in %s cycles: %d to %d; gaps between '
              'two probes of a service under half a cycle: %d, over 1.5: %d; '
              '%d results received of %d probes sent'
              % (name, figure['cycles'], figure['min'], figure['max'],
                 figure['doubles'], figure['skips'], figure['received'],
                 figure['sent']))

    assert seen_gone <= 2 * MEMBER_TIMEOUT + CHECK + 1
    # Between the rebalances, every service probed, each by one prober.
    # (How evenly in time is the pacing's, on a loaded machine: printed.)
    for name, figure in figures.items():
        assert figure['unprobed'] == figure['shared'] == 0, (
            name, figure, memberships(tmp_path))
        assert figure['min'] >= 1, (name, figure)
        # And answered: a probe sent is not yet a probe measured. (The few
        # sent at a window's end are answered after it.)
        assert figure['received'] >= 0.95 * figure['sent'], (name, figure)
    # The backend away: each keeps its share, and says so once.
    assert set(during) == set(before)
    assert all(during[s] == before[s] for s in during), {
        s: (before[s], during[s]) for s in during if during[s] != before[s]}
    for name in ('p1', 'p2', 'p4'):
        text = log_of(tmp_path, name)
        assert text.count(said) == 1, text[-3000:]
        assert 'Traceback' not in text and 'Retrying' not in text
    assert 'stopped' not in log_of(tmp_path, 'p3')       # killed, not left
    for name in ('p1', 'p2', 'p4'):
        procs[name].send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    for name in ('p1', 'p2', 'p4'):
        assert procs[name].wait(30) == 0
    print('probers stopped in %.1fs' % (time.monotonic() - stopping))
    stopping = time.monotonic()
    processes.stop_all()
    print('services stopped in %.1fs' % (time.monotonic() - stopping))
