"""etc/grafana/inflight.json and inflight-alerts.yaml ask only for series that
inflight really sends, in ways that draw at every range; so do the files for
a cloud with cells, inflight-cells.json and inflight-cells-alerts.yaml (made
from the others by bin/grafana-cells), of the series sent with cells.

The statsd names come from the real code: inflight.outputs.statsd.Metrics
sends to a real UDP socket here, for three services (one answering the
inflight endpoint, one answering pings only, one answering nothing), and the
packets are read back. They are mapped to the graphite series Etsy statsd
makes of them (legacyNamespace, percentThreshold 90), and every target of the
dashboard and of the alert rules must match some of those series. Each test
runs for both variants (`Variant`): without cells, and with the services'
keys in cells, the silent one in a cell of its own with the answering one's
topic and host (only its cell tells it apart).

What draws at every range under carbon's defaults (every archive an average,
xFilesFactor 0.3) is checked by rule here: statsd sends a timer only in the
flushes where a probe ended, so timers vanish from the coarser archives;
gauges and counters are sent on every flush. A counter's count per flush
shown as a height changes with the archive (and carbon averages it); a ratio
of two sums over the same interval, or a per-second rate averaged, does not.
"""

import collections
import json
import pathlib
import re
import socket

import pytest
import yaml

from inflight.cloud import record
from inflight.outputs import statsd as metrics
from inflight import opts
from inflight import probe
from inflight import probes
from inflight import timings

GRAFANA = pathlib.Path(__file__).resolve().parents[2] / 'etc' / 'grafana'

PREFIX = next(o.default for o in opts.statsd_opts if o.name == 'prefix')
COUNTERS = ('sent', 'received', 'lost', 'late')
PING_KIND = probes.ORDER[1]

# What statsd writes to graphite for one timer (percentThreshold 90).
TIMER_AGGREGATES = ('mean', 'median', 'upper', 'lower', 'count', 'count_ps',
                    'sum', 'std', 'upper_90', 'mean_90', 'sum_90')

# The legs with no requested sleep in them, and the round trip of a ping.
LEGS = ('to_service', 'from_service', 'queue_total', 'overhead')
WITH_SLEEP = ('round_trip', 'in_service')
QUEUE_THRESHOLD_MS = 500
LOSS_THRESHOLD_PERCENT = 5


# --- What the probe sends ---------------------------------------------------

def _lines(packet):
    """(name, kind) of each `name:value|kind[|@rate]` line of a packet."""
    for line in packet.decode('utf-8').split('\n'):
        name, value_kind = line.rsplit(':', 1)
        value, kind = value_kind.split('|')[:2]
        float(value)
        yield name, kind


def _receive(sock, expected, timeout=5.0):
    """The metrics in the packets on `sock`: at least `expected` of them."""
    received = []
    sock.settimeout(timeout)
    while len(received) < expected:
        try:
            packet = sock.recv(65535)
        except socket.timeout:
            pytest.fail('statsd received %d of %d metrics in %ss: %r'
                        % (len(received), expected, timeout, received))
        received.extend(_lines(packet))
    sock.setblocking(False)     # and whatever else was sent with them
    while True:
        try:
            packet = sock.recv(65535)
        except BlockingIOError:
            return received
        received.extend(_lines(packet))


@pytest.fixture(scope='module')
def emitted(variant):
    """(name, kind) of each metric Metrics sends for the three services."""
    answering, pinged, silent = variant.services
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    sink = metrics.Metrics('127.0.0.1', sock.getsockname()[1], PREFIX)
    try:
        sink.sent(variant.services)
        sink.received(answering, probes.ORDER[0],
                      timings.Timings(*[0.001] * len(timings.PHASES)),
                      clock_offset=-0.002,
                      state={name: 1 for name in probe.STATE})
        sink.lost([answering])
        sink.late([answering])
        sink.deaf(answering, False)
        sink.method(answering, probes.ORDER[0], probes.ORDER)
        sink.received(pinged, PING_KIND, timings.round_trip_only(0.004))
        sink.method(pinged, PING_KIND, probes.ORDER)
        sink.lost([silent])
        sink.deaf(silent, True)
        # A counter for each service sent to, then for the answering one:
        # a timer and a last.* gauge for each phase, the received counter,
        # the clock offset (two lines: a negative gauge is set from 0), a
        # gauge for each of its figures, lost, late, deaf, and a method
        # gauge for each kind; for the pinged one: the ping's timer and
        # gauge, received, the method gauges; for the silent one: lost and
        # deaf.
        return _receive(sock, len(variant.services)
                        + 2 * len(timings.PHASES) + 1 + 2
                        + len(probe.STATE) + 3 + len(probes.ORDER)
                        + 3 + len(probes.ORDER)
                        + 2)
    finally:
        sock.close()
        if sink._client is not None:    # Metrics has no close() of its own
            sink._client.close()


