"""A real Prometheus server scrapes nova-inflight; promtool checks the alert
rules and the README's scrape configuration.

Needs Debian's prometheus package (/usr/bin/prometheus, /usr/bin/promtool):
skipped without it, unless INFLIGHT_REQUIRE_PROMETHEUS=1 (as in CI). Time is
scaled down: Prometheus scrapes every second, the daemon probes every 0.1 s
with a sleep of 0.1 s.
"""

import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from harness import add_row, daemon_conf
import readme
import servers

RULES = os.path.join(readme.ROOT, 'etc', 'prometheus', 'inflight-rules.yml')
RULES_TEST = os.path.join(readme.ROOT, 'etc', 'prometheus',
                          'inflight-rules.test.yml')
FAST = dict(sleep=0.1, probe_timeout=0.5, deaf_after=2,
            probe_methods='compute:inflight', register_service='false')


def program(name):
    """The path of Debian's prometheus package's `name`, or skip (fail
    with INFLIGHT_REQUIRE_PROMETHEUS=1)."""
    path = shutil.which(name)
    if path is None:
        servers.unavailable('%s is not on this machine (Debian: apt-get '
                            'install prometheus)' % name,
                            'INFLIGHT_REQUIRE_PROMETHEUS')
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Prometheus:
    """A Prometheus server of the test's own, asked through its HTTP API."""

    def __init__(self, processes, tmp_path, target):
        self.port = free_port()
        config = tmp_path / 'prometheus.yml'
        config.write_text(
            'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
            'scrape_configs:\n  - job_name: inflight\n'
            '    static_configs:\n      - targets: [\'%s\']\n' % target)
        self.proc = processes.command(
            [program('prometheus'), '--config.file=%s' % config,
             '--storage.tsdb.path=%s' % (tmp_path / 'prometheus-data'),
             '--web.listen-address=127.0.0.1:%d' % self.port],
            'prometheus.log')
        self.log = tmp_path / 'prometheus.log'

    def get(self, path, **params):
        url = 'http://127.0.0.1:%d%s' % (self.port, path)
        if params:
            url += '?' + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.loads(answer.read())

    def target(self):
        """The one target's health, last scrape and error."""
        [target] = self.get('/api/v1/targets')['data']['activeTargets']
        return target

    def query(self, promql):
        """{(topic, host): value} of an instant query."""
        answer = self.get('/api/v1/query', query=promql)
        assert answer['status'] == 'success', answer
        return {(r['metric'].get('topic'), r['metric'].get('host')):
                float(r['value'][1]) for r in answer['data']['result']}

    def wait_for(self, promql, predicate, timeout=30.0):
        """The query's result once predicate(result) is true."""
        ends = time.monotonic() + timeout
        while True:
            try:
                result = self.query(promql)
            except OSError as e:     # not listening yet
                result = e
            else:
                if predicate(result):
                    return result
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < ends, (
                'in %ss, %s gave %r' % (timeout, promql, result))
            time.sleep(0.2)


