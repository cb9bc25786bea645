"""The Grafana dashboard against a real graphite: what each of its targets
draws from a small cloud probed by the real daemon, and pictures of its panels.

    bin/dashboard-pictures [DIR] [--seconds N] [--points FILE]

starts the statsd -> carbon -> graphite-web pipeline (graphite.py), the
small cloud (small_cloud.py) and nova-inflight, runs them N seconds, then
asks graphite-web's render API for every target of every panel of
etc/grafana/inflight.json and every graphite query of the alert rules of
etc/grafana/*alert* (YAML) made for it (by its uid: not the rules for a
cloud with cells, whose series the small cloud does not send), each at the
dashboard's default range (its time.from) and at LONG_RANGE, which reads
carbon's coarser archive; prints, per target, how many points it has; and
draws each panel whose targets have data, one PNG in DIR (default
docs/dashboard) per panel, named after its title.
--points writes what was counted as JSON.

Targets are read from the JSON as they are: Grafana's variables become
what the dashboard shows with everything selected ($prefix the prefix,
$topic and $host `*`), `$__interval` and `$__range` what Grafana would put
(the panel MAX_DATA_POINTS wide), and every interval written in a target
('1min') is divided by graphite.TIME_SCALE, as the flush and the archives
are. Points are counted at the archive's own resolution, with no
consolidation to a width: Grafana's depends on the panel's width in pixels,
which does not scale with time.

A target draws a line when it yields at least one series and each of its
series has, from its first point to the end, at least MIN_POINTS points
and no more nulls than points: the panels draw lines between neighbouring
points only (spanNulls false, no points shown), so a series with a point
one slot in six shows nothing.
"""

import argparse
import collections
import json
import pathlib
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid

from harness import Processes
import graphite
import servers
import small_cloud

ROOT = pathlib.Path(__file__).resolve().parents[2]
GRAFANA = ROOT / 'etc' / 'grafana'
DASHBOARD = GRAFANA / 'inflight.json'
PICTURES = ROOT / 'docs' / 'dashboard'
# Longer than the finest archive holds, so it reads the next (1 min in
# production, where carbon's xFilesFactor bites), and short enough that a
# rolling window's look back (movingSum) stays in that archive too.
LONG_RANGE = 'now-3d'
PREFIX = 'inflight'
RUN_SECONDS = 80
MIN_POINTS = 4
MAX_DATA_POINTS = 1000       # a panel's width in pixels, for $__interval
DRAWN = ('timeseries', 'stat', 'graph')
WIDTH, HEIGHT = 900, 360
_AXIS_UNITS = ('ms', 's')    # Grafana units that read as units on an axis

# A target of the dashboard or of an alert rule, before its variables are
# replaced: `where` names the panel or rule and the refId, `panel` is the
# panel's title (None for an alert rule).
Query = collections.namedtuple('Query', 'where target panel')
# What one range of one target gave: series [(name, points, slots, step)].
Counted = collections.namedtuple('Counted', 'where target panel start series')

_UNITS = {'s': 1, 'sec': 1, 'secs': 1, 'second': 1, 'seconds': 1,
          'm': 60, 'min': 60, 'mins': 60, 'minute': 60, 'minutes': 60,
          'h': 3600, 'hour': 3600, 'hours': 3600,
          'd': 86400, 'day': 86400, 'days': 86400,
          'w': 604800, 'week': 604800, 'weeks': 604800}
_INTERVAL = re.compile(r"""(['"])(\d+)(%s)\1""" % '|'.join(
    sorted(_UNITS, key=len, reverse=True)))
_GRAFANA_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800,
                  'M': 2592000, 'y': 31536000}
# Grafana rounds $__interval to one of these (seconds).
_NICE = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600,
         7200, 10800, 21600, 43200, 86400)


def load_dashboard(path=DASHBOARD):
    return json.loads(pathlib.Path(path).read_text())


