"""Benchmark 7: 1,000,000 services in 100 cells, N probers, simulated.

The services are split among N probers by tooz's consistent hash ring, as
the probers split them (tooz.hashring.HashRing over the members, with the
points a member has in inflight.cloud.partition; each service placed by
record.Key.__tooz_hash__()), timed: each prober hashes every service on
every refresh. Each prober's share is then walked by the daemon's schedule
on a fake clock (bench_coverage.simulate: the real ServiceRing and Pacer at
the defaults of inflight/opts.py), without waiting.

Per prober: its share (min and max: the ring's balance), the probes/s its
schedule reaches, the CPU that needs (probes/s x the CPU per probe this run
measured, benchmark 1 or 6), the memory its ring holds (tracemalloc on one
share, scaled by the share). Per cell: the broker's messages/s, 2 a probe
(the probe and its result go through the cell's broker). Coordination: the
Redis commands tooz's redis driver issues per heartbeat and per check of
the group (Partition.check()), counted by a Redis of this benchmark's own
(`redis-server` on a free port, INFO commandstats), times how often each
runs.

And the least N that probes every service once per cycle_seconds with each
prober within one core and under max_in_flight.
"""

import collections
import datetime
import gc
import hashlib
import math
import os
import shutil
import socket
import statistics
import subprocess
import threading
import time
import tracemalloc

from inflight.cloud import record
from inflight import opts
from inflight import ring

import bench_coverage

PROBERS = (1, 4, 16)
GROUP = b'inflight-bench'
TOPICS = ('compute', 'compute', 'compute', 'compute', 'conductor',
          'scheduler')
SAMPLE = 100000          # services hashed to look for the least N
MOST_PROBERS = 1000


def _default(name):
    return next(o.default for o in opts.inflight_opts if o.name == name)


def partitions():
    """Points a member has on the hash ring: as the probers' partitioned
    group places them, else tooz's default; and where it came from."""
    try:
        from inflight.cloud import partition
        return partition.PARTITIONS, 'inflight.cloud.partition'
    except ImportError:
        from tooz import hashring
        return hashring.HashRing.DEFAULT_PARTITION_NUMBER, 'tooz default'


def check_interval():
    """Seconds between two checks of the group: [coordination] check_interval,
    else probe_interval; and where it came from."""
    for opt in getattr(opts, 'coordination_opts', ()):
        if opt.name == 'check_interval':
            return opt.default, '[coordination] check_interval'
    return _default('probe_interval'), '[inflight] probe_interval'


def make_services(total, cells, distinct_times=False, start=0):
    """`total` services spread over `cells` cells, as the cells' tables
    would hold them (with `distinct_times`, as rows read from them)."""
    now = datetime.datetime(2026, 1, 1)
    out = []
    for i in range(start, start + total):
        cell = i % cells
        topic = TOPICS[i % len(TOPICS)]
        seen = now + datetime.timedelta(seconds=i) if distinct_times else now
        out.append(record.Service.of(
            topic, 'host%07d.rack%03d.cell%03d.example.org' % (
                i, i % 500, cell),
            cell='cell%03d' % cell, id=i // cells + 1,
            binary='nova-%s' % topic, last_seen_up=seen,
            created_at=seen))
    return out


def members_of(count):
    return ['prober-%d' % i for i in range(count)]


def partition(services, probers):
    """Each prober's share, by tooz's hash ring; and how long it took."""
    from tooz import hashring
    members = members_of(probers)
    hash_ring = hashring.HashRing(members, partitions=partitions()[0])
    shares = {member: [] for member in members}
    started = time.perf_counter()
    for service in services:
        [member] = hash_ring.get_nodes(service.key.__tooz_hash__())
        shares[member].append(service)
    return shares, time.perf_counter() - started


def plain_hash_s(services):
    """The baseline: one md5 of the same bytes a service, nothing else."""
    started = time.perf_counter()
    for service in services:
        hashlib.md5(service.key.__tooz_hash__(), usedforsecurity=False)
    return time.perf_counter() - started


