"""Reading the configuration into a ConfigOpts and checking it at once."""

import difflib
import glob
from importlib import metadata
import json
import logging
import os
import re
import sys

from oslo_config import cfg
from oslo_log import log
import oslo_messaging
import sqlalchemy as sa

from inflight.cloud import db
from inflight.cloud import partition
from inflight import opts
from inflight import probes
from inflight import version


_PREFIX = re.compile(r'[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*')

LOG = logging.getLogger(__name__)

# The groups whose every option is inflight's: any other name in them is a
# mistake. [DEFAULT], [database] and [api_database] also hold Nova's
# options, in nova.conf (oslo.db's max_pool_size, ...).
OWN_GROUPS = ('inflight', 'statsd', 'prometheus', 'coordination')

# The package to install for a database driver's module, where their
# names differ.
_DRIVER_PACKAGES = {
    'MySQLdb': 'mysqlclient',
    'mysql': 'mysql-connector-python',
    'psycopg': 'psycopg[binary]',
    'psycopg2': 'psycopg2-binary',
}


class ConfigError(Exception):
    """The configuration cannot be used; the message says why, in one line."""


# Command-line options ConfigOpts adds itself as it parses: whether each
# takes a value.
_PARSER_OPTIONS = {'--config-file': True, '--config-dir': True,
                   '--version': False}


def register(conf):
    """Register every option inflight and oslo.log read on `conf`."""
    opts.register_opts(conf)
    log.register_options(conf)


def parse_args(conf, argv, prog):
    """Register inflight's options on `conf` and parse `argv` into it.

    Global options (--config-file, --debug, ...) may come after a command
    as well as before it."""
    register(conf)
    try:
        conf(global_options_first(argv), project='inflight', prog=prog,
             version=version.version_string())
    except cfg.Error as e:
        raise ConfigError(e)


class _CommandLineOpts(cfg.ConfigOpts):
    """A ConfigOpts that notes the options registered for the command line."""

    def __init__(self):
        self.cli_opts = []
        super().__init__()

    def register_cli_opt(self, opt, group=None, **kwargs):
        self.cli_opts.append(opt)
        return super().register_cli_opt(opt, group, **kwargs)


def _option_key(arg):
    """--log_file, --log-file and --log-file=x all name --log-file."""
    if not arg.startswith('--'):
        return arg
    return '--' + arg[2:].partition('=')[0].replace('_', '-')


def global_options():
    """{option string: whether it takes a value} of the global options."""
    scratch = _CommandLineOpts()
    register(scratch)
    options = dict(_PARSER_OPTIONS)
    for opt in scratch.cli_opts:
        if opt.positional:
            continue
        takes_value = not isinstance(opt, cfg.BoolOpt)
        for name in [opt.name] + [d.name for d in opt.deprecated_opts
                                  if d.name]:
            options[_option_key('--' + name)] = takes_value
            if not takes_value:
                options[_option_key('--no' + name)] = False
        if opt.short:
            options['-' + opt.short] = takes_value
    return options


def global_options_first(argv):
    """`argv` with the global options (and their values) moved before the
    command, in their order: oslo.config parses them only there."""
    options = global_options()
    front, rest = [], []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == '--':
            rest += [arg] + args
            break
        key = _option_key(arg)
        if key not in options:
            rest.append(arg)
            continue
        front.append(arg)
        if options[key] and '=' not in arg and args:
            front.append(args.pop(0))
    return front + rest


def check(conf, need_database=True):
    """Read every option now, so that a bad value fails at start, not later."""
    try:
        url = oslo_messaging.TransportURL.parse(conf)  # registers it too
    except (oslo_messaging.InvalidTransportURL, ValueError) as e:
        reason = (e if isinstance(e, oslo_messaging.InvalidTransportURL)
                  else 'a port is not a number')
        raise ConfigError('[DEFAULT] transport_url is not a transport URL '
                          '(for example rabbit://user:pass@host:5672/): %s'
                          % reason)
    drivers = {ep.name for ep in metadata.entry_points(
        group='oslo.messaging.drivers')}
    if url.transport not in drivers:
        raise ConfigError('[DEFAULT] transport_url names no oslo.messaging '
                          'driver; drivers are %s' % ', '.join(sorted(drivers)))
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
    _check_coordination(conf.coordination.backend_url)
    if not need_database:
        return
    if conf.api_database.connection:
        _check_database(conf.api_database.connection, 'api_database')
        if conf.database.connection:
            _check_database(conf.database.connection)
        elif conf.inflight.register_service:
            raise ConfigError('[inflight] register_service needs [database] '
                              'connection: the database to add this '
                              'prober\'s row to')
        return
    if not conf.database.connection:
        raise ConfigError('[database] connection is not set: give the URL of '
                          'the database holding the services table (or '
                          '[api_database] connection, for a cloud with '
                          'cells)')
    _check_database(conf.database.connection)


