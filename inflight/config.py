"""Reading the configuration into a ConfigOpts and checking it at once."""

import re
import sys

from oslo_config import cfg
from oslo_log import log
import oslo_messaging
import sqlalchemy as sa

from inflight import opts
from inflight import probes
from inflight import version


_PREFIX = re.compile(r'[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*')


class ConfigError(Exception):
    """The configuration cannot be used; the message says why, in one line."""


def parse_args(conf, argv, prog):
    """Register inflight's options on `conf` and parse `argv` into it."""
    opts.register_opts(conf)
    log.register_options(conf)
    try:
        conf(argv, project='inflight', prog=prog,
             version=version.version_string())
    except cfg.Error as e:
        raise ConfigError(e)


def check(conf, need_database=True):
    """Read every option now, so that a bad value fails at start, not later."""
    try:
        oslo_messaging.TransportURL.parse(conf)  # registers transport_url
    except oslo_messaging.InvalidTransportURL as e:
        raise ConfigError('[DEFAULT] transport_url is not a transport URL '
                          '(for example rabbit://user:pass@host:5672/): %s'
                          % e)
    for group, group_opts in opts.list_opts():
        section = conf if group == 'DEFAULT' else conf[group]
        for opt in group_opts:
            try:
                getattr(section, opt.dest)
            except cfg.Error as e:
                reason = str(e).rpartition(' is not valid: ')[2]
                raise ConfigError('[%s] %s is not valid: %s'
                                  % (group, opt.dest, reason))
    if not _PREFIX.fullmatch(conf.statsd.prefix):
        raise ConfigError('[statsd] prefix must be graphite nodes joined by '
                          'dots, each of A-Z a-z 0-9 _ -')
    unknown = set(conf.inflight.probe_methods.values()) - set(probes.ORDER)
    if unknown:
        raise ConfigError('[inflight] probe_methods names unknown kinds %s; '
                          'kinds are %s' % (', '.join(sorted(unknown)),
                                            ', '.join(probes.ORDER)))
    if not need_database:
        return
    if not conf.database.connection:
        raise ConfigError('[database] connection is not set: give the URL of '
                          'the database holding the services table')
    try:
        sa.engine.make_url(conf.database.connection)
    except sa.exc.ArgumentError:
        raise ConfigError('[database] connection is not a database URL '
                          '(for example mysql+pymysql://user:pass@host/nova)')


def fail(prog, error):
    """Report a configuration error on one line; the exit status for it."""
    message = ' '.join(str(error).split())
    print('%s: error: %s' % (prog, message), file=sys.stderr)
    return 2
