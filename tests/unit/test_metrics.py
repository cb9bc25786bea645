"""statsd faults never reach the caller."""

import logging
import re
import socket

import hypothesis
from oslo_config import cfg
from oslo_log import formatters
from oslo_log import log

from inflight.cloud import record
from inflight.outputs import statsd as metrics
from inflight import probe
from inflight import timings

CMP1 = record.Service.of('compute', 'cmp1', id=1, binary='nova-compute')
ALL_PHASES = timings.Timings(0.001, 1.0, 0.0, 0.001, 1.002, 0.002)


def closed_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_unresolvable_statsd_host_is_logged_not_raised(caplog):
    m = metrics.Metrics('statsd.invalid', 8125, 'inflight')
    m.sent([CMP1])
    m.received(CMP1, 'inflight', ALL_PHASES)
    assert 'Could not send metrics to statsd' in caplog.text


def test_nothing_listening_is_not_an_error():
    m = metrics.Metrics('127.0.0.1', closed_port(), 'inflight')
    for _ in range(3):   # ICMP port unreachable comes back between sends
        m.received(CMP1, 'inflight', ALL_PHASES)
        m.lost([CMP1])


def test_one_result_is_one_pipeline(statsd):
    m = metrics.Metrics('127.0.0.1', statsd.port, 'p')
    m.received(CMP1, 'inflight', ALL_PHASES)
    statsd.wait_for(lambda got: len(got) == 15)
    assert len(statsd.packets) == 1
    leaves = [leaf for phase in timings.PHASES
              for leaf in (phase, 'last.' + phase)] + [
        'sent', 'received', 'lost']
    assert [n for n, _, _ in statsd.metrics] == [
        'p.compute.cmp1.%s' % leaf for leaf in leaves]


def test_every_phase_goes_with_its_value_to_the_ns_and_its_gauge_to_the_us(
        statsd):
    m = metrics.Metrics('127.0.0.1', statsd.port, 'p')
    m.received(CMP1, 'inflight', timings.Timings(
        0.0012345678, 0.5, 0.0000004, 0.0009876543, 0.5022222221,
        0.0022222221), clock_offset=-0.00025)
    statsd.wait_for(lambda got: len(got) == 17)
    lines = dict(line.split(':', 1) for line in statsd.lines()
                 if 'clock_offset' not in line)
    assert [lines['p.compute.cmp1.' + leaf] for leaf in (
        'to_service', 'last.to_service', 'overhead', 'last.overhead',
        'queue_total', 'last.queue_total')] == [
        '1.234568|ms', '1.235|g', '0.000400|ms', '0.000|g',
        '2.222222|ms', '2.222|g']
    assert [line for line in statsd.lines() if 'clock_offset' in line] == [
        'p.compute.cmp1.clock_offset:0|g', 'p.compute.cmp1.clock_offset:-0.250|g']


@hypothesis.given(hypothesis.strategies.lists(
    hypothesis.strategies.floats(0.0, 1000.0), min_size=6, max_size=6))
def test_the_one_format_lines_are_the_lines_written_one_by_one(seconds):
    lines = metrics._ResultLines('p%.', 'compute.cmp1')
    phases = timings.Timings(*seconds)
    at_once = lines.of(phases, None, None)
    one_by_one = lines.of(phases._replace(queue_total=-1.0), None, None)
    # The same lines but the last phase's, which a negative value sends
    # line by line (its gauge set to 0 first).
    assert len(at_once) == 1 and len(one_by_one) == 13
    assert at_once[0].split('\n')[:10] == one_by_one[:10]
    assert at_once[0].split('\n')[12:] == one_by_one[12].split('\n')


@hypothesis.given(
    hypothesis.strategies.lists(hypothesis.strategies.floats(0.0, 1000.0),
                                min_size=6, max_size=6),
    hypothesis.strategies.none() | hypothesis.strategies.floats(0.0, 1000.0),
    hypothesis.strategies.permutations(probe.STATE),
    hypothesis.strategies.lists(
        hypothesis.strategies.integers(0, probe.MAX_COUNT), max_size=5))
def test_the_offset_and_figures_in_the_one_format_are_as_one_by_one(
        seconds, offset, names, counts):
    lines = metrics._ResultLines('p%.', 'compute.cmp1')
    phases = timings.Timings(*seconds)
    state = dict(zip(names, counts))
    at_once = lines.of(phases, offset, state)
    one_by_one = lines.of(phases._replace(queue_total=-1.0), offset, state)
    assert len(at_once) == 1
    # After the phases and the counts: the offset and the figures, each
    # figure's name in order whatever the order they came in.
    assert at_once[0].split('\n')[15:] == one_by_one[13:]
    assert len(one_by_one[13:]) == (offset is not None) + len(state)
    assert lines.of(phases, offset, dict(reversed(state.items()))) == at_once


