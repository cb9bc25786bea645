"""Real, unmodified Nova for the tests: nova-conductor, nova-scheduler and
nova-compute (fake virt driver) as processes on the local RabbitMQ.

Nova and Placement come from the package index, into a virtualenv outside
the checkout, built once per Python and requirement list and reused
(`base_venv`). Each test session makes a light virtualenv on top of it with
the checkout under test installed (`session_venv`), so that sessions of
different checkouts share the big one without touching it. Each `NovaCloud`
has its own RabbitMQ virtual host (deleted at its end, with every queue and
exchange Nova made), databases copied from the ones `nova-manage` made once
a session (`database_template`), a Placement, and a log file per service.
Its cell database, which every service writes its heartbeat to, is on
MariaDB as in a deployment: on SQLite, one reader's open transaction holds
every writer up, and a heartbeat kept waiting past SQLite's 5 s fails with
an ERROR in Nova's log. The API database and cell0, which nothing writes
while a cloud runs, are SQLite files. Its services send a heartbeat every
REPORT_INTERVAL seconds rather than Nova's 10, so that waiting for one is
short.
"""

import collections
import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

import sqlalchemy as sa

from harness import die_with_parent, read_line
from inflight.cloud import db
import servers

# PyMySQL: Nova's driver for its cell database on MariaDB.
REQUIREMENTS = ('nova==34.0.0', 'openstack-placement==16.0.0',
                'PyMySQL==1.1.1')
MODES = ('eventlet', 'threading')
SERVICES = ('conductor', 'scheduler', 'compute')
CHECKOUT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
# What each mode leaves in a Nova service's log: the warning Nova prints on
# eventlet (nova/monkey_patch.py); the threading backend's own logger.
MODE_MARKS = {'eventlet': 'Eventlet based concurrency mode is deprecated',
              'threading': 'oslo_service.backend._threading.service'}
READY_SECONDS = 90.0
# Once their logs are read, the services are stopped with SIGTERM and, past
# STOP_SECONDS, SIGKILL: each takes seconds to shut down gracefully, and
# deleting the vhost clears what they leave on the broker.
STOP_SECONDS = 2.0
REPORT_INTERVAL = 2
DATABASES = ('nova_api.sqlite', 'nova_cell0.sqlite')

# The cell `nova-manage cell_v2 create_cell` maps the services' database as:
# nova.conf has [api_database] connection, so nova-inflight probes by cell.
CELL = 'cell1'


# A Python that sees Nova and the checkout, and the folder of Nova's commands
# (run with that Python, whatever their first line says).
Venv = collections.namedtuple('Venv', 'python scripts')


class Unavailable(Exception):
    """Real Nova cannot be had on this machine; the reason says why."""


def _site_packages(venv):
    return venv / 'lib' / ('python%d.%d' % sys.version_info[:2]) / \
        'site-packages'


def _tail(path, lines=30):
    return '\n'.join(pathlib.Path(path).read_text().splitlines()[-lines:])


def _run(args, log, timeout=300):
    """Run `args`, output appended to `log`; False if it failed."""
    with open(log, 'a') as out:
        out.write('$ %s\n' % ' '.join(map(str, args)))
        out.flush()
        return subprocess.run(list(map(str, args)), stdout=out,
                              stderr=subprocess.STDOUT, timeout=timeout,
                              stdin=subprocess.DEVNULL).returncode == 0


def cache_dir():
    base = os.environ.get('XDG_CACHE_HOME') or pathlib.Path.home() / '.cache'
    return pathlib.Path(base) / 'inflight'


def base_venv_path():
    """Where the virtualenv for this Python and REQUIREMENTS is cached."""
    key = json.dumps([sys.version, sys.base_prefix, sorted(REQUIREMENTS)])
    return cache_dir() / ('nova-venv-%s'
                          % hashlib.sha256(key.encode()).hexdigest()[:12])