@pytest.fixture(scope='module')
def series(emitted):
    """The graphite series statsd makes of the emitted metrics."""
    names = set()
    for name, kind in emitted:
        if kind == 'ms':
            names.update('stats.timers.%s.%s' % (name, aggregate)
                         for aggregate in TIMER_AGGREGATES)
        elif kind == 'c':
            names.update(('stats.%s' % name, 'stats_counts.%s' % name))
        elif kind == 'g':
            names.add('stats.gauges.%s' % name)
        else:
            pytest.fail('no graphite mapping here for statsd kind %r (%s)'
                        % (kind, name))
    return names


def is_counter(name):
    return name.startswith('stats_counts.') or (
        name.startswith('stats.%s.' % PREFIX))


# --- What the dashboard and the alert rules ask for --------------------------

Call = collections.namedtuple('Call', 'name args')
Path = collections.namedtuple('Path', 'text')
Literal = collections.namedtuple('Literal', 'value')

_TOKEN = re.compile(r"""\s*(?:
      (?P<string>'[^']*'|"[^"]*")
    | (?P<open>\() | (?P<close>\)) | (?P<comma>,)
    | (?P<word>(?:[^\s(),{}'"]|\{[^{}]*\})+)
    )\s*""", re.VERBOSE)
_NUMBER = re.compile(r'-?\d+(\.\d*)?')
_BOOLEANS = {'true': True, 'false': False, 'True': True, 'False': False}


def _tokens(text):
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError('cannot read %r at %d' % (text, pos))
        yield m.lastgroup, m.group(m.lastgroup)
        pos = m.end()


def _expression(tokens, i):
    kind, text = tokens[i]
    if kind == 'string':
        return Literal(text[1:-1]), i + 1
    if kind != 'word':
        raise ValueError('unexpected %r' % text)
    if i + 1 < len(tokens) and tokens[i + 1][0] == 'open':
        args, i = [], i + 2
        if tokens[i][0] == 'close':
            return Call(text, ()), i + 1
        while True:
            arg, i = _expression(tokens, i)
            args.append(arg)
            kind, separator = tokens[i]
            i += 1
            if kind == 'close':
                return Call(text, tuple(args)), i
            if kind != 'comma':
                raise ValueError('unexpected %r' % separator)
    if _NUMBER.fullmatch(text):
        return Literal(float(text) if '.' in text else int(text)), i + 1
    if text in _BOOLEANS:
        return Literal(_BOOLEANS[text]), i + 1
    if '.' not in text:
        raise ValueError('%r is neither a dotted path nor a literal' % text)
    return Path(text), i + 1


def parse(target):
    """A graphite target as nested Call, Path and Literal."""
    tokens = list(_tokens(target))
    expression, end = _expression(tokens, 0)
    if end != len(tokens):
        raise ValueError('trailing %r in %r' % (tokens[end:], target))
    return expression


def paths(expression):
    """The series paths inside an expression, wrapped in whatever calls."""
    if isinstance(expression, Path):
        return [expression.text]
    if isinstance(expression, Call):
        return [p for arg in expression.args for p in paths(arg)]
    return []


def calls(expression, name):
    if not isinstance(expression, Call):
        return []
    found = [expression] if expression.name == name else []
    return found + [c for arg in expression.args for c in calls(arg, name)]


_VARIABLE = re.compile(r'\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]')


def _glob(pattern):
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == '*':
            out.append('[^.]*')
        elif c == '?':
            out.append('[^.]')
        elif c == '[':
            end = pattern.index(']', i + 1)
            out.append('[%s]' % pattern[i + 1:end])
            i = end
        elif c == '{':
            end = pattern.index('}', i + 1)
            out.append('(?:%s)' % '|'.join(
                _glob(alternative)
                for alternative in pattern[i + 1:end].split(',')))
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return ''.join(out)


# --- What a target makes of the series --------------------------------------

