"""Configuration: defaults, the sample file, and one clear line for bad config."""

import importlib.util
import os
import subprocess
import sys

from oslo_config import cfg
from oslo_config import generator
import pytest
import sqlalchemy as sa

from inflight import config
from inflight.cloud import db
from inflight import handover
from inflight import opts
from inflight.cmd import manage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

GOOD = """
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:5672/
host = prober1
[database]
connection = sqlite:////tmp/nova.sqlite
"""


def write(tmp_path, text, name='inflight.conf'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def parsed(tmp_path, *texts):
    conf = cfg.ConfigOpts()
    argv = []
    for i, text in enumerate(texts):
        argv += ['--config-file', write(tmp_path, text, '%d.conf' % i)]
    config.parse_args(conf, argv, 'nova-inflight')
    config.check(conf)
    return conf


def test_defaults(tmp_path):
    conf = parsed(tmp_path, GOOD)
    assert conf.inflight.sleep == 1.0
    assert conf.statsd.prefix == 'inflight'
    assert conf.statsd.port == 8125
    assert conf.control_exchange == 'nova'
    assert conf.inflight.register_service is False


def test_reads_nova_conf_then_inflight_conf(tmp_path):
    nova = GOOD + '\n[api]\nauth_strategy = keystone\n'
    conf = parsed(tmp_path, nova, '[inflight]\nsleep = 0.5\n'
                  '[statsd]\nprefix = cloud1.inflight\n')
    assert conf.inflight.sleep == 0.5
    assert conf.statsd.prefix == 'cloud1.inflight'
    assert conf.database.connection == 'sqlite:////tmp/nova.sqlite'


@pytest.mark.parametrize('extra, words', [
    ('[inflight]\nsleep = soon\n', 'sleep'),
    ('[inflight]\nprobe_interval = 0\n', 'probe_interval'),
    ('[statsd]\nport = 99999\n', 'port'),
    ('[DEFAULT]\ntransport_url = nonsense\n', 'transport_url'),
    ('[database]\nconnection = not a url\n', 'connection'),
])
def test_bad_values_fail_at_start(tmp_path, extra, words):
    with pytest.raises(config.ConfigError, match=words):
        parsed(tmp_path, GOOD, extra)


def test_missing_database_connection(tmp_path):
    with pytest.raises(config.ConfigError, match=r'\[database\] connection'):
        parsed(tmp_path, '[DEFAULT]\nhost = p\n')


def test_with_cells_the_api_database_is_enough(tmp_path):
    conf = parsed(tmp_path, '[DEFAULT]\nhost = p\n'
                  '[api_database]\nconnection = sqlite:////tmp/nova_api\n')
    assert conf.api_database.connection == 'sqlite:////tmp/nova_api'
    assert conf.database.connection is None


@pytest.mark.parametrize('extra, words', [
    ('[api_database]\nconnection = nosuchdb://x/\n',
     r'\[api_database\] connection is not a database URL'),
    ('[api_database]\nconnection = sqlite://\n'
     '[inflight]\nregister_service = true\n',
     r'register_service needs \[database\] connection'),
])
def test_cells_options_fail_at_start(tmp_path, extra, words):
    with pytest.raises(config.ConfigError, match=words):
        parsed(tmp_path, '[DEFAULT]\nhost = p\n', extra)


@pytest.mark.parametrize('args, text', [
    (['--config-file', '/nonexistent/inflight.conf'], None),
    (['--config-file', '{conf}'], GOOD + '[inflight]\nsleep = soon\n'),
    (['--config-file', '{conf}'], '[DEFAULT]\nhost = p\n'),
    (['--config-file', '{conf}'], '[inflight\nsleep = 1\n'),
])
def test_daemon_reports_bad_config_in_one_line(tmp_path, args, text):
    if text is not None:
        args = [a.format(conf=write(tmp_path, text)) for a in args]
    run = subprocess.run([sys.executable, '-m', 'inflight.cmd.inflight'] +
                         args, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith('nova-inflight: error: ')
    assert 'Traceback' not in run.stderr


def test_sample_config_matches_the_code(tmp_path):
    out = tmp_path / 'inflight.conf'
    generator.main(['--config-file',
                    os.path.join(ROOT, 'etc', 'inflight-config-generator.conf'),
                    '--output-file', str(out)])
    with open(os.path.join(ROOT, 'etc', 'inflight.conf')) as sample:
        assert out.read_text() == sample.read(), (
            'etc/inflight.conf is stale: regenerate it with '
            'oslo-config-generator --config-file '
            'etc/inflight-config-generator.conf')


def test_a_snapshot_puts_back_the_last_valid_configuration(tmp_path):
    conf = parsed(tmp_path, GOOD + '[inflight]\nsleep = 0.5\n'
                  'probe_methods = cells:baseapi\ninclude_topics = compute\n'
                  '[statsd]\nprefix = before\n')
    slot = handover.SharedSlot(size=65536)
    assert slot.save(config.snapshot(conf))     # kept as JSON
    write(tmp_path, GOOD.replace('prober1', 'prober2') +
          '[inflight]\nsleep = soon\n[statsd]\nprefix = after\n', '0.conf')
    conf.reload_config_files()
    with pytest.raises(config.ConfigError, match='sleep is not valid'):
        config.check(conf)
    config.restore(conf, slot.load())
    config.check(conf)
    assert conf.inflight.sleep == 0.5
    assert conf.inflight.probe_methods == {'cells': 'baseapi'}
    assert conf.inflight.include_topics == ['compute']
    assert conf.statsd.prefix == 'before' and conf.host == 'prober1'


# A driver SQLAlchemy knows whose module is not installed, per URL.
MISSING_DRIVERS = [
    ('mysql+mysqldb://nova:s3cr3t-db@db1/nova', 'MySQLdb', 'mysqlclient'),
    ('postgresql+pg8000://nova:s3cr3t-db@db1/nova', 'pg8000', 'pg8000'),
    ('postgresql+psycopg://nova:s3cr3t-db@db1/nova', 'psycopg',
     'psycopg[binary]'),
]


def not_installed(module):
    """Skip unless `module` is missing here, as the test needs."""
    if importlib.util.find_spec(module) is not None:
        pytest.skip('%s is installed here' % module)


@pytest.mark.parametrize('url, module, package', MISSING_DRIVERS)
def test_a_driver_not_installed_is_a_config_error(tmp_path, url, module,
                                                  package):
    not_installed(module)
    with pytest.raises(config.ConfigError) as error:
        parsed(tmp_path, GOOD, '[database]\nconnection = %s\n' % url)
    message = str(error.value)
    assert 's3cr3t-db' not in message
    assert url.replace('s3cr3t-db', '***') in message
    assert ' module %s, ' % module in message
    assert 'install %s ' % package in message


@pytest.mark.parametrize('url', [
    'mysql://nova:pw@db1/nova',
    'mariadb://nova:pw@db1/nova',
    'postgresql://nova:pw@db1/nova',
])
def test_urls_without_a_driver_use_one_installed(tmp_path, url):
    conf = parsed(tmp_path, GOOD, '[database]\nconnection = %s\n' % url)
    chosen = db.url(conf.database.connection)
    assert '+' in chosen.drivername     # a driver, named
    assert chosen.set(drivername=url.split(':')[0]) == sa.engine.make_url(url)
    chosen.get_dialect().import_dbapi()     # raises if not installed


@pytest.mark.parametrize('command', [
    ['inflight.cmd.inflight'],
    ['inflight.cmd.manage', 'db', 'sync'],
])
@pytest.mark.parametrize('url, module, package', MISSING_DRIVERS[:2])
def test_commands_report_a_missing_driver_in_one_line(tmp_path, command, url,
                                                      module, package):
    not_installed(module)
    conf = write(tmp_path, GOOD + '[database]\nconnection = %s\n' % url)
    run = subprocess.run([sys.executable, '-m', command[0],
                          '--config-file', conf] + command[1:],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    [line] = run.stderr.splitlines()
    prog = 'nova-inflight' if command[0].endswith('inflight') else 'inflight'
    assert line.startswith('%s: error: [database] connection ' % prog)
    assert 'module %s' % module in line and 's3cr3t-db' not in line
    assert run.stdout == ''


def test_unknown_options_in_inflights_own_groups(tmp_path):
    nova = write(tmp_path, GOOD + '[DEFAULT]\nmy_ip = 10.0.0.1\n'
                 '[database]\nmax_pool_size = 10\n[api]\nauth_strategy = x\n'
                 '[api_database]\nconnection = sqlite://\nmax_pool_size = 5\n'
                 'max_overflow = 50\nconnection_recycle_time = 3600\n'
                 '[infligth]\nsleep = 2\n', 'nova.conf')
    own = write(tmp_path, '[inflight]\ncycle_second = 5\nsleep = 0.5\n'
                'colour = red\n[statsd]\nhots = db1\nport = 8125\n'
                '[Inflight]\nSleep = 2\n', 'inflight.conf')
    folder = tmp_path / 'inflight.conf.d'
    folder.mkdir()
    write(folder, '[statsd]\nprefixe = cloud1\n', '10-statsd.conf')
    write(folder, '[inflight]\nprobe-timeout = 3\n', 'ignored.txt')
    conf = cfg.ConfigOpts()
    config.parse_args(conf, ['--config-file', nova, '--config-file', own,
                             '--config-dir', str(folder)], 'nova-inflight')
    config.check(conf)
    assert conf.inflight.sleep == 0.5 and conf.inflight.cycle_seconds == 60
    dropin = str(folder / '10-statsd.conf')
    assert config.unknown_options(conf) == [
        '[infligth] in %s is not an inflight group (did you mean '
        '[inflight]?); its options are ignored' % nova,
        '[inflight] cycle_second in %s is not an inflight option (did you '
        'mean cycle_seconds?); it is ignored' % own,
        '[inflight] colour in %s is not an inflight option; it is ignored'
        % own,
        '[statsd] hots in %s is not an inflight option (did you mean '
        'host?); it is ignored' % own,
        '[Inflight] Sleep in %s is not an inflight option (did you mean '
        'sleep?); it is ignored' % own,
        '[statsd] prefixe in %s is not an inflight option (did you mean '
        'prefix?); it is ignored' % dropin,
    ]


def test_every_inflight_option_is_known(tmp_path):
    lines = []
    for group, group_opts in opts.list_opts():
        lines.append('[%s]' % group)
        lines += ['%s = %s' % (opt.dest, opt.default) for opt in group_opts]
    conf = cfg.ConfigOpts()
    config.parse_args(conf, ['--config-file',
                             write(tmp_path, '\n'.join(lines))], 'x')
    assert config.unknown_options(conf) == []


def test_inflight_warns_of_unknown_options_one_line_each(tmp_path):
    conf = write(tmp_path, '[database]\nconnection = sqlite:///%s\n'
                 '[inflight]\ncycle_second = 5\n[statsd]\nhots = db1\n'
                 % (tmp_path / 'nova.sqlite'))
    run = subprocess.run([sys.executable, '-m', 'inflight.cmd.manage',
                          '--config-file', conf, 'db', 'sync'],
                         capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout) == (0, 'services table ready\n')
    warnings = run.stderr.splitlines()
    assert [line.split(' [-] ', 1)[1] for line in warnings] == [
        '[inflight] cycle_second in %s is not an inflight option (did you '
        'mean cycle_seconds?); it is ignored' % conf,
        '[statsd] hots in %s is not an inflight option (did you mean '
        'host?); it is ignored' % conf]
    assert all(' WARNING inflight.config ' in line for line in warnings)


def test_a_config_error_stays_one_line_beside_unknown_options(tmp_path):
    conf = write(tmp_path, '[DEFAULT]\ntransport_url = nonsense\n'
                 '[inflight]\ncycle_second = 5\n')
    run = subprocess.run([sys.executable, '-m', 'inflight.cmd.inflight',
                          '--config-file', conf],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    [line] = run.stderr.splitlines()
    assert line.startswith('nova-inflight: error: [DEFAULT] transport_url ')


def command_conf(tmp_path, argv):
    """`inflight ARGV` parsed, {a} and {b} in ARGV being two files."""
    a = write(tmp_path, GOOD + '[inflight]\nsleep = 0.5\n', 'a.conf')
    b = write(tmp_path, '[inflight]\nsleep = 0.25\n', 'b.conf')
    conf = cfg.ConfigOpts()
    conf.register_cli_opt(cfg.SubCommandOpt(
        'command', handler=manage.add_command_parsers))
    config.parse_args(conf, [arg.format(a=a, b=b) for arg in argv],
                      'inflight')
    return conf


@pytest.mark.parametrize('argv', [
    '--config-file {a} ping compute cmp1 -c 3',
    'ping compute cmp1 -c 3 --config-file {a}',
    'ping --config-file {a} compute cmp1 -c 3',
    'ping compute --config-file={a} cmp1 -c 3',
])
def test_global_options_before_or_after_the_command(tmp_path, argv):
    conf = command_conf(tmp_path, argv.split())
    assert conf.command.name == 'ping'
    assert (conf.command.service_topic, conf.command.service_host,
            conf.command.count) == ('compute', 'cmp1', 3)
    assert conf.inflight.sleep == 0.5 and conf.host == 'prober1'


@pytest.mark.parametrize('argv, command', [
    ('db sync --config-file {a} --debug', 'db'),
    ('demo --duration 2 -d --config-file {a}', 'demo'),
    ('--debug demo --config-file {a} --duration 2', 'demo'),
    ('--log-file ping ping compute cmp1 --config-file {a} -d', 'ping'),
])
def test_every_command_takes_the_global_options(tmp_path, argv, command):
    conf = command_conf(tmp_path, argv.split())
    assert conf.command.name == command
    assert conf.debug is True
    assert conf.inflight.sleep == 0.5


def test_config_files_keep_their_order_around_the_command(tmp_path):
    conf = command_conf(tmp_path, '--config-file {a} ping compute cmp1 '
                                  '--config-file {b}'.split())
    assert conf.inflight.sleep == 0.25          # the later file wins
    conf = command_conf(tmp_path, '--config-file {b} ping compute cmp1 '
                                  '--config-file {a}'.split())
    assert conf.inflight.sleep == 0.5


def test_only_global_options_move(tmp_path):
    assert config.global_options_first(
        ['ping', 'compute', 'h', '-c', '3', '--json', '--config-file', 'f',
         '--nodebug', '--', '--debug']) == [
        '--config-file', 'f', '--nodebug', 'ping', 'compute', 'h', '-c', '3',
        '--json', '--', '--debug']
    with pytest.raises(SystemExit):             # argparse's usage error
        command_conf(tmp_path, 'ping compute h --no-such-option'.split())


def test_coordination_typos_are_warned_and_bad_urls_refused(tmp_path):
    own = write(tmp_path, '[coordination]\nbackend_uri = redis://r1:6379\n',
                'inflight.conf')
    conf = cfg.ConfigOpts()
    nova = write(tmp_path, GOOD, 'nova.conf')
    config.parse_args(conf, ['--config-file', nova, '--config-file', own],
                      'nova-inflight')
    assert config.unknown_options(conf) == [
        '[coordination] backend_uri in %s is not an inflight option (did '
        'you mean backend_url?); it is ignored' % own]
    conf.set_override('backend_url', 'mysql://db1/tooz', 'coordination')
    with pytest.raises(config.ConfigError,
                       match=r'^\[coordination\] backend_url names no tooz '
                             r'driver that holds groups; drivers are .*redis'):
        config.check(conf, need_database=False)
    conf.set_override('backend_url', 'redis://r1:6379?timeout=5',
                      'coordination')
    config.check(conf, need_database=False)
