"""Benchmark 6: prober capacity, per core and with 1, 2 and 3 probers.

K probed services (bench_rpc.Services, probed.py processes) and three
probers, each a process of its own (prober_process.py: what nova-inflight
runs, as in benchmark 1), over the real RabbitMQ. For P = 1, 2 and 3, the
first P probers are started together, each on its own share of the K
services (disjoint shares, dealt round robin: how the shares are made does
not change the throughput, and a hash ring over a handful of services
would deal them unevenly), each with at most `window` messages out; the
aggregate is timed from the first send of any of them to the last result
any of them accounted for (CLOCK_MONOTONIC, the same in every process).

The baseline is the bare echo of benchmark 1, sent by the same P processes
to the same shares. Per core: messages per CPU second of the prober process
(user + system, all its threads), for probes and for echoes.

On a machine with fewer CPUs than processes busy (the probers, the K
services and RabbitMQ), more probers cannot add throughput: the summary
says how many CPUs there were.
"""

import json
import os
import statistics
import uuid

import bench_rpc

HERE = os.path.dirname(os.path.abspath(__file__))
PROBER = os.path.join(HERE, 'prober_process.py')
PROBERS = (1, 2, 3)


class ProberProcess(bench_rpc.Child):
    """One prober_process.py."""

    def __init__(self, broker_url, tag, host, workdir):
        super().__init__([PROBER, broker_url, tag, host, workdir], host,
                         os.path.join(workdir, '%s.log' % host))

    def start_run(self, kind, count, window, hosts):
        self._say('run %s %d %d %s' % (kind, count, window, ','.join(hosts)))

    def result(self, timeout=180.0):
        word, figures = self._line(timeout)
        if word != 'DONE':
            raise RuntimeError('%s said %r' % (self.name, word))
        return json.loads(figures)


def shares(hosts, probers):
    """Disjoint shares of `hosts` for `probers` probers, round robin."""
    return [hosts[i::probers] for i in range(probers)]


def together(probers, kind, count, window, hosts):
    """Each of `probers` sends `count` of `kind` to its share of `hosts`,
    all at once; the aggregate and each one's figures."""
    for prober, share in zip(probers, shares(hosts, len(probers))):
        prober.start_run(kind, count, window, share)
    each = [prober.result() for prober in probers]
    first = min(e['started_at'] for e in each)
    last = max(e['last_at'] for e in each)
    return {'count': sum(e['count'] for e in each), 'seconds': last - first,
            'prober_cpu_s': sum(e['prober_cpu_s'] for e in each),
            'each_per_s': [e['count'] / e['seconds'] for e in each]}


def merge(parts):
    """One figure from a repeat's two legs: totals over totals."""
    count = sum(p['count'] for p in parts)
    cpu = sum(p['prober_cpu_s'] for p in parts)
    return {'per_s': count / sum(p['seconds'] for p in parts),
            'count': count,
            'prober_cpu_us': cpu / count * 1e6,
            'per_core_s': count / cpu,
            'each_per_s': [statistics.mean(rates) for rates in
                           zip(*(p['each_per_s'] for p in parts))]}


