"""The systemd unit: valid for systemd, where the README installs the
daemon, and not restarting on a configuration error."""

import configparser
import os
import re
import shutil
import subprocess
import sys

import pytest

from inflight import config
from inflight import opts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
UNIT = os.path.join(ROOT, 'etc', 'systemd', 'nova-inflight.service')
README = os.path.join(ROOT, 'README.md')
# This environment's daemon: where pip put it, as it does in any venv.
DAEMON = os.path.join(os.path.dirname(sys.executable), 'nova-inflight')
# systemd's own, when a unit sets none (systemd-system.conf(5)).
DEFAULT_START_LIMIT = {'StartLimitIntervalSec': '10',
                       'StartLimitBurst': '5'}


def unit(path=UNIT):
    """The unit's sections, keys as written; a key given twice keeps the
    last value."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser


def seconds(value):
    """A systemd time span written in seconds, as the shipped unit writes."""
    assert re.fullmatch(r'\d+s?', value), 'write %r in seconds' % value
    return int(value.rstrip('s'))


def readme_blocks():
    """The README's code blocks, as text."""
    with open(README) as readme:
        return re.findall(r'^```\w*\n(.*?)^```', readme.read(),
                          re.MULTILINE | re.DOTALL)


def systemd_analyze():
    """The systemd-analyze command; skip without it, fail in CI."""
    path = shutil.which('systemd-analyze')
    if path:
        return path
    reason = 'systemd-analyze is not installed (Debian: package systemd)'
    if os.environ.get('CI') == 'true':
        pytest.fail('%s, and CI=true requires it' % reason)
    pytest.skip('%s; CI=true makes this a failure' % reason)


def verify(path):
    """Run systemd-analyze verify on a unit file; what it says."""
    run = subprocess.run([systemd_analyze(), 'verify', path],
                         capture_output=True, text=True, timeout=60)
    return run.returncode, (run.stdout + run.stderr).strip()


def shipped_with(tmp_path, daemon):
    """A copy of the shipped unit, its ExecStart running `daemon`."""
    program = unit()['Service']['ExecStart'].split()[0]
    with open(UNIT) as shipped:
        text = shipped.read()
    copy = tmp_path / 'nova-inflight.service'
    copy.write_text(text.replace('ExecStart=%s ' % program,
                                 'ExecStart=%s ' % daemon))
    return copy


def test_exec_start_is_where_the_readme_installs_the_daemon():
    [venv] = [m.group(1) for block in readme_blocks()
              for m in re.finditer(r'^python3 -m venv (\S+)$', block,
                                   re.MULTILINE)]
    assert f'{venv}/bin/pip install .' in '\n'.join(readme_blocks())
    command = unit()['Service']['ExecStart'].split()
    assert command[0] == os.path.join(venv, 'bin', 'nova-inflight')
    assert command[1:] == ['--config-file', '/etc/nova/nova.conf',
                           '--config-file', '/etc/inflight.conf']
    # pip puts the daemon in a venv's bin, as it did in this one.
    assert os.access(DAEMON, os.X_OK), DAEMON


def test_systemd_accepts_the_unit(tmp_path):
    assert verify(shipped_with(tmp_path, DAEMON)) == (0, '')


def test_systemd_checks_the_command_exists(tmp_path):
    status, said = verify(shipped_with(tmp_path, tmp_path / 'nova-inflight'))
    assert status != 0 and 'nova-inflight is not executable' in said


def test_systemd_accepts_the_readmes_drop_in(tmp_path):
    [drop_in] = [block for block in readme_blocks()
                 if block.startswith('[Service]\n')]
    command = [line for line in drop_in.splitlines()
               if line.startswith('ExecStart=/')]
    assert len(command) == 1 and 'ExecStart=\n' in drop_in
    program = command[0].split()[0][len('ExecStart='):]
    folder = tmp_path / 'nova-inflight.service.d'
    folder.mkdir()
    (folder / 'override.conf').write_text(drop_in.replace(program, DAEMON))
    copy = shipped_with(tmp_path, tmp_path / 'not-there')
    assert verify(copy) == (0, '')     # the drop-in's command replaced it
    merged = unit(copy)
    merged.read(folder / 'override.conf')
    assert merged['Service']['User'] != unit()['Service']['User']


def test_a_configuration_error_is_not_restarted(tmp_path, capsys):
    service = unit()['Service']
    assert service['Restart'] == 'on-failure'
    kept_down = service['RestartPreventExitStatus'].split()
    assert str(config.fail('nova-inflight', config.ConfigError('x'))) in \
        kept_down
    bad = tmp_path / 'bad.conf'
    bad.write_text('[inflight]\nsleep = soon\n')
    run = subprocess.run([DAEMON, '--config-file', str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert str(run.returncode) in kept_down, run.stderr


def test_other_failures_stop_restarting_at_the_start_limit():
    parsed = unit()
    limits = {key: parsed['Unit'].get(key, default)
              for key, default in DEFAULT_START_LIMIT.items()}
    burst = int(limits['StartLimitBurst'])
    interval = seconds(limits['StartLimitIntervalSec'])
    # A daemon failing at once is started again every RestartSec: the
    # burst's starts must fall within the interval for the limit to end it.
    assert (burst - 1) * seconds(parsed['Service']['RestartSec']) < interval


def test_the_unit_makes_the_folder_of_the_default_status_file():
    [option] = [opt for opt in opts.inflight_opts if opt.name == 'status_file']
    folder = os.path.dirname(option.default)
    service = unit()['Service']
    assert folder == os.path.join('/run', service['RuntimeDirectory'])
    assert service['RuntimeDirectoryMode'] == '0755'   # top runs as anyone
