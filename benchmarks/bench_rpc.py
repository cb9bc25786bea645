"""Benchmarks 1-3: inflight's probes against a bare cast -> cast-back echo.

One prober process (this one) and K probed services, each in a process of
its own (probed.py), over the real RabbitMQ. This process runs what
nova-inflight runs (inflight/service.py): the real Prober, sending through
rpcapi.BaseAPI, and an RPC server on topic `inflight` whose endpoint is the
real InflightManager, handing each result to Prober.receive(). Beside it on
the same server sits `EchoBack`, the baseline's receiving end.

Both kinds of message go between the same processes, on the same queues,
in messages of the same shape; the only difference is what inflight adds:
the Prober's bookkeeping and metrics on this side, the mixin's parse, sleeper
thread and result on the service side.

`inflight.cmd` must be imported before this module (it selects oslo.service's
threading backend before oslo.messaging is imported).
"""

import itertools
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

from oslo_config import cfg
import oslo_messaging

from inflight.cloud import record
from inflight import manager
from inflight.outputs import statsd as metrics
from inflight import methods
from inflight import opts
from inflight import probe as probe_msg
from inflight import prober
from inflight import ring
from inflight import rpcapi

HERE = os.path.dirname(os.path.abspath(__file__))
PROBED = os.path.join(HERE, 'probed.py')
NAMESPACE = 'bench'       # as in probed.py
VERSION = '1.0'


