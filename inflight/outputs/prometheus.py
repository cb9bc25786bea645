"""Probe outcomes as Prometheus metrics, served over HTTP at /metrics.

Labels carry the topic and host as they are (no graphite mangling). Each
phase is a histogram labelled with the kind of probe too: a ping kind
observes only its round trip. The metrics live in a registry of this
output's own. A port that cannot be had (taken, not allowed) gives one
warning line, and probing goes on without Prometheus.
"""

import errno
import logging
import threading
import time

import prometheus_client

from inflight import probes
from inflight.timings import PHASES

LOG = logging.getLogger(__name__)

# Upper bounds (s) of the buckets of every phase: RPC latency, from under a
# millisecond to ten seconds and more.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
           1.0, 2.5, 5.0, 10.0, 30.0)
# The phases that hold the requested sleep (an inflight probe's) get bounds
# this much above it too, so that their quantiles are not a whole bucket
# wide: with the default sleep of 1 s, 1.001, 1.005, 1.01, 1.05, 1.1, 1.5.
ABOVE_SLEEP = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5)
HOLD_THE_SLEEP = ('in_service', 'round_trip')

HELP = {
    'to_service': 'Probe from the prober to the service (its queue and the '
                  'wire), corrected for the clock offset',
    'in_service': 'Probe in the service: the requested sleep and the '
                  'overhead',
    'overhead': 'How late the service woke from the requested sleep (event '
                'loop or worker pool held up)',
    'from_service': 'Result from the service back to the prober, corrected '
                    'for the clock offset',
    'queue_total': 'to_service + from_service: the round trip less the time '
                   'in the service, exact whatever the clock offset',
    'round_trip': 'Probe sent to result back (an inflight probe: the '
                  'requested sleep included)',
}

FIGURES = {
    'executor_busy': 'Workers of the service\'s RPC server busy with other '
                     'messages as it took the latest probe',
    'executor_max': 'Most workers the service\'s RPC server runs at once',
    'executor_waiting': 'Messages waiting for a worker of the service\'s RPC '
                        'server as it took the latest probe',
    'hub_timers': 'Timers of the service\'s eventlet hub as it took the '
                  'latest probe',
    'hub_listeners': 'Greenthreads of the service\'s eventlet hub waiting on '
                     'a socket as it took the latest probe',
}

SERVICE = ('cell', 'topic', 'host')   # cell '' in a cloud read without cells

# How long a new worker tries for a port still taken (the last worker,
# stopping), and how often.
BIND_FOR = 5.0
BIND_EVERY = 0.1


def buckets(phase, sleep):
    """The bucket bounds of one phase's histogram, for a requested `sleep`."""
    if phase not in HOLD_THE_SLEEP or sleep <= 0:
        return BUCKETS
    return tuple(sorted(set(BUCKETS) |
                        {round(sleep + above, 6) for above in ABOVE_SLEEP}))


def address(host, port):
    """host:port, an IPv6 host in brackets."""
    return ('[%s]:%d' if ':' in host else '%s:%d') % (host, port)