# Functions whose output series are their first argument's, one for one.
_ONE_FOR_ONE = {'aliasByNode', 'consolidateBy', 'movingSum',
                'movingAverage', 'scale', 'keepLastValue', 'asPercent'}
# Functions that make one series of all they are given.
_ALL_IN_ONE = {'sumSeries', 'maxSeries', 'countSeries', 'alias'}


def steps(panel):
    """The threshold values of a panel, its base (None) left out."""
    return [step['value'] for step in
            panel['fieldConfig']['defaults']['thresholds']['steps']
            if step['value'] is not None]


def _threshold(rule):
    """The value a rule's threshold expression compares with."""
    data = {query['refId']: query for query in rule['data']}
    condition = data[rule['condition']]['model']
    assert condition['type'] == 'threshold', condition
    evaluator = condition['conditions'][0]['evaluator']
    assert evaluator['type'] == 'gt', evaluator
    reduce = data[condition['expression']]['model']
    assert reduce['type'] == 'reduce', reduce
    query = data[reduce['expression']]
    assert query['datasourceUid'] != '__expr__', query
    return evaluator['params'][0], query


# --- The two variants -------------------------------------------------------

def _service(topic, host, id, cell=''):
    return record.Service.of(topic, host, cell=cell, id=id,
                             binary='nova-' + topic)


class Variant:
    """A dashboard and its alert rules, and the services whose series they
    read: answering (the inflight endpoint), pinged (pings only), silent."""

    def __init__(self, name, dashboard, alerts, uid_suffix, services):
        self.name = name
        self.dashboard = json.loads((GRAFANA / dashboard).read_text())
        self.variables = {v['name']: v
                          for v in self.dashboard['templating']['list']}
        self.panels = [p for p in _all_panels(self.dashboard['panels'])
                       if p['type'] != 'row']
        self.targets = [(panel['title'], target['refId'], target['target'])
                        for panel in self.panels
                        for target in panel.get('targets', ())]
        self.alerts = yaml.safe_load((GRAFANA / alerts).read_text())
        self.rule_list = [rule for group in self.alerts['groups']
                          for rule in group['rules']]
        self.rule_targets = [
            (rule['uid'], query['refId'], query['model']['target'])
            for rule in self.rule_list for query in rule['data']
            if query['datasourceUid'] != '__expr__']
        self.uid_suffix = uid_suffix
        self.services = services
        self.answering, self.pinged, self.silent = services
        # Each service's nodes in its series' names: [cell,] topic, host.
        self.safe = {s: tuple(metrics.graphite_safe(part)
                              for part in (s.cell, s.topic, s.host) if part)
                     for s in services}
        self.node_names = (('cell',) if any(s.cell for s in services)
                           else ()) + ('topic', 'host')

    def __str__(self):
        return self.name

    def rule(self, uid):
        """The rule of this variant's file for the rule `uid` of the plain."""
        return {rule['uid']: rule
                for rule in self.rule_list}[uid + self.uid_suffix]

    def name_of(self, service):
        """`<prefix>.<service's nodes>.`: its metrics' names start so."""
        return '.'.join((PREFIX,) + self.safe[service]) + '.'

    def counter_nodes(self):
        """The service's nodes in stats_counts.<prefix>.<service>.<leaf>."""
        return tuple(Literal(n) for n in range(2, 2 + len(self.node_names)))

    # What a series is about.

    def service_of(self, name):
        """(the service's nodes, the index of the first) in a series."""
        pieces = name.split('.')
        for safe in self.safe.values():
            for at in range(len(pieces) - len(safe)):
                if pieces[at:at + len(safe) + 1] == [PREFIX, *safe]:
                    return safe, at + 1
        raise AssertionError('%s is about no probed service' % name)

    def leaf(self, name):
        """What a series measures: the name after <prefix>.<service>."""
        safe, at = self.service_of(name)
        rest = name.split('.')[at + len(safe):]
        if name.startswith('stats.timers.'):
            rest = rest[:-1]
        return '.'.join(rest)

    def is_ms(self, name):
        """A series in milliseconds: the last.* and clock offset gauges,
        timers."""
        return name.startswith('stats.timers.') or (
            name.startswith('stats.gauges.') and
            (self.leaf(name).startswith('last.') or
             self.leaf(name) == 'clock_offset'))

    # What a target asks for.

    def substitute(self, text):
        """Template variables replaced: fixed ones by value, queried ones
        by *."""
        def value(m):
            name = m.group(1) or m.group(2) or m.group(3)
            assert name in self.variables, (
                'undefined variable $%s in %r' % (name, text))
            variable = self.variables[name]
            if variable['type'] == 'query':
                return '*'
            assert variable['type'] in ('custom', 'constant', 'textbox'), (
                'no value here for variable $%s of type %s'
                % (name, variable['type']))
            return variable['current']['value']
        return _VARIABLE.sub(value, text)

    def matching(self, pattern, names):
        """The names a graphite path pattern matches; * stays within a
        node."""
        regex = re.compile(_glob(self.substitute(pattern)))
        return {name for name in names if regex.fullmatch(name)}

    def matched_by(self, target, names):
        return self.matched_by_expression(parse(target), names)

    def matched_by_expression(self, expression, names):
        return set().union(*(self.matching(p, names)
                             for p in paths(expression)))

    # What a target makes of the series.

    def sources(self, expression, names):
        """For each series a target draws, the series it comes from (one
        each)."""
        if isinstance(expression, Path):
            return sorted(self.matching(expression.text, names))
        if expression.name in _ONE_FOR_ONE:
            return self.sources(expression.args[0], names)
        if expression.name == 'group':
            return [s for arg in expression.args
                    for s in self.sources(arg, names)]
        if expression.name == 'groupByNodes':
            nodes = [arg.value for arg in expression.args[2:]]
            firsts = {}
            for name in self.sources(expression.args[0], names):
                pieces = name.split('.')
                firsts.setdefault(tuple(pieces[n] for n in nodes), name)
            return sorted(firsts.values())
        if expression.name in _ALL_IN_ONE or (
                expression.name == 'filterSeries'):
            found = self.sources(expression.args[0], names)
            if expression.name == 'filterSeries':
                return found
            return found[:1]
        raise AssertionError('no rule here for what %s() draws'
                             % expression.name)

    def legends(self, target, names):
        """The name of each series a target draws."""
        expression = parse(target)
        if expression.name == 'alias':
            return [expression.args[1].value]
        if expression.name == 'aliasByNode':
            nodes = [arg.value for arg in expression.args[1:]]
        else:
            assert expression.name == 'groupByNodes', expression.name
            nodes = [arg.value for arg in expression.args[2:]]
        return ['.'.join(name.split('.')[n] for n in nodes)
                for name in self.sources(expression, names)]

    def panel_series(self, panel, names):
        return set().union(*(self.matched_by(t['target'], names)
                             for t in panel.get('targets', ())))

    def panels_plotting(self, names, series):
        """The panels that draw any of `names`."""
        return [p for p in self.panels
                if self.panel_series(p, series) & set(names)]


