"""bin/grafana-cells: the dashboard and alert rules for a cloud with cells
are the ones without, with the cell node in every path and every name."""

import importlib.machinery
import importlib.util
import json
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'bin' / 'grafana-cells'
GRAFANA = ROOT / 'etc' / 'grafana'


def _script():
    loader = importlib.machinery.SourceFileLoader('grafana_cells',
                                                  str(SCRIPT))
    module = importlib.util.module_from_spec(
        importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


cells = _script()


def test_the_committed_files_are_what_bin_grafana_cells_makes(tmp_path):
    """README's `bin/grafana-cells`, on a copy of etc/grafana's files."""
    for name in (cells.DASHBOARD, cells.ALERTS):
        shutil.copy(GRAFANA / name, tmp_path / name)
    done = subprocess.run([str(SCRIPT), str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    made = [cells.CELLS_DASHBOARD, cells.CELLS_ALERTS]
    assert done.stdout.splitlines() == ['wrote %s' % (tmp_path / name)
                                        for name in made]
    for name in made:
        assert (tmp_path / name).read_text() == (GRAFANA / name).read_text(), (
            'etc/grafana/%s is not what bin/grafana-cells makes now: run it'
            % name)


def _panels(dashboard):
    return [(p['id'], p['type'], p['title'], len(p.get('targets', ())))
            for p in dashboard['panels']]


def test_the_same_panels_and_rules_with_their_own_uids():
    plain = json.loads((GRAFANA / cells.DASHBOARD).read_text())
    made = json.loads((GRAFANA / cells.CELLS_DASHBOARD).read_text())
    assert _panels(made) == _panels(plain)
    assert made['uid'] != plain['uid'] and made['title'] != plain['title']
    names = [v['name'] for v in made['templating']['list']]
    assert names == ['datasource', 'prefix', 'cell', 'topic', 'host']
    plain_rules, made_rules = (
        [rule for group in yaml.safe_load((GRAFANA / name).read_text())[
            'groups'] for rule in group['rules']]
        for name in (cells.ALERTS, cells.CELLS_ALERTS))
    assert [r['panelId'] for r in made_rules] == [
        r['panelId'] for r in plain_rules]
    assert not {r['uid'] for r in made_rules} & {r['uid']
                                                  for r in plain_rules}
    assert {r['dashboardUid'] for r in made_rules} == {made['uid']}


DASHBOARD = cells.Cells('$prefix', '$cell')
ALERTS = cells.Cells('inflight', '*')


@pytest.mark.parametrize('target, expected', [
    # A gauge: topic at node 3, cell named before it, the leaf one on.
    ('aliasByNode(stats.gauges.$prefix.$topic.$host.last.{a,b}, 3, 4, 6)',
     'aliasByNode(stats.gauges.$prefix.$cell.$topic.$host.last.{a,b}, '
     '3, 4, 5, 7)'),
    # scale's 2 is a factor, not a node; groupByNodes' 'sum' is kept.
    ("groupByNodes(group(stats.gauges.$prefix.$topic.$host.m.a, "
     "scale(stats.gauges.$prefix.$topic.$host.m.b, 2)), 'sum', 3, 4)",
     "groupByNodes(group(stats.gauges.$prefix.$cell.$topic.$host.m.a, "
     "scale(stats.gauges.$prefix.$cell.$topic.$host.m.b, 2)), 'sum', "
     "3, 4, 5)"),
    # Counters: topic at node 2; asPercent's nodes match by cell too.
    ('aliasByNode(asPercent(movingSum(stats_counts.$prefix.$topic.$host.lost,'
     ' "10min"), movingSum(stats_counts.$prefix.$topic.$host.sent, "10min"),'
     ' 2, 3), 2, 3)',
     'aliasByNode(asPercent(movingSum(stats_counts.$prefix.$cell.$topic.'
     '$host.lost, "10min"), movingSum(stats_counts.$prefix.$cell.$topic.'
     '$host.sent, "10min"), 2, 3, 4), 2, 3, 4)'),
    # Nodes before the topic, and from the end, stay.
    ('aliasByNode(stats.gauges.$prefix.$topic.$host.deaf, 1, 4, -1)',
     'aliasByNode(stats.gauges.$prefix.$cell.$topic.$host.deaf, 1, 5, -1)'),
    ("alias(sumSeries(stats.gauges.$prefix.$topic.$host.deaf), 'deaf')",
     "alias(sumSeries(stats.gauges.$prefix.$cell.$topic.$host.deaf), "
     "'deaf')"),
])
def test_dashboard_targets(target, expected):
    assert DASHBOARD.target(target) == expected


def test_alert_targets_spell_out_the_prefix():
    assert ALERTS.target('aliasByNode(stats.gauges.inflight.*.*.deaf, 3, 4)') \
        == 'aliasByNode(stats.gauges.inflight.*.*.*.deaf, 3, 4, 5)'


@pytest.mark.parametrize('target, error', [
    ('highestMax(stats.gauges.$prefix.$topic.$host.deaf, 3)',
     'no rule for highestMax()'),
    ('aliasByNode(stats.gauges.other.$topic.$host.deaf, 3, 4)',
     'has no prefix node $prefix'),
    ('aliasByNode(group(stats.gauges.$prefix.$topic.$host.deaf, '
     'stats_counts.$prefix.$topic.$host.sent), 3, 4)',
     'topic at nodes [2, 3]'),
    ('aliasByNode(stats.gauges.$prefix.$topic.$host.deaf, 3, 4',
     'unexpected'),
])
def test_what_it_has_no_rule_for_is_an_error(target, error):
    with pytest.raises(cells.Error, match=re.escape(error)):
        DASHBOARD.target(target)


def test_an_error_is_one_line_and_writes_nothing(tmp_path):
    (tmp_path / cells.DASHBOARD).write_text(
        (GRAFANA / cells.DASHBOARD).read_text().replace(
            'aliasByNode(stats.gauges.$prefix.$topic.$host.deaf',
            'highestMax(stats.gauges.$prefix.$topic.$host.deaf'))
    shutil.copy(GRAFANA / cells.ALERTS, tmp_path / cells.ALERTS)
    done = subprocess.run([str(SCRIPT), str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == ('grafana-cells: no rule for highestMax(): does it '
                           'take node numbers?\n')
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [cells.DASHBOARD, cells.ALERTS])