def test_a_percent_sign_in_the_prefix_stays_in_every_name(statsd):
    m = metrics.Metrics('127.0.0.1', statsd.port, 'p%s%%')
    m.received(CMP1, 'inflight', ALL_PHASES)
    statsd.wait_for(lambda got: len(got) == 15)
    assert {n.split('.', 1)[0] for n, _, _ in statsd.metrics} == {'p%s%%'}
    assert [v for n, v, _ in statsd.metrics
            if n == 'p%s%%.compute.cmp1.in_service'] == [
        1000.0]


def test_a_ping_round_trip_goes_apart_from_the_inflight_ones(statsd):
    m = metrics.Metrics('127.0.0.1', statsd.port, 'p')
    m.received(CMP1, 'baseapi', timings.round_trip_only(0.004))
    statsd.wait_for(lambda got: len(got) == 5)
    assert statsd.metrics == [
        ('p.compute.cmp1.ping_round_trip', 4.0, 'ms'),
        ('p.compute.cmp1.last.ping_round_trip', 4.0, 'g'),
        ('p.compute.cmp1.sent', 1.0, 'c'),
        ('p.compute.cmp1.received', 1.0, 'c'),
        ('p.compute.cmp1.lost', 0.0, 'c')]


def test_the_last_breakdown_stays_a_gauge_negative_legs_included(statsd):
    m = metrics.Metrics('127.0.0.1', statsd.port, 'p')
    m.received(CMP1, 'inflight', ALL_PHASES._replace(to_service=-0.002))
    statsd.wait_for(lambda got: len(got) == 16)
    # statsd reads a signed gauge as a change: pystatsd sets 0 first.
    assert [(v, k) for n, v, k in statsd.metrics
            if n == 'p.compute.cmp1.last.to_service'] == [(0.0, 'g'),
                                                          (-2.0, 'g')]


def test_the_services_figures_go_as_gauges_with_its_timings(statsd):
    m = metrics.Metrics('127.0.0.1', statsd.port, 'p')
    m.received(CMP1, 'inflight', ALL_PHASES, state={
        'executor_busy': 2, 'executor_max': 64, 'executor_waiting': 0,
        'hub_timers': 57})
    statsd.wait_for(lambda got: len(got) == 15 + 4)
    assert len(statsd.packets) == 1
    assert [(n, v, k) for n, v, k in statsd.metrics
            if k == 'g' and '.last.' not in n] == [
        ('p.compute.cmp1.executor_busy', 2.0, 'g'),
        ('p.compute.cmp1.executor_max', 64.0, 'g'),
        ('p.compute.cmp1.executor_waiting', 0.0, 'g'),
        ('p.compute.cmp1.hub_timers', 57.0, 'g')]


HOSTILE = ['cmp:1', 'cmp|ms', 'cmp@2', 'cmp\n3:1|c', 'cmp 4', 'cmp.5.dc',
           'cmp-6_ok', 'cømp7', '計算8', '']


def test_hostile_names_never_break_the_line_protocol(statsd):
    m = metrics.Metrics('127.0.0.1', statsd.port, 'inflight')
    for i, host in enumerate(HOSTILE):
        svc = record.Service.of('t:%d|x' % i, host)
        m.received(svc, 'inflight', ALL_PHASES, clock_offset=-0.001)
        m.lost([svc])
    # sent, received, lost 0, the phases, the offset (two: it is negative);
    # then sent and lost.
    lines_each = 3 + 2 * len(timings.PHASES) + 2 + 2
    statsd.wait_for(lambda got: len(got) == lines_each * len(HOSTILE))
    names = {name for name, _, _ in statsd.metrics}
    for packet in statsd.packets:
        for line in packet.decode('ascii').split('\n'):
            assert re.fullmatch(r'[A-Za-z0-9_.-]+:-?[0-9.]+\|(ms|c|g)', line)
    services = {name.split('.')[1] + '.' + name.split('.')[2]
                for name in names}
    assert len(services) == len(HOSTILE)      # none merged