def process_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Child:
    """A benchmark process, and its stdin/stdout control channel."""

    def __init__(self, argv, name, log_path):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.proc = subprocess.Popen(
            [sys.executable] + argv, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1)

    def _line(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError('no answer from %s in %ss; its log:\n%s'
                               % (self.name, timeout, self.log()))
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError('%s exited (%s); its log:\n%s'
                               % (self.name, self.proc.poll(), self.log()))
        return line.split(None, 1)

    def _say(self, line):
        self.proc.stdin.write(line + '\n')
        self.proc.stdin.flush()

    def log(self):
        with open(self.log_path) as f:
            return f.read()[-3000:]

    def wait_ready(self, timeout=60.0):
        line = self._line(timeout)
        if line[:1] != ['READY']:
            raise RuntimeError('%s said %r' % (self.name, line))
        return line[1].strip() if len(line) > 1 else None

    def close(self):
        """EOF on its stdin: it exits."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def stop(self):
        self.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            self.proc.stdout.close()
        except OSError:
            pass
        self._log.close()


class Service(Child):
    """One probed.py process."""

    def __init__(self, config_file, topic, host, log_path, mode,
                 endpoint='mixin'):
        self.topic, self.host = topic, host
        super().__init__([PROBED, config_file, topic, host, '--mode', mode,
                          '--endpoint', endpoint], host, log_path)

    def wait_ready(self, timeout=60.0):
        self.mode = super().wait_ready(timeout)

    def cpu(self):
        """User + system CPU seconds of the whole service process so far."""
        self._say('cpu')
        word, value = self._line(30.0)
        assert word == 'CPU', word
        return float(value)


class Run:
    """One batch of messages out and back, counted by the receiving end."""

    def __init__(self, target, window):
        self.target = target
        self.window = threading.Semaphore(window)
        self.received = 0
        self.last_at = None
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.round_trips = []         # seconds, serial runs only
        # (round trip measured here, inflight's own Timings), serial only
        self.reported = []
        self.sent_at = None

    def back(self, reported=None):
        now = time.monotonic()
        with self.lock:
            self.received += 1
            self.last_at = now
            if self.sent_at is not None:
                self.round_trips.append(now - self.sent_at)
                if reported is not None:
                    self.reported.append((self.round_trips[-1], reported))
            if self.received >= self.target:
                self.done.set()
        self.window.release()

    def serial_figures(self):
        """The round trips of a serial run, in ms, and where a probe's
        went, as inflight timed it: the service's part (in_service: taking
        the probe, handing it to the sleepers' thread, the sleep of 0 s,
        making the result), the broker's (queue_total), and the prober's
        (the round trip measured here less inflight's own: the probe's
        bookkeeping before t0, the result's accounting after t3)."""
        timed = [t for _, t in self.reported]
        return {'round_trips_ms': [rt * 1e3 for rt in self.round_trips],
                'reported_ms': [t.round_trip * 1e3 for t in timed],
                'in_service_ms': [t.in_service * 1e3 for t in timed],
                'queue_total_ms': [t.queue_total * 1e3 for t in timed],
                'prober_side_ms': [(rt - t.round_trip) * 1e3
                                   for rt, t in self.reported]}


class EchoBack:
    """The baseline's receiving end, on the prober's RPC server."""

    target = oslo_messaging.Target(namespace=NAMESPACE, version=VERSION)

    def __init__(self, bench):
        self.bench = bench

    def echo_back(self, ctxt, result):
        probe_msg.parse_result(result)   # as Prober.receive() reads its own
        self.bench.back(None)


class Services:
    """K probed services, each a probed.py process, and beside them the
    pair never probed (with the endpoint, and without any)."""

    def __init__(self, broker_url, tag, count, mode, workdir, endpoint,
                 idle_pair=True):
        self.broker_url = broker_url
        self.tag = tag
        self.exchange = exchange_of(tag)
        self.topic = topic_of(tag)
        self.hosts = ['svc%d.%s' % (i, tag) for i in range(count)]
        self.mode, self.endpoint = mode, endpoint
        self.workdir = workdir
        self.with_idle_pair = idle_pair
        self.services = []
        self.idle_pair = []

    def start(self):
        """Start them all side by side (each imports oslo.messaging)."""
        conf_path = os.path.join(self.workdir, 'services-%s.conf' % self.tag)
        with open(conf_path, 'w') as f:
            f.write(transport_conf(self.broker_url, self.exchange))
        for host in self.hosts:
            self.services.append(Service(
                conf_path, self.topic, host,
                os.path.join(self.workdir, '%s.log' % host), self.mode,
                self.endpoint))
        if self.with_idle_pair:
            for host, endpoint in (('idle-with.%s' % self.tag, self.endpoint),
                                   ('idle-without.%s' % self.tag, 'none')):
                self.idle_pair.append(Service(
                    conf_path, self.topic, host,
                    os.path.join(self.workdir, '%s.log' % host), self.mode,
                    endpoint))
        return self

    def wait_ready(self):
        for service in self.services + self.idle_pair:
            service.wait_ready()

    def stop(self):
        everyone = self.services + self.idle_pair
        for service in everyone:
            service.close()         # all at once, then wait for each
        for service in everyone:
            service.stop()
        delete_queues(self.broker_url, self.exchange, [self.topic] + [
            '%s.%s' % (self.topic, h)
            for h in self.hosts + [s.host for s in self.idle_pair]])


class ProberSide:
    """One prober, as nova-inflight runs it, probing `hosts` of `topic`.

    Its RPC server on topic `inflight`, server `prober_host`, has two
    endpoints: the real InflightManager and EchoBack, the baseline's.
    """

    def __init__(self, broker_url, tag, topic, hosts, prober_host, workdir):
        self.broker_url = broker_url
        self.exchange = exchange_of(tag)
        self.topic = topic
        self.hosts = hosts
        self.host = prober_host
        self.workdir = workdir
        self.server = self.transport = None
        self._run = None
        self._statsd = None
        self.lost = 0

    def start(self):
        conf_path = os.path.join(self.workdir, '%s.conf' % self.host)
        self._statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._statsd.bind(('127.0.0.1', 0))   # never read: the kernel drops
        with open(conf_path, 'w') as f:
            f.write(transport_conf(self.broker_url, self.exchange,
                                   self.host))
            f.write('[inflight]\nsleep = 0\nprobe_timeout = 30\n'
                    'cycle_seconds = 0\n[statsd]\nport = %d\n'
                    % self._statsd.getsockname()[1])
        conf = cfg.CONF     # oslo.messaging 18.3 reads the global CONF
        opts.register_opts(conf)
        conf(['--config-file', conf_path], project='inflight-bench')
        self.conf = conf
        self.transport = oslo_messaging.get_rpc_transport(conf)
        self._apis = {}
        statsd = self._metrics = metrics.Metrics(
            conf.statsd.host, conf.statsd.port, conf.statsd.prefix)
        self.prober = prober.Prober(
            self.api_for, statsd,
            conf.host, conf.inflight.sleep, conf.inflight.probe_timeout,
            methods.MethodBook(conf.inflight.probe_methods,
                               conf.inflight.richer_retry_interval,
                               relearn_after=conf.inflight.deaf_after),
            on_outcome=[self._outcome], max_calls=conf.inflight.max_calls)
        self.ring = ring.ServiceRing()
        self.aim(self.hosts)
        self.manager = manager.InflightManager(conf, self.prober, self.ring,
                                               lambda: [])
        self.server = oslo_messaging.get_rpc_server(
            self.transport,
            oslo_messaging.Target(topic=rpcapi.TOPIC, server=conf.host),
            [self.manager, EchoBack(self)])
        self.server.start()
        self._echo_client = oslo_messaging.get_rpc_client(
            self.transport, oslo_messaging.Target(topic=self.topic))
        return self

    def aim(self, hosts):
        """Probe, and echo to, the services `hosts` from now on."""
        self.hosts = list(hosts)
        self.ring.refresh([
            record.Service.of(self.topic, host, id=i + 1, binary='nova-bench')
            for i, host in enumerate(self.hosts)])
        # As the daemon's table read tells its outputs the services read.
        self._metrics.known(self.ring.services())
        self._echo_hosts = itertools.cycle(self.hosts)

    def api_for(self, service):
        """As InflightService.api_for: one BaseAPI client per topic."""
        api = self._apis.get(service.topic)
        if api is None:
            api = self._apis[service.topic] = rpcapi.BaseAPI(
                self.transport, service.topic)
        return api

    def stop(self):
        if self.server is not None:
            # The RabbitMQ listener takes a while to stop gracefully;
            # stop() alone ends the consuming.
            stopper = threading.Thread(target=self.server.stop, daemon=True)
            stopper.start()
            stopper.join(10)
        # Its own queue; the services' and the exchange go with them.
        delete_queues(self.broker_url, None, [reply_queue_of(self.host)])
        if self.transport is not None:
            self.transport.cleanup()
        if self._statsd is not None:
            self._statsd.close()

    # -- the two kinds of message -----------------------------------------

    def _outcome(self, service, kind, timings, state):
        """Prober on_outcome: a probe ended (received, or lost: None)."""
        if timings is None:
            self.lost += 1      # fails the run it happened in
            self.back(None)
            return
        self.back(timings)

    def back(self, reported):
        run = self._run
        if run is not None:
            run.back(reported)

    def send_probes(self, count):
        """What check_inflight does on a tick: expire, then send `count`."""
        self.prober.expire()
        while count:
            services = self.ring.take(count)
            self.prober.send(services)
            count -= len(services)

    def send_echoes(self, count):
        """The baseline: `count` casts of a probe-shaped message."""
        for _ in range(count):
            probe = probe_msg.new_probe(time.time(), 0.0, self.host)
            # As BaseAPI.inflight() prepares its cast.
            cctxt = self._echo_client.prepare(
                server=next(self._echo_hosts), namespace=NAMESPACE,
                version=VERSION, retry=0)
            cctxt.cast({}, 'echo', probe=probe._asdict())

    def _check_lost(self, kind, services):
        if self.lost:
            raise RuntimeError('%d probes lost (sleep 0, timeout %ss): the '
                               'services log:\n%s' % (
                                   self.lost, self.conf.inflight.probe_timeout,
                                   '\n'.join(s.log() for s in services)))

    def sender(self, kind):
        return {'probe': self.send_probes, 'echo': self.send_echoes}[kind]

    # -- measurements -----------------------------------------------------

    def pipelined(self, kind, count, window, timeout=120.0, services=()):
        """Messages/s with at most `window` out, and CPU per message (of
        this process, and of the `services` processes)."""
        send = self.sender(kind)
        run = self._run = Run(count, window)
        cpu_before = [s.cpu() for s in services]
        own_before = process_cpu()
        started = time.monotonic()
        sent = 0
        while sent < count:
            run.window.acquire()
            batch = 1
            while batch < count - sent and run.window.acquire(blocking=False):
                batch += 1
            send(batch)
            sent += batch
        if not run.done.wait(timeout):
            raise RuntimeError('%s: %d of %d came back in %ss'
                               % (kind, run.received, count, timeout))
        self._check_lost(kind, services)
        elapsed = run.last_at - started
        own = process_cpu() - own_before
        cpu = sum(s.cpu() for s in services) - sum(cpu_before)
        self._run = None
        # started_at and last_at: CLOCK_MONOTONIC, the same in every process.
        return {'count': count, 'seconds': elapsed, 'service_cpu_s': cpu,
                'prober_cpu_s': own, 'started_at': started,
                'last_at': run.last_at}

    def serial(self, kind, count, timeout=30.0, services=()):
        """Round trips, one message out at a time, on this process's clock."""
        run = Run(count, 1)
        for _ in range(count):
            self._round_trip(kind, run, timeout)
        self._run = None
        self._check_lost(kind, services)
        return run.serial_figures()

    def serial_pairs(self, count, timeout=30.0, services=()):
        """`count` round trips of each kind, one message out at a time,
        probe and echo in turn (E P, P E, E P...): each pair meets the
        machine as it is at that moment, so that whatever else runs on it
        (load, another tenant's) weighs on both alike."""
        runs = {'probe': Run(count, 1), 'echo': Run(count, 1)}
        for i in range(count):
            for kind in ('echo', 'probe') if i % 2 == 0 else ('probe',
                                                               'echo'):
                self._round_trip(kind, runs[kind], timeout)
        self._run = None
        self._check_lost('probe', services)
        return {kind: run.serial_figures() for kind, run in runs.items()}

    def _round_trip(self, kind, run, timeout):
        """One message out, and back (counted by `run`)."""
        send = self.sender(kind)
        self._run = run
        run.window.acquire()
        run.sent_at = time.monotonic()
        send(1)
        if not run.window.acquire(timeout=timeout):
            raise RuntimeError('%s: no answer in %ss' % (kind, timeout))
        run.window.release()


class RPCBench:
    """The prober side (this process) and K probed services."""

    def __init__(self, broker_url, services=3, mode='threading',
                 workdir=None, endpoint='mixin'):
        self.tag = uuid.uuid4().hex[:10]
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix='inflight-bench-')
        self.fleet = Services(broker_url, self.tag, services, mode,
                              self.workdir, endpoint)
        self.hosts = self.fleet.hosts
        self.side = ProberSide(broker_url, self.tag, self.fleet.topic,
                               self.hosts, 'prober.%s' % self.tag,
                               self.workdir)
        self.services = self.fleet.services
        self.idle_pair = self.fleet.idle_pair

    def start(self):
        self.fleet.start()       # they start while this side connects
        self.side.start()
        self.prober = self.side.prober
        self.fleet.wait_ready()
        return self

    def stop(self):
        try:
            self.side.stop()
        finally:
            self.fleet.stop()
        if self._own_workdir:
            import shutil
            shutil.rmtree(self.workdir, ignore_errors=True)

    def pipelined(self, kind, count, window, timeout=120.0):
        return self.side.pipelined(kind, count, window, timeout,
                                   services=self.services)

    def serial(self, kind, count, timeout=30.0):
        return self.side.serial(kind, count, timeout, services=self.services)

    def serial_pairs(self, count, timeout=30.0):
        return self.side.serial_pairs(count, timeout, services=self.services)