def alert_files(dashboard, folder=GRAFANA):
    """The alert files in `folder` whose rules name `dashboard` by its uid."""
    import yaml
    return sorted(
        p for pattern in ('*alert*.yaml', '*alert*.yml')
        for p in pathlib.Path(folder).glob(pattern)
        if any(rule.get('dashboardUid') == dashboard.get('uid')
               for group in yaml.safe_load(p.read_text()).get('groups', [])
               for rule in group.get('rules', [])))


def panels(dashboard):
    """Every panel, those in rows included."""
    def walk(items):
        for panel in items:
            yield panel
            yield from walk(panel.get('panels', []))
    yield from walk(dashboard.get('panels', []))
    for row in dashboard.get('rows', []):          # before schema 16
        yield from walk(row.get('panels', []))


def panel_targets(panel):
    """[(refId, target)] of the panel's graphite queries that are shown."""
    return [(t.get('refId', '?'), t.get('targetFull') or t['target'])
            for t in panel.get('targets', [])
            if t.get('target') and not t.get('hide')]


def queries(dashboard, alerts=()):
    """Every Query of the dashboard's panels, then of the alert files."""
    found = [Query('panel %r %s' % (panel.get('title'), ref), target,
                   panel.get('title', ''))
             for panel in panels(dashboard)
             for ref, target in panel_targets(panel)]
    for path in alerts:
        import yaml
        found += [Query('%s: %s' % (path.name, where), target, None)
                  for where, target in _yaml_targets(
                      yaml.safe_load(path.read_text()))]
    return found


def _yaml_targets(node, where=''):
    """(where, target) of each graphite query in an alert file: any
    mapping with a `target` string (a rule's data[].model)."""
    if isinstance(node, dict):
        if isinstance(node.get('target'), str) and not node.get('hide'):
            yield (where + ' ' + str(node.get('refId', ''))).strip(), \
                node['target']
        name = node.get('title') or node.get('name') or node.get('uid')
        for key, value in node.items():
            if key != 'target':
                yield from _yaml_targets(
                    value, where if not isinstance(name, str) or
                    name in where else (where + ' ' + name).strip())
    elif isinstance(node, list):
        for item in node:
            yield from _yaml_targets(item, where)


def variables(dashboard, prefix=PREFIX):
    """{name: value} of the dashboard's variables, everything selected."""
    values = {}
    for var in dashboard.get('templating', {}).get('list', []):
        name, kind = var.get('name'), var.get('type')
        if kind == 'datasource' or not name:
            continue
        if name == 'prefix':
            values[name] = prefix
        elif var.get('includeAll') or kind == 'query':
            values[name] = var.get('allValue') or '*'
        else:
            current = var.get('current', {}).get('value', var.get('query'))
            values[name] = current[0] if isinstance(current, list) \
                else current
    return values


def grafana_seconds(text):
    """Seconds in a Grafana relative time (`now-6h`)."""
    match = re.fullmatch(r'now-(\d+)([smhdwMy])', text)
    assert match, 'not a relative time: %r' % text
    return int(match.group(1)) * _GRAFANA_UNITS[match.group(2)]


def graphite_from(text):
    """graphite-web's `from` for a Grafana relative time."""
    return '-%ds' % grafana_seconds(text)


def _interval(range_seconds):
    raw = range_seconds / MAX_DATA_POINTS
    return max([n for n in _NICE if n <= raw] or [1])


def resolve(target, values, range_seconds):
    """`target` as graphite-web is asked it: variables and macros replaced,
    intervals divided by graphite.TIME_SCALE."""
    interval = _interval(range_seconds)
    macros = {'__interval': '%ds' % interval,
              '__interval_ms': '%d' % (interval * 1000),
              '__range': '%ds' % range_seconds,
              '__range_s': '%d' % range_seconds,
              '__range_ms': '%d' % (range_seconds * 1000)}
    names = dict(values, **macros)

    def value(match):
        name = match.group(1) or match.group(2) or match.group(3)
        return names[name] if name in names else match.group(0)
    pattern = r'\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(%s)\b' % '|'.join(
        sorted(map(re.escape, names), key=len, reverse=True))
    target = re.sub(pattern, value, target)
    return _INTERVAL.sub(_scaled, target)


