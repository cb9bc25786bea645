"""Timings and counts to statsd, named for graphite.

Names are `<prefix>.<topic>.<host>.<leaf>`. A metrics failure is logged and
never reaches the caller: probing goes on without statsd.
"""

import logging
import re

import statsd

LOG = logging.getLogger(__name__)

_UNSAFE = re.compile(r'[^A-Za-z0-9_-]')


def graphite_safe(part):
    """`part` as one graphite node: dots and other symbols become '_'."""
    return _UNSAFE.sub('_', part) or '_'


def metric_name(topic, host, leaf):
    """The name, under the prefix, of one service's metric."""
    return '%s.%s.%s' % (graphite_safe(topic), graphite_safe(host), leaf)


class Metrics:
    """Sends probe outcomes to one statsd server over UDP."""

    def __init__(self, host, port, prefix):
        self.address = (host, port)
        self.prefix = prefix
        self._client = None

    def _statsd(self):
        if self._client is None:
            host, port = self.address
            self._client = statsd.StatsClient(host, port, prefix=self.prefix)
        return self._client

    def _send(self, fill):
        """Fill one pipeline (one UDP packet, or a few) and send it."""
        try:
            with self._statsd().pipeline() as pipe:
                fill(pipe)
        except Exception as e:  # noqa: BLE001 - metrics never break probing
            LOG.warning('Could not send metrics to statsd at %s:%s: %s',
                        self.address[0], self.address[1], e)

    def _count(self, services, leaf):
        def fill(pipe):
            for service in services:
                pipe.incr(metric_name(service.topic, service.host, leaf))
        self._send(fill)

    def sent(self, services):
        """Count one probe sent to each of `services`."""
        self._count(services, 'sent')

    def lost(self, services):
        """Count one probe lost for each of `services`."""
        self._count(services, 'lost')

    def late(self, services):
        """Count one result that came back after its probe was counted lost."""
        self._count(services, 'late')

    def received(self, service, timings, clock_offset=None):
        """The timings (sent in ms) of one probe that came back.

        A phase that the probe's kind does not measure (None) is not sent;
        the clock offset (s), where known, goes as the gauge clock_offset (ms).
        """
        def fill(pipe):
            for phase, seconds in timings._asdict().items():
                if seconds is not None:
                    pipe.timing(metric_name(service.topic, service.host,
                                            phase), seconds * 1000.0)
            pipe.incr(metric_name(service.topic, service.host, 'received'))
            if clock_offset is not None:
                pipe.gauge(metric_name(service.topic, service.host,
                                       'clock_offset'), clock_offset * 1000.0)
        self._send(fill)

    def deaf(self, service, deaf):
        """Gauge `deaf`: 1 while the service is up but deaf, else 0."""
        self._send(lambda pipe: pipe.gauge(
            metric_name(service.topic, service.host, 'deaf'), int(deaf)))

    def method(self, service, kind, kinds):
        """Gauges `method.<kind>`: 1 for the kind the service answers, 0 else."""
        def fill(pipe):
            for each in kinds:
                pipe.gauge(metric_name(service.topic, service.host,
                                       'method.' + each), int(each == kind))
        self._send(fill)


class NullMetrics:
    """Metrics sent nowhere: for probing by hand."""

    def __getattr__(self, name):
        return lambda *args: None