def run(broker_url, repeats, services, window, count, workdir,
        mode='threading', log=print, endpoint='mixin'):
    """Benchmark 6. `count`: messages of each kind per repeat and per P,
    shared among the P probers; `workdir`: for the configs and logs."""
    tag = uuid.uuid4().hex[:10]
    fleet = bench_rpc.Services(broker_url, tag, services, mode, workdir,
                               endpoint, idle_pair=False)
    probers = []
    try:
        fleet.start()
        probers = [ProberProcess(broker_url, tag, 'prober%d.%s' % (i, tag),
                                 workdir) for i in range(max(PROBERS))]
        fleet.wait_ready()
        for prober in probers:
            prober.wait_ready()
        log('  %d services and %d probers up; warming up'
            % (services, len(probers)))
        # Every prober learns every service (the method book) and warms its
        # connections, all at once.
        for kind in ('echo', 'probe'):
            for prober in probers:
                prober.start_run(kind, max(window * 4, 2 * services), window,
                                 fleet.hosts)
            for prober in probers:
                prober.result()
        reps = []
        for r in range(repeats):
            rep = {}
            for p in PROBERS:
                # A B B A, half the messages each, A alternating: as in
                # benchmark 1.
                a, b = ('echo', 'probe') if (r + p) % 2 == 0 else (
                    'probe', 'echo')
                parts = {a: [], b: []}
                each = max(1, count // (2 * p))
                for kind in (a, b, b, a):
                    parts[kind].append(together(probers[:p], kind, each,
                                                window, fleet.hosts))
                rep[p] = {kind: merge(legs) for kind, legs in parts.items()}
            rep['load_average'] = os.getloadavg()[0]
            reps.append(rep)
            log('  repeat %d/%d: %s' % (r + 1, repeats, '; '.join(
                '%d prober%s %.0f probes/s vs %.0f echoes/s' % (
                    p, '' if p == 1 else 's', rep[p]['probe']['per_s'],
                    rep[p]['echo']['per_s']) for p in PROBERS)))
    finally:
        for prober in probers:
            prober.close()
        for prober in probers:
            prober.stop()
        bench_rpc.delete_queues(broker_url, None, [
            bench_rpc.reply_queue_of(prober.name) for prober in probers])
        fleet.stop()
    return summarise(reps, services, window, count,
                     fleet.services[0].mode if fleet.services else mode)


def summarise(reps, services, window, count, mode):
    def med(p, kind, field):
        return statistics.median(r[p][kind][field] for r in reps)

    def med_ratio(p, field):
        return statistics.median(r[p]['probe'][field] / r[p]['echo'][field]
                                 for r in reps)

    cpus = os.cpu_count()
    ratios = {'worst of probes/s / echoes/s at 1, 2, 3 probers': min(
        med_ratio(p, 'per_s') for p in PROBERS)}
    ratios['probes per prober CPU s / echoes per prober CPU s'] = (
        med_ratio(1, 'per_core_s'))
    figures = {
        'cpus': cpus,
        'probes_per_s_per_prober_core': med(1, 'probe', 'per_core_s'),
        'echoes_per_s_per_prober_core': med(1, 'echo', 'per_core_s'),
        'prober_cpu_us_per_probe': med(1, 'probe', 'prober_cpu_us'),
    }
    for p in PROBERS:
        ratios['probes/s / echoes/s at %d' % p] = med_ratio(p, 'per_s')
        figures['probes_per_s_%d_probers' % p] = med(p, 'probe', 'per_s')
        figures['echoes_per_s_%d_echoers' % p] = med(p, 'echo', 'per_s')
        figures['probes_per_s_per_prober_core_%d_probers' % p] = med(
            p, 'probe', 'per_core_s')
    for p in PROBERS[1:]:
        ratios['probes/s at %d / at 1' % p] = statistics.median(
            r[p]['probe']['per_s'] / r[1]['probe']['per_s'] for r in reps)
        ratios['echoes/s at %d / at 1' % p] = statistics.median(
            r[p]['echo']['per_s'] / r[1]['echo']['per_s'] for r in reps)
    met = {'probes/s >= 0.9 x echoes/s at %d' % p:
           ratios['probes/s / echoes/s at %d' % p] >= 0.9 for p in PROBERS}
    return {
        'title': 'Prober capacity: per core, and 1, 2, 3 probers',
        'goal': 'aggregate probes/s >= 0.9 x echoes/s of as many echoing '
                'processes, at 1, 2 and 3 probers',
        'met': all(met.values()),
        'goals': met,
        'ratios': ratios,
        'figures': figures,
        'note': 'This machine has %d CPUs for the probers, the %d probed '
                'services and RabbitMQ together: %s' % (
                    cpus, services,
                    '3 probers cannot scale past %d and the figures at 3 '
                    'say what sharing the CPUs costs, not what a third '
                    'prober on a machine of its own adds.' % cpus
                    if cpus < max(PROBERS) else
                    'the probers may still share CPUs with the services '
                    'and the broker.'),
        'setup': {'services': services, 'service_mode': mode,
                  'window': window, 'messages_per_repeat': count,
                  'probers': list(PROBERS)},
        'repeats': [{'%d_probers' % p: r[p] for p in PROBERS} |
                    {'load_average': r['load_average']} for r in reps],
    }