def exchange_of(tag):
    return 'inflight-bench-%s' % tag


def topic_of(tag):
    return 'bench_%s' % tag


def reply_queue_of(prober_host):
    """The queue a prober's results (and echoes) come back on."""
    return '%s.%s' % (rpcapi.TOPIC, prober_host)


def transport_conf(broker_url, exchange, host=None):
    """The [DEFAULT] and rabbit part of a benchmark process's config."""
    return ('[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n%s'
            # The fanout queues, which no one uses here, go 10 s after
            # their consumer (the rest: delete_queues()).
            '[oslo_messaging_rabbit]\nrabbit_transient_queues_ttl = 10\n'
            % (broker_url, exchange, 'host = %s\n' % host if host else ''))


def delete_queues(broker_url, exchange, queues):
    """Delete a run's queues (and its exchange) from RabbitMQ."""
    try:
        conn = amqp_connection(broker_url)
        channel = conn.channel()
        for queue in queues:
            channel.queue_delete(queue)
        if exchange is not None:
            channel.exchange_delete(exchange)
        conn.close()
    except Exception as e:  # noqa: BLE001 - leaving them is harmless
        print('benchmarks: could not delete the queues %s: %s'
              % (', '.join(queues), e), file=sys.stderr)


def merge_pipelined(parts):
    """One figure from the parts of a repeat: totals over totals."""
    count = sum(p['count'] for p in parts)
    seconds = sum(p['seconds'] for p in parts)
    return {'per_s': count / seconds, 'seconds': seconds, 'count': count,
            'service_cpu_us': sum(p['service_cpu_s'] for p in parts) /
            count * 1e6,
            'prober_cpu_us': sum(p['prober_cpu_s'] for p in parts) /
            count * 1e6}


