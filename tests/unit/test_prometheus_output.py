"""The Prometheus output: what a scrape of its registry shows after each
call, and its port, served, let go, or not to be had."""

import logging
import socket
import urllib.request

from oslo_config import cfg
import prometheus_client
from prometheus_client import parser
import pytest

from inflight import config
from inflight.cloud import record
from inflight import opts
from inflight import outputs
from inflight.outputs import prometheus
from inflight import probes
from inflight import timings

CMP1 = record.Service.of('compute', 'cmp1.dc.example.org', id=1,
                         binary='nova-compute')
CTL1 = record.Service.of('conductor', 'ctl1', id=2, binary='nova-conductor')
BREAKDOWN = timings.Timings(to_service=0.0012, in_service=1.0004,
                            overhead=0.0004, from_service=0.0008,
                            round_trip=1.0024, queue_total=0.002)


def scrape(exporter):
    """{(sample name, frozenset of labels): value} of a scrape."""
    text = prometheus_client.generate_latest(exporter.registry).decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in parser.text_string_to_metric_families(text)
            for sample in family.samples}


def labels(service, **more):
    return frozenset(dict(cell=service.cell, topic=service.topic,
                          host=service.host, **more).items())


def names(samples):
    return {name for name, _ in samples}


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def get_metrics(port):
    url = 'http://127.0.0.1:%d/metrics' % port
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.read().decode()


def test_counts_per_service_with_topic_and_host_as_they_are():
    exporter = prometheus.Exporter()
    exporter.sent([CMP1, CTL1])
    exporter.sent([CMP1])
    exporter.lost([CMP1])
    exporter.late([CMP1])
    exporter.received(CTL1, 'inflight', BREAKDOWN)
    samples = scrape(exporter)
    assert samples[('inflight_probes_sent_total', labels(CMP1))] == 2
    assert samples[('inflight_probes_sent_total', labels(CTL1))] == 1
    assert samples[('inflight_probes_lost_total', labels(CMP1))] == 1
    assert samples[('inflight_probes_late_total', labels(CMP1))] == 1
    assert samples[('inflight_probes_received_total', labels(CTL1))] == 1
    assert ('inflight_probes_lost_total', labels(CTL1)) not in samples
    assert not any(name.endswith('_created') for name in names(samples))


def test_an_inflight_probe_observes_every_phase_in_its_buckets():
    exporter = prometheus.Exporter(sleep=1.0)
    exporter.received(CMP1, 'inflight', BREAKDOWN, clock_offset=-0.25,
                      state={'executor_busy': 3, 'executor_max': 64,
                             'executor_waiting': 1, 'hub_timers': 57,
                             'hub_listeners': 4})
    samples = scrape(exporter)
    inflight = labels(CMP1, kind='inflight')
    for phase in timings.PHASES:
        name = 'inflight_%s_seconds' % phase
        assert samples[(name + '_count', inflight)] == 1
        assert samples[(name + '_sum', inflight)] == pytest.approx(
            getattr(BREAKDOWN, phase))
    bucket = 'inflight_queue_total_seconds_bucket'
    assert samples[(bucket, labels(CMP1, kind='inflight', le='0.001'))] == 0
    assert samples[(bucket, labels(CMP1, kind='inflight', le='0.0025'))] == 1
    # The round trip has bounds just above the sleep: 1.0024 is under 1.005.
    bucket = 'inflight_round_trip_seconds_bucket'
    assert samples[(bucket, labels(CMP1, kind='inflight', le='1.001'))] == 0
    assert samples[(bucket, labels(CMP1, kind='inflight', le='1.005'))] == 1
    assert samples[('inflight_clock_offset_seconds', labels(CMP1))] == -0.25
    for name, value in (('executor_busy', 3), ('executor_max', 64),
                        ('executor_waiting', 1), ('hub_timers', 57),
                        ('hub_listeners', 4)):
        assert samples[('inflight_' + name, labels(CMP1))] == value


