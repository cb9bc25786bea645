"""Passwords in transport_url and [database] connection never reach a log
line or an error message."""

import subprocess
import sys
import time

import pytest

AMQP_SECRET = 's3cr3t-amqp-pw'
DB_SECRET = 's3cr3t-db-pw'


def run_daemon(tmp_path, conf_text, until, timeout=60):
    """Run nova-inflight --debug until `until` shows in its log; the log."""
    conf = tmp_path / 'inflight.conf'
    conf.write_text(conf_text)
    log = tmp_path / 'daemon.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'inflight.cmd.inflight', '--debug',
             '--config-file', str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while until not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)   # polling a log file: nothing to wait on
    finally:
        proc.terminate()
        proc.wait(30)
    return log.read_text()


def test_broker_password_stays_out_of_a_refused_login(tmp_path, broker_url):
    conf = tmp_path / 'inflight.conf'
    conf.write_text(
        '[DEFAULT]\ntransport_url = rabbit://guest:%s@127.0.0.1:5672/\n'
        '[database]\nconnection = mysql+pymysql://root:%s@127.0.0.1:1/nova\n'
        % (AMQP_SECRET, DB_SECRET))
    run = subprocess.run(
        [sys.executable, '-m', 'inflight.cmd.inflight', '--debug',
         '--config-file', str(conf)], capture_output=True, text=True,
        timeout=60)
    assert run.returncode == 2
    text = run.stdout + run.stderr
    assert 'ACCESS_REFUSED' in text and 'guest:***@' in text
    assert AMQP_SECRET not in text and DB_SECRET not in text


def test_database_password_stays_out_of_the_logs(tmp_path, broker_url,
                                                 exchange):
    text = run_daemon(tmp_path, (
        '[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n'
        '[database]\nconnection = mysql+pymysql://root:%s@127.0.0.1:1/nova\n'
        % (broker_url, exchange, DB_SECRET)),
        until='Could not read the services table')
    assert 'connection' in text and '****' in text   # options, masked
    assert DB_SECRET not in text


@pytest.mark.parametrize('conf_text', [
    '[DEFAULT]\ntransport_url = rabbit://u:%s@h:notaport/\n'
    '[database]\nconnection = sqlite://\n' % AMQP_SECRET,
    '[DEFAULT]\ntransport_url = rabbit://u:%s@h/\n'
    '[database]\nconnection = nodb://root:%s@/\n' % (AMQP_SECRET, DB_SECRET),
    '[DEFAULT]\ntransport_url = carrierpigeon://u:%s@h/\n[database]\n'
    'connection = sqlite://\n' % AMQP_SECRET,
])
def test_config_errors_do_not_echo_passwords(tmp_path, conf_text):
    conf = tmp_path / 'bad.conf'
    conf.write_text(conf_text)
    for args in (['inflight.cmd.inflight', '--config-file', str(conf)],
                 ['inflight.cmd.manage', '--config-file', str(conf),
                  'ping', 'compute', 'h', '-c', '1']):
        run = subprocess.run([sys.executable, '-m', *args],
                             capture_output=True, text=True, timeout=60)
        if args[0].endswith('inflight') or 'nodb' not in conf_text:
            assert run.returncode == 2, run.stderr   # a config error...
            assert len(run.stderr.splitlines()) == 1  # ...in one line
        output = run.stdout + run.stderr
        assert AMQP_SECRET not in output and DB_SECRET not in output, output