def merge_serial(parts):
    """One figure from the parts of a repeat: the round trips pooled."""
    ms = [rt for p in parts for rt in p['round_trips_ms']]
    reported = [r for p in parts for r in p['reported_ms']]
    out = {'median_ms': statistics.median(ms), 'p90_ms': _quantile(ms, 0.9),
           'count': len(ms)}
    if reported:
        out['reported_median_ms'] = statistics.median(reported)
        for part in ('in_service', 'queue_total', 'prober_side'):
            out['%s_median_ms' % part] = statistics.median(
                v for p in parts for v in p['%s_ms' % part])
    return out


def amqp_connection(broker_url):
    """A plain AMQP connection to the (first) broker of a transport URL."""
    import amqp
    url = urllib.parse.urlsplit(broker_url.split(',')[0])
    conn = amqp.Connection(
        '%s:%d' % (url.hostname, url.port or 5672),
        userid=urllib.parse.unquote(url.username or 'guest'),
        password=urllib.parse.unquote(url.password or 'guest'),
        virtual_host=urllib.parse.unquote(url.path[1:]) or '/',
        connect_timeout=5)
    conn.connect()
    return conn


def broker_version(broker_url):
    """What the broker says it is, e.g. 'RabbitMQ 3.10.8'."""
    conn = amqp_connection(broker_url)
    try:
        props = conn.server_properties
        return '%s %s' % (props.get('product'), props.get('version'))
    finally:
        conn.close()