def key_cache_bytes_per_service(services):
    """tracemalloc: a dict of every service's key to whether it is this
    prober's (what keeping the hash ring's answers costs), per service."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        mine = {service.key: False for service in services}
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    del mine
    return held / len(services)


def ring_bytes_per_service(share, cells):
    """tracemalloc, per service: the rows of a prober's share as read from
    the cells, and those rows with its ring over them, half way through a
    cycle."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        services = make_services(share, cells, distinct_times=True)
        rows = tracemalloc.get_traced_memory()[0] - base
        services_ring = ring.ServiceRing(services)
        del services
        services_ring.take(share // 2)
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    del services_ring
    return rows / share, held / share


def fits(share, cycle_seconds, max_in_flight, sleep, round_trip,
         cpu_us_per_probe):
    """Can one prober probe `share` services once a cycle, within one core
    and under max_in_flight?"""
    rate = share / cycle_seconds
    if rate * (sleep + round_trip) > max_in_flight:
        return False
    return cpu_us_per_probe is None or rate * cpu_us_per_probe * 1e-6 <= 1.0


def least_probers(services, cycle_seconds, max_in_flight, sleep, round_trip,
                  cpu_us_per_probe):
    """The least N whose largest share fits, by the hash ring over a
    sample of the services (scaled); None past MOST_PROBERS."""
    step = max(1, len(services) // SAMPLE)
    sample = services[::step]
    scale = len(services) / len(sample)
    per_prober = 1.0 / cycle_seconds * (sleep + round_trip) / max_in_flight
    if cpu_us_per_probe:
        per_prober = max(per_prober,
                         cpu_us_per_probe * 1e-6 / cycle_seconds)
    n = max(1, math.ceil(len(services) * per_prober))
    while n <= MOST_PROBERS:
        shares, _ = partition(sample, n)
        largest = max(len(s) for s in shares.values()) * scale
        if fits(largest, cycle_seconds, max_in_flight, sleep, round_trip,
                cpu_us_per_probe):
            return n
        n += 1
    return None


# -- coordination: tooz's Redis commands, counted --------------------------

class OwnRedis:
    """A redis-server of this benchmark's own, on a free port, no disk."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None

    def start(self, timeout=10.0):
        import redis
        server = shutil.which('redis-server')
        if server is None:
            raise RuntimeError('redis-server not found: benchmark 7 counts '
                               "tooz's Redis commands on a Redis of its own")
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            self.port = s.getsockname()[1]
        self._log = open(os.path.join(self.workdir, 'redis.log'), 'w')
        self.proc = subprocess.Popen(
            [server, '--port', str(self.port), '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no', '--dir', self.workdir],
            stdout=self._log, stderr=subprocess.STDOUT)
        self.client = redis.Redis(host='127.0.0.1', port=self.port)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client.ping()
                return self
            except redis.ConnectionError:
                if (time.monotonic() > deadline or
                        self.proc.poll() is not None):
                    raise RuntimeError('redis-server on port %d did not '
                                       'answer in %ss' % (self.port, timeout))
                time.sleep(0.02)   # polling with a deadline, not a wait

    @property
    def url(self):
        return 'redis://127.0.0.1:%d' % self.port

    def reset(self):
        self.client.config_resetstat()

    def commands(self):
        """Commands run since reset(), but this client's own."""
        stats = self.client.info('commandstats')
        return sum(v['calls'] for k, v in stats.items()
                   if not k.startswith(('cmdstat_info', 'cmdstat_config')))

    def ping_rate(self, seconds=0.2):
        """The baseline: PINGs a second one client drives, one at a time."""
        count = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            self.client.ping()
            count += 1
        return count / (time.perf_counter() - started)

    def stop(self):
        if self.proc is not None:
            self.client.close()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._log.close()


def coordination(redis_server, sizes):
    """Redis commands per heartbeat and per check of the group (the
    prober's Partition.check()), for each size of the group in `sizes`;
    and the heartbeat's interval."""
    from tooz import coordination as tooz_coordination
    from inflight.cloud import partition
    everyone = []
    out = {}
    try:
        for probers in sizes:
            group = '%s-%d' % (GROUP.decode(), probers)
            members = []
            for member in members_of(probers):
                member_id = ('%s.%d' % (member, probers)).encode()
                coordinator = tooz_coordination.get_coordinator(
                    redis_server.url, member_id)
                if not members:
                    # Made first: join_group_create() waits 1 s to retry
                    # when the group is not there yet.
                    coordinator.start()
                    coordinator.create_group(group.encode()).get()
                    coordinator.stop()
                members.append(
                    (coordinator, partition.Partition(
                        coordinator, member_id, group)))
                everyone.append(members[-1][1])
                assert members[-1][1].check(), 'could not join the group'
            for _, member in members:       # every one sees every other
                member.check()
            redis_server.reset()
            started = time.perf_counter()
            idle = [coordinator.heartbeat() for coordinator, _ in members]
            beat_s = (time.perf_counter() - started) / probers
            beat = redis_server.commands() / probers
            redis_server.reset()
            started = time.perf_counter()
            for _, member in members:
                member.check()
            check_s = (time.perf_counter() - started) / probers
            check = redis_server.commands() / probers
            # tooz's heart beats again after half the idle time heartbeat()
            # returns.
            out[probers] = {
                'commands_per_heartbeat': beat,
                'commands_per_check': check,
                'heartbeat_interval_s': min(idle) / 2.0,
                'heartbeat_ms': beat_s * 1e3,
                'check_ms': check_s * 1e3}
    finally:
        # Side by side: each stop waits up to 1 s for tooz's executor.
        stoppers = [threading.Thread(target=member.leave)
                    for member in everyone]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
    return out


# -- the run ----------------------------------------------------------------

def prober_row(member, share, cells, settings, cpu_us_per_probe,
               bytes_per_service):
    """One prober's schedule over its share, simulated."""
    cycle_seconds, max_in_flight, sleep, round_trip, probe_interval = settings
    row = {'member': member, 'share': len(share)}
    if not share:
        row.update(probes_per_s=0.0, cycle_s=0.0, most_in_flight=0,
                   met=True, cores=0.0, ring_mb=0.0, per_cell={},
                   sent=collections.Counter())
        return row
    sent = collections.Counter()     # (second, cell) -> probes sent

    def count(now, service):
        sent[int(now), service.cell] += 1

    sim = bench_coverage.simulate(len(share), cycle_seconds, max_in_flight,
                                  sleep, round_trip, probe_interval,
                                  members=share, on_send=count)
    row['sent'] = sent
    row['cycle_s'] = sim['cycle_s']
    row['probes_per_s'] = sim['probes_per_s']
    row['most_in_flight'] = sim['most_in_flight']
    row['cores'] = (None if cpu_us_per_probe is None else
                    sim['probes_per_s'] * cpu_us_per_probe * 1e-6)
    row['met'] = sim['cycle_s'] <= cycle_seconds and (
        row['cores'] is None or row['cores'] <= 1.0)
    row['ring_mb'] = len(share) * bytes_per_service / 2**20
    per_cell = {}
    for service in share:
        per_cell[service.cell] = per_cell.get(service.cell, 0) + 1
    # Its probes/s, dealt to the cells as its share is.
    row['per_cell'] = {cell: count / len(share) * sim['probes_per_s']
                       for cell, count in per_cell.items()}
    return row


def at_probers(services, probers, cells, settings, cpu_us_per_probe,
               bytes_per_service):
    """Every figure with `probers` probers but the coordination's."""
    cycle_seconds = settings[0]
    shares, hash_s = partition(services, probers)
    rows = [prober_row(member, share, cells, settings, cpu_us_per_probe,
                       bytes_per_service)
            for member, share in shares.items()]
    del shares
    gc.collect()
    cell_rate = {}
    # The probers started together: each walks its share in ring order (a
    # hash of the key), the cells mixed.
    sent = collections.Counter()
    for row in rows:
        for cell, rate in row.pop('per_cell').items():
            cell_rate[cell] = cell_rate.get(cell, 0.0) + rate
        sent.update(row.pop('sent'))
    msgs = [2 * rate for rate in cell_rate.values()]
    sizes = [row['share'] for row in rows]
    cores = [row['cores'] for row in rows if row['cores'] is not None]
    return {
        'probers': probers,
        'met': all(row['met'] for row in rows),
        'hash_s': hash_s,
        'hash_us_per_service': hash_s / len(services) * 1e6,
        'share_min': min(sizes), 'share_max': max(sizes),
        'share_max_over_mean': max(sizes) / (len(services) / probers),
        'probes_per_s_min': min(row['probes_per_s'] for row in rows),
        'probes_per_s_max': max(row['probes_per_s'] for row in rows),
        'probes_per_s_total': sum(row['probes_per_s'] for row in rows),
        'cycle_s_max': max(row['cycle_s'] for row in rows),
        'most_in_flight_max': max(row['most_in_flight'] for row in rows),
        'cores_max': max(cores) if cores else None,
        'cores_total': sum(cores) if cores else None,
        'ring_mb_max': max(row['ring_mb'] for row in rows),
        'cell_msgs_per_s_min': min(msgs),
        'cell_msgs_per_s_mean': statistics.mean(msgs),
        'cell_msgs_per_s_max': max(msgs),
        'cell_msgs_per_s_busiest_second': 2 * max(sent.values()),
        'cycle_goal_s': cycle_seconds,
    }


def least_met(start, simulate, most=MOST_PROBERS):
    """The least N whose simulation is met (`simulate(n)`, at_probers' row),
    looked for from `start`, down while met, else up; None past `most`.
    `start` is least_probers()'s guess, from a sample of the services and
    the mean rate; the simulation has every service and the schedule's own
    rate: the two can differ by a prober or so either way."""
    n = start
    if simulate(n)['met']:
        while n > 1 and simulate(n - 1)['met']:
            n -= 1
        return n
    while n < most:
        n += 1
        if simulate(n)['met']:
            return n
    return None


class Simulations:
    """at_probers() for one set of services, each N simulated once."""

    def __init__(self, services, cells, settings, cpu_us_per_probe,
                 bytes_per_service):
        self._args = (cells, settings, cpu_us_per_probe, bytes_per_service)
        self._services = services
        self.rows = {}

    def __call__(self, probers):
        row = self.rows.get(probers)
        if row is None:
            row = self.rows[probers] = at_probers(self._services, probers,
                                                  *self._args)
        return row


def with_coordination(row, coord):
    """`row` with the coordination's figures at its number of probers."""
    per_prober_cmds = (
        coord['commands_per_heartbeat'] / coord['heartbeat_interval_s'] +
        coord['commands_per_check'] / coord['check_interval_s'])
    return dict(row,
                redis_commands_per_heartbeat=coord['commands_per_heartbeat'],
                redis_commands_per_check=coord['commands_per_check'],
                redis_commands_per_s_per_prober=per_prober_cmds,
                redis_commands_per_s_total=per_prober_cmds * row['probers'])


def log_row(out, log):
    """One line of progress for one number of probers."""
    probers = out['probers']
    log('  %4d probers: hashed in %.1fs; shares %d-%d; cycle <= %.1fs; '
        '%.0f probes/s a prober at most, %s cores; cells %.0f-%.0f msgs/s '
        '(%.0f in the busiest second); Redis %.1f commands/s' % (
            probers, out['hash_s'], out['share_min'], out['share_max'],
            out['cycle_s_max'], out['probes_per_s_max'],
            'n/a' if out['cores_max'] is None else '%.2f' % out['cores_max'],
            out['cell_msgs_per_s_min'], out['cell_msgs_per_s_max'],
            out['cell_msgs_per_s_busiest_second'],
            out['redis_commands_per_s_total']))


def run(total, cells, measured, workdir, log=print, probers=PROBERS):
    """Benchmark 7; `measured` holds figures from benchmarks 1, 2 and 6;
    `workdir`: for the Redis of its own."""
    measured = measured or {}
    settings = bench_coverage.schedule_settings(measured)
    cycle_seconds, max_in_flight, sleep, round_trip, _ = settings
    cpu_us = measured.get('prober_cpu_us_per_probe')
    echoes_per_s = measured.get('echoes_per_s')

    started = time.perf_counter()
    services = make_services(total, cells)
    log('  %d services in %d cells made in %.1fs' % (
        total, cells, time.perf_counter() - started))
    plain_s = plain_hash_s(services)
    guess = least_probers(services, cycle_seconds, max_in_flight, sleep,
                          round_trip, cpu_us)
    log('  the least N by a sample: %s' % guess)
    row_bytes, bytes_per_service = ring_bytes_per_service(
        math.ceil(total / max(set(probers) | {guess or 1})), cells)
    simulate = Simulations(services, cells, settings, cpu_us,
                           bytes_per_service)
    needed = guess and least_met(guess, simulate)
    log('  the least N by simulation: %s' % needed)
    for n in probers:
        simulate(n)
    # Every N simulated: the least N and the one below it, which did not do.
    counts = sorted(simulate.rows)
    cache_bytes = key_cache_bytes_per_service(services)
    watch_interval, watch_from = check_interval()

    redis_server = OwnRedis(workdir).start()
    try:
        # The commands do not grow with the group (one MGET reads every
        # member's beat): counted at the smallest and the largest.
        counted = coordination(redis_server, sorted({counts[0],
                                                     counts[-1]}))
        ping_per_s = redis_server.ping_rate()
    finally:
        redis_server.stop()
    coords = {}
    for n in counts:
        # As at the nearest size counted, the larger if between.
        coord = dict(counted[min((c for c in counted if c >= n),
                                 default=max(counted))])
        coord['check_interval_s'] = watch_interval
        coords[n] = coord

    table = [with_coordination(simulate(n), coords[n]) for n in counts]
    for row in table:
        log_row(row, log)
    cell_sizes = {}
    for service in services:
        cell_sizes[service.cell] = cell_sizes.get(service.cell, 0) + 1
    del services
    gc.collect()
    by_n = {row['probers']: row for row in table}
    least = by_n.get(needed)

    ratios = {}
    if least is not None:
        ratios['cycle / cycle_seconds with the least N (%d)' % needed] = (
            least['cycle_s_max'] / cycle_seconds)
    for row in table:
        n = row['probers']
        ratios['cycle / cycle_seconds at %d' % n] = (row['cycle_s_max'] /
                                                     cycle_seconds)
        ratios['largest share / mean share at %d' % n] = (
            row['share_max_over_mean'])
        ratios['tooz hash ring / plain md5, a service, at %d' % n] = (
            row['hash_s'] / plain_s)
        ratios['Redis commands/s of all probers / one client\'s serial '
               'PINGs/s at %d' % n] = row['redis_commands_per_s_total'] / (
                   ping_per_s)
        if echoes_per_s:
            ratios['busiest cell broker msgs/s / measured echo msgs/s at '
                   '%d' % n] = row['cell_msgs_per_s_max'] / (2 * echoes_per_s)
            ratios['busiest cell in its busiest second / measured echo '
                   'msgs/s at %d' % n] = (row['cell_msgs_per_s_busiest_second']
                                          / (2 * echoes_per_s))
        if row['cores_max'] is not None:
            ratios['busiest prober cores / one core at %d' % n] = (
                row['cores_max'])
    goals = {'every service once per %gs, each prober within one core, '
             'with %d probers' % (cycle_seconds, row['probers']): row['met']
             for row in table}
    return {
        'title': '%s services in %d cells, N probers' % (
            '{:,}'.format(total), cells),
        'goal': 'every service probed once per cycle_seconds (%gs), each '
                'prober within one core and max_in_flight: the least N '
                'that does it' % cycle_seconds,
        'met': bool(least and least['met']),
        'goals': goals,
        'ratios': ratios,
        'figures': {
            'services': total, 'cells': cells,
            'least_probers': needed,
            'least_probers_from': (
                'the CPU per probe measured (%s) and max_in_flight' %
                measured.get('prober_cpu_from', 'benchmark 1')
                if cpu_us else 'max_in_flight only (no CPU per probe '
                'measured in this run)'),
            'cycle_seconds': cycle_seconds, 'max_in_flight': max_in_flight,
            'sleep_s': sleep, 'probe_round_trip_s': round_trip,
            'measured_prober_cpu_us_per_probe': cpu_us,
            'measured_echoes_per_s': echoes_per_s,
            'hash_ring_partitions_per_member': partitions()[0],
            'hash_ring_partitions_from': partitions()[1],
            'plain_md5_us_per_service': plain_s / total * 1e6,
            'ring_bytes_per_service': bytes_per_service,
            # Every prober reads every row, then keeps its share.
            'rows_mb_all_services': row_bytes * total / 2**20,
            'key_cache_mb_all_services': cache_bytes * total / 2**20,
            'cell_msgs_per_s_needed_max': 2 * max(cell_sizes.values()) /
            cycle_seconds,
            'redis_serial_pings_per_s': ping_per_s,
            'heartbeat_interval_s': coords[counts[0]]['heartbeat_interval_s'],
            'check_interval_s': watch_interval,
            'check_interval_from': watch_from,
            'redis_counted_at': ', '.join(map(str, sorted(counted))),
            'heartbeat_ms': counted[max(counted)]['heartbeat_ms'],
            'check_ms': counted[max(counted)]['check_ms'],
        },
        'table': table,
        'repeats': 'deterministic simulation: run once (the hashing, '
                   'tracemalloc and Redis figures too)',
    }
