"""Running nova-inflight and probed services as real processes, for the tests."""

import ctypes
import datetime
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

from inflight.cloud import db

HERE = os.path.dirname(__file__)
SLEEP = 0.2
# From the worker's stop to the launcher's exit: the worker exits at once
# (os._exit), the launcher reaps it and exits.
TEARDOWN_SECONDS = 1.0


def read_line(proc, timeout=30.0):
    """The next line `proc` prints, waiting at most `timeout` seconds."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, 'no output from %s in %ss' % (proc.args, timeout)
    return proc.stdout.readline()


_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def die_with_parent():
    """In a child, before exec: SIGTERM when the test process goes, so that
    no daemon outlives a killed test run."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Processes:
    """Starts processes for one test and stops whatever is left at its end."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.procs = []

    def service(self, mode, broker_url, exchange, topic, host, db_url,
                answers=('mixin',), rpc_ping=False, clock_offset=0.0,
                pool_size=None, hog=None, switch_interval=None,
                log_arrivals=False):
        """Start probed_service.py (see its options) and wait for READY.

        `pool_size` sets its executor_thread_pool_size (1: one message at a
        time); `hog`, `switch_interval` and `log_arrivals` are its --hog,
        --switch-interval and --log-arrivals."""
        conf = self.tmp_path / ('%s.conf' % host)
        log = self.tmp_path / ('%s.log' % host)
        conf.write_text(
            '[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n'
            'rpc_ping_enabled = %s\n' % (broker_url, exchange, rpc_ping) +
            ('executor_thread_pool_size = %d\n' % pool_size
             if pool_size else '') +
            ('[oslo_messaging_notifications]\ndriver = inflight\n'
             if 'hook' in answers else ''))
        options = []
        if hog is not None:
            options += ['--hog', str(hog)]
        if switch_interval is not None:
            options += ['--switch-interval', str(switch_interval)]
        if log_arrivals:
            options.append('--log-arrivals')
        proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'probed_service.py'), mode,
             str(conf), topic, host, '--db', db_url,
             '--clock-offset', str(clock_offset), *options,
             '--answers', *answers],
            stdout=subprocess.PIPE, stderr=open(log, 'w'), text=True,
            preexec_fn=die_with_parent)
        self.procs.append(proc)
        line = read_line(proc)
        assert line.split() == ['READY', mode], log.read_text()[-3000:]
        return proc

    def command(self, argv, log_name, cwd=None, pipe_stdout=False):
        """Start `argv`, its output (with `pipe_stdout`, its stderr only) to
        the log `log_name`; stopped at the test's end."""
        with open(self.tmp_path / log_name, 'a') as log:
            proc = subprocess.Popen(
                argv, cwd=cwd, text=True,
                stdout=subprocess.PIPE if pipe_stdout else log,
                stderr=log if pipe_stdout else subprocess.STDOUT,
                preexec_fn=die_with_parent)
        self.procs.append(proc)
        return proc

    def daemon(self, *conf_paths, **env):
        """Start nova-inflight with `conf_paths`, read in that order."""
        log = open(self.tmp_path / 'nova-inflight.log', 'a')
        files = [arg for path in conf_paths for arg in ('--config-file', path)]
        proc = subprocess.Popen(
            [sys.executable, '-m', 'inflight.cmd.inflight', *files],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **env),
            preexec_fn=die_with_parent)
        self.procs.append(proc)
        return proc

    def log(self):
        return (self.tmp_path / 'nova-inflight.log').read_text()

    def wait_for_log(self, statsd, text, times=1, timeout=30.0):
        """Read statsd until the daemon's log says `text` `times` times."""
        ends = time.monotonic() + timeout
        while self.log().count(text) < times:
            assert time.monotonic() < ends, \
                'not %d %r in the log:\n%s' % (times, text, self.log()[-3000:])
            statsd.receive_for(0.1)

    def stop_all(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def daemon_conf(tmp_path, broker_url, exchange, db_url, statsd_port,
                prefix='inflight', defaults=(), **inflight):
    """The daemon's configuration file: `inflight` options in [inflight],
    `defaults` (a dict) more in [DEFAULT]."""
    options = dict(probe_interval=0.1, cycle_seconds=0, probes_per_tick=10,
                   sleep=SLEEP,
                   probe_timeout=5.0, refresh_interval=0.3,
                   register_service='true')
    options.update(inflight)
    path = tmp_path / 'inflight.conf'
    path.write_text(
        '[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n'
        'host = %s\n%s'
        '[database]\nconnection = %s\n'
        '[statsd]\nport = %d\nprefix = %s\n[inflight]\n%s\n'
        % (broker_url, exchange, prober_host(exchange),
           ''.join('%s = %s\n' % kv for kv in dict(defaults).items()),
           db_url, statsd_port,
           prefix, '\n'.join('%s = %s' % kv for kv in options.items())))
    return str(path)


def prober_host(exchange):
    """The daemon's host name in a test: its own, so that no other test's
    daemon shares its results queue (queues are named by host, not by
    exchange)."""
    return 'prober-%s.test' % exchange.rsplit('-', 1)[-1]


def prober_service(exchange):
    """The daemon's own service, as named in its metrics."""
    return 'inflight.' + prober_host(exchange).replace('.', '_')


def add_row(engine, host, topic, **values):
    row = dict(host=host, binary='nova-%s' % topic, topic=topic,
               report_count=0, disabled=False, deleted=0)
    row.update(values)
    with engine.begin() as conn:
        conn.execute(db.services.insert().values(**row))


def received_from(statsd, prefix, service, count):
    """A predicate: `count` results of `service` have reached statsd."""
    name = '%s.%s.received' % (prefix, service)
    return lambda metrics: statsd.total(name) >= count


def stop_daemon(proc, statsd):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    statsd.drain()


class TcpProxy:
    """tcp_proxy.py in front of a server, steered from the test."""

    def __init__(self, processes, upstream):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'tcp_proxy.py'),
             upstream[0], str(upstream[1])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            preexec_fn=die_with_parent)
        processes.procs.append(self.proc)
        words = read_line(self.proc).split()
        assert words[0] == 'LISTENING', words
        self.port = int(words[1])
        self.seconds = 0.0

    def _command(self, line, answer):
        self.proc.stdin.write(line + '\n')
        self.proc.stdin.flush()
        assert read_line(self.proc).split() == answer.split()

    def delay(self, seconds):
        """Hold back what the server sends from now on; once in force."""
        if seconds != self.seconds:
            self._command('delay %r' % seconds, 'DELAY %r' % seconds)
            self.seconds = seconds

    def cut(self):
        """Drop every connection, and refuse new ones."""
        self._command('cut', 'CUT')

    def stall(self):
        """Hold all traffic, both ways, keeping the connections."""
        self._command('stall', 'STALLED')

    def restore(self):
        self._command('restore', 'RESTORED')


class BrokerProxy(TcpProxy):
    """A TcpProxy in front of the RabbitMQ of `broker_url`; `url` is the
    same broker, credentials and vhost through it."""

    def __init__(self, processes, broker_url):
        url = urllib.parse.urlsplit(broker_url)
        super().__init__(processes, (url.hostname, url.port or 5672))
        self.url = url._replace(netloc='%s:%s@127.0.0.1:%d' % (
            url.username, url.password, self.port)).geturl()


class Heartbeat:
    """Keeps a row's last_seen_up fresh, as a Nova service reports its
    state, every `interval` seconds until stopped."""

    def __init__(self, engine, host, interval):
        self._engine, self._host, self._interval = engine, host, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def beat(self):
        now = datetime.datetime.now(datetime.timezone.utc).replace(
            tzinfo=None)
        with self._engine.begin() as conn:
            conn.execute(db.services.update()
                         .where(db.services.c.host == self._host)
                         .values(last_seen_up=now, updated_at=now,
                                 report_count=db.services.c.report_count + 1))

    def _run(self):
        while not self._stop.wait(self._interval):
            self.beat()

    def start(self):
        self.beat()
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()
