"""`inflight demo`: the embedded default runs and shows every phase."""

import subprocess
import sys

from inflight import timings


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
