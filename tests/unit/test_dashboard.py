"""etc/grafana/inflight.json plots only series that inflight really sends.

The statsd names come from the real code: inflight.outputs.statsd.Metrics sends to a
real UDP socket here, and the packets are read back. They are mapped to the
graphite series Etsy statsd makes of them (legacyNamespace, percentThreshold
90), and every target of the dashboard must match some of those series.
"""

import collections
import json
import pathlib
import re
import socket

import pytest

from inflight import db
from inflight.outputs import statsd as metrics
from inflight import opts
from inflight import probe
from inflight import probes
from inflight import timings

DASHBOARD = (pathlib.Path(__file__).resolve().parents[2]
             / 'etc' / 'grafana' / 'inflight.json')

PREFIX = next(o.default for o in opts.statsd_opts if o.name == 'prefix')
SERVICE = db.Service(1, 'cmp1.example.org', 'nova-compute', 'compute',
                     None, None)
TOPIC = metrics.graphite_safe(SERVICE.topic)
HOST = metrics.graphite_safe(SERVICE.host)
COUNTERS = ('sent', 'received', 'lost', 'late')

# What statsd writes to graphite for one timer (percentThreshold 90).
TIMER_AGGREGATES = ('mean', 'median', 'upper', 'lower', 'count', 'count_ps',
                    'sum', 'std', 'upper_90', 'mean_90', 'sum_90')


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
def emitted():
    """(name, kind) of each metric Metrics sends for one service's probes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    sink = metrics.Metrics('127.0.0.1', sock.getsockname()[1], PREFIX)
    try:
        sink.sent([SERVICE])
        sink.received(SERVICE, 'inflight', timings.Timings(*[0.001] * len(timings.PHASES)),
                      clock_offset=-0.002,
                      state={name: 1 for name in probe.STATE})
        sink.lost([SERVICE])
        sink.late([SERVICE])
        sink.deaf(SERVICE, True)
        sink.method(SERVICE, probes.ORDER[0], probes.ORDER)
        # One counter for each call, a timer for each phase, the clock
        # offset (two lines: a negative gauge is set from 0), a gauge for
        # each of the service's figures, the deaf gauge and a method gauge
        # for each kind.
        return _receive(sock, 4 + len(timings.PHASES) + 2 +
                        len(probe.STATE) + 1 + len(probes.ORDER))
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


# --- What the dashboard asks for ---------------------------------------------

dashboard = json.loads(DASHBOARD.read_text())
variables = {v['name']: v for v in dashboard['templating']['list']}
TARGETS = [(panel, target)
           for panel in dashboard['panels']
           for target in panel.get('targets', ())]


def target_id(item):
    panel, target = item
    return '%s/%s' % (panel['title'], target['refId'])


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


def substitute(text):
    """Template variables replaced: fixed ones by value, queried ones by *."""
    def value(m):
        name = m.group(1) or m.group(2) or m.group(3)
        assert name in variables, 'undefined variable $%s in %r' % (name,
                                                                   text)
        variable = variables[name]
        if variable['type'] == 'query':
            return '*'
        assert variable['type'] in ('custom', 'constant', 'textbox'), (
            'no value here for variable $%s of type %s'
            % (name, variable['type']))
        return variable['current']['value']
    return _VARIABLE.sub(value, text)


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


def matching(pattern, names):
    """The names a graphite path pattern matches; * stays within a node."""
    regex = re.compile(_glob(substitute(pattern)))
    return {name for name in names if regex.fullmatch(name)}


def matched_by(target, names):
    return set().union(*(matching(p, names) for p in paths(parse(target))))


# --- The tests ---------------------------------------------------------------

def test_the_probe_sends_what_the_dashboard_is_about(emitted):
    base = '%s.%s.%s.' % (PREFIX, TOPIC, HOST)
    assert set(emitted) >= (
        {(base + phase, 'ms') for phase in timings.PHASES}
        | {(base + counter, 'c') for counter in COUNTERS})


def test_the_parser_finds_paths_in_calls():
    expression = parse("aliasByNode(sumSeries(a.{b,c}.$x, ${y:raw}.d), 3, 4)")
    assert paths(expression) == ['a.{b,c}.$x', '${y:raw}.d']
    assert calls(expression, 'aliasByNode')[0].args[1:] == (Literal(3),
                                                           Literal(4))
    assert re.fullmatch(_glob('a.*.{b,c*}'), 'a.x.cd')
    assert not re.fullmatch(_glob('a.*'), 'a.b.c')


@pytest.mark.parametrize('item', TARGETS, ids=target_id)
def test_target_matches_emitted_series(item, series):
    panel, target = item
    for path in paths(parse(target['target'])):
        assert matching(path, series), (
            '%s: %s (%s) matches nothing inflight sends; it sends %s'
            % (target_id(item), path, substitute(path), sorted(series)))


@pytest.mark.parametrize('item', TARGETS, ids=target_id)
def test_target_aliases_by_topic_and_host(item, series):
    panel, target = item
    expression = parse(target['target'])
    assert isinstance(expression, Call) and expression.name == 'aliasByNode'
    nodes = [arg.value for arg in expression.args[1:]]
    matched = matched_by(target['target'], series)
    assert matched
    for name in matched:
        pieces = name.split('.')
        assert all(-len(pieces) <= n < len(pieces) for n in nodes), (name,
                                                                     nodes)
        # Node 3 and 4 of stats.timers.<prefix>.<topic>.<host>.<phase>.<agg>
        # (2 and 3 of stats_counts.<prefix>.<topic>.<host>.<leaf>).
        assert [pieces[n] for n in nodes[:2]] == [TOPIC, HOST], (
            '%s: aliasByNode%r of %s names %r, not topic and host'
            % (target_id(item), tuple(nodes), name,
               [pieces[n] for n in nodes[:2]]))
        host_node = pieces.index(HOST)
        assert all(n % len(pieces) > host_node for n in nodes[2:]), nodes


@pytest.mark.parametrize('panel', dashboard['panels'],
                         ids=lambda panel: panel['title'])
def test_panel_legends_are_distinct_and_units_right(panel, series):
    aliases = []
    kinds = set()
    for target in panel['targets']:
        expression = parse(target['target'])
        nodes = [arg.value for arg in expression.args[1:]]
        for name in matched_by(target['target'], series):
            pieces = name.split('.')
            aliases.append('.'.join(pieces[n] for n in nodes))
            # Timers and the clock offset gauge are in ms; counts are not.
            kinds.add(pieces[1] == 'timers' or pieces[-1] == 'clock_offset')
    assert len(aliases) == len(set(aliases)), sorted(aliases)
    assert len(kinds) == 1, 'times and counts in one panel'
    unit = panel['fieldConfig']['defaults']['unit']
    assert unit == ('ms' if kinds == {True} else 'short')
    assert panel.get('description')


def test_every_phase_and_counter_is_plotted(series):
    base = '%s.%s.%s' % (PREFIX, TOPIC, HOST)
    by_panel = {panel['title']: set().union(*(
        matched_by(target['target'], series) for target in panel['targets']))
        for panel in dashboard['panels']}
    plotted = set().union(*by_panel.values())
    for phase in timings.PHASES:
        for aggregate in ('mean', 'upper_90'):
            assert ('stats.timers.%s.%s.%s' % (base, phase, aggregate)
                    in plotted), (phase, aggregate)
        # ...in a panel of its own.
        assert any({name.split('.')[-2] for name in names} == {phase}
                   for names in by_panel.values()), phase
    for counter in COUNTERS:
        assert 'stats_counts.%s.%s' % (base, counter) in plotted, counter
    for gauge in ('deaf', 'clock_offset') + probe.STATE + tuple(
            'method.' + k for k in probes.ORDER):
        assert 'stats.gauges.%s.%s' % (base, gauge) in plotted, gauge


def test_variables(series):
    assert variables['datasource']['type'] == 'datasource'
    assert variables['datasource']['query'] == 'graphite'
    assert variables['prefix']['current']['value'] == PREFIX
    for panel, target in TARGETS:
        assert panel['datasource']['uid'] == '${datasource}'
        assert target['datasource']['uid'] == '${datasource}'
    # A query variable lists the nodes its pattern matches, at its depth.
    nodes = {'.'.join(name.split('.')[:depth])
             for name in series for depth in range(1, name.count('.') + 2)}
    for name, value in (('topic', TOPIC), ('host', HOST)):
        variable = variables[name]
        assert variable['datasource']['uid'] == '${datasource}'
        found = matching(variable['query'], nodes)
        assert {node.rsplit('.', 1)[1] for node in found} == {value}, (
            name, variable['query'], found)
    assert variables['host']['multi'] and variables['host']['includeAll']