def _check_coordination(url):
    """Empty, or a URL of a tooz driver that holds partitioned groups."""
    if not url:
        return
    scheme = url.partition(':')[0]
    known = partition.drivers()
    if scheme not in known:
        raise ConfigError('[coordination] backend_url names no tooz driver '
                          'that holds groups; drivers are %s'
                          % ', '.join(known))


def _check_database(connection, group='database'):
    """A URL SQLAlchemy knows, whose driver is installed."""
    try:
        url = db.url(connection)
        dialect = url.get_dialect()
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError):
        raise ConfigError('[%s] connection is not a database URL '
                          'SQLAlchemy knows (for example '
                          'mysql+pymysql://user:pass@host/nova)' % group)
    try:
        dialect.import_dbapi()
    except ImportError as e:
        missing = e.name or str(e)
        ours = db.DRIVERS.get(url.get_backend_name())
        raise ConfigError(
            '[%s] connection %s needs the Python module %s, which is '
            'not installed: install %s where inflight is installed%s'
            % (group, url.render_as_string(hide_password=True), missing,
               _DRIVER_PACKAGES.get(missing, missing),
               ', or write %s://, whose driver inflight installs' % ours
               if ours and ours != url.drivername else ''))


def files_read(conf):
    """The files `conf` read: --config-file, then the last --config-dir's."""
    dirs = conf.config_dir
    dirs = [dirs] if isinstance(dirs, str) else dirs or []
    paths = list(conf.config_file or []) + [
        path for folder in dirs
        for path in sorted(glob.glob(os.path.join(
            os.path.expanduser(folder), '*.conf')))]
    return list(dict.fromkeys(paths))


def unknown_options(conf):
    """A sentence for each name in inflight's own groups it does not know."""
    known = {group: [opt.dest for opt in group_opts]
             for group, group_opts in opts.list_opts()
             if group in OWN_GROUPS}
    found = []
    for path in files_read(conf):
        sections = {}
        try:
            cfg.ConfigParser(os.path.expanduser(path), sections).parse()
        except (OSError, cfg.ParseError):   # oslo.config reported it already
            continue
        for section, values in sections.items():
            group = section.lower()   # as oslo.config reads group names
            if group in known:
                found += [_unknown(section, name, path, known[group])
                          for name in values if name not in known[group]]
            elif section != 'DEFAULT':
                nearest = difflib.get_close_matches(group, OWN_GROUPS, 1, 0.8)
                if nearest:
                    found.append('[%s] in %s is not an inflight group (did '
                                 'you mean [%s]?); its options are ignored'
                                 % (section, path, nearest[0]))
    return found


def _unknown(section, name, path, names):
    """The sentence for one unknown option, with the nearest known name."""
    nearest = difflib.get_close_matches(name, names, 1)
    return '[%s] %s in %s is not an inflight option%s; it is ignored' % (
        section, name, path,
        ' (did you mean %s?)' % nearest[0] if nearest else '')


def warn_unknown_options(conf):
    """Log a warning for each option unknown_options() finds."""
    for sentence in unknown_options(conf):
        LOG.warning('%s', sentence)


def snapshot(conf):
    """Every option check() reads, with its value: [[group, name, value]]."""
    return [[group, opt.dest,
             (conf if group == 'DEFAULT' else conf[group])[opt.dest]]
            for group, group_opts in opts.list_opts() for opt in group_opts]


def same(values, saved):
    """True if snapshot() `values` are those of a `saved` (JSON) snapshot."""
    return (values is not None and
            json.loads(json.dumps(values, default=str)) == saved)


def restore(conf, values):
    """Put back the values of a snapshot(), over what the files now say."""
    for group, name, value in values:
        conf.set_override(name, value, None if group == 'DEFAULT' else group)


def fail(prog, error):
    """Report a configuration error on one line; the exit status for it."""
    message = ' '.join(str(error).split())
    print('%s: error: %s' % (prog, message), file=sys.stderr)
    return 2
