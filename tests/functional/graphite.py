"""A real statsd -> carbon -> graphite-web pipeline on loopback, for the tests.

The Etsy statsd daemon comes from the npm registry, carbon-cache, whisper
and graphite-web from the package index, into a folder outside the checkout
built once per Python and pinned versions and reused (`install()`, as
real_nova.py does for Nova). Each `Pipeline` has its own folder: statsd's
configuration, carbon's configuration and whisper files, graphite-web's
settings and database, and a log per program; every port is a free one on
127.0.0.1.

Time is scaled down by TIME_SCALE (5) from a production set-up: statsd
flushes every 2 s instead of 10 s, and carbon keeps `2s:6h,12s:7d,2m:5y`
instead of `10s:6h,1m:7d,10m:5y`, the same resolutions relative to the flush
and the same spans, so each archive holds as many points per flush, and as
many flushes per point, as in production. Rollups use the
storage-aggregation.conf that statsd's documentation gives (`.lower` min and
`.upper*` max with xFilesFactor 0.1, `.sum`, `.count` and `stats_counts`
summed, everything else averaged with xFilesFactor 0.3). Carbon creates
whisper files as fast as metrics come (MAX_CREATES_PER_MINUTE = inf, not 50),
so that a short run has every metric from its first flush.
"""

import collections
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import die_with_parent
from real_nova import cache_dir

STATSD_PACKAGE = 'statsd@0.9.0'
PYTHON_REQUIREMENTS = ('carbon==1.1.10', 'whisper==1.1.10',
                       'graphite-web==1.1.10', 'Django<3.1', 'cairocffi')
TIME_SCALE = 5
FLUSH_SECONDS = 10.0 / TIME_SCALE
RETENTIONS = '2s:6h,12s:7d,2m:5y'      # production: 10s:6h,1m:7d,10m:5y
# statsd's documentation (docs/graphite.md), as deployments copy it.
STORAGE_AGGREGATION = """\
[min]
pattern = \\.lower$
xFilesFactor = 0.1
aggregationMethod = min

[max]
pattern = \\.upper(_\\d+)?$
xFilesFactor = 0.1
aggregationMethod = max

[sum]
pattern = \\.sum$
xFilesFactor = 0
aggregationMethod = sum

[count]
pattern = \\.count$
xFilesFactor = 0
aggregationMethod = sum

[count_legacy]
pattern = ^stats_counts.*
xFilesFactor = 0
aggregationMethod = sum

[default_average]
pattern = .*
xFilesFactor = 0.3
aggregationMethod = average
"""
READY_SECONDS = 60.0
STOP_SECONDS = 15.0

# Where the installed programs are: the virtualenv's Python and scripts,
# statsd's stats.js, and graphite-web's migrated empty database.
Install = collections.namedtuple('Install', 'python bin statsd database')


class Unavailable(Exception):
    """The pipeline cannot be had on this machine; the reason says why."""


def install_path():
    """Where the programs for this Python and these pins are cached."""
    key = json.dumps([sys.version, sys.base_prefix, STATSD_PACKAGE,
                      sorted(PYTHON_REQUIREMENTS)])
    return cache_dir() / ('graphite-%s'
                          % hashlib.sha256(key.encode()).hexdigest()[:12])


def _run(args, log, timeout=600, env=None):
    """Run `args`, output appended to `log`; False if it failed."""
    with open(log, 'a') as out:
        out.write('$ %s\n' % ' '.join(map(str, args)))
        out.flush()
        try:
            return subprocess.run(
                list(map(str, args)), stdout=out, stderr=subprocess.STDOUT,
                timeout=timeout, stdin=subprocess.DEVNULL,
                env=env).returncode == 0
        except (OSError, subprocess.TimeoutExpired) as e:
            out.write('%s\n' % e)
            return False


def _last_error(log, marks=('ERROR', 'npm error', 'npm ERR')):
    lines = [line for line in pathlib.Path(log).read_text().splitlines()
             if line.startswith(marks)]
    return lines[-1] if lines else 'it printed no error line'


def _layout(root):
    root = pathlib.Path(root)
    return Install(str(root / 'venv' / 'bin' / 'python'),
                   root / 'venv' / 'bin',
                   root / 'npm' / 'node_modules' / 'statsd' / 'stats.js',
                   root / 'graphite.db')


