"""The Grafana dashboard draws lines from real statsd, carbon and graphite-web.

One run of `bin/dashboard-pictures` (graphite_dashboard.py): the real
daemon probes the small cloud (small_cloud.py) for RUN_SECONDS, each service
once every 6 statsd flushes as a 60 s cycle is on a 10 s flush, time scaled
down by 5 (statsd flushes every 2 s, carbon keeps 2s:6h,12s:7d,2m:5y; see
graphite.py). Every target of every panel, and of the alert rules made for
the dashboard, is asked of graphite-web at the dashboard's default range
and at 3 days (carbon's coarser archive, for the rolling windows' look back
too), and must draw a line; the pictures of the panels must be drawn. The
table of target -> points at both ranges is printed and written to
points.txt in the test's folder. Quick tests check which alert rules are
asked, how targets are asked and their points counted.
"""

import json
import struct
import subprocess

import graphite_dashboard
import readme
import servers

LINE = 'bin/dashboard-pictures docs/dashboard'
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
SMALLEST_PNG = 5000     # bytes: a titled, gridded, legended picture


def png_size(data):
    """(width, height) from a PNG's IHDR chunk."""
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b'IHDR', \
        data[:32]
    return struct.unpack('>II', data[16:24])


def test_every_target_of_the_dashboard_draws_a_line_from_real_graphite(
        graphite_install, tmp_path):
    servers.require('RabbitMQ', servers.BROKER, 'INFLIGHT_REQUIRE_BROKER')
    assert readme.shown(LINE) is None
    pictures = tmp_path / 'pictures'
    points = tmp_path / 'points.json'
    done = subprocess.run(
        readme.argv(LINE, **{'docs/dashboard': str(pictures)}) +
        ['--points', str(points)], capture_output=True, text=True,
        timeout=graphite_dashboard.RUN_SECONDS + 300, cwd=readme.ROOT)
    assert done.returncode == 0, done.stderr[-5000:]
    (tmp_path / 'points.txt').write_text(done.stdout)
    print(done.stderr + done.stdout)
    counted = json.loads(points.read_text())

    # A picture of each graph panel that had data, and only of those
    # (tables and state timelines are Grafana's to draw, not graphite's).
    graphs = {panel['title'] for panel in json.loads(
        graphite_dashboard.DASHBOARD.read_text())['panels']
        if panel.get('type') in graphite_dashboard.DRAWN}
    with_data = {graphite_dashboard.slug(c['panel']) + '.png'
                 for c in counted if c['panel'] in graphs and
                 any(s['points'] for s in c['series'])}
    made = {path.name for path in pictures.glob('*.png')}
    assert made == with_data
    for name in made:
        data = (pictures / name).read_bytes()
        assert png_size(data) == (graphite_dashboard.WIDTH,
                                  graphite_dashboard.HEIGHT), name
        assert len(data) >= SMALLEST_PNG, (name, len(data))

    short = sum(not c['draws'] for c in counted)
    assert not short, (
        '%d of %d targets draw no line (points/slots of the thinnest '
        'series, from its first point on):\n%s'
        % (short, len(counted), done.stdout))


def test_the_alert_rules_asked_are_the_dashboards_own():
    """Not those for a cloud with cells: the small cloud has none."""
    assert graphite_dashboard.alert_files(
        graphite_dashboard.load_dashboard()) == [
            graphite_dashboard.GRAFANA / 'inflight-alerts.yaml']


DASHBOARD = {'templating': {'list': [
    {'name': 'datasource', 'type': 'datasource', 'query': 'graphite'},
    {'name': 'prefix', 'type': 'custom', 'query': 'inflight',
     'current': {'value': 'inflight'}},
    {'name': 'topic', 'type': 'query', 'includeAll': True, 'allValue': '*'},
    {'name': 'host', 'type': 'query', 'includeAll': True},
    {'name': 'hosts', 'type': 'custom', 'current': {'value': ['a', 'b']}},
]}}


def test_targets_are_asked_as_grafana_would_with_everything_selected():
    values = graphite_dashboard.variables(DASHBOARD, prefix='p')
    assert values == {'prefix': 'p', 'topic': '*', 'host': '*',
                      'hosts': 'a'}
    resolve = graphite_dashboard.resolve
    assert resolve('stats.$prefix.${topic}.[[host]].$hosts.x', values,
                   6 * 3600) == 'stats.p.*.*.a.x'
    # $__interval: the range over a panel MAX_DATA_POINTS wide, rounded as
    # Grafana does (6 h -> 20 s), then scaled like every interval written
    # in a target: 20 s / 5 and 1 min / 5.
    assert resolve("summarize($prefix.x, '$__interval', 'sum')", values,
                   6 * 3600) == "summarize(p.x, '4s', 'sum')"
    assert resolve("summarize(x, '1min', 'max', false)", values, 60) == \
        "summarize(x, '12s', 'max', false)"
    assert resolve("consolidateBy(x, 'max')", values, 60) == \
        "consolidateBy(x, 'max')"
    assert graphite_dashboard.graphite_from('now-6h') == '-21600s'


def test_a_line_is_enough_points_from_the_first_on():
    count, enough = graphite_dashboard.count, graphite_dashboard.enough
    sparse = [None, None] + [1.0, None, None, None, None, None] * 8
    assert count(sparse) == (8, 48) and not enough(*count(sparse))
    every = [None] * 5 + [1.0] * 9 + [None]
    assert count(every) == (9, 10) and enough(*count(every))
    assert count([None, 2.0, 3.0, 4.0]) == (3, 3)
    assert not enough(3, 3)             # fewer than MIN_POINTS
    assert count([None, None]) == (0, 0)