def base_venv():
    """The virtualenv with Nova and Placement, built if it is not there.

    It is built in a folder of its own next to it; only once the build has
    succeeded does the name point at it (a symbolic link, replaced in one
    step: scripts in a virtualenv name its folder, which never moves). A
    lock keeps concurrent sessions from building it twice; builds that were
    cut short are removed."""
    link = base_venv_path()
    link.parent.mkdir(parents=True, exist_ok=True)
    with open(str(link) + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if link.exists():
            return link
        for unfinished in link.parent.glob(link.name + '.build-*'):
            shutil.rmtree(unfinished)
        build = pathlib.Path(tempfile.mkdtemp(prefix=link.name + '.build-',
                                              dir=link.parent))
        log = build / 'build.log'
        if not (_run([sys.executable, '-m', 'venv', build], log) and
                _run([build / 'bin' / 'python', '-m', 'pip', 'install',
                      '--quiet', *REQUIREMENTS], log, timeout=900)):
            errors = [line for line in log.read_text().splitlines()
                      if line.startswith('ERROR')]
            shutil.rmtree(build)
            raise Unavailable('pip could not install %s: %s'
                              % (' '.join(REQUIREMENTS),
                                 errors[-1] if errors else 'see pip'))
        os.symlink(build.name, str(link) + '.new')
        os.replace(str(link) + '.new', link)
        return link


def session_venv(base, path):
    """A virtualenv at `path` that sees `base`'s packages and has this
    checkout installed (not editable: as an operator installs it): a Venv."""
    path = pathlib.Path(path)
    log = path.parent / (path.name + '.log')
    source = path.parent / (path.name + '-source')
    shutil.copytree(CHECKOUT, source, ignore=shutil.ignore_patterns(
        '.git', '.venv', '.tox', 'build', 'dist', '*.egg-info',
        '__pycache__', '.pytest_cache', '.hypothesis'))
    assert _run([sys.executable, '-m', 'venv', '--without-pip', path], log)
    site = _site_packages(path)
    (site / 'nova-venv.pth').write_text(
        'import site; site.addsitedir(%r)\n'
        % str(_site_packages(base.resolve())))
    assert _run([path / 'bin' / 'python', '-m', 'pip', 'install', '--quiet',
                 '--no-deps', '--no-cache-dir', source], log), _tail(log)
    shutil.rmtree(source)
    return Venv(str(path / 'bin' / 'python'), base / 'bin')


# Nova's databases made once a session: `path` holds the SQLite ones,
# `cell_url` names the MariaDB one of CELL.
Template = collections.namedtuple('Template', 'path cell_url')


def database_template(venv, path, cell_url):
    """Nova's databases made by `nova-manage`, as a deployment makes them
    (the API database, cell0 and CELL on `cell_url` mapped), for clouds to
    copy: one set of migrations a session rather than one a cloud."""
    path = pathlib.Path(path)
    conf = path / 'nova-manage.conf'
    conf.write_text(
        '[DEFAULT]\ntransport_url = %stemplate\nstate_path = %s\n'
        '[api_database]\nconnection = sqlite:///%s\n'
        '[database]\nconnection = %s\n'
        % (servers.BROKER_URL, path / 'state', path / 'nova_api.sqlite',
           cell_url))
    manage = [venv.python, venv.scripts / 'nova-manage', '--config-file', conf]
    log = path / 'nova-manage.log'
    for command in (['api_db', 'sync'],
                    ['cell_v2', 'map_cell0', '--database_connection',
                     'sqlite:///%s' % (path / 'nova_cell0.sqlite')],
                    ['cell_v2', 'create_cell', '--name', CELL],
                    ['db', 'sync']):
        assert _run(manage + command, log), _tail(log)
    return Template(path, cell_url)


def copy_mariadb(source_url, target_url):
    """Every table of `source_url`'s database, as created and with its
    rows, into `target_url`'s (empty, on the same server)."""
    engine = sa.create_engine(target_url, isolation_level='AUTOCOMMIT')
    source = sa.engine.make_url(source_url).database
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql('SET foreign_key_checks = 0')
            tables = conn.exec_driver_sql(
                "SHOW FULL TABLES FROM `%s` WHERE Table_type = 'BASE TABLE'"
                % source).scalars().all()
            for table in tables:
                ddl = conn.exec_driver_sql('SHOW CREATE TABLE `%s`.`%s`'
                                           % (source, table)).one()[1]
                conn.exec_driver_sql(ddl)
                conn.exec_driver_sql('INSERT INTO `%s` SELECT * FROM `%s`.`%s`'
                                     % (table, source, table))
    finally:
        engine.dispose()


def rabbitmqctl(*args):
    try:
        run = subprocess.run(['rabbitmqctl', '-q', *args],
                             capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise Unavailable('rabbitmqctl is not installed')
    assert run.returncode == 0, run.stderr


class NovaCloud:
    """Nova's control services and one compute, on one host, in `path`.

    `mode` is `eventlet` or `threading` (`[DEFAULT] concurrency_backend`);
    `extra_conf` is added to every service's configuration file; `venv`
    is a Venv; `template` the Template of `database_template`."""

    def __init__(self, venv, template, path, mode, extra_conf=''):
        self.venv = venv
        self.template = template
        self.path = pathlib.Path(path)
        self.mode = mode
        self.extra_conf = extra_conf
        name = uuid.uuid4().hex[:10]
        self.host = 'nova-%s.test' % name
        self.vhost = 'inflight-nova-%s' % name
        self.transport_url = servers.BROKER_URL + self.vhost
        self.db_url = None
        self._drop_db = None
        self.conf = self.path / 'nova.conf'
        self.compute_conf = self.path / 'nova-compute.conf'
        self.procs = {}
        self._logs = []
        self._vhost_made = False

    def start(self):
        """Make the databases, start every service, wait until each has
        sent its first heartbeat (its RPC servers consume by then)."""
        placement = self._start_placement()
        rabbitmqctl('add_vhost', self.vhost)
        self._vhost_made = True
        rabbitmqctl('set_permissions', '-p', self.vhost, 'guest',
                    '.*', '.*', '.*')
        self._make_databases()
        line = read_line(placement, timeout=READY_SECONDS)
        assert line.startswith('LISTENING '), self.log('placement')
        self._write_confs(int(line.split()[1]))
        self._start('conductor', self.conf)
        self._start('scheduler', self.conf)
        # nova-compute asks the conductor first, and waits long for it.
        self.wait_for_heartbeats(['conductor'])
        self._start('compute', self.compute_conf)
        self.wait_for_heartbeats(SERVICES)
        for name in SERVICES:
            for mode, mark in MODE_MARKS.items():
                assert (mark in self.log(name)) == (mode == self.mode), \
                    'nova-%s is not on %s:\n%s' % (
                        name, self.mode, self.log(name))

    def _start_placement(self):
        conf_dir = self.path / 'placement'
        conf_dir.mkdir()
        (conf_dir / 'placement.conf').write_text(
            '[DEFAULT]\nlog_file = %s\n'
            '[api]\nauth_strategy = noauth2\n'
            '[placement_database]\nconnection = sqlite:///%s\n'
            'sync_on_startup = true\n'
            % (self.path / 'placement.log', self.path / 'placement.sqlite'))
        return self._spawn('placement', [str(HERE / 'placement_server.py'),
                                         str(conf_dir)],
                           stdout=subprocess.PIPE, text=True)

    def _write_confs(self, placement_port):
        common = (
            '[DEFAULT]\n'
            'transport_url = %(transport_url)s\n'
            'control_exchange = nova\n'
            'host = %(host)s\n'
            'report_interval = %(report)d\n'
            'concurrency_backend = %(mode)s\n'
            'state_path = %(path)s/state\n'
            'compute_driver = fake.SmallFakeDriver\n'
            '[oslo_concurrency]\n'
            'lock_path = %(path)s/lock\n'
            '[conductor]\n'
            'workers = 1\n'
            '[scheduler]\n'
            'workers = 1\n'
            '[placement]\n'
            'auth_type = admin_token\n'
            'endpoint = http://127.0.0.1:%(port)d\n'
            'token = admin\n'
            % dict(transport_url=self.transport_url, host=self.host,
                   mode=self.mode, path=self.path, port=placement_port,
                   report=REPORT_INTERVAL))
        # As deployed: the computes reach the databases through the
        # conductor only, and do not have their address.
        self.compute_conf.write_text(common + self.extra_conf)
        self.conf.write_text(
            common +
            '[api_database]\nconnection = sqlite:///%s\n'
            '[database]\nconnection = %s\n'
            % (self.path / 'nova_api.sqlite', self.db_url) + self.extra_conf)

    def _make_databases(self):
        """The template's databases, the cells mapped to this cloud's."""
        for name in DATABASES:
            shutil.copyfile(self.template.path / name, self.path / name)
        self.db_url, self._drop_db = servers.scratch_database('mariadb')
        copy_mariadb(self.template.cell_url, self.db_url)
        with sqlite3.connect(self.path / 'nova_api.sqlite') as api:
            api.execute('UPDATE cell_mappings SET database_connection = ? '
                        "WHERE name = 'cell0'",
                        ('sqlite:///%s' % (self.path / 'nova_cell0.sqlite'),))
            api.execute('UPDATE cell_mappings SET transport_url = ?, '
                        'database_connection = ? WHERE name = ?',
                        (self.transport_url, self.db_url, CELL))
        api.close()

    def _start(self, name, conf):
        self._spawn(name, [str(self.venv.scripts / ('nova-' + name)),
                           '--config-file', str(conf)],
                    stderr=subprocess.STDOUT)

    def _spawn(self, name, args, **kwargs):
        """Run `args` with the venv's Python, its output in `name`.log, in
        a process group of its own (its workers stop with it)."""
        log = open(self.log_path(name), 'a')
        self._logs.append(log)
        kwargs = dict(dict(stdout=log, stderr=log), **kwargs)
        proc = self.procs[name] = subprocess.Popen(
            [self.venv.python, *args], stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=die_with_parent, **kwargs)
        return proc

    def heartbeats(self):
        """{topic: report_count} of this host's services."""
        engine = db.create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(db.services.c.topic, db.services.c.report_count)
                    .where(db.services.c.host == self.host)).all()
        finally:
            engine.dispose()
        return dict(rows)

    def wait_for_heartbeats(self, services, more_than=None):
        """Until each of `services` has a heartbeat (more than `more_than`
        gives, {service: count}); a service that exits fails the wait."""
        more_than = more_than or {}
        deadline = time.monotonic() + READY_SECONDS
        while True:
            counts = self.heartbeats()
            if all(counts.get(s, 0) > more_than.get(s, 0) for s in services):
                return counts
            for name in services:
                assert self.procs[name].poll() is None, \
                    'nova-%s exited:\n%s' % (name, _tail(self.log_path(name)))
            assert time.monotonic() < deadline, \
                'no heartbeat from %s within %ss: %r' % (
                    ', '.join(services), READY_SECONDS, counts)
            time.sleep(0.2)

    def services(self):
        """The (topic, host) of every enabled service in the cell database."""
        engine = db.create_engine(self.db_url)
        try:
            return [(row.topic, row.host)
                    for row in db.enabled_services(engine)]
        finally:
            engine.dispose()

    @contextlib.contextmanager
    def reading_services(self):
        """A transaction open on the cell database that has read the
        services table, as a long `nova service-list` holds one."""
        engine = db.create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql('BEGIN')
                conn.execute(sa.select(db.services)).all()
                yield
        finally:
            engine.dispose()

    def log_path(self, name):
        return self.path / ('%s.log' % name)

    def log(self, name):
        return self.log_path(name).read_text()

    def mark(self):
        """Where each service's log ends now, for `problems(since=...)`."""
        return {name: len(self.log(name)) for name in SERVICES}

    def problems(self, since=None):
        """{service: its log lines with ERROR, CRITICAL or a Traceback}
        (since a `mark()`), services with none left out.

        Read them before `stop()`: what Nova logs while it stops is its
        own (nova-compute 34 may log an ERROR with a traceback when a
        periodic task falls due during its graceful shutdown)."""
        since = since or {}
        found = {}
        for name in SERVICES:
            lines = [line for line in
                     self.log(name)[since.get(name, 0):].splitlines()
                     if ' ERROR ' in line or ' CRITICAL ' in line
                     or 'Traceback' in line]
            if lines:
                found[name] = lines
        return found

    def stop(self):
        """Stop the services, then Placement, then delete the virtual host
        (and with it every queue and exchange they made)."""
        for group in (SERVICES, ['placement']):
            procs = [self.procs[n] for n in group if n in self.procs]
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + STOP_SECONDS
            for proc in procs:
                try:
                    proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        for log in self._logs:
            log.close()
        if self._vhost_made:
            rabbitmqctl('delete_vhost', self.vhost)
        if self._drop_db:
            self._drop_db()