def _quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def median(values):
    return statistics.median(values)


def run(broker_url, repeats, services, window, count, serial_count,
        mode='threading', workdir=None, idle_seconds=1.0, log=print,
        endpoint='mixin'):
    """Benchmarks 1, 2 and 3; their results, and the repeats' raw figures.
    `endpoint`: how the services get inflight's endpoint, by hand (`mixin`)
    or through the hook (`hook`)."""
    bench = RPCBench(broker_url, services, mode, workdir, endpoint)
    try:
        bench.start()
        log('  %d %s services up (%s); warming up' % (
            services, bench.services[0].mode, ', '.join(bench.hosts)))
        # Warm-up: connections, the method book learning `inflight`,
        # thread pools, caches.
        for kind in ('echo', 'probe'):
            bench.pipelined(kind, max(window * 4, 4 * services), window)
            bench.serial(kind, max(10, serial_count // 10))
        # What the services burn doing nothing (heartbeats, the listener's
        # polling), for scale: it is counted in both kinds alike.
        # And the pair never probed: with the endpoint, and without.
        everyone = bench.services + bench.idle_pair
        idle_before = [s.cpu() for s in everyone]
        idle_started = time.monotonic()
        time.sleep(idle_seconds)   # a measurement window, not a wait
        window_s = time.monotonic() - idle_started
        used = [(s.cpu() - before) / window_s * 1e6
                for s, before in zip(everyone, idle_before)]
        idle = (sum(used[:services]) / services, used[services],
                used[services + 1])
        repeats_out = []
        for r in range(repeats):
            # The pipelined runs go A B B A, half the messages each time,
            # and which kind is A alternates: drift over the repeat (other
            # work on the machine) favours neither kind. The serial ones go
            # in pairs, message by message.
            a, b = ('echo', 'probe') if r % 2 == 0 else ('probe', 'echo')
            order = (a, b, b, a)
            parts = {kind: [] for kind in order}
            for kind in order:
                parts[kind].append(bench.pipelined(
                    kind, max(1, count // 2), window))
            rep = {'%s_pipelined' % kind: merge_pipelined(p)
                   for kind, p in parts.items()}
            pairs = bench.serial_pairs(max(1, serial_count))
            rep.update({'%s_serial' % kind: merge_serial([figures])
                        for kind, figures in pairs.items()})
            rep['load_average'] = os.getloadavg()[0]
            repeats_out.append(rep)
            log('  repeat %d/%d: %.0f probes/s vs %.0f echoes/s; serial '
                '%.3f vs %.3f ms; service CPU %.0f vs %.0f us' % (
                    r + 1, repeats, rep['probe_pipelined']['per_s'],
                    rep['echo_pipelined']['per_s'],
                    rep['probe_serial']['median_ms'],
                    rep['echo_serial']['median_ms'],
                    rep['probe_pipelined']['service_cpu_us'],
                    rep['echo_pipelined']['service_cpu_us']))
        counts = dict(bench.prober.counts)
    finally:
        bench.stop()
    return summarise(repeats_out, services, window, count, serial_count,
                     bench.services[0].mode if bench.services else mode,
                     counts, idle, endpoint)


def summarise(reps, services, window, count, serial_count, mode, counts,
              idle, endpoint='mixin'):
    idle, idle_with, idle_without = idle

    def med(key, field):
        return median(r[key][field] for r in reps)

    def med_ratio(num, den, field):
        return median(r[num][field] / r[den][field] for r in reps)

    setup = {'services': services, 'service_mode': mode,
             'endpoint': endpoint, 'window': window,
             'messages_per_repeat': count, 'serial_per_repeat': serial_count,
             'prober_counts': counts}
    throughput_ratio = med_ratio('probe_pipelined', 'echo_pipelined',
                                 'per_s')
    throughput = {
        'title': 'Probe throughput',
        'goal': 'probes/s >= 0.9 x echoes/s',
        'met': throughput_ratio >= 0.9,
        'ratios': {'probes_per_s / echoes_per_s': throughput_ratio,
                   'median probes_per_s / median echoes_per_s':
                       med('probe_pipelined', 'per_s') /
                       med('echo_pipelined', 'per_s'),
                   'prober CPU per probe / per echo':
                       med_ratio('probe_pipelined', 'echo_pipelined',
                                 'prober_cpu_us')},
        'figures': {
            'probes_per_s': med('probe_pipelined', 'per_s'),
            'echoes_per_s': med('echo_pipelined', 'per_s'),
            'prober_cpu_us_per_probe': med('probe_pipelined',
                                           'prober_cpu_us'),
            'prober_cpu_us_per_echo': med('echo_pipelined', 'prober_cpu_us'),
        },
        'setup': setup,
        'repeats': [{k: r[k] for k in ('probe_pipelined', 'echo_pipelined',
                                       'load_average')}
                    for r in reps],
    }
    added = median(r['probe_serial']['median_ms'] -
                   r['echo_serial']['median_ms'] for r in reps)
    latency = {
        'title': 'Added latency',
        'goal': 'serial probe median round trip <= echo median + 0.2 ms',
        'met': added <= 0.2,
        'ratios': {'probe_median / echo_median':
                   med_ratio('probe_serial', 'echo_serial', 'median_ms'),
                   'median of probe medians / median of echo medians':
                       med('probe_serial', 'median_ms') /
                       med('echo_serial', 'median_ms')},
        'figures': {
            'added_ms': added,
            'probe_median_ms': med('probe_serial', 'median_ms'),
            'echo_median_ms': med('echo_serial', 'median_ms'),
            'probe_p90_ms': med('probe_serial', 'p90_ms'),
            'echo_p90_ms': med('echo_serial', 'p90_ms'),
            'inflight_reported_round_trip_median_ms':
                med('probe_serial', 'reported_median_ms'),
            # The probe's round trip in three parts (Run.serial_figures()).
            'probe_in_service_median_ms': med('probe_serial',
                                              'in_service_median_ms'),
            'probe_queue_total_median_ms': med('probe_serial',
                                               'queue_total_median_ms'),
            'probe_prober_side_median_ms': med('probe_serial',
                                               'prober_side_median_ms'),
        },
        'setup': setup,
        'repeats': [{k: r[k] for k in ('probe_serial', 'echo_serial',
                                       'load_average')}
                    for r in reps],
    }
    cpu_ratio = med_ratio('probe_pipelined', 'echo_pipelined',
                          'service_cpu_us')
    cpu = {
        'title': 'Cost to the probed service',
        'goal': 'CPU per probe <= 1.2 x CPU per echo (an endpoint that '
                'casts back at once)',
        'met': cpu_ratio <= 1.2,
        'ratios': {'cpu_per_probe / cpu_per_echo': cpu_ratio},
        'figures': {
            'service_cpu_us_per_probe': med('probe_pipelined',
                                            'service_cpu_us'),
            'service_cpu_us_per_echo': med('echo_pipelined',
                                           'service_cpu_us'),
            'service_idle_cpu_us_per_s': idle,
            # Two services never probed, side by side in the same window.
            'never_probed_idle_cpu_us_per_s_with_endpoint': idle_with,
            'never_probed_idle_cpu_us_per_s_without': idle_without,
            'added_cpu_us_per_probe': median(
                r['probe_pipelined']['service_cpu_us'] -
                r['echo_pipelined']['service_cpu_us'] for r in reps),
        },
        'setup': setup,
        'repeats': [{k: {'service_cpu_us': r[k]['service_cpu_us'],
                         'count': r[k]['count']}
                     for k in ('probe_pipelined', 'echo_pipelined')}
                    for r in reps],
    }
    return {'throughput': throughput, 'latency': latency, 'service_cpu': cpu}