def test_prometheus_scrapes_the_daemon_and_finds_the_healthy_and_the_deaf(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    program('prometheus')
    db_url, engine = services_db
    processes.service('threading', broker_url, exchange, 'compute',
                      'cmp1.example.org', db_url)
    # Up by its heartbeat (for service_down_time, 60 s), nothing consumes
    # its queue.
    add_row(engine, 'deaf.example.org', 'compute',
            last_seen_up=datetime.datetime.now(datetime.timezone.utc)
            .replace(tzinfo=None))
    port = free_port()
    conf = daemon_conf(tmp_path, broker_url, exchange, db_url, statsd.port,
                       **FAST)
    with open(conf, 'a') as f:
        f.write('[prometheus]\nport = %d\n' % port)
    daemon = processes.daemon(conf)
    prometheus = Prometheus(processes, tmp_path, '127.0.0.1:%d' % port)
    healthy = ('compute', 'cmp1.example.org')
    deaf = ('compute', 'deaf.example.org')

    up = prometheus.wait_for('up{job="inflight"}', lambda r: r and all(
        value == 1 for value in r.values()))
    assert list(up.values()) == [1]
    p90 = prometheus.wait_for(
        'histogram_quantile(0.9, sum by (le, topic, host) '
        '(rate(inflight_queue_total_seconds_bucket[1m])))',
        lambda r: healthy in r)
    assert list(p90) == [healthy]     # the deaf one measured nothing
    assert 0 < p90[healthy] < 0.5
    assert list(prometheus.wait_for('inflight_deaf == 1', bool)) == [deaf]
    assert prometheus.query('inflight_deaf')[healthy] == 0
    lost = prometheus.wait_for(
        'sum by (topic, host) (inflight_probes_lost_total)',
        lambda r: r.get(deaf, 0) > 0)
    assert healthy not in lost
    kinds = prometheus.wait_for('inflight_probe_kind{kind="inflight"} == 1',
                                bool)
    assert list(kinds) == [healthy]
    for figure in ('inflight_executor_busy', 'inflight_executor_max',
                   'inflight_executor_waiting'):
        assert list(prometheus.query(figure)) == [healthy], figure
    assert prometheus.query('inflight_executor_max')[healthy] >= 1
    sent = prometheus.query('sum by (topic, host) (inflight_probes_sent_total)')
    received = prometheus.query(
        'sum by (topic, host) (inflight_probes_received_total)')
    assert sent[healthy] >= received[healthy] > 0
    assert deaf not in received

    # SIGHUP: the next worker takes the port over.
    reloaded_at = time.time()
    daemon.send_signal(signal.SIGHUP)
    ends = time.monotonic() + 30
    while processes.log().count('Prometheus metrics at http://127.0.0.1:'
                                '%d/metrics' % port) < 2:
        assert time.monotonic() < ends, processes.log()[-3000:]
        time.sleep(0.1)
    ends = time.monotonic() + 30
    while True:
        target = prometheus.target()
        scraped_at = datetime.datetime.fromisoformat(
            target['lastScrape'].replace('Z', '+00:00')).timestamp()
        if target['health'] == 'up' and scraped_at > reloaded_at + 1:
            break
        assert time.monotonic() < ends, target
        time.sleep(0.2)
    assert 'Prometheus metrics are not served' not in processes.log()
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    assert 'Traceback' not in processes.log()


def promtool(*args, cwd=readme.ROOT):
    return subprocess.run([program('promtool'), *args], cwd=cwd, text=True,
                          capture_output=True, timeout=60)


def test_the_alert_rules_are_valid():
    done = promtool('check', 'rules', RULES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'SUCCESS: 3 rules found' in done.stdout


def test_the_alert_rules_fire_for_the_deaf_the_lossy_and_the_slow():
    """etc/prometheus/inflight-rules.test.yml says which fire, and when."""
    done = promtool('test', 'rules', RULES_TEST)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'SUCCESS' in done.stdout


@pytest.mark.parametrize('line', [
    'promtool check rules etc/prometheus/inflight-rules.yml',
    'promtool test rules etc/prometheus/inflight-rules.test.yml'])
def test_the_readme_promtool_lines(line):
    program('promtool')
    done = subprocess.run(readme.argv(line), cwd=readme.ROOT, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [text for text in done.stdout.splitlines() if text.strip()] == \
        [text for text in readme.shown(line) if text.strip()]


def test_the_readme_scrape_configuration_is_valid(tmp_path):
    [config] = [text for text in readme.files('yaml')
                if 'scrape_configs:' in text]
    (tmp_path / 'prometheus.yml').write_text(config)
    shutil.copy(RULES, tmp_path)
    done = promtool('check', 'config', 'prometheus.yml', cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'SUCCESS: 1 rule files found' in done.stdout
