"""`inflight demo`: nova-inflight on an embedded default, showing what it sends.

A SQLite services table in a temporary folder, four demo services answering
probes in this process, the real prober, and a UDP socket standing in for
statsd. The broker is the transport_url the operator set, else RabbitMQ on
127.0.0.1:5672 when it answers, else oslo.messaging's in-process fake
transport. However it ends, the folder and the demo's queues go.
"""

import collections
from concurrent import futures
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

from oslo_log import log
import oslo_messaging

from inflight import broker
from inflight.cloud import db
from inflight import mixin
from inflight import opts
from inflight import rpcapi
from inflight import service
from inflight import timings

LOCAL_BROKER = ('127.0.0.1', 5672)

# (binary, topic, host): each run's hosts end in a tag of its own.
DEMO_SERVICES = [
    ('nova-conductor', 'conductor', 'ctl1.demo'),
    ('nova-scheduler', 'scheduler', 'ctl1.demo'),
    ('nova-compute', 'compute', 'cmp1.demo'),
    ('nova-compute', 'compute', 'cmp2.demo'),
]
DEMO_HOST = 'inflight.demo'     # the prober's, unless the operator sets one
NAME_WIDTH = 28                 # the service column of the table


def run_tag():
    """A tag for one run's hosts: demos sharing a broker then have queues
    of their own, and none answers another's probes."""
    return os.urandom(2).hex()


def demo_services(tag):
    """DEMO_SERVICES with their hosts tagged."""
    return [(binary, topic, '%s-%s' % (host, tag))
            for binary, topic, host in DEMO_SERVICES]


def set_defaults(conf):
    """A configuration that needs nothing on the machine."""
    opts.register_opts(conf)
    conf.set_default('host', DEMO_HOST)
    conf.set_default('probe_interval', 0.25, group='inflight')
    conf.set_default('cycle_seconds', 1.0, group='inflight')
    conf.set_default('sleep', 0.2, group='inflight')
    conf.set_default('probe_timeout', 2.0, group='inflight')
    conf.set_default('refresh_interval', 5.0, group='inflight')
    conf.set_default('register_service', True, group='inflight')
    # No status file: the one at the default path is a running daemon's.
    conf.set_default('status_file', '', group='inflight')
    # Every demo service carries the mixin: no ping calls, no reply queue.
    conf.set_default('probe_methods', dict.fromkeys(
        {topic for _, topic, _ in DEMO_SERVICES} | {rpcapi.TOPIC},
        'inflight'), group='inflight')
    conf.set_default('connection', 'sqlite://', group='database')
    # amqp warns of deliveries racing a closing channel when the demo stops.
    conf.set_default('default_log_levels',
                     log.get_default_log_levels() + ['amqp=ERROR'])


def _local_broker():
    try:
        socket.create_connection(LOCAL_BROKER, timeout=1).close()
    except OSError:
        return None
    return 'rabbit://guest:guest@%s:%d/' % LOCAL_BROKER


def _statsd_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    return sock


def _parse(packet):
    """statsd lines -> [(name, value, kind)]."""
    metrics = []
    for line in packet.decode().splitlines():
        name, _, rest = line.partition(':')
        value, _, kind = rest.partition('|')
        metrics.append((name, float(value), kind))
    return metrics


def _row(service, phases):
    return '%-*s' % (NAME_WIDTH, service) + ''.join(
        '%14.2f' % phases.get(phase, float('nan'))
        for phase in timings.PHASES)


def _say(out, line):
    """Write `line` and its end at once: the signal stopping the demo (its
    handler raises) is taken between two lines, not, as print() lets it,
    between a line and its end."""
    out.write(line + '\n')
    out.flush()


def _show(sock, until, prefix, out):
    """Print each probe's breakdown as statsd receives it."""
    shown_raw = False
    _say(out, '%-*s' % (NAME_WIDTH, 'service (ms)') + ''.join('%14s' % p
                                                  for p in timings.PHASES))
    while time.monotonic() < until:
        sock.settimeout(max(0.01, until - time.monotonic()))
        try:
            packet = sock.recv(65535)
        except socket.timeout:
            break
        phases = collections.defaultdict(dict)
        for name, value, kind in _parse(packet):
            service, _, leaf = name[len(prefix) + 1:].rpartition('.')
            if kind == 'ms':
                phases[service][leaf] = value
        for service, values in phases.items():
            if not shown_raw:
                _say(out, '  (statsd received: %s)'
                     % packet.decode().replace('\n', ' '))
                shown_raw = True
            _say(out, _row(service, values))