def _scaled(match):
    seconds = int(match.group(2)) * _UNITS[match.group(3)]
    return "%s%ds%s" % (match.group(1),
                        max(1, round(seconds / graphite.TIME_SCALE)),
                        match.group(1))


def count(values):
    """(points, slots) from the first point to the end: non-null values,
    and values in all."""
    for first, v in enumerate(values):
        if v is not None:
            tail = values[first:]
            return sum(v is not None for v in tail), len(tail)
    return 0, 0


def enough(points, slots):
    return points >= MIN_POINTS and 2 * points >= slots


def draws(counted):
    """Whether the target yields series, each of them a line."""
    return bool(counted.series) and all(
        enough(points, slots) for _, points, slots, _ in counted.series)


def check(pipeline, dashboard, alerts=(), ranges=None, prefix=PREFIX):
    """[Counted] for every query at each of `ranges` (Grafana's `now-6h`;
    by default the dashboard's time.from and LONG_RANGE)."""
    ranges = ranges or (dashboard.get('time', {}).get('from', 'now-6h'),
                        LONG_RANGE)
    values = variables(dashboard, prefix)
    results = []
    for query in queries(dashboard, alerts):
        for span in ranges:
            target = resolve(query.target, values, grafana_seconds(span))
            series = [(name, *count(points), step) for name, points, step
                      in pipeline.render(target, graphite_from(span))]
            results.append(Counted(query.where, target, query.panel, span,
                                   series))
    return results


def table(results):
    """Lines: each target, then per range: ok or FAIL, the points and
    slots of its thinnest series, how many series, the archive's step."""
    spans = list(dict.fromkeys(r.start for r in results))
    rows = collections.OrderedDict()
    for r in results:
        rows.setdefault((r.where, r.target), {})[r.start] = r
    lines = ['%-5s %-22s %-22s %s' % ('', *('at %s' % s for s in spans[:2]),
                                      'target')]
    for (where, target), by_span in rows.items():
        cells = []
        for span in spans:
            r = by_span[span]
            if not r.series:
                cells.append('FAIL no series')
                continue
            _, points, slots, step = min(r.series, key=_thinness)
            cells.append('%s %d/%d of %d @%ss' % (
                'ok' if draws(r) else 'FAIL', points, slots,
                len(r.series), step))
        lines.append('%-5s %-22s %-22s %s   (%s)' % (
            '' if all(draws(by_span[s]) for s in spans) else 'FAIL',
            *cells[:2], target, where))
    return lines


def _thinness(series):
    """Sorts the series that draw no line first, then by points per slot."""
    _, points, slots, _ = series
    return enough(points, slots), points / max(1, slots)


def as_json(results):
    return [dict(where=r.where, target=r.target, panel=r.panel,
                 range=r.start,
                 draws=draws(r),
                 series=[dict(name=n, points=p, slots=s, step=step)
                         for n, p, s, step in r.series]) for r in results]


def slug(title):
    return re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-') or 'panel'


def draw(pipeline, dashboard, folder, start, prefix=PREFIX):
    """A PNG in `folder` for each panel whose targets give data over
    `start` (graphite's `-150s`), drawn by graphite-web: [paths]."""
    values = variables(dashboard, prefix)
    seconds = -int(start.rstrip('s'))
    made = []
    for panel in panels(dashboard):
        if panel.get('type') not in DRAWN or not panel_targets(panel):
            continue
        targets = [resolve(t, values, seconds)
                   for _, t in panel_targets(panel)]
        if not any(count(points)[0] for t in targets
                   for _, points, _ in pipeline.render(t, start)):
            continue
        defaults = panel.get('fieldConfig', {}).get('defaults', {})
        options = dict(width=WIDTH, height=HEIGHT,
                       title=panel.get('title', ''), lineWidth=1.5,
                       bgcolor='white', fgcolor='black',
                       majorGridLineColor='#d0d0d0',
                       minorGridLineColor='#eeeeee')
        if defaults.get('unit') in _AXIS_UNITS:
            options['vtitle'] = defaults['unit']
        if defaults.get('custom', {}).get('axisSoftMin') == 0:
            options['yMin'] = 0
        path = pathlib.Path(folder) / ('%s.png' % slug(panel.get('title', '')))
        path.write_bytes(pipeline.render_png(targets, start, **options))
        made.append(path)
    return made


