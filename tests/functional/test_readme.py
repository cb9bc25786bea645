"""Every command line README.md shows runs in a test, as shown (with scratch
paths for /etc ones), and prints what README.md shows it print."""

import ast
import importlib
from importlib import metadata
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import sqlalchemy as sa

from harness import received_from
import readme

UNIT_TESTS = pathlib.Path(readme.ROOT) / 'tests' / 'unit'
RUN_BY = {
    'bin/demo': 'test_demo::test_the_first_command_needs_no_broker',
    'bin/demo --duration 30': 'test_demo::test_a_demo_stopped_by_a_signal',
    'bin/run-tests': 'test_readme::test_run_tests',
    'bin/run-tests tests/unit -x': 'test_readme::test_run_tests',
    'bin/run-tests -n 0': 'test_readme::test_run_tests',
    'python3 -m venv /opt/inflight': 'test_readme::test_pip_install',
    '/opt/inflight/bin/pip install .': 'test_readme::test_pip_install',
    '/openstack/venvs/nova/bin/pip install /path/to/inflight':
        'test_real_nova::'
        'test_nova_with_the_readme_step_gives_the_full_breakdown_quietly',
    'inflight --config-file /etc/nova/nova.conf ping conductor '
    'ctl1.example.org -c 2': 'test_readme::test_inflight_ping_of_a_hooked_service',
    'nova-inflight --config-file /etc/nova/nova.conf '
    '--config-file /etc/inflight.conf': 'test_readme::test_nova_inflight',
    'nova-inflight --config-file bad.conf':
        'test_readme::test_nova_inflight_with_a_bad_option',
    'inflight [--config-file ...] ping TOPIC HOST [-c COUNT] [-i INTERVAL] '
    '[--method KIND] [--json]': 'test_readme::test_inflight_ping',
    'inflight --config-file inflight.conf ping compute cmp1.example.org -c 4':
        'test_readme::test_inflight_ping',
    'inflight --config-file inflight.conf ping compute cmp2.example.org -c 3':
        'test_readme::test_inflight_ping',
    'inflight --config-file inflight.conf ping conductor ctl1.example.org '
    '-c 3': 'test_readme::test_inflight_ping',
    'inflight --config-file inflight.conf ping compute cmp9.example.org -c 2':
        'test_readme::test_inflight_ping',
    'echo $?': 'test_readme::test_inflight_ping',
    'inflight db sync --config-file /etc/inflight.conf':
        'test_readme::test_db_sync',
    'bin/grafana-cells':
        'test_grafana_cells::'
        'test_the_committed_files_are_what_bin_grafana_cells_makes',
    'bin/dashboard-pictures docs/dashboard':
        'test_dashboard_graphite::'
        'test_every_target_of_the_dashboard_draws_a_line_from_real_graphite',
    'promtool check rules etc/prometheus/inflight-rules.yml':
        'test_prometheus::test_the_readme_promtool_lines',
    'promtool test rules etc/prometheus/inflight-rules.test.yml':
        'test_prometheus::test_the_readme_promtool_lines',
    'inflight top': 'test_top::'
        'test_top_shows_the_deaf_service_first_and_refreshes_until_q',
    'inflight top [--status-file PATH] [--interval SECONDS] [--once]':
        'test_top::'
        'test_top_shows_the_deaf_service_first_and_refreshes_until_q',
}


def test_every_command_line_of_the_readme_has_its_test():
    shown = [line for line, _ in readme.commands()]
    assert sorted(set(shown)) == sorted(RUN_BY), (
        'README.md and RUN_BY disagree: give each command line README.md '
        'shows a test that runs it')
    for test in set(RUN_BY.values()):
        assert _defines(*test.split('::')), test


def _defines(module, name):
    """Whether the test module `module` has a test `name`: a module of
    tests/functional, or of tests/unit (for a script that only writes
    files), read as it is not on the path here."""
    unit = UNIT_TESTS / (module + '.py')
    if not unit.exists():
        return callable(getattr(importlib.import_module(module), name))
    return any(isinstance(node, ast.FunctionDef) and node.name == name
               for node in ast.parse(unit.read_text()).body)


