"""Sends probes and accounts for each one exactly once.

The prober owns deadlines, timing and accounting: every probe sent ends
`received` or `lost`; a result that comes back after its probe was counted
lost counts `late`, and nothing else.
"""

import collections
import logging
import threading
import time

from inflight import probe as probe_msg
from inflight import timings

LOG = logging.getLogger(__name__)

Pending = collections.namedtuple('Pending', 'service sent_at deadline')


class Prober:
    """Probes services through `api_for(topic)` and reports to `metrics`."""

    def __init__(self, api_for, metrics, reply_host, sleep, timeout,
                 clock=time.time, monotonic=time.monotonic,
                 remember_lost=100000):
        self._api_for = api_for
        self._metrics = metrics
        self.reply_host = reply_host
        self.sleep = sleep
        self.timeout = timeout
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._pending = {}   # probe id -> Pending, oldest deadline first
        self._lost = collections.OrderedDict()  # probe id -> service
        self._remember_lost = remember_lost
        self.counts = collections.Counter()

    def _count(self, **counts):
        with self._lock:
            self.counts.update(counts)

    def pending(self):
        """How many probes are out, neither received nor lost."""
        return len(self._pending)

    def send(self, services):
        """Cast one probe to each service; a failed cast counts lost at once."""
        sent, failed = [], []
        for service in services:
            probe = probe_msg.new_probe(self._clock(), self.sleep,
                                        self.reply_host)
            deadline = self._monotonic() + self.sleep + self.timeout
            with self._lock:
                self._pending[probe.id] = Pending(service, probe.sent_at,
                                                  deadline)
            try:
                self._api_for(service.topic).inflight({}, service.host, probe)
            except Exception as e:  # noqa: BLE001 - one service's fault
                LOG.warning('Could not send a probe to %s.%s: %s',
                            service.topic, service.host, e)
                with self._lock:
                    self._pending.pop(probe.id, None)
                failed.append(service)
            else:
                sent.append(service)
        self._count(sent=len(sent) + len(failed), lost=len(failed))
        self._metrics.sent(sent + failed)
        self._metrics.lost(failed)
        return sent

    def receive(self, message):
        """Account for one result; its (service, Timings), or None if not ours."""
        back_at = self._clock()
        try:
            result = probe_msg.parse_result(message)
        except probe_msg.MalformedMessage as e:
            self._count(rejected=1)
            LOG.warning('Dropped a malformed inflight result: %s', e)
            return None
        with self._lock:
            pending = self._pending.pop(result.id, None)
            late = None if pending else self._lost.pop(result.id, None)
            if not self._pending:
                self._settled.notify_all()
        if pending is None:
            if late is not None:
                self._count(late=1)
                self._metrics.late([late])
            else:
                self._count(rejected=1)
                LOG.warning('Dropped a result for unknown probe %s from %s',
                            result.id, result.host)
            return None
        breakdown = timings.breakdown(pending.sent_at, result, back_at)
        self._count(received=1)
        self._metrics.received(pending.service, breakdown)
        LOG.debug('Probe %s to %s.%s: %s', result.id, pending.service.topic,
                  pending.service.host, breakdown)
        return pending.service, breakdown

    def expire(self):
        """Count lost every probe past its deadline; the services concerned."""
        return self._lose(lambda p: p.deadline <= self._monotonic())

    def wait_settled(self, timeout):
        """Wait up to `timeout` seconds for every probe out to come back."""
        with self._settled:
            return self._settled.wait_for(lambda: not self._pending, timeout)

    def abandon(self):
        """Count lost every probe still out (at shutdown)."""
        return self._lose(lambda p: True)

    def _lose(self, is_lost):
        lost = []
        with self._lock:
            # Deadlines grow with insertion order: stop at the first not due.
            for probe_id, pending in list(self._pending.items()):
                if not is_lost(pending):
                    break
                del self._pending[probe_id]
                self._lost[probe_id] = pending.service
                lost.append(pending.service)
            while len(self._lost) > self._remember_lost:
                self._lost.popitem(last=False)
        if lost:
            self._count(lost=len(lost))
            self._metrics.lost(lost)
            for service in lost:
                LOG.info('Probe to %s.%s lost', service.topic, service.host)
        return lost
