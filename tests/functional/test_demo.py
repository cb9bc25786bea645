"""`inflight demo`: the embedded default runs and shows every phase, with
no broker too, and leaves nothing behind however it ends."""

import os
import shutil
import signal
import subprocess
import sys

import pytest

from harness import read_line
from inflight import timings
import readme

DEMO_ROW_TOPICS = ('compute.', 'conductor.', 'scheduler.', 'inflight.')


def run_demo(*args):
    return subprocess.run(
        [sys.executable, '-m', 'inflight.cmd.manage', *args, 'demo',
         '--duration', '1.5'],
        capture_output=True, text=True, timeout=120)


def check_output(run):
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[1].split() == ['service', '(ms)', *timings.PHASES]
    rows = [line.split() for line in lines[2:] if line.startswith('compute.')]
    assert rows and all(len(row) == 1 + len(timings.PHASES) for row in rows)
    for row in rows:
        to, in_, over, back, rtt, queue = map(float, row[1:])
        assert in_ >= 200.0 - 1.0 and rtt >= in_
    sent, received = lines[-1].split()[1:4:2]
    assert lines[-1].startswith('probes: ') and sent == received != '0'


def workdir(first_line):
    """The temporary folder the demo's first line names."""
    path = first_line.split('services table sqlite:///')[1].split(',')[0]
    assert os.path.basename(os.path.dirname(path)).startswith(
        'inflight-demo-'), first_line
    return os.path.dirname(path)


def needs_the_checkout_venv():
    """bin/demo runs the checkout's .venv: these tests must run in it too."""
    venv = os.path.join(readme.ROOT, '.venv')
    if os.path.realpath(sys.prefix) != os.path.realpath(venv):
        pytest.skip('bin/demo runs %s, these tests %s (run them with '
                    'bin/run-tests)' % (venv, sys.prefix))


def no_network_namespace():
    """Why `unshare -n` cannot run here, or None."""
    for tool in ('unshare', 'ip'):
        if not shutil.which(tool):
            return '%s is not on this machine' % tool
    done = subprocess.run(['unshare', '-n', 'true'], capture_output=True,
                          text=True)
    if done.returncode:
        return 'unshare -n is not permitted here: %s' % done.stderr.strip()
    return None


def test_the_first_command_needs_no_broker():
    """README's `bin/demo`, where nothing listens: the fake transport."""
    needs_the_checkout_venv()
    reason = no_network_namespace()
    if reason:
        pytest.skip(reason)
    assert readme.shown('bin/demo') is None
    command = readme.argv('bin/demo') + ['--duration', '2']
    run = subprocess.run(
        ['unshare', '-n', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh',
         *command], cwd=readme.ROOT, capture_output=True, text=True,
        timeout=60)
    lines = run.stdout.splitlines()
    assert lines and lines[0].startswith('inflight demo: broker fake, '), (
        run.stdout, run.stderr[-3000:])
    assert readme.shape(lines[1:2]) == readme.shape(
        [line for line in open(readme.README)
         if line.startswith('service (ms)')])
    check_output(run)
    assert not os.path.exists(workdir(lines[0]))


def test_demo_removes_what_it_declared_on_the_broker(
        broker_url, broker_vhost, tmp_path):
    conf = tmp_path / 'demo.conf'
    conf.write_text('[DEFAULT]\ntransport_url = %s\n' % broker_url)
    run = run_demo('--config-file', str(conf))
    assert 'broker rabbit' in run.stdout
    check_output(run)
    assert broker_vhost.contents() == ([], [])


@pytest.mark.parametrize('signum, status', [(signal.SIGINT, 130),
                                            (signal.SIGTERM, 143)],
                         ids=['SIGINT', 'SIGTERM'])
def test_a_demo_stopped_by_a_signal(signum, status, processes, broker_url,
                                    broker_vhost, tmp_path):
    """Ctrl-C or SIGTERM: the folder and the broker's queues go, the counts
    are printed, no traceback, exit status 128 + the signal's number."""
    needs_the_checkout_venv()
    line = 'bin/demo --duration 30'
    assert readme.shown(line) is None
    conf = tmp_path / 'demo.conf'
    conf.write_text('[DEFAULT]\ntransport_url = %s\n' % broker_url)
    demo = processes.command(readme.argv(line) + ['--config-file', str(conf)],
                             'demo.log', pipe_stdout=True)
    first = read_line(demo, timeout=60)
    assert first.startswith('inflight demo: broker rabbit, '), first
    folder = workdir(first)
    assert os.path.isdir(folder)
    while not read_line(demo, timeout=30).startswith(DEMO_ROW_TOPICS):
        pass
    demo.send_signal(signum)
    assert demo.wait(60) == status
    last = demo.stdout.read().splitlines()[-1]
    assert last.startswith('probes: ') and last.endswith(
        '(stopped by %s)' % signal.Signals(signum).name), last
    assert 'Traceback' not in (tmp_path / 'demo.log').read_text()
    assert not os.path.exists(folder)
    assert broker_vhost.contents() == ([], [])


def test_demo_on_the_fake_transport(tmp_path):
    conf = tmp_path / 'fake.conf'
    conf.write_text('[DEFAULT]\ntransport_url = fake:/\n')
    run = run_demo('--config-file', str(conf))
    assert 'broker fake' in run.stdout
    check_output(run)


def test_demo_on_rabbitmq(broker_url):
    run = run_demo()
    assert 'broker rabbit' in run.stdout
    check_output(run)


def test_two_demos_on_one_broker(processes, broker_url, broker_vhost,
                                 tmp_path):
    """Two demos at once on one broker (two operators trying it, or one
    beside a CI run): each probes its own services only, every probe of
    both comes back, and each leaves the other's queues alone."""
    conf = tmp_path / 'demo.conf'
    conf.write_text('[DEFAULT]\ntransport_url = %s\n' % broker_url)
    first = processes.command(
        [sys.executable, '-m', 'inflight.cmd.manage', '--config-file',
         str(conf), 'demo', '--duration', '20'], 'first.log',
        pipe_stdout=True)
    lines = [read_line(first, timeout=60)]
    assert lines[0].startswith('inflight demo: broker rabbit, '), lines
    while not lines[-1].startswith(DEMO_ROW_TOPICS):
        lines.append(read_line(first, timeout=30))
    second = run_demo('--config-file', str(conf))
    assert first.poll() is None, 'the first demo ended before the second'
    check_output(second)
    first.send_signal(signal.SIGINT)
    assert first.wait(60) == 130
    lines += first.stdout.read().splitlines()
    sent, received, lost = lines[-1].split()[1:6:2]
    assert (received, lost) == (sent, '0'), lines[-1]
    assert 'unknown probe' not in (tmp_path / 'first.log').read_text()
    assert broker_vhost.contents() == ([], [])