def _all_panels(panels):
    for panel in panels:
        yield panel
        yield from _all_panels(panel.get('panels', ()))   # a collapsed row's


VARIANTS = (
    Variant('plain', 'inflight.json', 'inflight-alerts.yaml', '', (
        _service('compute', 'cmp1.example.org', 1),
        _service('conductor', 'ctl1.example.org', 2),
        _service('compute', 'cmp2.example.org', 3))),
    Variant('cells', 'inflight-cells.json', 'inflight-cells-alerts.yaml',
            '-cells', (
                _service('compute', 'cmp1.example.org', 1, cell='cell1'),
                _service('conductor', 'ctl1.example.org', 2, cell='cell1'),
                _service('compute', 'cmp1.example.org', 3, cell='cell2'))),
)


def target_id(item):
    return '%s/%s' % item[:2]


def for_each(name, items, item_id):
    """Runs a test for each of `items(variant)` (as `name`) of each
    variant (as `variant`)."""
    return pytest.mark.parametrize(
        ('variant', name),
        [pytest.param(variant, item, id='%s:%s' % (variant, item_id(item)))
         for variant in VARIANTS for item in items(variant)],
        indirect=['variant'], scope='module')


for_each_target = for_each(
    'item', lambda variant: variant.targets + variant.rule_targets,
    target_id)
for_each_panel = for_each('panel', lambda variant: variant.panels,
                          lambda panel: panel['title'])


@pytest.fixture(scope='module', params=VARIANTS, ids=str)
def variant(request):
    return request.param


# --- The tests ---------------------------------------------------------------

