"""`inflight demo`: nova-inflight on an embedded default, showing what it sends.

A SQLite services table in a temporary folder, four demo services answering
probes in this process, the real prober, and a UDP socket standing in for
statsd. The broker is RabbitMQ on 127.0.0.1:5672 when it answers, else
oslo.messaging's in-process fake transport.
"""

import collections
from concurrent import futures
import os
import shutil
import socket
import sys
import tempfile
import time

from oslo_log import log
import oslo_messaging

from inflight import db
from inflight import mixin
from inflight import opts
from inflight import service
from inflight import timings

LOCAL_BROKER = ('127.0.0.1', 5672)

DEMO_SERVICES = [
    ('nova-conductor', 'conductor', 'ctl1.demo'),
    ('nova-scheduler', 'scheduler', 'ctl1.demo'),
    ('nova-compute', 'compute', 'cmp1.demo'),
    ('nova-compute', 'compute', 'cmp2.demo'),
]


def set_defaults(conf):
    """A configuration that needs nothing on the machine."""
    opts.register_opts(conf)
    conf.set_default('host', 'inflight.demo')
    conf.set_default('probe_interval', 0.25, group='inflight')
    conf.set_default('cycle_seconds', 1.0, group='inflight')
    conf.set_default('sleep', 0.2, group='inflight')
    conf.set_default('probe_timeout', 2.0, group='inflight')
    conf.set_default('refresh_interval', 5.0, group='inflight')
    conf.set_default('register_service', True, group='inflight')
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
    return '%-24s' % service + ''.join(
        '%14.2f' % phases.get(phase, float('nan'))
        for phase in timings.PHASES)


def _show(sock, until, prefix, out):
    """Print each probe's breakdown as statsd receives it."""
    shown_raw = False
    print('%-24s' % 'service (ms)' + ''.join('%14s' % p
                                              for p in timings.PHASES),
          file=out)
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
                print('  (statsd received: %s)' % packet.decode().replace(
                    '\n', ' '), file=out)
                shown_raw = True
            print(_row(service, values), file=out)


def run(conf, duration, out=None):
    """Run the demo for `duration` seconds; 0 if every probe came back."""
    out = out or sys.stdout
    workdir = tempfile.mkdtemp(prefix='inflight-demo-')
    url = conf.transport_url or _local_broker() or 'fake:/'
    connection = conf.database.connection
    if connection == 'sqlite://':
        connection = 'sqlite:///' + os.path.join(workdir, 'nova.sqlite')
    statsd = _statsd_socket()
    conf.set_override('transport_url', url)
    conf.set_override('control_exchange', 'inflight-demo')
    conf.set_override('connection', connection, group='database')
    conf.set_override('host', '127.0.0.1', group='statsd')
    conf.set_override('port', statsd.getsockname()[1], group='statsd')
    print('inflight demo: broker %s, services table %s, statsd on udp %s:%d'
          % (oslo_messaging.TransportURL.parse(conf).transport,
             connection, *statsd.getsockname()), file=out)

    engine = db.create_engine(connection, read_only=False)
    db.sync(engine)
    for binary, topic, host in DEMO_SERVICES:
        db.register_service(engine, host, binary, topic)
    engine.dispose()

    transport = oslo_messaging.get_rpc_transport(conf)
    servers = []
    for binary, topic, host in DEMO_SERVICES:
        server = oslo_messaging.get_rpc_server(
            transport, oslo_messaging.Target(topic=topic, server=host),
            [mixin.InflightEndpoint(host, transport)])
        server.start()
        servers.append(server)
    prober = service.InflightService(conf, transport)
    prober.start()
    try:
        _show(statsd, time.monotonic() + duration,
                       conf.statsd.prefix, out)
    finally:
        # A RabbitMQ listener takes seconds to stop: stop them side by side.
        with futures.ThreadPoolExecutor(len(servers) + 1) as pool:
            pool.submit(prober.stop)
            for server in servers:
                pool.submit(server.stop)
        for server in servers:
            server.wait()
        transport.cleanup()
        statsd.close()
        shutil.rmtree(workdir, ignore_errors=True)
    total = collections.Counter(prober.prober.counts)
    print('probes: %(sent)d sent, %(received)d received, %(lost)d lost'
          % {k: total[k] for k in ('sent', 'received', 'lost')}, file=out)
    return 0 if total['sent'] and total['received'] == total['sent'] else 1