def install():
    """The programs, installed if they are not there: an Install.

    Built in a folder of its own next to where it goes; only once the whole
    build has succeeded does the name point at it (a symbolic link, replaced
    in one step: a virtualenv's scripts name its folder). A lock keeps
    concurrent runs from building it twice; cut-short builds are removed.
    Raises Unavailable without node and npm, or when a registry cannot be
    reached."""
    for program in ('node', 'npm'):
        if not shutil.which(program):
            raise Unavailable('%s is not installed (statsd runs on Node.js; '
                              'Debian: apt-get install nodejs npm)' % program)
    link = install_path()
    link.parent.mkdir(parents=True, exist_ok=True)
    with open(str(link) + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if link.exists():
            return _layout(link)
        for unfinished in link.parent.glob(link.name + '.build-*'):
            shutil.rmtree(unfinished)
        build = pathlib.Path(tempfile.mkdtemp(prefix=link.name + '.build-',
                                              dir=link.parent))
        try:
            _build(build)
        except Unavailable as e:
            failed = pathlib.Path(str(link) + '.failed.log')
            shutil.copy(build / 'build.log', failed)
            shutil.rmtree(build)
            raise Unavailable('%s (all of it: %s)' % (e, failed))
        os.symlink(build.name, str(link) + '.new')
        os.replace(str(link) + '.new', link)
        return _layout(link)


def _build(build):
    log = build / 'build.log'
    if not _run(['npm', 'install', '--prefix', build / 'npm',
                 '--omit=optional', '--no-audit', '--no-fund',
                 '--loglevel=error',
                 STATSD_PACKAGE], log):
        raise Unavailable('npm could not install %s: %s'
                          % (STATSD_PACKAGE, _last_error(log)))
    venv = build / 'venv'
    # GRAPHITE_NO_PREFIX: carbon and graphite-web go into the virtualenv,
    # not /opt/graphite.
    if not (_run([sys.executable, '-m', 'venv', venv], log) and
            _run([venv / 'bin' / 'python', '-m', 'pip', 'install', '--quiet',
                  *PYTHON_REQUIREMENTS], log,
                 env=dict(os.environ, GRAPHITE_NO_PREFIX='True'))):
        raise Unavailable('pip could not install %s: %s'
                          % (' '.join(PYTHON_REQUIREMENTS), _last_error(log)))
    # graphite-web's database (users, dashboards, tags), made once; each
    # pipeline starts from a copy.
    work = build / 'migrate'
    work.mkdir()
    settings = _webapp_settings(work, work / 'storage', None, None)
    if not _run([venv / 'bin' / 'django-admin', 'migrate', '--noinput'], log,
                env=settings):
        raise Unavailable('graphite-web could not make its database: %s'
                          % _last_error(log, ('django', 'Error', 'Traceback')))
    shutil.move(str(work / 'storage' / 'graphite.db'), build / 'graphite.db')
    shutil.rmtree(work)


def free_port(kind=socket.SOCK_STREAM):
    """A port nothing uses on 127.0.0.1 now (TCP, or UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _webapp_settings(conf_dir, storage, carbonlink_port, database):
    """The environment that runs graphite-web's Django with settings for
    `storage` (a module in `conf_dir` that graphite's settings import)."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    (storage / 'whisper').mkdir(parents=True, exist_ok=True)
    (storage / 'log' / 'webapp').mkdir(parents=True, exist_ok=True)
    (conf_dir / 'inflight_graphite_settings.py').write_text(
        'SECRET_KEY = %r\n'
        'TIME_ZONE = "UTC"\n'
        'STORAGE_DIR = %r\n'
        'WHISPER_DIR = %r\n'
        'STANDARD_DIRS = [WHISPER_DIR]\n'
        'LOG_DIR = %r\n'
        'CARBONLINK_HOSTS = %r\n'
        'DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",'
        ' "NAME": %r}}\n'
        % (os.urandom(16).hex(), str(storage), str(storage / 'whisper'),
           str(storage / 'log' / 'webapp'),
           ['127.0.0.1:%d' % carbonlink_port] if carbonlink_port else [],
           str(database or storage / 'graphite.db')))
    return dict(os.environ, PYTHONPATH=str(conf_dir),
                GRAPHITE_SETTINGS_MODULE='inflight_graphite_settings',
                DJANGO_SETTINGS_MODULE='graphite.settings')


class Pipeline:
    """statsd (UDP on `statsd_port`) -> carbon-cache -> whisper files, read
    by graphite-web (`url`), all in `path`."""

    def __init__(self, install, path):
        self.install = install
        self.path = pathlib.Path(path)
        self.storage = self.path / 'storage'
        self.statsd_port = free_port(socket.SOCK_DGRAM)
        self.procs = {}
        self._logs = []
        self.url = None

    def start(self):
        """Start carbon-cache, then statsd, then graphite-web, each once it
        answers; fails with the program's log if one does not."""
        line_port, query_port = free_port(), free_port()
        self._start_carbon(line_port, query_port)
        self._wait(lambda: _connects(line_port) and _connects(query_port),
                   'carbon-cache')
        admin_port = free_port()
        self._start_statsd(line_port, admin_port)
        self._wait(lambda: _statsd_health(admin_port), 'statsd')
        web_port = free_port()
        self._start_webapp(query_port, web_port)
        self.url = 'http://127.0.0.1:%d' % web_port
        self._wait(lambda: self._answers(), 'graphite-web')
        return self

    def _start_carbon(self, line_port, query_port):
        conf = self.path / 'carbon'
        conf.mkdir(parents=True)
        (conf / 'carbon.conf').write_text(
            '[cache]\n'
            'STORAGE_DIR = %(storage)s/\n'
            'LOCAL_DATA_DIR = %(storage)s/whisper/\n'
            'LOG_DIR = %(storage)s/log/\n'
            'PID_DIR = %(storage)s/\n'
            'MAX_CACHE_SIZE = inf\n'
            'MAX_UPDATES_PER_SECOND = 500\n'
            'MAX_CREATES_PER_MINUTE = inf\n'
            'LINE_RECEIVER_INTERFACE = 127.0.0.1\n'
            'LINE_RECEIVER_PORT = %(line)d\n'
            'ENABLE_UDP_LISTENER = False\n'
            'PICKLE_RECEIVER_PORT = 0\n'
            'CACHE_QUERY_INTERFACE = 127.0.0.1\n'
            'CACHE_QUERY_PORT = %(query)d\n'
            'LOG_LISTENER_CONN_SUCCESS = False\n'
            % dict(storage=self.storage, line=line_port, query=query_port))
        (conf / 'storage-schemas.conf').write_text(
            '[carbon]\npattern = ^carbon\\.\nretentions = 60:90d\n\n'
            '[default]\npattern = .*\nretentions = %s\n' % RETENTIONS)
        (conf / 'storage-aggregation.conf').write_text(STORAGE_AGGREGATION)
        self._spawn('carbon-cache', [
            self.install.python, self.install.bin / 'carbon-cache.py',
            '--config', conf / 'carbon.conf', '--debug', 'start'])

    def _start_statsd(self, line_port, admin_port):
        conf = self.path / 'statsd.json'   # JSON is a JavaScript object
        conf.write_text(json.dumps(dict(
            address='127.0.0.1', port=self.statsd_port,
            mgmt_address='127.0.0.1', mgmt_port=admin_port,
            flushInterval=int(FLUSH_SECONDS * 1000),
            backends=['./backends/graphite'],
            graphiteHost='127.0.0.1', graphitePort=line_port), indent=1))
        self._spawn('statsd', ['node', self.install.statsd, conf],
                    cwd=self.install.statsd.parent)

    def _start_webapp(self, query_port, web_port):
        database = self.path / 'graphite.db'
        shutil.copy(self.install.database, database)
        env = _webapp_settings(self.path / 'webapp', self.storage, query_port,
                               database)
        self._spawn('graphite-web', [
            self.install.python, self.install.bin / 'django-admin',
            'runserver', '--noreload', '127.0.0.1:%d' % web_port], env=env)

    def _spawn(self, name, args, **kwargs):
        log = open(self.log_path(name), 'a')
        self._logs.append(log)
        self.procs[name] = subprocess.Popen(
            list(map(str, args)), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent, **kwargs)

    def _wait(self, ready, name):
        deadline = time.monotonic() + READY_SECONDS
        while not ready():
            assert self.procs[name].poll() is None, \
                '%s exited:\n%s' % (name, self.log(name)[-3000:])
            assert time.monotonic() < deadline, \
                '%s not ready in %ss:\n%s' % (name, READY_SECONDS,
                                              self.log(name)[-3000:])
            time.sleep(0.1)

    def _answers(self):
        try:
            self.find('*')
            return True
        except OSError:
            return False

    def log_path(self, name):
        return self.path / ('%s.log' % name)

    def log(self, name):
        return self.log_path(name).read_text()

    def _get(self, path, pairs):
        url = '%s%s?%s' % (self.url, path, urllib.parse.urlencode(pairs))
        try:
            with urllib.request.urlopen(url, timeout=60) as answer:
                return answer.read()
        except urllib.error.HTTPError as e:
            raise AssertionError('graphite-web answered %s to %s:\n%s'
                                 % (e.code, url, e.read()[-2000:]))

    def find(self, query):
        """The names of the metrics and folders `query` matches."""
        found = json.loads(self._get('/metrics/find', [
            ('query', query), ('format', 'completer')]))
        return [node['path'].rstrip('.') for node in found['metrics']]

    def render(self, target, start, until='now'):
        """[(series name, [value or None, ...], step in seconds)] of
        `target` from `start` (`-6h`) to `until`, at the resolution of the
        archive that span reads (no consolidation to a width)."""
        text = self._get('/render', [
            ('target', target), ('format', 'raw'), ('from', start),
            ('until', until)]).decode()
        series = []
        for line in text.splitlines():
            head, _, values = line.partition('|')
            name, _, _, step = head.rsplit(',', 3)
            series.append((name, [None if v == 'None' else float(v)
                                  for v in values.split(',')], int(step)))
        return series

    def render_png(self, targets, start, until='now', **options):
        """A PNG of `targets`, drawn by graphite-web (`options`: width,
        height, title, ...)."""
        return self._get('/render', [('target', t) for t in targets] + [
            ('format', 'png'), ('from', start), ('until', until)] +
            sorted(options.items()))

    def stop(self):
        for name in ('graphite-web', 'statsd', 'carbon-cache'):
            proc = self.procs.get(name)
            if proc is None:
                continue
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()


def _connects(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close()
        return True
    except OSError:
        return False


def _statsd_health(port):
    """Whether statsd's admin interface says it is up."""
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=1) as s:
            s.sendall(b'health\n')
            return s.recv(100).startswith(b'health: up')
    except OSError:
        return False
