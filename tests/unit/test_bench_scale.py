"""Benchmark 7's search for the least number of probers."""

import os
import shutil
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(__file__), '..', '..', 'benchmarks')
sys.path.insert(0, os.path.abspath(BENCHMARKS))

import bench_coverage  # noqa: E402
import bench_scale  # noqa: E402
import servers  # noqa: E402


def _met_from(least):
    tried = []

    def simulate(n):
        tried.append(n)
        return {'met': n >= least}
    return simulate, tried


@pytest.mark.parametrize('start', [1, 5, 17, 18, 19, 40])
def test_least_met_whatever_the_guess(start):
    simulate, tried = _met_from(18)
    assert bench_scale.least_met(start, simulate) == 18
    assert 17 in tried            # seen not to do, from either side


def test_least_met_tries_one_fewer_when_the_guess_is_met():
    simulate, tried = _met_from(3)
    assert bench_scale.least_met(5, simulate) == 3
    assert tried == [5, 4, 3, 2]


def test_least_met_none_past_the_most():
    simulate, _ = _met_from(10 ** 6)
    assert bench_scale.least_met(3, simulate, most=9) is None


def _least_with_cpu(services, cpu_us, sample, monkeypatch):
    monkeypatch.setattr(bench_scale, 'SAMPLE', sample)
    settings = bench_coverage.schedule_settings({})
    guess = bench_scale.least_probers(services, *settings[:4], cpu_us)
    simulate = bench_scale.Simulations(services, 3, settings, cpu_us, 100)
    return bench_scale.least_met(guess, simulate), simulate


@pytest.mark.parametrize('sample', [30, 300, 3000])
def test_least_n_by_simulation_is_met_and_one_fewer_is_not(sample,
                                                           monkeypatch):
    services = bench_scale.make_services(3000, 3)
    for probes_per_s in (5, 8, 13):       # what a prober core does
        least, simulate = _least_with_cpu(services, 1e6 / probes_per_s,
                                          sample, monkeypatch)
        assert least is not None
        assert simulate(least)['met']
        assert not simulate(least - 1)['met']


def test_the_benchmark_reports_the_least_n_it_simulated(tmp_path):
    """3,000 services, a prober core for 5 probes/s: the guess, even from
    every service, is 14 probers, and the simulation needs 15."""
    if shutil.which('redis-server') is None:
        servers.unavailable('redis-server is not installed',
                            'INFLIGHT_REQUIRE_REDIS')
    measured = {'prober_cpu_us_per_probe': 1e6 / 5}
    result = bench_scale.run(3000, 3, measured, str(tmp_path),
                             log=lambda line: None, probers=(1,))
    least = result['figures']['least_probers']
    rows = {row['probers']: row for row in result['table']}
    assert result['met']
    assert rows[least]['met']
    assert not rows[least - 1]['met']     # in the table, to show it
    assert least == 15
