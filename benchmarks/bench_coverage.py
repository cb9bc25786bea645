"""Benchmark 5: coverage, i.e. does every service get probed once per cycle?

For 1k, 10k and 100k services, nova-inflight's schedule is simulated on a
fake clock, without waiting: ticks of check_inflight every
Pacer.spacing(services, probe_interval) seconds, each sending
Pacer.due(services, probes out) services taken from a real ServiceRing,
each probe out for `sleep` + its round trip. With the defaults
(inflight/opts.py: cycle_seconds 60, max_in_flight 1000, sleep 1 s,
probe_interval 1 s) that says whether the cap on probes out lets a whole
cycle through in time.

The load is set against what this run measured (benchmark 1): the broker's
messages/s (2 per probe: the probe and its result) against what the bare
echo pushed through it, and the prober's CPU per probe against one core
(the prober is one Python process).
"""

import logging

from inflight.cloud import record
from inflight import opts
from inflight import pacing
from inflight import ring

SIZES = (1000, 10000, 100000)


def _default(name):
    return next(o.default for o in opts.inflight_opts if o.name == name)


def schedule_settings(measured):
    """(cycle_seconds, max_in_flight, sleep, round_trip, probe_interval):
    the daemon's defaults, and the round trip `measured` in benchmark 2."""
    return (_default('cycle_seconds'), _default('max_in_flight'),
            _default('sleep'), measured.get('probe_round_trip_s', 0.002),
            _default('probe_interval'))


def simulate(services, cycle_seconds, max_in_flight, sleep, round_trip,
             probe_interval, members=None, on_send=None):
    """check_inflight's ticks, on a fake clock, until all were probed:
    `services` made up, or the services `members` (a list); each probe
    sent told to `on_send(now, service)`."""
    now = [0.0]
    pacer = pacing.Pacer(cycle_seconds, max_in_flight,
                         monotonic=lambda: now[0])
    if members is None:
        members = [record.Service.of('compute', 'host%d' % i, id=i,
                                     binary='nova-compute')
                   for i in range(services)]
    services = len(members)
    services_ring = ring.ServiceRing(members)
    spacing = pacer.spacing(services, probe_interval)
    pacing_log = logging.getLogger(pacing.__name__)
    level = pacing_log.level
    pacing_log.setLevel(logging.ERROR)   # it warns on every held-back cycle
    try:
        cap_ok = pacer.check(services, sleep)
        back_at = []    # when each probe out comes back (sent in order)
        first_out = 0
        seen = set()
        most_out = held_ticks = ticks = 0
        while True:
            while first_out < len(back_at) and back_at[first_out] <= now[0]:
                first_out += 1
            out = len(back_at) - first_out
            due = pacer.due(services, out)
            ticks += 1
            if out + due >= max_in_flight:
                held_ticks += 1         # the cap, not the rate, set `due`
            for service in services_ring.take(due):
                seen.add(service.key)
                back_at.append(now[0] + sleep + round_trip)
                if on_send is not None:
                    on_send(now[0], service)
            most_out = max(most_out, len(back_at) - first_out)
            if len(seen) == services:
                break
            now[0] += spacing
    finally:
        pacing_log.setLevel(level)
    return {
        'services': services,
        'cap_ok': cap_ok,
        'tick_s': spacing,
        'ticks': ticks,
        'ticks_at_cap': held_ticks,
        'cycle_s': now[0],                       # last service's probe sent
        'all_back_s': back_at[-1],
        'needed_probes_per_s': services / cycle_seconds,
        'needed_in_flight': services / cycle_seconds * (sleep + round_trip),
        'most_in_flight': most_out,
        'probes_per_s': services / max(now[0], spacing),
    }


def run(measured=None, sizes=SIZES, log=print):
    """The coverage table; `measured` holds figures from benchmarks 1-2."""
    measured = measured or {}
    (cycle_seconds, max_in_flight, sleep, round_trip,
     probe_interval) = schedule_settings(measured)
    echoes_per_s = measured.get('echoes_per_s')
    prober_cpu_us = measured.get('prober_cpu_us_per_probe')
    rows = []
    for size in sizes:
        row = simulate(size, cycle_seconds, max_in_flight, sleep,
                       round_trip, probe_interval)
        row['met'] = row['cycle_s'] <= cycle_seconds
        row['cycle_ratio'] = row['cycle_s'] / cycle_seconds
        # What it adds to the broker, at the rate it actually reaches.
        row['broker_msgs_per_s'] = 2 * row['probes_per_s']
        row['broker_msgs_per_s_needed'] = 2 * row['needed_probes_per_s']
        if echoes_per_s:
            row['broker_capacity_msgs_per_s'] = 2 * echoes_per_s
            row['broker_ratio'] = row['broker_msgs_per_s'] / (2 * echoes_per_s)
            row['broker_ratio_needed'] = (row['broker_msgs_per_s_needed'] /
                                          (2 * echoes_per_s))
        if prober_cpu_us:
            # The prober is one Python process: about one core at most.
            row['prober_core_share'] = (row['probes_per_s'] * prober_cpu_us *
                                        1e-6)
            row['prober_core_share_needed'] = (
                row['needed_probes_per_s'] * prober_cpu_us * 1e-6)
        rows.append(row)
        log('  %6d services: cycle %.1fs (goal %gs), most out %d (cap %d), '
            '%.0f broker msgs/s' % (size, row['cycle_s'], cycle_seconds,
                                    row['most_in_flight'], max_in_flight,
                                    row['broker_msgs_per_s']))
    worst = max(rows, key=lambda row: row['cycle_ratio'])
    ratios = {'worst cycle time / cycle_seconds (at %d)' % worst['services']:
              worst['cycle_ratio']}
    for row in rows:
        ratios['cycle time / cycle_seconds at %d' % row['services']] = (
            row['cycle_ratio'])
        if 'broker_ratio' in row:
            ratios['broker msgs/s / measured echo msgs/s at %d'
                   % row['services']] = row['broker_ratio']
    return {
        'title': 'Coverage at the default rate',
        'goal': 'every service probed once per cycle_seconds (%gs)'
                % cycle_seconds,
        'met': all(row['met'] for row in rows),
        'goals': {'cycle <= %gs at %d' % (cycle_seconds, row['services']):
                  row['met'] for row in rows},
        'ratios': ratios,
        'figures': {
            'cycle_seconds': cycle_seconds, 'max_in_flight': max_in_flight,
            'sleep_s': sleep, 'probe_interval_s': probe_interval,
            'probe_round_trip_s': round_trip,
            'round_trip_from': ('benchmark 2 (serial probe median)'
                                if 'probe_round_trip_s' in measured
                                else 'assumed (benchmark 2 not run)'),
            'measured_echoes_per_s': echoes_per_s,
            'measured_prober_cpu_us_per_probe': prober_cpu_us,
        },
        'table': rows,
        'repeats': 'deterministic simulation: run once',
    }