def test_a_ping_kind_observes_only_the_round_trip_under_its_kind():
    exporter = prometheus.Exporter(sleep=1.0)
    exporter.received(CMP1, 'baseapi', timings.round_trip_only(0.004))
    samples = scrape(exporter)
    observed = {name for name, _ in samples
                if name.endswith('_seconds_count')}
    assert observed == {'inflight_round_trip_seconds_count'}
    assert samples[('inflight_round_trip_seconds_count',
                    labels(CMP1, kind='baseapi'))] == 1
    assert samples[('inflight_round_trip_seconds_bucket',
                    labels(CMP1, kind='baseapi', le='0.005'))] == 1
    assert samples[('inflight_round_trip_seconds_bucket',
                    labels(CMP1, kind='baseapi', le='0.0025'))] == 0
    assert ('inflight_clock_offset_seconds', labels(CMP1)) not in samples


def test_a_leg_made_negative_by_the_clock_offset_is_observed_as_zero():
    exporter = prometheus.Exporter()
    exporter.received(CMP1, 'inflight', BREAKDOWN._replace(
        to_service=-0.0003, from_service=0.0023))
    samples = scrape(exporter)
    inflight = labels(CMP1, kind='inflight')
    assert samples[('inflight_to_service_seconds_sum', inflight)] == 0
    assert samples[('inflight_to_service_seconds_bucket',
                    labels(CMP1, kind='inflight', le='0.0005'))] == 1
    assert samples[('inflight_from_service_seconds_sum', inflight)] == \
        pytest.approx(0.0023)


def test_deaf_and_the_kind_answered_are_gauges_of_one_and_zero():
    exporter = prometheus.Exporter()
    exporter.deaf(CMP1, True)
    exporter.method(CMP1, 'baseapi', probes.ORDER)
    samples = scrape(exporter)
    assert samples[('inflight_deaf', labels(CMP1))] == 1
    assert {kind: samples[('inflight_probe_kind', labels(CMP1, kind=kind))]
            for kind in probes.ORDER} == {
        'inflight': 0, 'baseapi': 1, 'oslo_rpc_server_ping': 0}
    exporter.deaf(CMP1, False)
    exporter.method(CMP1, 'inflight', probes.ORDER)
    samples = scrape(exporter)
    assert samples[('inflight_deaf', labels(CMP1))] == 0
    assert samples[('inflight_probe_kind',
                    labels(CMP1, kind='inflight'))] == 1


def test_each_exporter_has_a_registry_of_its_own():
    first, second = prometheus.Exporter(), prometheus.Exporter()
    first.sent([CMP1])
    assert ('inflight_probes_sent_total', labels(CMP1)) not in scrape(second)
    assert 'inflight_probes_sent_total' not in (
        prometheus_client.generate_latest().decode())


def test_serves_metrics_and_close_lets_the_port_go():
    port = free_port()
    exporter = prometheus.Exporter('127.0.0.1', port)
    assert exporter.bound.wait(10) and exporter.serving
    exporter.sent([CMP1])
    assert ('inflight_probes_sent_total{cell="",host="cmp1.dc.example.org",'
            'topic="compute"} 1.0') in get_metrics(port)
    exporter.close()
    assert not exporter.serving
    with pytest.raises(OSError):
        get_metrics(port)
    # The next worker's, at once.
    after = prometheus.Exporter('127.0.0.1', port, bind_for=0)
    try:
        assert after.bound.wait(10) and after.serving
    finally:
        after.close()
    exporter.close()     # twice is harmless


def test_a_taken_port_gives_one_warning_and_probing_goes_on(caplog):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING, 'inflight.outputs.prometheus'):
            exporter = prometheus.Exporter('127.0.0.1', port, bind_for=0.3)
            assert exporter.bound.wait(10)
            exporter.sent([CMP1])
            exporter.close()
    assert not exporter.serving
    assert [r.getMessage() for r in caplog.records] == [
        'Prometheus metrics are not served: cannot listen on 127.0.0.1:%d: '
        '[Errno 98] Address already in use; probing goes on without them'
        % port]


