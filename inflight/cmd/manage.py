"""inflight: the operator's command (`inflight db sync`, `inflight demo`)."""

import sys

from oslo_config import cfg
from oslo_log import log

from inflight import config
from inflight import db
from inflight import demo


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


def add_command_parsers(subparsers):
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
        if conf.command.name == 'demo':
            demo.set_defaults(conf)
        config.check(conf)
    except config.ConfigError as e:
        return config.fail('inflight', e)
    log.setup(conf, 'inflight')
    try:
        return conf.command.func(conf)
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
