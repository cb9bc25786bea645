"""A bounded soak: nova-inflight probes a flapping service for a while, and
its worker's memory, threads and probes out do not grow."""

import os
import re
import signal
import threading
import time

import pytest

from harness import add_row, daemon_conf, received_from, stop_daemon


# A flapping service is told from a deaf one by time.
pytestmark = pytest.mark.alone

SOAK_SECONDS = float(os.environ.get('INFLIGHT_SOAK_SECONDS', 30))


def worker_of(daemon):
    """The pid of the launcher's worker process."""
    children = []
    for task in os.listdir('/proc/%d/task' % daemon.pid):
        with open('/proc/%d/task/%s/children' % (daemon.pid, task)) as f:
            children += f.read().split()
    assert len(children) == 1, children
    return int(children[0])


def usage(pid):
    """(resident KiB, threads) of a process."""
    with open('/proc/%d/status' % pid) as f:
        status = f.read()
    return (int(re.search(r'VmRSS:\s+(\d+)', status).group(1)),
            int(re.search(r'Threads:\s+(\d+)', status).group(1)))


def test_soak_with_a_flapping_service(processes, broker_url, exchange,
                                      services_db, statsd, tmp_path):
    db_url, engine = services_db
    processes.service('threading', broker_url, exchange, 'compute',
                      'steady.test', db_url)
    flapping = processes.service('eventlet', broker_url, exchange,
                                 'compute', 'flapping.test', db_url)
    add_row(engine, 'gone.test', 'compute')           # never answers
    daemon = processes.daemon(daemon_conf(
        tmp_path, broker_url, exchange, db_url, statsd.port, sleep=0.05,
        probe_timeout=0.3, cycle_seconds=0.25, max_in_flight=50,
        register_service='false'))
    statsd.wait_for(received_from(statsd, 'inflight', 'compute.steady_test',
                                  20))
    worker = worker_of(daemon)

    stop = threading.Event()

    def flap():      # the fault being injected: 1.5 s deaf, 1.5 s back
        while not stop.wait(1.5):
            flapping.send_signal(signal.SIGSTOP)
            if stop.wait(1.5):
                break
            flapping.send_signal(signal.SIGCONT)
        flapping.send_signal(signal.SIGCONT)
    flapper = threading.Thread(target=flap)
    flapper.start()
    try:
        samples = []
        end = time.monotonic() + SOAK_SECONDS
        while time.monotonic() < end:
            samples.append(usage(worker))
            # Read statsd for a few seconds between two samples of the worker.
            statsd.receive_for(min(5.0, max(0.0, end - time.monotonic())))
    finally:
        stop.set()
        flapper.join()
    stop_daemon(daemon, statsd)

    warm = samples[len(samples) // 4]            # past start-up
    rss_growth_kib = max(rss for rss, _ in samples[len(samples) // 4:]) - \
        warm[0]
    assert rss_growth_kib < 8 * 1024, samples
    assert max(threads for _, threads in samples[len(samples) // 4:]) <= \
        warm[1] + 4, samples
    outs = [int(n) for n in re.findall(r'Cycle \d+ over 3 services: (\d+) '
                                       r'probes? out', processes.log())]
    assert len(outs) > 50
    assert max(outs[len(outs) // 4:]) <= 50       # bounded by max_in_flight
    for host in ('steady_test', 'flapping_test', 'gone_test'):
        name = 'inflight.compute.' + host
        assert statsd.total(name + '.sent') == (
            statsd.total(name + '.received') + statsd.total(name + '.lost'))
    assert statsd.total('inflight.compute.flapping_test.lost') > 0
    assert statsd.total('inflight.compute.flapping_test.received') > 0
    assert 'Traceback' not in processes.log()
