"""The markdown summary of one run of benchmarks/run (latest.md)."""

NUMBERS = {1: 'throughput', 2: 'latency', 3: 'service_cpu', 4: 'ring',
           5: 'coverage', 6: 'capacity', 7: 'scale'}


def _num(value, digits=3):
    if value is None:
        return 'n/a'
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    if isinstance(value, int):
        return '{:,}'.format(value)
    if abs(value) >= 100:
        return '{:,.0f}'.format(value)
    if abs(value) >= 10:
        return '%.1f' % value
    return ('%%.%dg' % digits) % value


def _met(bench):
    met = bench.get('met')
    if met is None:
        return 'n/a'
    return 'yes' if met else '**NO**'


def _headline(name, bench):
    f = bench['figures']
    if name == 'throughput':
        return '%s probes/s vs %s echoes/s' % (_num(f['probes_per_s']),
                                              _num(f['echoes_per_s']))
    if name == 'latency':
        return '%+.3f ms (probe %.3f ms vs echo %.3f ms)' % (
            f['added_ms'], f['probe_median_ms'], f['echo_median_ms'])
    if name == 'service_cpu':
        return '%s us per probe vs %s us per echo (%+.0f us)' % (
            _num(f['service_cpu_us_per_probe']),
            _num(f['service_cpu_us_per_echo']),
            f['added_cpu_us_per_probe'])
    if name == 'ring':
        return ('read + refresh %.3f s, %.1f MB held, %.2f us per probe '
                'scheduled' % (f['refresh_total_s'],
                               f['memory_ring_held_mb'], f['scheduling_us']))
    if name == 'coverage':
        return ', '.join('%s: %.1f s' % (_num(row['services']),
                                         row['cycle_s'])
                         for row in bench['table']) + ' per cycle'
    if name == 'capacity':
        return ('%s probes/s a prober core (%s echoes/s); %s probes/s with '
                '1, 2, 3 probers vs %s echoes/s; %d CPUs' % (
                    _num(f['probes_per_s_per_prober_core']),
                    _num(f['echoes_per_s_per_prober_core']),
                    ' / '.join(_num(f['probes_per_s_%d_probers' % p])
                               for p in (1, 2, 3)),
                    ' / '.join(_num(f['echoes_per_s_%d_echoers' % p])
                               for p in (1, 2, 3)), f['cpus']))
    if name == 'scale':
        least = f['least_probers']
        return ('least N: %s; ' % ('none up to 1000' if least is None
                                   else least) +
                ', '.join('%d: cycle %s s, %s cores' % (
                    row['probers'], _num(row['cycle_s_max']),
                    _num(row['cores_max'])) for row in bench['table']) +
                ' (busiest prober)')
    return ''


def _main_ratio(bench):
    name, value = next(iter(bench['ratios'].items()))
    return '%s (%s)' % (_num(value), name)


def _figures(bench):
    lines = ['| figure | median |', '| --- | ---: |']
    for key, value in bench['figures'].items():
        if isinstance(value, (int, float)) or value is None:
            lines.append('| %s | %s |' % (key, _num(value, 4)))
        else:
            lines.append('| %s | %s |' % (key, value))
    lines += ['', '| ratio | median |', '| --- | ---: |']
    lines += ['| %s | %s |' % (key, _num(value, 4))
              for key, value in bench['ratios'].items()]
    return lines


def _coverage_table(bench):
    lines = [
        '| services | needed probes/s | probes out needed | most out (cap %s)'
        ' | cycle (s) | cycle / %gs | broker msgs/s added | vs measured echo'
        ' msgs/s | prober core share | met |'
        % (_num(bench['figures']['max_in_flight']),
           bench['figures']['cycle_seconds']),
        '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
        ' --- |']
    for row in bench['table']:
        lines.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            _num(row['services']), _num(row['needed_probes_per_s']),
            _num(row['needed_in_flight']), _num(row['most_in_flight']),
            _num(row['cycle_s']), _num(row['cycle_ratio']),
            _num(row['broker_msgs_per_s']), _num(row.get('broker_ratio')),
            _num(row.get('prober_core_share')),
            'yes' if row['met'] else '**NO**'))
    lines += ['', 'At the rate the cycle needs (not the rate the cap lets '
              'through), 100k services would add %s broker msgs/s (%s x the '
              'measured echo msgs/s) and need %s of a core in the prober.'
              % (_num(bench['table'][-1]['broker_msgs_per_s_needed']),
                 _num(bench['table'][-1].get('broker_ratio_needed')),
                 _num(bench['table'][-1].get('prober_core_share_needed')))]
    return lines


