"""inflight: the operator's command (`inflight ping`, `inflight top`,
`inflight db sync`, `inflight demo`)."""

import os
import sys

from oslo_config import cfg
from oslo_log import log

from inflight import config
from inflight import logs
from inflight.cloud import db
from inflight import demo
from inflight import ping
from inflight import probes
from inflight import top


def db_sync(conf):
    """Create the services table, for a cloud without Nova's database."""
    engine = db.create_engine(conf.database.connection, read_only=False)
    try:
        db.sync(engine)
    finally:
        engine.dispose()
    print('services table ready')
    return 0


def run_demo(conf):
    """Probe a few demo services on an embedded default and show the timings."""
    return demo.run(conf, conf.command.duration)


def run_ping(conf):
    """Probe one service like ping(8): each probe's breakdown, then a summary."""
    args = conf.command
    return ping.run(conf, args.service_topic, args.service_host, args.count,
                    args.interval, args.method, args.json)


def run_top(conf):
    """Every service the running nova-inflight probes, worst first, live."""
    args = conf.command
    path = args.status_file or conf.inflight.status_file
    if not path:
        print('inflight top: error: [inflight] status_file is empty, so '
              'nova-inflight writes no status file: set it, or give '
              '--status-file PATH', file=sys.stderr)
        return 1
    return top.run(path, args.interval, args.once)


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise ValueError(text)
        return value
    parse.__name__ = kind.__name__
    return parse


def add_command_parsers(subparsers):
    ping_parser = subparsers.add_parser('ping', help=run_ping.__doc__)
    ping_parser.add_argument('service_topic', metavar='TOPIC',
                             help='the service\'s topic, e.g. compute')
    ping_parser.add_argument('service_host', metavar='HOST',
                             help='the service\'s host')
    ping_parser.add_argument('-c', '--count', type=positive(int), default=5,
                             help='probes to send (default 5)')
    ping_parser.add_argument('-i', '--interval', type=positive(float),
                             default=1.0,
                             help='seconds from one probe to the next '
                                  '(default 1)')
    ping_parser.add_argument('--method', choices=probes.ORDER,
                             help='probe with this kind only (default: the '
                                  'richest the service answers)')
    ping_parser.add_argument('--json', action='store_true',
                             help='print one JSON document instead')
    ping_parser.set_defaults(func=run_ping)

    top_parser = subparsers.add_parser('top', help=run_top.__doc__)
    top_parser.add_argument('--status-file', metavar='PATH',
                            help='the file nova-inflight writes (default: '
                                 '[inflight] status_file)')
    top_parser.add_argument('--interval', type=positive(float), default=2.0,
                            help='seconds between two reads (default 2)')
    top_parser.add_argument('--once', action='store_true',
                            help='print every service once and exit')
    top_parser.set_defaults(func=run_top)

    db_parser = subparsers.add_parser('db', help='the services table')
    db_actions = db_parser.add_subparsers(dest='action', required=True)
    db_actions.add_parser('sync', help=db_sync.__doc__).set_defaults(
        func=db_sync)
    demo_parser = subparsers.add_parser('demo', help=run_demo.__doc__)
    demo_parser.add_argument('--duration', type=float, default=8.0,
                             help='seconds to probe for (default 8)')
    demo_parser.set_defaults(func=run_demo)


def _parsed_without_files(conf, argv, command):
    """Parse `argv` into `conf` again, reading no configuration file; True
    if that parses and asks for `command`."""
    kept, args = [], list(argv)
    while args:
        arg = args.pop(0)
        if arg in ('--config-file', '--config-dir'):
            args = args[1:]
        elif not arg.startswith(('--config-file=', '--config-dir=')):
            kept.append(arg)
    try:
        conf(config.global_options_first(kept), project='inflight',
             prog='inflight', default_config_files=[], default_config_dirs=[])
    except cfg.Error:
        return False
    return conf.command.name == command


def main(argv=None):
    conf = cfg.CONF
    conf.register_cli_opt(cfg.SubCommandOpt(
        'command', title='commands', handler=add_command_parsers))
    argv = sys.argv[1:] if argv is None else argv
    try:
        try:
            config.parse_args(conf, argv, 'inflight')
        except config.ConfigError:
            # `inflight top` needs no configuration: where its files cannot
            # be read (by a user who may not read them), it goes on without.
            if not _parsed_without_files(conf, argv, 'top'):
                raise
        bare = conf.command.name == 'top'    # reads the status file alone
        if not bare:
            conf.set_default('use_stderr', True)   # stdout is the command's
            if conf.command.name == 'demo':
                demo.set_defaults(conf)
            if conf.command.name == 'ping':
                ping.set_defaults(conf)
            config.check(conf, need_database=conf.command.name != 'ping')
    except config.ConfigError as e:
        return config.fail('inflight', e)
    if not bare:
        log.setup(conf, 'inflight')
        logs.quiet_library_noise()
        config.warn_unknown_options(conf)
    try:
        return conf.command.func(conf)
    except config.ConfigError as e:     # the broker refused the login, say
        return config.fail('inflight', e)
    except demo.Stopped as e:
        return e.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:         # `inflight ping ... | head`, say
        # Nothing more can be printed: point stdout at nothing, so that
        # Python's own flush at exit does not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == '__main__':
    sys.exit(main())