def test_the_probe_sends_what_the_dashboard_is_about(variant, emitted):
    base = variant.name_of(variant.answering)
    assert set(emitted) >= (
        {(base + phase, 'ms') for phase in timings.PHASES}
        | {(base + 'last.' + phase, 'g') for phase in timings.PHASES}
        | {(base + counter, 'c') for counter in COUNTERS})
    pinged = variant.name_of(variant.pinged)
    assert (pinged + 'last.ping_round_trip', 'g') in emitted
    silent = variant.name_of(variant.silent)
    assert {name for name, _ in emitted if name.startswith(silent)} == {
        silent + 'sent', silent + 'lost', silent + 'deaf'}


def test_the_parser_finds_paths_in_calls():
    expression = parse("aliasByNode(sumSeries(a.{b,c}.$x, ${y:raw}.d), 3, 4)")
    assert paths(expression) == ['a.{b,c}.$x', '${y:raw}.d']
    assert calls(expression, 'aliasByNode')[0].args[1:] == (Literal(3),
                                                           Literal(4))
    assert parse("f(a.b, '>', 0)").args[1] == Literal('>')
    assert re.fullmatch(_glob('a.*.{b,c*}'), 'a.x.cd')
    assert not re.fullmatch(_glob('a.*'), 'a.b.c')


@for_each_target
def test_target_matches_emitted_series(variant, item, series):
    for path in paths(parse(item[2])):
        assert variant.matching(path, series), (
            '%s: %s (%s) matches nothing inflight sends; it sends %s'
            % (target_id(item), path, variant.substitute(path),
               sorted(series)))


@for_each_target
def test_target_names_each_series_by_topic_and_host(variant, item, series):
    """aliasByNode / groupByNodes indices name the service: topic and host
    (node 3 and 4 of stats.gauges.<prefix>.<topic>.<host>.<leaf>, 2 and 3 of
    stats_counts.<prefix>.<topic>.<host>.<leaf>), with cells cell, topic and
    host (3, 4 and 5 of stats.gauges.<prefix>.<cell>.<topic>.<host>.<leaf>);
    only a stat's one figure for all the services is named by alias()."""
    title, _, target = item
    expression = parse(target)
    service_nodes = len(variant.node_names)
    if expression.name == 'alias':
        panel = next(p for p in variant.panels if p['title'] == title)
        assert panel['type'] == 'stat', (
            '%s: one series for all services, in a %s'
            % (target_id(item), panel['type']))
        assert expression.args[0].name in _ALL_IN_ONE | {'asPercent'}
        return
    if expression.name == 'aliasByNode':
        nodes = [arg.value for arg in expression.args[1:]]
    else:
        assert expression.name == 'groupByNodes', (
            '%s is not named by aliasByNode or groupByNodes' % target)
        nodes = [arg.value for arg in expression.args[2:]]
        assert len(nodes) == service_nodes, nodes
    matched = variant.matched_by(target, series)
    assert matched
    for name in matched:
        pieces = name.split('.')
        service, at = variant.service_of(name)
        assert all(-len(pieces) <= n < len(pieces) for n in nodes), (name,
                                                                     nodes)
        named = [pieces[n] for n in nodes[:service_nodes]]
        assert named == list(service), (
            '%s: nodes %r of %s name %r, not %s'
            % (target_id(item), tuple(nodes), name, named,
               ' and '.join(variant.node_names)))
        assert all(n % len(pieces) >= at + service_nodes
                   for n in nodes[service_nodes:]), nodes


@for_each_target
def test_target_reads_no_timer(variant, item, series):
    """A timer is sent only in the flushes a probe ended in: at one probe a
    cycle, carbon's xFilesFactor (0.3) nulls it in every coarser archive.
    The last.* gauges carry the same values on every flush."""
    timers = {n for n in variant.matched_by(item[2], series)
              if n.startswith('stats.timers.')}
    assert not timers, '%s reads timers %s' % (target_id(item),
                                               sorted(timers))