def test_names_that_sanitise_alike_are_told_apart(statsd, caplog):
    m = metrics.Metrics('127.0.0.1', statsd.port, 'p')
    first = record.Service.of('compute', 'cmp1.dc')
    second = record.Service.of('compute', 'cmp1_dc')
    m.known([first, second])
    m.lost([first])
    m.lost([second])
    m.lost([first])
    statsd.wait_for(lambda got: len(got) == 6)
    names = [name for name, _, _ in statsd.metrics if name.endswith('.lost')]
    # The one whose name needed no change keeps it.
    assert names[1] == 'p.compute.cmp1_dc.lost'
    assert names[0] == names[2]
    assert re.fullmatch(r'p\.compute\.cmp1_dc_[0-9a-f]{8}\.lost', names[0])
    assert caplog.text.count('both make the metric name compute.cmp1_dc') == 1


SHARING = [record.Service.of('compute', host)
           for host in ('cmp1.dc', 'cmp1_dc', 'cmp1 dc', 'cmp2.dc')]


@hypothesis.given(hypothesis.strategies.permutations(SHARING),
                  hypothesis.strategies.integers(1, len(SHARING)))
def test_names_do_not_depend_on_the_order_services_come_in(order, split):
    # Two probers read the same table; one is told of it in two reads.
    one, other = metrics.Names(), metrics.Names()
    one.known(s.key for s in SHARING)
    other.known(s.key for s in order[:split])
    other.known(s.key for s in order)
    names = {one.name(s.key) for s in SHARING}
    assert len(names) == len(SHARING)
    assert [one.name(s.key) for s in SHARING] == [
        other.name(s.key) for s in SHARING]


def test_a_name_told_apart_comes_back_once_the_other_left():
    names = metrics.Names()
    dotted, underscored = SHARING[0].key, SHARING[1].key
    names.known([dotted, underscored])
    assert names.name(dotted) != 'compute.cmp1_dc'
    names.known([dotted])
    assert names.name(dotted) == 'compute.cmp1_dc'


def test_a_cell_is_a_node_of_the_name(statsd):
    m = metrics.Metrics('127.0.0.1', statsd.port, 'p')
    m.lost([record.Service.of('compute', 'cmp1.dc', cell='cell 1')])
    statsd.wait_for(lambda got: len(got) == 2)
    assert statsd.metrics[1][0] == 'p.cell_1.compute.cmp1_dc.lost'


def test_dropped_metrics_are_counted_and_logged_once_a_minute(caplog):
    now = [0.0]
    m = metrics.Metrics('statsd.invalid', 8125, 'p', monotonic=lambda: now[0])
    for _ in range(50):
        m.lost([CMP1])
    now[0] += 61
    m.lost([CMP1])
    assert m.dropped == 51
    assert caplog.text.count('Could not send metrics') == 2
    assert '51 batches dropped so far' in caplog.text


def test_refused_udp_is_counted():
    m = metrics.Metrics('127.0.0.1', closed_port(), 'p')
    for _ in range(5):
        m.lost([CMP1])
    assert m.dropped >= 1     # ICMP port unreachable came back between sends


def test_the_error_shows_once_in_an_oslo_log_line():
    # oslo.log appends the exception being handled to warnings logged in an
    # except clause: the warning must come after it.
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(handler.format(record))
    conf = cfg.ConfigOpts()
    log.register_options(conf)
    conf([])
    handler.setFormatter(formatters.ContextFormatter(config=conf))
    logger = logging.getLogger('inflight.outputs.statsd')
    logger.addHandler(handler)
    try:
        m = metrics.Metrics('127.0.0.1', closed_port(), 'p')
        while not lines:
            m.lost([CMP1])
    finally:
        logger.removeHandler(handler)
    [line] = lines
    assert line.count('Connection refused') == 1, line


def test_a_probe_is_counted_sent_with_its_outcome_in_one_packet(statsd):
    """So that in every flush sent = received + lost, and a service that
    loses none has a lost counter (0): lost over sent is 0 %, not nothing."""
    m = metrics.Metrics('127.0.0.1', statsd.port, 'p')
    m.sent([CMP1])                     # nothing yet: the probe is out
    m.lost([CMP1])
    m.received(CMP1, 'baseapi', timings.round_trip_only(0.004))
    statsd.wait_for(lambda got: len(got) == 7)
    assert len(statsd.packets) == 2
    counts = [(n, v) for n, v, k in statsd.metrics if k == 'c']
    assert counts == [('p.compute.cmp1.sent', 1.0),
                      ('p.compute.cmp1.lost', 1.0),
                      ('p.compute.cmp1.sent', 1.0),
                      ('p.compute.cmp1.received', 1.0),
                      ('p.compute.cmp1.lost', 0.0)]
