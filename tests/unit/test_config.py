"""Configuration: defaults, the sample file, and one clear line for bad config."""

import os
import subprocess
import sys

from oslo_config import cfg
from oslo_config import generator
import pytest

from inflight import config
from inflight import handover
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
