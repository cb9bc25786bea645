"""benchmarks/run --smoke over the real RabbitMQ: every benchmark runs and
reports numeric ratios against its baseline."""

import json
import math
import os
import subprocess
import sys

import pytest


# The benchmarks measure against a baseline of their own run.
pytestmark = pytest.mark.alone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RUN = os.path.join(ROOT, 'benchmarks', 'run')
BENCHMARKS = ('throughput', 'latency', 'service_cpu', 'ring', 'coverage',
              'capacity', 'scale')


def _number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def test_smoke_run_reports_every_benchmark(broker_url, tmp_path):
    out = tmp_path / 'results'
    proc = subprocess.run(
        [sys.executable, RUN, '--smoke', '--output', str(out),
         '--broker-url', broker_url],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-5000:]

    [path] = out.glob('*.json')
    results = json.loads(path.read_text())
    assert results['smoke'] is True
    assert list(results['benchmarks']) == list(BENCHMARKS)
    for name in BENCHMARKS:
        bench = results['benchmarks'][name]
        assert 'error' not in bench, bench.get('error')
        assert bench['ratios'], name
        for ratio_name, ratio in bench['ratios'].items():
            assert _number(ratio) and ratio > 0, (name, ratio_name, ratio)
        assert isinstance(bench['met'], bool), name
        assert bench['goal'], name
    assert len(results['benchmarks']['coverage']['table']) == 3
    capacity = results['benchmarks']['capacity']['figures']
    for probers in (1, 2, 3):
        assert _number(capacity['probes_per_s_%d_probers' % probers])
        assert _number(capacity['echoes_per_s_%d_echoers' % probers])
    scale = results['benchmarks']['scale']
    assert {1, 4, 16} <= {row['probers'] for row in scale['table']}
    for row in scale['table']:
        assert row['share_min'] <= row['share_max'], row
        assert row['redis_commands_per_heartbeat'] >= 1, row
        assert row['redis_commands_per_check'] >= 1, row
    summary = (out / 'latest.md').read_text()
    assert summary.strip() in proc.stdout
    assert path.name in summary