class _Vhost:
    """A RabbitMQ vhost of the run's own where rabbitmqctl can make one,
    else the default one (the exchange is the run's own either way)."""

    def __init__(self):
        self.rabbitmqctl = servers.Rabbitmqctl()
        self.name = None

    def make(self):
        if self.rabbitmqctl.usable():
            self.name = 'inflight-pictures-%s' % uuid.uuid4().hex[:12]
            self.rabbitmqctl.add_vhost(self.name)
            return servers.vhost_url(self.name)
        return servers.BROKER_URL

    def delete(self):
        if self.name:
            self.rabbitmqctl.delete_vhost(self.name)


def run(folder, seconds=RUN_SECONDS, say=print):
    """The pipeline, the small cloud and the daemon for `seconds`; then the
    targets counted and the panels drawn into `folder`: ([Counted],
    [PNG paths])."""
    started = time.monotonic()
    install = graphite.install()
    say('graphite ready in %.1f s' % (time.monotonic() - started))
    dashboard = load_dashboard()
    alerts = alert_files(dashboard)
    work = pathlib.Path(tempfile.mkdtemp(prefix='inflight-dashboard-'))
    processes = Processes(work)
    pipeline = graphite.Pipeline(install, work / 'graphite')
    vhost = _Vhost()
    cloud = None
    try:
        pipeline.start()
        cloud = small_cloud.SmallCloud(
            processes, vhost.make(), 'inflight-pictures-%s' % uuid.uuid4().hex,
            'sqlite:///%s' % (work / 'nova.sqlite')).start()
        daemon = processes.daemon(cloud.daemon_conf(
            work, pipeline.statsd_port, PREFIX))
        say('pipeline, cloud and nova-inflight up in %.1f s; running %d s'
            % (time.monotonic() - started, seconds))
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:      # the run itself: data piling up
            assert daemon.poll() is None, \
                'nova-inflight exited:\n%s' % processes.log()[-3000:]
            time.sleep(min(1.0, max(0.0, ends - time.monotonic())))
        results = check(pipeline, dashboard, alerts)
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        made = draw(pipeline, dashboard, folder, '-%ds' % (seconds + 10))
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, processes.log()[-3000:]
        say('done in %.1f s' % (time.monotonic() - started))
        return results, made
    finally:
        processes.stop_all()
        if cloud:
            cloud.stop()
        pipeline.stop()
        vhost.delete()
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='bin/dashboard-pictures',
        description='Draw the Grafana dashboard\'s panels from a real '
                    'graphite fed by nova-inflight probing a small cloud.')
    parser.add_argument('dir', nargs='?', default=str(PICTURES),
                        help='where the PNGs go (default: docs/dashboard)')
    parser.add_argument('--seconds', type=int, default=RUN_SECONDS,
                        help='how long the daemon probes before the '
                             'pictures are drawn (default: %(default)s)')
    parser.add_argument('--points', metavar='FILE',
                        help='write the points counted per target as JSON')
    args = parser.parse_args(argv)
    # Stopped, it stops what it started, and deletes its vhost.
    signal.signal(signal.SIGTERM, lambda *unused: sys.exit(1))
    try:
        socket.create_connection(servers.BROKER, timeout=2).close()
    except OSError as e:
        sys.exit('dashboard-pictures: RabbitMQ is not reachable on %s:%d '
                 '(%s)' % (*servers.BROKER, e))
    try:
        results, made = run(args.dir, args.seconds,
                            say=lambda line: print(line, file=sys.stderr))
    except graphite.Unavailable as e:
        sys.exit('dashboard-pictures: %s' % e)
    print('\n'.join(table(results)))
    if args.points:
        pathlib.Path(args.points).write_text(
            json.dumps(as_json(results), indent=1) + '\n')
    for path in made:
        print('wrote %s (%d bytes)' % (path, path.stat().st_size))


if __name__ == '__main__':
    main()
