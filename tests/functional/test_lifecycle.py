"""Signals to the real daemon: SIGTERM with probes out ends within the probe
timeout with every probe accounted for; SIGHUP's new worker goes on where
the last one left the ring."""

import re
import signal
import time

import pytest

from harness import TEARDOWN_SECONDS, add_row, daemon_conf, received_from
from inflight.cloud import record
from inflight import ring


# How soon SIGTERM and SIGHUP are obeyed is timed.
pytestmark = pytest.mark.alone


STOPPED = re.compile(
    r'nova-inflight stopped in [\d.]+s(?:, leaving the RPC server stopping)?: '
    r'(?P<sent>\d+) probes? sent, (?P<received>\d+) received, '
    r'(?P<lost>\d+) lost(?:, (?P<late>\d+) late)?(?:, (?P<rejected>\d+) '
    r'rejected)?(?:; (?P<out>\d+) probes? still out, counted lost)?$',
    re.MULTILINE)


def stop_counts(log):
    """The counts and the probes counted lost of each 'stopped' line."""
    found = []
    for match in STOPPED.finditer(log):
        counts = {k: int(v) for k, v in match.groupdict().items()
                  if v is not None}
        found.append((counts, counts.pop('out', 0)))
    return found


def test_sigterm_with_probes_out_exits_within_the_probe_timeout(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, engine = services_db
    processes.service('threading', broker_url, exchange, 'compute',
                      'cmp-answers.test', db_url)
    add_row(engine, 'cmp-silent.test', 'compute')     # nothing consumes
    timeout = 3.0
    daemon = processes.daemon(daemon_conf(
        tmp_path, broker_url, exchange, db_url, statsd.port, sleep=0.5,
        probe_timeout=timeout, probes_per_tick=2, register_service='false'))
    answers, silent = ('inflight.compute.cmp-answers_test',
                       'inflight.compute.cmp-silent_test')
    # Past a whole probe life of the silent one: from then on, probes of
    # both are always out (sleep 0.5 s, a probe each every 0.1 s).
    statsd.wait_for(lambda m: statsd.total(silent + '.lost') >= 1)
    statsd.wait_for(received_from(statsd, 'inflight',
                                  'compute.cmp-answers_test', 5))
    signalled = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    took = time.monotonic() - signalled
    statsd.drain()

    assert took <= timeout + TEARDOWN_SECONDS, took
    [(counts, counted_lost)] = stop_counts(processes.log())
    assert counts['sent'] == counts['received'] + counts['lost'], counts
    assert counted_lost > 0          # the silent one's probes, still out
    for name in (answers, silent):
        assert statsd.total(name + '.sent') == (
            statsd.total(name + '.received') + statsd.total(name + '.lost'))
    # The answering service's probes out at SIGTERM were waited for.
    assert statsd.total(answers + '.lost') == 0
    assert statsd.total(answers + '.received') >= 5
    assert 'Traceback' not in processes.log()


def sent_hosts(statsd, prefix):
    """The hosts probed under `prefix`, in the order they were probed."""
    pattern = re.compile(r'%s\.compute\.(.+)\.sent$' % re.escape(prefix))
    return [m.group(1) for m in map(pattern.match,
                                    (n for n, _, _ in statsd.metrics)) if m]


def test_sighup_goes_on_where_the_ring_was(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, engine = services_db
    # In ring order (a hash of the key), as the daemon walks them.
    hosts = [host.replace('.', '_') for host in sorted(
        ('ring%02d.test' % i for i in range(20)),
        key=lambda h: ring.order(record.Key('', 'compute', h)))]
    for host in hosts:                       # nothing consumes: no waiting
        add_row(engine, host.replace('_', '.'), 'compute')
    options = dict(sleep=0.05, probe_timeout=0.5, probes_per_tick=1,
                   register_service='false')
    daemon = processes.daemon(daemon_conf(
        tmp_path, broker_url, exchange, db_url, statsd.port, prefix='before',
        **options))
    statsd.wait_for(lambda m: len(sent_hosts(statsd, 'before')) >= 5)
    daemon_conf(tmp_path, broker_url, exchange, db_url, statsd.port,
                prefix='after', **options)
    daemon.send_signal(signal.SIGHUP)
    statsd.wait_for(lambda m: len(sent_hosts(statsd, 'before')) +
                    len(sent_hosts(statsd, 'after')) >= len(hosts) + 5)
    assert daemon.poll() is None
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0

    before, after = sent_hosts(statsd, 'before'), sent_hosts(statsd, 'after')
    assert before == hosts[:len(before)]      # a fresh start: from the top
    assert len(before) < len(hosts)
    # The new worker goes on with the next service, and the pass over the
    # ring that the reload cut in two probes every service exactly once.
    assert after[0] == hosts[len(before)], (before, after)
    assert sorted(before + after[:len(hosts) - len(before)]) == sorted(hosts)
    assert after[len(hosts) - len(before)] == hosts[0]   # then round again
    log = processes.log()
    assert 'Going on after compute.%s' % hosts[len(before) - 1].replace(
        '_', '.') in log
    assert 'Traceback' not in log


def test_sighup_with_files_not_valid_goes_on_with_the_last_valid(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, engine = services_db
    processes.service('threading', broker_url, exchange, 'compute',
                      'cmp-reload.test', db_url)

    def configure(prefix, **options):
        return daemon_conf(tmp_path, broker_url, exchange, db_url,
                           statsd.port, prefix=prefix,
                           register_service='false', **options)

    def received(prefix):
        return statsd.total('%s.compute.cmp-reload_test.received' % prefix)

    daemon = processes.daemon(configure('first'))
    statsd.wait_for(lambda m: received('first') >= 1)
    configure('second')
    daemon.send_signal(signal.SIGHUP)
    statsd.wait_for(lambda m: received('second') >= 1)
    configure('third', sleep='soon')             # a value that is not valid
    daemon.send_signal(signal.SIGHUP)
    processes.wait_for_log(statsd, 'configuration files are not valid')
    before = received('second')
    statsd.wait_for(lambda m: received('second') >= before + 3)
    assert daemon.poll() is None
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0

    assert received('third') == 0
    log = processes.log()
    assert log.count('configuration files are not valid') == 1
    assert ('goes on with the last valid configuration: [inflight] sleep is '
            'not valid') in log
    assert 'exited with status 1' not in log      # no worker failed
    assert len(stop_counts(log)) == 3             # one stop per worker
    # That one line says it all: no traceback of the value, from anyone.
    assert 'Traceback' not in log
    assert [line for line in log.splitlines() if ' ERROR ' in line] == [
        line for line in log.splitlines()
        if 'configuration files are not valid' in line]