@for_each_target
def test_counters_are_counted_over_fixed_intervals(variant, item, series):
    """A count per flush drawn as a height changes with the archive read
    (and carbon averages it). What does not: statsd's per-second rate
    averaged over a fixed window; a ratio of two sums over the same
    window; whether a sum over the range is above 0. Windows are rolling
    (movingSum, movingAverage): a point per archive step, so a line at
    every range, where summarize's buckets would draw a few points."""
    def walk(expression, inside):
        if isinstance(expression, Path):
            names = variant.matching(expression.text, series)
            if not any(is_counter(n) for n in names):
                return
            assert all(is_counter(n) for n in names), sorted(names)
            where = [c.name for c in inside]
            window = next((c for c in reversed(inside)
                           if c.name in ('movingSum', 'movingAverage')), None)
            if all(n.startswith('stats_counts.') for n in names):
                if 'filterSeries' in where:
                    kept = next(c for c in inside if c.name == 'filterSeries')
                    assert kept.args[1:3] == (Literal('sum'), Literal('>'))
                    return
                assert window and 'asPercent' in where, (
                    '%s: counts per flush %s outside a ratio of sums'
                    % (target_id(item), expression.text))
                assert window.name == 'movingSum', window
            else:
                assert window and window.name == 'movingAverage', (
                    '%s: the rate %s is not averaged over an interval'
                    % (target_id(item), expression.text))
            return
        if isinstance(expression, Call):
            for arg in expression.args:
                walk(arg, inside + [expression])
    walk(parse(item[2]), [])
    for ratio in calls(parse(item[2]), 'asPercent'):
        intervals = [c.args[1:] for c in calls(ratio, 'movingSum')]
        assert len(intervals) == 2 and len(set(intervals)) == 1, (
            'lost and sent summed over different intervals: %r' % intervals)


@for_each_panel
def test_panel_unit_fits_its_series(variant, panel, series):
    names = variant.panel_series(panel, series)
    assert names, panel['title']
    ratios = any(calls(parse(t['target']), 'asPercent')
                 for t in panel['targets'])
    kinds = {variant.is_ms(name) for name in names}
    assert len(kinds) == 1, 'times and counts in one panel: %s' % sorted(
        names)
    unit = panel['fieldConfig']['defaults'].get('unit')
    expected = 'percent' if ratios else 'ms' if kinds == {True} else 'short'
    assert unit == expected, (panel['title'], unit, expected)
    assert panel['fieldConfig']['defaults']['thresholds']['steps']
    if panel['type'] == 'timeseries':
        assert panel['fieldConfig']['defaults']['custom'].get('axisLabel'), (
            '%s: no label on its axis' % panel['title'])
        legend = panel['options']['legend']
        assert legend['displayMode'] == 'table', panel['title']
        assert {'lastNotNull', 'max'} <= set(legend['calcs']), panel['title']
    assert panel.get('description'), panel['title']


@for_each_panel
def test_panel_legends_are_distinct(variant, panel, series):
    names = [name for target in panel['targets']
             for name in variant.legends(target['target'], series)]
    assert names and len(names) == len(set(names)), sorted(names)


def test_every_metric_is_plotted(variant, emitted, series):
    """Every gauge and counter sent, of every service (a counter as its
    count or as its rate); timers are left to the last.* gauges."""
    plotted = set().union(*(variant.panel_series(p, series)
                            for p in variant.panels))
    for name, kind in emitted:
        forms = {'g': ['stats.gauges.' + name],
                 'c': ['stats_counts.' + name, 'stats.' + name]}.get(kind)
        if forms:
            assert plotted & set(forms), forms


def test_legs_without_the_sleep_are_apart(variant, series):
    """Each leg with no requested sleep in it, and a ping's round trip, has a
    panel of its own, on an axis no round trip with a sleep shares."""
    for phase in LEGS + ('ping_round_trip',):
        gauge = 'last.' + phase
        panels = [p for p in variant.panels if p['type'] == 'timeseries' and
                  {variant.leaf(n)
                   for n in variant.panel_series(p, series)} == {gauge}]
        assert panels, 'no panel for %s alone' % gauge
    slept = {'last.' + phase for phase in WITH_SLEEP}
    for panel in variant.panels:
        leaves = {variant.leaf(n) for n in variant.panel_series(panel, series)}
        if leaves & slept:
            assert leaves <= slept, (panel['title'], leaves)


def test_queue_legs_have_a_threshold(variant, series):
    for phase in ('to_service', 'queue_total', 'ping_round_trip'):
        for panel in variant.panels_plotting(
                [n for n in series if n.endswith('.last.' + phase)], series):
            assert QUEUE_THRESHOLD_MS in steps(panel), panel['title']


