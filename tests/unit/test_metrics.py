"""statsd faults never reach the caller."""

import socket

from inflight import db
from inflight import metrics
from inflight import timings

CMP1 = db.Service(1, 'cmp1', 'nova-compute', 'compute', None, None)
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
    m.received(CMP1, ALL_PHASES)
    assert 'Could not send metrics to statsd' in caplog.text


def test_nothing_listening_is_not_an_error():
    m = metrics.Metrics('127.0.0.1', closed_port(), 'inflight')
    for _ in range(3):   # ICMP port unreachable comes back between sends
        m.received(CMP1, ALL_PHASES)
        m.lost([CMP1])


def test_one_result_is_one_pipeline(statsd):
    m = metrics.Metrics('127.0.0.1', statsd.port, 'p')
    m.received(CMP1, ALL_PHASES)
    statsd.wait_for(lambda got: len(got) == 7)
    assert len(statsd.packets) == 1
    assert [n for n, _, _ in statsd.metrics] == [
        'p.compute.cmp1.%s' % leaf for leaf in timings.PHASES + ('received',)]
