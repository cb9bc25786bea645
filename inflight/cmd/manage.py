"""inflight: the operator's command (`inflight ping`, `inflight db sync`,
`inflight demo`)."""

import os
import sys

from oslo_config import cfg
from oslo_log import log

from inflight import config
from inflight import logs
from inflight import db
from inflight import demo
from inflight import ping
from inflight import probes


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

    db_parser = subparsers.add_parser('db', help='the services table')
    db_actions = db_parser.add_subparsers(dest='action', required=True)
    db_actions.add_parser('sync', help=db_sync.__doc__).set_defaults(
        func=db_sync)
    demo_parser = subparsers.add_parser('demo', help=run_demo.__doc__)
    demo_parser.add_argument('--duration', type=float, default=8.0,
                             help='seconds to probe for (default 8)')
    demo_parser.set_defaults(func=run_demo)


def main(argv=None):
    conf = cfg.CONF
    conf.register_cli_opt(cfg.SubCommandOpt(
        'command', title='commands', handler=add_command_parsers))
    try:
        config.parse_args(conf, sys.argv[1:] if argv is None else argv,
                          'inflight')
        conf.set_default('use_stderr', True)   # stdout is the command's own
        if conf.command.name == 'demo':
            demo.set_defaults(conf)
        if conf.command.name == 'ping':
            ping.set_defaults(conf)
        config.check(conf, need_database=conf.command.name != 'ping')
    except config.ConfigError as e:
        return config.fail('inflight', e)
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
    except BrokenPipeError:         # `inflight ping ... | head`
        # Nothing more can be printed: point stdout at nothing, so that
        # Python's own flush at exit does not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == '__main__':
    sys.exit(main())