def test_loss_is_a_ratio_per_service(variant, series):
    """lost over sent, per service, summed over the same 10 minutes."""
    found = []
    for panel in variant.panels:
        for target in panel['targets']:
            expression = parse(target['target'])
            for ratio in calls(expression, 'asPercent'):
                lost, sent = (variant.matched_by_expression(arg, series)
                              for arg in ratio.args[:2])
                if {variant.leaf(n) for n in lost} == {'lost'} and (
                        {variant.leaf(n) for n in sent} == {'sent'}):
                    found.append((panel, expression, ratio))
    per_service = [(panel, ratio) for panel, expression, ratio in found
                   if panel['type'] == 'timeseries']
    assert per_service, 'no panel of lost as a percentage of sent'
    for panel, ratio in per_service:
        # Lost matched to its own service's sent by [cell,] topic and host.
        assert ratio.args[2:] == variant.counter_nodes(), ratio
        assert [c.args[1] for c in calls(ratio, 'movingSum')] == [
            Literal('10min')] * 2
        assert panel['fieldConfig']['defaults']['unit'] == 'percent'
        assert LOSS_THRESHOLD_PERCENT in steps(panel), panel['title']
    assert any(panel['type'] == 'stat' for panel, _, _ in found), (
        'no stat of the loss now')


def test_deaf_now_counted_and_named(variant, series):
    deaf = {n for n in series if n.endswith('.deaf')}
    panels = variant.panels_plotting(deaf, series)
    counts = [p for p in panels if p['type'] == 'stat' and
              parse(p['targets'][0]['target']).args[0].name == 'sumSeries']
    assert counts, 'no stat of the services deaf now'
    assert all(steps(p) and min(steps(p)) <= 1 for p in counts)
    tables = [p for p in panels if p['type'] == 'table']
    assert tables, 'no table of the services deaf now'
    for table in tables:
        assert variant.legends(table['targets'][0]['target'],
                               series) == sorted(
            '.'.join(variant.safe[s]) for s in variant.services
            if s is not variant.pinged)
        transforms = [t['id'] for t in table['transformations']]
        assert transforms[:2] == ['reduce', 'filterByValue'], transforms


def test_probe_kind_per_service_is_a_state_not_lines(variant, series):
    """One row per service whose value says the kind it answers: the method.*
    gauges, each kind scaled by its code, summed per [cell.]topic.host."""
    method = {n for n in series if '.method.' in n}
    panels = variant.panels_plotting(method, series)
    assert not [p['title'] for p in panels if p['type'] == 'timeseries']
    states = [p for p in panels if p['type'] == 'state-timeline']
    assert states, [(p['title'], p['type']) for p in panels]
    for panel in states:
        (target,) = panel['targets']
        expression = parse(target['target'])
        assert expression.name == 'groupByNodes'
        assert expression.args[1] == Literal('sum')
        codes = {}
        for arg in calls(expression, 'group')[0].args:
            factor = arg.args[1].value if isinstance(arg, Call) else 1
            (kind,) = {variant.leaf(n).split('.', 1)[1]
                       for n in variant.matched_by_expression(arg, series)}
            codes[kind] = factor
        assert set(codes) == set(probes.ORDER)
        mapped = {}
        for mapping in panel['fieldConfig']['defaults']['mappings']:
            options = mapping['options']
            for kind, code in codes.items():
                if options['from'] <= code <= options['to']:
                    mapped.setdefault(kind, []).append(
                        options['result']['text'])
        assert mapped == {kind: [kind] for kind in probes.ORDER}, mapped
        assert sorted(variant.legends(target['target'], series)) == sorted(
            '.'.join(variant.safe[s])
            for s in (variant.answering, variant.pinged))


def test_service_figures_and_clock_offset_are_plotted(variant, series):
    base = 'stats.gauges.' + variant.name_of(variant.answering)
    executor = {base + name for name in probe.STATE
                if name.startswith('executor_')}
    hub = {base + name for name in probe.STATE if name.startswith('hub_')}
    assert {tuple(sorted(variant.panel_series(p, series)))
            for p in variant.panels_plotting(executor, series)} == {
                tuple(sorted(executor))}
    assert {tuple(sorted(variant.panel_series(p, series)))
            for p in variant.panels_plotting(hub, series)} == {
                tuple(sorted(hub))}
    assert variant.panels_plotting({base + 'clock_offset'}, series)