class Stopped(Exception):
    """SIGINT or SIGTERM asked the demo to stop."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.status = 128 + signum


def _stop(signum, frame):
    raise Stopped(signum)


def _on_signals(handler):
    """Handle SIGINT and SIGTERM with `handler`; the handlers they had."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, handler)
            for signum in (signal.SIGINT, signal.SIGTERM)}


def _transport_url(conf):
    """The operator's transport_url, else RabbitMQ on 127.0.0.1:5672 when
    it answers, else the fake transport."""
    location = conf.get_location('transport_url')
    if location is not None and location.location.is_user_controlled:
        return conf.transport_url
    return _local_broker() or 'fake:/'


class _Demo:
    """The demo services and the prober, on one transport."""

    def __init__(self, conf, services):
        self.conf = conf
        self.services = services      # (binary, topic, host)
        self.transport = self.prober = None
        self.servers = []

    def start(self):
        self.transport = oslo_messaging.get_rpc_transport(self.conf)
        for binary, topic, host in self.services:
            server = oslo_messaging.get_rpc_server(
                self.transport, oslo_messaging.Target(topic=topic, server=host),
                [mixin.InflightEndpoint(host, self.transport)])
            self.servers.append(server)
            server.start()
        self.prober = service.InflightService(self.conf, self.transport)
        self.prober.start()

    def stop(self):
        """Stop everything and remove from the broker what the demo made."""
        # A RabbitMQ listener takes seconds to stop: stop them side by side.
        with futures.ThreadPoolExecutor(len(self.servers) + 1) as pool:
            if self.prober is not None:
                pool.submit(self.prober.stop)
            for server in self.servers:
                pool.submit(server.stop)
        for server in self.servers:
            server.wait()
        if self.transport is None:
            return
        self.transport.cleanup()
        hosts = [(topic, host) for _, topic, host in self.services]
        hosts.append((rpcapi.TOPIC, self.conf.host))
        broker.remove(self.conf, ['%s.%s' % th for th in hosts])
        # Topic queues and the exchange may be shared with services of the
        # broker's own: they go only when nothing uses them.
        broker.remove(self.conf, sorted({t for t, _ in hosts}),
                      [self.conf.control_exchange], if_empty=True)

    def counts(self):
        if self.prober is None or self.prober.prober is None:
            return collections.Counter()
        return collections.Counter(self.prober.prober.counts)


def run(conf, duration, out=None):
    """Run the demo for `duration` seconds; 0 if every probe came back, 1 if
    not, 128 + the signal's number when SIGINT or SIGTERM stopped it.

    Whichever way it ends, the temporary folder and what the demo declared
    on the broker are removed."""
    out = out or sys.stdout
    statsd = _statsd_socket()
    handlers = _on_signals(_stop)
    workdir = tempfile.mkdtemp(prefix='inflight-demo-')
    tag = run_tag()
    demo = _Demo(conf, demo_services(tag))
    stopped = None
    try:
        url = _transport_url(conf)
        if conf.host == DEMO_HOST:
            conf.set_override('host', '%s-%s' % (DEMO_HOST, tag))
        connection = conf.database.connection
        if connection == 'sqlite://':
            connection = 'sqlite:///' + os.path.join(workdir, 'nova.sqlite')
        conf.set_override('transport_url', url)
        conf.set_override('control_exchange', 'inflight-demo')
        conf.set_override('connection', connection, group='database')
        conf.set_override('host', '127.0.0.1', group='statsd')
        conf.set_override('port', statsd.getsockname()[1], group='statsd')
        _say(out, 'inflight demo: broker %s, services table %s, statsd on '
             'udp %s:%d' % (oslo_messaging.TransportURL.parse(conf).transport,
                            connection, *statsd.getsockname()))

        engine = db.create_engine(connection, read_only=False)
        try:
            db.sync(engine)
            for binary, topic, host in demo.services:
                db.register_service(engine, host, binary, topic)
        finally:
            engine.dispose()
        demo.start()
        _show(statsd, time.monotonic() + duration, conf.statsd.prefix, out)
    except Stopped as e:
        stopped = e
    finally:
        # A second signal must not cut the clean-up short.
        _on_signals(signal.SIG_IGN)
        try:
            demo.stop()
        finally:
            statsd.close()
            shutil.rmtree(workdir, ignore_errors=True)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
    total = demo.counts()
    print('probes: %(sent)d sent, %(received)d received, %(lost)d lost'
          % {k: total[k] for k in ('sent', 'received', 'lost')}
          + (' (stopped by %s)' % stopped if stopped else ''), file=out)
    if stopped:
        return stopped.status
    return 0 if total['sent'] and total['received'] == total['sent'] else 1