def _capacity_table(bench):
    f = bench['figures']
    r = bench['ratios']
    lines = ['| probers | probes/s | echoes/s (as many echoing) | probes/s / '
             'echoes/s | probes/s / at 1 | probes a prober CPU s |',
             '| ---: | ---: | ---: | ---: | ---: | ---: |']
    for p in (1, 2, 3):
        lines.append('| %d | %s | %s | %s | %s | %s |' % (
            p, _num(f['probes_per_s_%d_probers' % p]),
            _num(f['echoes_per_s_%d_echoers' % p]),
            _num(r['probes/s / echoes/s at %d' % p]),
            _num(r.get('probes/s at %d / at 1' % p, 1.0)),
            _num(f['probes_per_s_per_prober_core_%d_probers' % p])))
    return lines + ['', bench['note']]


def _scale_table(bench):
    f = bench['figures']
    lines = [
        '| probers | share min-max | largest / mean | hashed (s) | cycle '
        '(s, busiest) | most out | probes/s a prober, max | cores, busiest'
        ' | cores, all | ring MB, busiest | cell broker msgs/s, over the '
        'cycle, min-max | busiest cell, busiest second | Redis commands/s a '
        'prober | Redis commands/s, all | met |',
        '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
        ' ---: | ---: | ---: | ---: | ---: | --- |']
    for row in bench['table']:
        lines.append(
            '| %s | %s-%s | %s | %s | %s | %s | %s | %s | %s | %s | %s-%s |'
            ' %s | %s | %s | %s |' % (
                _num(row['probers']), _num(row['share_min']),
                _num(row['share_max']), _num(row['share_max_over_mean']),
                _num(row['hash_s']), _num(row['cycle_s_max']),
                _num(row['most_in_flight_max']),
                _num(row['probes_per_s_max']), _num(row['cores_max']),
                _num(row['cores_total']), _num(row['ring_mb_max']),
                _num(row['cell_msgs_per_s_min']),
                _num(row['cell_msgs_per_s_max']),
                _num(row['cell_msgs_per_s_busiest_second']),
                _num(row['redis_commands_per_s_per_prober']),
                _num(row['redis_commands_per_s_total']),
                'yes' if row['met'] else '**NO**'))
    lines += ['', 'The least N that probes %s services once per %g s, '
              'each prober within one core and max_in_flight %s: **%s** '
              '(by %s). Cores: probes/s x %s us of prober CPU per probe. '
              'Each cell\'s broker carries 2 messages a probe; at the '
              'cycle\'s rate the busiest cell needs %s msgs/s on average; '
              'each prober walks its share in ring order (a hash of the '
              'key), so the cells come mixed (the busiest second of the '
              'busiest cell, the probers started together, is in the '
              'table). Redis commands: '
              '%s per heartbeat (every %g s, tooz\'s heart) and %s '
              'per check of the group (every %g s), counted on a Redis of this '
              'run\'s own.' % (
                  _num(f['services']), f['cycle_seconds'],
                  _num(f['max_in_flight']),
                  'none up to 1000' if f['least_probers'] is None
                  else f['least_probers'], f['least_probers_from'],
                  _num(f['measured_prober_cpu_us_per_probe']),
                  _num(f['cell_msgs_per_s_needed_max']),
                  _num(bench['table'][0]['redis_commands_per_heartbeat']),
                  f['heartbeat_interval_s'],
                  _num(bench['table'][0]['redis_commands_per_check']),
                  f['check_interval_s'])]
    return lines


