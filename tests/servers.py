"""The real servers the tests talk to: where they are, and a statsd stand-in.

A test that needs a server it cannot reach is skipped with the reason, unless
INFLIGHT_REQUIRE_BROKER=1 (RabbitMQ) or INFLIGHT_REQUIRE_DB=1 (MariaDB,
PostgreSQL) is set, as in CI: then it fails. INFLIGHT_REQUIRE_NOVA=1 does the
same for the tests on real Nova (functional/real_nova.py), whose virtualenv
needs the package index once.
"""

import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

BROKER = ('127.0.0.1', 5672)
BROKER_URL = 'rabbit://guest:guest@127.0.0.1:5672/'
# What this run declares on RabbitMQ is in vhosts named after it, one a
# test: other runs on the broker at the same time neither see nor count it.
VHOST_PREFIX = 'inflight-test-%s-' % uuid.uuid4().hex[:8]
MARIADB = ('127.0.0.1', 3306)
POSTGRESQL = ('127.0.0.1', 5432)


def require(name, address, *envs):
    """Skip (or fail, where one of `envs` is 1) unless `address` accepts
    connections."""
    try:
        socket.create_connection(address, timeout=2).close()
        return
    except OSError as e:
        reason = '%s is not reachable on %s:%d (%s)' % (name, *address, e)
    unavailable(reason, *envs)


def unavailable(reason, *envs):
    """Skip the test for `reason`, or fail it where one of `envs` is 1."""
    for env in envs:
        if os.environ.get(env) == '1':
            pytest.fail('%s, and %s=1 requires it' % (reason, env))
    pytest.skip('%s; set %s to make this a failure'
                % (reason, ' or '.join('%s=1' % env for env in envs)))


class Rabbitmqctl:
    """RabbitMQ's vhosts, through rabbitmqctl (on the broker's machine, as
    root): a test's vhost holds whatever its processes declare, and deleting
    it removes all of it."""

    def __init__(self):
        self.error = None
        if not shutil.which('rabbitmqctl'):
            self.error = 'rabbitmqctl is not on this machine'

    def run(self, *args):
        """rabbitmqctl's output lines, without headers."""
        done = subprocess.run(['rabbitmqctl', '-s', *args], text=True,
                              capture_output=True, timeout=120)
        if done.returncode:
            raise RuntimeError('rabbitmqctl %s failed: %s' % (
                ' '.join(args), (done.stderr or done.stdout).strip()))
        return done.stdout.splitlines()

    def usable(self):
        """Whether vhosts can be made here; if not, self.error says why."""
        if self.error is None:
            try:
                self.run('list_vhosts')
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                self.error = str(e)
        return self.error is None

    def add_vhost(self, name):
        self.run('add_vhost', name)
        self.run('set_permissions', '-p', name, 'guest', '.*', '.*', '.*')

    def delete_vhost(self, name):
        self.run('delete_vhost', name)

    def vhosts(self, prefix):
        return [name for name in self.run('list_vhosts')
                if name.startswith(prefix)]

    def contents(self, vhost):
        """The queues and exchanges declared in `vhost` (not RabbitMQ's own)."""
        queues = self.run('list_queues', '-p', vhost, 'name')
        exchanges = [name for name in self.run('list_exchanges', '-p', vhost,
                                               'name')
                     if name and not name.startswith('amq.')]
        return sorted(queues), sorted(exchanges)


def vhost_url(vhost):
    return BROKER_URL + vhost


class Vhost:
    """A test's vhost on RabbitMQ."""

    def __init__(self, name, rabbitmqctl):
        self.name = name
        self._rabbitmqctl = rabbitmqctl

    def contents(self):
        """([queue names], [exchange names]) declared in it, sorted."""
        return self._rabbitmqctl.contents(self.name)


class StatsdSink:
    """A real UDP socket in place of statsd; parses what it receives."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.metrics = []   # (name, value, kind), in order of arrival
        self.packets = []

    def _receive(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            packet = self.sock.recv(65535)
        except socket.timeout:
            return
        self.packets.append(packet)
        for line in packet.decode('utf-8').split('\n'):
            name, value_kind = line.rsplit(':', 1)
            value, kind = value_kind.split('|')
            self.metrics.append((name, float(value), kind))

    def lines(self):
        """The lines received so far, as they were written."""
        return [line for packet in self.packets
                for line in packet.decode('utf-8').split('\n')]

    def wait_for(self, predicate, timeout=30.0):
        """Receive until predicate(self.metrics) is true; fail at timeout."""
        deadline = time.monotonic() + timeout
        while not predicate(self.metrics):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('statsd did not receive what was '
                                     'awaited in %ss; got %d metrics: %r'
                                     % (timeout, len(self.metrics),
                                        self.metrics[-20:]))
            self._receive(left)
        return self.metrics

    def receive_for(self, seconds):
        """Receive whatever arrives in the next `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._receive(deadline - time.monotonic())
        return self.metrics

    def drain(self, quiet=0.5):
        """Receive until nothing arrives for `quiet` seconds."""
        count = -1
        while count != len(self.packets):
            count = len(self.packets)
            self._receive(quiet)
        return self.metrics

    def values(self, name):
        return [v for n, v, _ in self.metrics if n == name]

    def total(self, suffix):
        """Sum of the counters whose names end with `suffix`."""
        return sum(v for n, v, k in self.metrics
                   if k == 'c' and n.endswith(suffix))


# kind -> (name, address, URL without a database, admin database, drop suffix)
DATABASES = {
    'mariadb': ('MariaDB', MARIADB, 'mysql+pymysql://root:@127.0.0.1:3306/',
                'mysql', ''),
    'postgresql': ('PostgreSQL', POSTGRESQL,
                   'postgresql+psycopg2://postgres@127.0.0.1:5432/',
                   'postgres', ' WITH (FORCE)'),
}


def scratch_database(kind):
    """A new, empty database on `kind`'s server: (its URL, drop())."""
    import sqlalchemy as sa
    label, address, base, admin_db, force = DATABASES[kind]
    require(label, address, 'INFLIGHT_REQUIRE_DB')
    name = 'inflight_%s' % uuid.uuid4().hex[:12]
    admin = sa.create_engine(base + admin_db, isolation_level='AUTOCOMMIT')
    with admin.connect() as conn:
        conn.execute(sa.text('CREATE DATABASE %s' % name))

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text('DROP DATABASE IF EXISTS %s%s'
                                 % (name, force)))
        admin.dispose()
    return base + name, drop
