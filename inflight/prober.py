"""Sends probes and accounts for each one exactly once.

The prober is the runner: it picks each probe's kind (inflight.methods),
owns deadlines and timing, and ends every probe sent `received` or `lost`.
A probe whose kind the service turns out not to answer is handed on to the
next kind before it counts lost. A result that comes back after its probe
was counted lost counts `late`, and nothing else.
"""

import collections
from concurrent import futures
import logging
import threading
import time

from inflight import methods
from inflight import probe as probe_msg
from inflight import probes
from inflight import timings

LOG = logging.getLogger(__name__)

Pending = collections.namedtuple('Pending',
                                 'service tried sent_at deadline')

INFLIGHT = probes.ORDER[0]


class Prober:
    """Probes services through `api_for(topic)` and reports to `metrics`.

    `on_outcome(service, kind, timings)` callables hear of every probe's
    end: `timings` is None when it was lost.
    """

    def __init__(self, api_for, metrics, reply_host, sleep, timeout,
                 method_book=None, on_outcome=(), max_calls=32,
                 clock=time.time, monotonic=time.monotonic,
                 remember_lost=100000):
        self._api_for = api_for
        self._metrics = metrics
        self.reply_host = reply_host
        self.sleep = sleep
        self.timeout = timeout
        self.methods = method_book or methods.MethodBook()
        self._on_outcome = list(on_outcome)
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._pending = {}   # inflight probe id -> Pending, by deadline
        self._lost = collections.OrderedDict()  # id -> (service, counted)
        self._remember_lost = remember_lost
        self._calls = futures.ThreadPoolExecutor(
            max_calls, thread_name_prefix='inflight-ping')
        self._calls_out = 0
        self._stopping = False
        self.counts = collections.Counter()

    def _count(self, **counts):
        with self._lock:
            self.counts.update(counts)

    def pending(self):
        """How many probes are out, neither received nor lost."""
        return len(self._pending) + self._calls_out

    def send(self, services):
        """Send one probe to each service, of the kind it answers."""
        services = list(services)
        self._count(sent=len(services))
        self._metrics.sent(services)
        for service in services:
            self._send(service, self.methods.choose(service), ())

    def _send(self, service, kind, tried):
        probe = probe_msg.new_probe(self._clock(), self.sleep,
                                    self.reply_host)
        if kind != INFLIGHT:
            with self._lock:
                self._calls_out += 1
            self._calls.submit(self._call, service, kind, tried, probe)
            return
        deadline = self._monotonic() + self.sleep + self.timeout
        with self._lock:
            self._pending[probe.id] = Pending(service, tried, probe.sent_at,
                                              deadline)
        try:
            probes.send(kind, self._api_for(service.topic), service.host,
                        probe, self.timeout)
        except Exception as e:  # noqa: BLE001 - one service's fault
            LOG.warning('Could not send a probe to %s.%s: %s',
                        service.topic, service.host, e)
            with self._lock:
                self._pending.pop(probe.id, None)
            self._failed(service, kind, tried)

    def _call(self, service, kind, tried, probe):
        """Run one ping call (in a pool thread) and account for it."""
        try:
            if self._stopping:
                self._failed(service, kind, tried)
                return
            try:
                probes.send(kind, self._api_for(service.topic), service.host,
                            probe, self.timeout)
            except probes.Unsupported:
                self._failed(service, kind, tried)
            except Exception as e:  # noqa: BLE001 - timeouts, broker faults
                LOG.debug('%s to %s.%s failed: %s', kind, service.topic,
                          service.host, e)
                self._failed(service, kind, tried)
            else:
                round_trip = self._clock() - probe.sent_at
                self._received(service, kind, timings.Timings(
                    None, None, None, None, round_trip))
        finally:
            with self._lock:
                self._calls_out -= 1
                self._settled.notify_all()

    def _failed(self, service, kind, tried):
        """Hand the probe on to the next kind, or count it lost."""
        following = None if self._stopping else self.methods.failed(
            service, kind, tried)
        if following:
            self._send(service, following, tried + (kind,))
        else:
            self._lose(service, kind)

    def _lose(self, service, kind):
        self._count(lost=1)
        self._metrics.lost([service])
        LOG.info('Probe to %s.%s lost', service.topic, service.host)
        for listener in self._on_outcome:
            listener(service, kind, None)

    def _received(self, service, kind, breakdown):
        if self.methods.answered(service, kind):
            self._metrics.method(service, kind, probes.ORDER)
        self._count(received=1)
        self._metrics.received(service, breakdown)
        LOG.debug('%s probe of %s.%s: %s', kind, service.topic, service.host,
                  breakdown)
        for listener in self._on_outcome:
            listener(service, kind, breakdown)

    def receive(self, message):
        """Account for one inflight result; its Timings, or None if not ours."""
        back_at = self._clock()
        try:
            result = probe_msg.parse_result(message)
        except probe_msg.MalformedMessage as e:
            self._count(rejected=1)
            LOG.warning('Dropped a malformed inflight result: %s', e)
            return None
        with self._lock:
            pending = self._pending.pop(result.id, None)
            service, counted = (None, False) if pending else self._lost.pop(
                result.id, (None, False))
            if not self._pending:
                self._settled.notify_all()
        if pending is None:
            if counted:
                self._count(late=1)
                self._metrics.late([service])
            elif service is None:
                self._count(rejected=1)
                LOG.warning('Dropped a result for unknown probe %s from %s',
                            result.id, result.host)
            return None
        breakdown = timings.breakdown(pending.sent_at, result, back_at)
        self._received(pending.service, INFLIGHT, breakdown)
        return breakdown

    def expire(self):
        """Deal with every inflight probe past its deadline."""
        return self._expire(lambda p: p.deadline <= self._monotonic())

    def wait_settled(self, timeout):
        """Wait up to `timeout` seconds for every probe out to end."""
        with self._settled:
            return self._settled.wait_for(
                lambda: not self._pending and not self._calls_out, timeout)

    def abandon(self):
        """At shutdown: count every probe still out lost, and stop the calls."""
        self._stopping = True
        expired = self._expire(lambda p: True)
        self._calls.shutdown(wait=True)
        return expired

    def _expire(self, is_due):
        due = []
        with self._lock:
            # Deadlines grow with insertion order: stop at the first not due.
            for probe_id, pending in list(self._pending.items()):
                if not is_due(pending):
                    break
                del self._pending[probe_id]
                due.append((probe_id, pending))
        for probe_id, pending in due:
            handed_on = not self._stopping and self.methods.failed(
                pending.service, INFLIGHT, pending.tried)
            with self._lock:
                self._lost[probe_id] = (pending.service, not handed_on)
                while len(self._lost) > self._remember_lost:
                    self._lost.popitem(last=False)
            if handed_on:
                self._send(pending.service, handed_on,
                           pending.tried + (INFLIGHT,))
            else:
                self._lose(pending.service, INFLIGHT)
        return [pending.service for _, pending in due]