def _per_repeat(name, bench):
    field, kind = {'throughput': ('per_s', 'pipelined'),
                   'latency': ('median_ms', 'serial'),
                   'service_cpu': ('service_cpu_us', 'pipelined')}[name]
    return [r['probe_' + kind][field] / r['echo_' + kind][field]
            for r in bench['repeats']]


def markdown(results, json_name):
    benchmarks = results['benchmarks']
    m = results['machine']
    settings = results['settings']
    lines = ['# inflight benchmarks', '']
    if results['smoke']:
        lines += ['**Smoke run**: everything tiny, to check that the '
                  'benchmarks run; the figures mean nothing.', '']
    lines += [
        'Run of %s (UTC), %.0f s; %d repeats: every figure is the median '
        'over the repeats, every ratio the median of the per-repeat ratios '
        'against a baseline measured in the same run. Raw figures: '
        '`%s`.' % (results['started_at'], results['seconds'],
                   settings['repeats'], json_name),
        '',
        'Machine: %s CPUs, %s, Python %s, oslo.messaging %s, %s; load '
        'average %s at the start, %s at the end (other work on the machine '
        'shows here, and so does this run\'s own).' % (
            m['cpus'], m['platform'], m['python'],
            m['packages'].get('oslo.messaging'), m.get('rabbitmq'),
            ' '.join('%.2f' % x for x in m['load_average_at_start']),
            ' '.join('%.2f' % x for x in m['load_average_at_end'])),
        '',
        '| # | benchmark | goal | result | ratio to baseline | met |',
        '| --- | --- | --- | --- | --- | --- |',
    ]
    for number, name in NUMBERS.items():
        bench = benchmarks.get(name)
        if bench is None:
            continue
        if 'error' in bench:
            lines.append('| %d | %s | | failed: see the JSON | | **ERROR** |'
                         % (number, name))
            continue
        lines.append('| %d | %s | %s | %s | %s | %s |' % (
            number, bench['title'], bench['goal'], _headline(name, bench),
            _main_ratio(bench), _met(bench)))
    for number, name in NUMBERS.items():
        bench = benchmarks.get(name)
        if bench is None or 'error' in bench:
            continue
        lines += ['', '## %d. %s' % (number, bench['title']), '',
                  'Goal: %s. Met: %s.' % (bench['goal'], _met(bench))]
        if 'goals' in bench:
            lines.append('(%s)' % '; '.join(
                '%s: %s' % (k, 'yes' if v else 'no')
                for k, v in bench['goals'].items()))
        if name == 'capacity':
            s = bench['setup']
            lines += ['', 'Setup: %d probed services (%s) in processes of '
                      'their own, shared among 1, 2 and 3 probers (each a '
                      'process), %d messages out at most a prober, %d '
                      'messages of each kind per repeat and per number of '
                      'probers.' % (s['services'], s['service_mode'],
                                    s['window'], s['messages_per_repeat'])]
        elif 'setup' in bench:
            s = bench['setup']
            lines += ['', 'Setup: %d probed services (%s) in processes of '
                      'their own, %d messages out at most, %d messages per '
                      'pipelined run, %d serial round trips of each kind, '
                      'probe and echo in turn.' % (
                          s['services'], s['service_mode'], s['window'],
                          s['messages_per_repeat'], s['serial_per_repeat'])]
        if name in ('throughput', 'latency', 'service_cpu'):
            lines += ['', 'Per repeat, inflight / baseline: %s.' % ', '.join(
                _num(x) for x in _per_repeat(name, bench))]
        if name == 'latency':
            lines[-1] = lines[-1][:-1] + '; probe - echo (ms): %s.' % (
                ', '.join('%+.3f' % (r['probe_serial']['median_ms'] -
                                     r['echo_serial']['median_ms'])
                          for r in bench['repeats']))
        lines.append('')
        if name == 'coverage':
            lines += _coverage_table(bench) + ['']
        if name == 'capacity':
            lines += _capacity_table(bench) + ['']
        if name == 'scale':
            lines += _scale_table(bench) + ['']
        lines += _figures(bench)
    lines.append('')
    return '\n'.join(lines)