def test_a_port_let_go_while_it_retries_is_taken(monkeypatch):
    taken = socket.socket()
    taken.bind(('127.0.0.1', 0))
    taken.listen()
    port = taken.getsockname()[1]
    start = prometheus_client.start_http_server

    def let_go_after_the_first_try(*args, **kwargs):
        try:
            return start(*args, **kwargs)
        finally:
            taken.close()
    monkeypatch.setattr(prometheus_client, 'start_http_server',
                        let_go_after_the_first_try)
    exporter = prometheus.Exporter('127.0.0.1', port, bind_for=10)
    try:
        assert exporter.bound.wait(10) and exporter.serving
        assert 'inflight_deaf' in get_metrics(port)
    finally:
        exporter.close()


def test_an_address_not_of_this_machine_is_not_tried_again(caplog):
    with caplog.at_level(logging.WARNING, 'inflight.outputs.prometheus'):
        # TEST-NET-1: no machine has it; binding fails at once.
        exporter = prometheus.Exporter('192.0.2.1', free_port(), bind_for=30)
        assert exporter.bound.wait(10)
    assert not exporter.serving
    [record] = caplog.records
    assert 'cannot listen on 192.0.2.1:' in record.getMessage()
    assert 'Cannot assign requested address' in record.getMessage()
    exporter.close()


def conf_with(**prometheus_options):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override('status_file', '', group='inflight')
    for name, value in prometheus_options.items():
        conf.set_override(name, value, group='prometheus')
    return conf


def test_from_conf_serves_prometheus_only_with_a_port():
    assert [type(o).__name__ for o in outputs.from_conf(conf_with()).outputs] \
        == ['Metrics']
    port = free_port()
    chosen = outputs.from_conf(conf_with(port=port))
    try:
        exporter = chosen.outputs[-1]
        assert isinstance(exporter, prometheus.Exporter)
        assert exporter.bound.wait(10) and exporter.serving
        assert (exporter.host, exporter.port) == ('127.0.0.1', port)
    finally:
        chosen.close()
    assert not exporter.serving


def test_only_the_phases_asked_for_are_histograms():
    exporter = prometheus.Exporter(phases=['queue_total'])
    exporter.received(CMP1, 'inflight', BREAKDOWN)
    exporter.received(CMP1, 'baseapi', timings.round_trip_only(0.004))
    samples = scrape(exporter)
    assert {name for name in names(samples) if name.endswith('_count')} == {
        'inflight_queue_total_seconds_count'}
    assert samples[('inflight_probes_received_total', labels(CMP1))] == 2


def test_the_phases_option_takes_phase_names_only(tmp_path):
    assert conf_with().prometheus.phases == list(timings.PHASES)
    path = tmp_path / 'inflight.conf'
    for value, phases in (('queue_total, round_trip',
                           ['queue_total', 'round_trip']),
                          ('queue', cfg.ConfigFileValueError)):
        path.write_text('[prometheus]\nphases = %s\n' % value)
        conf = cfg.ConfigOpts()
        opts.register_opts(conf)
        conf(['--config-file', str(path)], default_config_files=[])
        if isinstance(phases, list):
            assert conf.prometheus.phases == phases
        else:
            with pytest.raises(phases):
                conf.prometheus.phases


def test_an_option_misspelt_in_the_prometheus_group_is_warned_of(tmp_path):
    path = tmp_path / 'inflight.conf'
    path.write_text('[prometheus]\nprot = 9875\n')
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf(['--config-file', str(path)], default_config_files=[])
    assert config.unknown_options(conf) == [
        '[prometheus] prot in %s is not an inflight option (did you mean '
        'port?); it is ignored' % path]