def test_variables(variant, series):
    """Cells, topics and hosts come from the sent counters: a service that
    never answered (no timer, no gauge of its legs) can be picked all the
    same."""
    variables = variant.variables
    assert variables['datasource']['type'] == 'datasource'
    assert variables['datasource']['query'] == 'graphite'
    assert variables['prefix']['current']['value'] == PREFIX
    for panel in variant.panels:
        assert panel['datasource']['uid'] == '${datasource}'
        for target in panel['targets']:
            assert target['datasource']['uid'] == '${datasource}'
    # A query variable lists the nodes its pattern matches, at its depth.
    assert [name for name, v in variables.items()
            if v['type'] == 'query'] == list(variant.node_names)
    nodes = {'.'.join(name.split('.')[:depth])
             for name in series for depth in range(1, name.count('.') + 2)}
    for index, name in enumerate(variant.node_names):
        variable = variables[name]
        assert variable['datasource']['uid'] == '${datasource}'
        assert variable['query'].startswith('stats_counts.$prefix.'), (
            variable['query'])
        found = variant.matching(variable['query'], nodes)
        assert {node.rsplit('.', 1)[1] for node in found} == {
            safe[index] for safe in variant.safe.values()}, (
                name, variable['query'], found)
        assert variable['multi'] and variable['includeAll']


def test_alert_file_is_grafana_provisioning(variant):
    assert variant.alerts['apiVersion'] == 1
    (group,) = variant.alerts['groups']
    assert group['name'] and group['folder'] and group['interval']
    uids = [rule['uid'] for rule in variant.rule_list]
    assert len(uids) == len(set(uids))
    datasources = set()
    for rule in variant.rule_list:
        assert rule['title'] and rule['for'] is not None, rule['uid']
        assert rule['noDataState'] in ('NoData', 'Alerting', 'OK')
        assert rule['execErrState'] in ('Error', 'Alerting', 'OK')
        _threshold(rule)     # condition <- threshold <- reduce <- query
        for query in rule['data']:
            assert query['model']['refId'] == query['refId']
            if query['datasourceUid'] != '__expr__':
                datasources.add(query['datasourceUid'])
                assert query['model']['datasource']['type'] == 'graphite'
                assert query['relativeTimeRange']['from'] > 0
                # Grafana's provisioning expands $NAME in the queries.
                assert '$' not in query['model']['target']
        assert '{{ $labels.name }}' in rule['annotations']['summary']
        assert rule['labels']['severity']
        panel = next((p for p in variant.panels
                      if p['id'] == rule.get('panelId')), None)
        assert panel, '%s: no panel %s' % (rule['uid'], rule.get('panelId'))
        assert rule['dashboardUid'] == variant.dashboard['uid']
    assert len(datasources) == 1, datasources


def _rule_series(variant, rule, series):
    _, query = _threshold(rule)
    return variant.matched_by(query['model']['target'], series), query


def test_alert_deaf(variant, series):
    rule = variant.rule('inflight-deaf')
    threshold, _ = _threshold(rule)
    names, _ = _rule_series(variant, rule, series)
    assert {variant.leaf(n) for n in names} == {'deaf'}
    assert 0 <= threshold < 1           # the gauge is 0 or 1
    assert rule['for'] == '2m'
    panel = next(p for p in variant.panels if p['id'] == rule['panelId'])
    assert names <= variant.panel_series(panel, series)


def test_alert_loss(variant, series):
    rule = variant.rule('inflight-loss')
    threshold, query = _threshold(rule)
    assert threshold == LOSS_THRESHOLD_PERCENT
    expression = parse(query['model']['target'])
    (ratio,) = calls(expression, 'asPercent')
    assert [{variant.leaf(n)
             for n in variant.matched_by_expression(arg, series)}
            for arg in ratio.args[:2]] == [{'lost'}, {'sent'}]
    assert ratio.args[2:] == variant.counter_nodes()
    # Each point: lost over sent in the 10 minutes before it.
    assert [c.args[1:] for c in calls(ratio, 'movingSum')] == [
        (Literal('10min'),)] * 2
    assert query['relativeTimeRange'] == {'from': 600, 'to': 0}
    panel = next(p for p in variant.panels if p['id'] == rule['panelId'])
    assert calls(parse(panel['targets'][0]['target']), 'asPercent')
    assert threshold in steps(panel)


def test_alert_queue(variant, series):
    rule = variant.rule('inflight-queue')
    threshold, _ = _threshold(rule)
    names, _ = _rule_series(variant, rule, series)
    assert {variant.leaf(n) for n in names} == {'last.to_service',
                                                'last.queue_total'}
    assert threshold == QUEUE_THRESHOLD_MS
    assert rule['for'] == '5m'
    panel = next(p for p in variant.panels if p['id'] == rule['panelId'])
    assert {variant.leaf(n) for n in variant.panel_series(panel, series)} == {
        'last.queue_total'}
    assert threshold in steps(panel)