class Exporter:
    """Probe outcomes in a registry of its own, served at
    http://host:port/metrics from a thread of its own (not served at port 0);
    a histogram for each of `phases`, whose buckets fit a requested `sleep`.
    """

    def __init__(self, host='127.0.0.1', port=0, sleep=0.0, phases=PHASES,
                 bind_for=BIND_FOR):
        # The _created series Prometheus' text format does not use: one per
        # service and histogram or counter fewer.
        prometheus_client.disable_created_metrics()
        self.registry = prometheus_client.CollectorRegistry()
        self.host, self.port = host, port
        registry = self.registry
        self._phases = {
            phase: prometheus_client.Histogram(
                'inflight_%s_seconds' % phase, HELP[phase],
                SERVICE + ('kind',), buckets=buckets(phase, sleep),
                registry=registry)
            for phase in PHASES if phase in phases}
        self._counts = {
            outcome: prometheus_client.Counter(
                'inflight_probes_%s' % outcome, text, SERVICE,
                registry=registry)
            for outcome, text in (
                ('sent', 'Probes sent'),
                ('received', 'Results received in time'),
                ('lost', 'Probes with no result in time (sleep + '
                         'probe_timeout), counted once'),
                ('late', 'Results back after their probe was counted lost'))}
        self._deaf = prometheus_client.Gauge(
            'inflight_deaf', '1 while the service is up by its heartbeat but '
            'loses its probes, else 0', SERVICE, registry=registry)
        self._clock_offset = prometheus_client.Gauge(
            'inflight_clock_offset_seconds', 'Offset of the service\'s clock '
            'taken off its legs', SERVICE, registry=registry)
        self._figures = {
            name: prometheus_client.Gauge('inflight_' + name, text, SERVICE,
                                          registry=registry)
            for name, text in FIGURES.items()}
        self._kind = prometheus_client.Gauge(
            'inflight_probe_kind', '1 for the kind of probe the service '
            'answers, 0 for the others', SERVICE + ('kind',),
            registry=registry)
        self._server = self._thread = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._binder = None
        self.bound = threading.Event()   # set once the port is tried for
        if port:
            self._binder = threading.Thread(
                target=self._serve, args=(bind_for,), daemon=True,
                name='inflight-prometheus-bind')
            self._binder.start()
        else:
            self.bound.set()

    @property
    def serving(self):
        """Whether /metrics is served."""
        return self._server is not None

    def _serve(self, bind_for):
        """Listen on the port; while it is taken, try again for `bind_for`
        seconds (the last worker may not have let it go yet)."""
        ends = time.monotonic() + bind_for
        try:
            while True:
                error = None
                try:
                    server, thread = prometheus_client.start_http_server(
                        self.port, self.host, registry=self.registry)
                except Exception as e:  # noqa: BLE001 - never the prober's
                    error = e
                if error is None:
                    break
                taken = getattr(error, 'errno', None) == errno.EADDRINUSE
                if (taken and time.monotonic() < ends and
                        not self._closed.wait(BIND_EVERY)):
                    continue
                if not self._closed.is_set():
                    LOG.warning('Prometheus metrics are not served: '
                                'cannot listen on %s: %s; probing goes '
                                'on without them',
                                address(self.host, self.port), error)
                return
            with self._lock:
                if not self._closed.is_set():
                    self._server, self._thread = server, thread
                    server = None
            if server is not None:       # closed meanwhile
                self._shut(server, thread)
                return
            LOG.info('Prometheus metrics at http://%s/metrics',
                     address(self.host, self.port))
        finally:
            self.bound.set()

    @staticmethod
    def _shut(server, thread):
        server.shutdown()
        server.server_close()
        thread.join()

    def close(self):
        """Stop serving and let go of the port."""
        with self._lock:
            self._closed.set()
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if self._binder is not None:
            self._binder.join()
        if server is not None:
            self._shut(server, thread)

    def _labels(self, service):
        return service.key

    def known(self, services):
        """Labels are the services' own: nothing to name."""

    def forget(self, services):
        """Drop every series of `services` (they left this prober)."""
        per_service = (list(self._counts.values()) +
                       list(self._figures.values()) +
                       [self._deaf, self._clock_offset])
        per_kind = list(self._phases.values()) + [self._kind]
        for service in services:
            labels = self._labels(service)
            for metric in per_service:
                metric.remove(*labels)
            for metric in per_kind:
                for kind in probes.ORDER:
                    metric.remove(*labels, kind)

    def _count(self, services, outcome):
        counter = self._counts[outcome]
        for service in services:
            counter.labels(*self._labels(service)).inc()

    def sent(self, services):
        """Count one probe sent to each of `services`."""
        self._count(services, 'sent')

    def lost(self, services):
        """Count one probe lost for each of `services`."""
        self._count(services, 'lost')

    def late(self, services):
        """Count one result that came back after its probe was counted lost."""
        self._count(services, 'late')

    def received(self, service, kind, timings, clock_offset=None,
                 state=None):
        """Observe each phase `timings` measures, in seconds.

        A leg the clock-offset correction made negative (it lies within the
        offset's error) is observed as 0, so that each histogram's _sum
        only grows, as Prometheus takes it to (rate(_sum) / rate(_count) is
        the mean).
        """
        labels = self._labels(service)
        for phase, seconds in timings._asdict().items():
            histogram = self._phases.get(phase)
            if seconds is not None and histogram is not None:
                histogram.labels(*labels, kind).observe(max(0.0, seconds))
        self._counts['received'].labels(*labels).inc()
        if clock_offset is not None:
            self._clock_offset.labels(*labels).set(clock_offset)
        for name, count in (state or {}).items():
            gauge = self._figures.get(name)
            if gauge is not None:
                gauge.labels(*labels).set(count)

    def deaf(self, service, deaf):
        """inflight_deaf: 1 while the service is up but deaf, else 0."""
        self._deaf.labels(*self._labels(service)).set(int(deaf))

    def method(self, service, kind, kinds):
        """inflight_probe_kind: 1 for the kind the service answers, 0 else."""
        labels = self._labels(service)
        for each in kinds:
            self._kind.labels(*labels, each).set(int(each == kind))