def run(line, cwd, timeout=120, **paths):
    return subprocess.run(readme.argv(line, **paths), cwd=cwd, text=True,
                          capture_output=True, timeout=timeout)


def test_db_sync(sqlite_url, tmp_path):
    line = 'inflight db sync --config-file /etc/inflight.conf'
    assert readme.shown(line) is None
    conf = tmp_path / 'inflight.conf'
    conf.write_text('[database]\nconnection = %s\n' % sqlite_url)
    done = run(line, tmp_path, **{'/etc/inflight.conf': str(conf)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == 'services table ready\n'
    engine = sa.create_engine(sqlite_url)
    try:
        assert 'services' in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_nova_inflight_with_a_bad_option(tmp_path):
    line = 'nova-inflight --config-file bad.conf'
    (tmp_path / 'bad.conf').write_text('[inflight]\nsleep = soon\n')
    done = run(line, tmp_path)
    assert done.returncode == 2
    assert done.stdout == ''
    assert done.stderr.splitlines() == readme.shown(line)


def test_nova_inflight(processes, broker_url, services_db, statsd, tmp_path):
    line = ('nova-inflight --config-file /etc/nova/nova.conf '
            '--config-file /etc/inflight.conf')
    db_url, _ = services_db
    # Nova's exchange, as the daemon's default: the vhost is the test's own.
    processes.service('threading', broker_url, 'nova', 'compute',
                      'cmp1.example.org', db_url)
    nova = tmp_path / 'nova.conf'
    nova.write_text('[DEFAULT]\ntransport_url = %s\n[database]\n'
                    'connection = %s\n' % (broker_url, db_url))
    own = tmp_path / 'inflight.conf'
    own.write_text('[statsd]\nport = %d\n[inflight]\nsleep = 0.1\n'
                   'probe_interval = 0.1\ncycle_seconds = 1\n'
                   'refresh_interval = 0.5\n' % statsd.port)
    daemon = processes.command(
        readme.argv(line, **{'/etc/nova/nova.conf': str(nova),
                             '/etc/inflight.conf': str(own)}),
        'nova-inflight.log', cwd=tmp_path)
    statsd.wait_for(received_from(statsd, 'inflight',
                                  'compute.cmp1_example_org', 2))
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    assert 'Traceback' not in (tmp_path / 'nova-inflight.log').read_text()


def test_inflight_ping(processes, broker_url, broker_vhost, services_db,
                       tmp_path):
    """The README's transcript, from services like the ones it describes."""
    db_url, _ = services_db
    processes.service('eventlet', broker_url, 'nova', 'compute',
                      'cmp1.example.org', db_url)
    processes.service('threading', broker_url, 'nova', 'compute',
                      'cmp2.example.org', db_url, answers=('baseapi',))
    processes.service('threading', broker_url, 'nova', 'conductor',
                      'ctl1.example.org', db_url, answers=(), rpc_ping=True)
    (tmp_path / 'inflight.conf').write_text(
        '[DEFAULT]\ntransport_url = %s\n[inflight]\nprobe_timeout = 2\n'
        % broker_url)
    transcript = [line for line, test in RUN_BY.items()
                  if test == 'test_readme::test_inflight_ping'
                  and not line.startswith('inflight [')]
    done, ran = None, []
    for line, output in readme.commands():
        if line not in transcript:
            continue
        if line == 'echo $?':
            assert output == [str(done.returncode)]
        else:
            done = run(line, tmp_path)
            assert 'Traceback' not in done.stderr, done.stderr
            assert readme.shape(done.stdout.splitlines()) == \
                readme.shape(output), (line, done.stdout)
        ran.append(line)
    assert ran == transcript

    synopsis = ('inflight [--config-file ...] ping TOPIC HOST [-c COUNT] '
                '[-i INTERVAL] [--method KIND] [--json]')
    assert readme.shown(synopsis) is None
    for shown, given in [('[--config-file ...]', '--config-file inflight.conf'),
                         ('TOPIC HOST', 'compute cmp1.example.org'),
                         ('COUNT', '2'), ('INTERVAL', '0.5'),
                         ('KIND', 'inflight'), ('[', ''), (']', '')]:
        synopsis = synopsis.replace(shown, given)
    done = run(synopsis, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [p['kind'] for p in report['probes']] == ['inflight', 'inflight']
    assert report['summary']['received'] == 2


def test_run_tests(tmp_path):
    """bin/run-tests hands its arguments to pytest (here, with
    --collect-only: the suite does not run itself)."""
    listed = {}
    for line in ('bin/run-tests', 'bin/run-tests tests/unit -x',
                 'bin/run-tests -n 0'):
        assert readme.shown(line) is None
        done = subprocess.run(
            readme.argv(line) + ['--collect-only', '-q', '-p',
                                 'no:cacheprovider'],
            cwd=tmp_path, text=True, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr
        listed[line] = {test.split('/')[1] for test in done.stdout.split()
                        if test.startswith('tests/')}
    assert listed == {'bin/run-tests': {'unit', 'functional'},
                      'bin/run-tests tests/unit -x': {'unit'},
                      'bin/run-tests -n 0': {'unit', 'functional'}}


def test_pip_install(tmp_path):
    """The README's two lines install both commands in a virtualenv (here
    one of the test's own, without the requirements, which this Python
    has: they are made visible to it)."""
    lines = ['python3 -m venv /opt/inflight',
             '/opt/inflight/bin/pip install .']
    for line in lines:
        assert readme.shown(line) is None
    source = tmp_path / 'inflight'
    shutil.copytree(readme.ROOT, source, ignore=shutil.ignore_patterns(
        '.git', '.venv', '.tox', '__pycache__', '*.egg-info', 'build',
        '.pytest_cache', '.hypothesis'))
    venv = tmp_path / 'opt-inflight'
    paths = {'/opt/inflight': str(venv)}
    done = subprocess.run(readme.argv(lines[0], **paths), cwd=source,
                          text=True, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    site, = venv.glob('lib/python*/site-packages')
    (site / 'requirements-here.pth').write_text(
        '\n'.join(p for p in sys.path if p.endswith('site-packages')))
    done = subprocess.run(
        readme.argv(lines[1], **{'/opt/inflight/bin/pip':
                                 str(venv / 'bin' / 'pip')}) +
        ['--quiet', '--no-deps'], cwd=source, text=True, capture_output=True,
        timeout=300)
    assert done.returncode == 0, done.stderr
    env = dict(os.environ)
    for command in readme.PROGRAMS:
        done = subprocess.run([str(venv / 'bin' / command), '--version'],
                              cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == metadata.version('inflight')
    where = subprocess.run(
        [str(venv / 'bin' / 'python'), '-c',
         'import inflight; print(inflight.__file__)'],
        cwd=tmp_path, text=True, capture_output=True, timeout=60)
    assert where.stdout.startswith(str(venv)), where.stdout


def test_inflight_ping_of_a_hooked_service(processes, broker_url, services_db,
                                           tmp_path):
    """The check that the hook took hold: a Nova-like service with no
    inflight code, the README's line in its configuration file."""
    line = ('inflight --config-file /etc/nova/nova.conf ping conductor '
            'ctl1.example.org -c 2')
    db_url, _ = services_db
    processes.service('threading', broker_url, 'nova', 'conductor',
                      'ctl1.example.org', db_url, answers=('baseapi', 'hook'))
    nova = tmp_path / 'nova.conf'
    nova.write_text('[DEFAULT]\ntransport_url = %s\n' % broker_url)
    done = run(line, tmp_path, **{'/etc/nova/nova.conf': str(nova)})
    assert done.returncode == 0, done.stderr
    assert readme.shape(done.stdout.splitlines()) == \
        readme.shape(readme.shown(line)), done.stdout
