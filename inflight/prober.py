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
from inflight import skew
from inflight import timings

LOG = logging.getLogger(__name__)

Pending = collections.namedtuple('Pending',
                                 'service plan step sent_at deadline')

INFLIGHT = probes.ORDER[0]

# Threads casting inflight probes. A cast takes a fraction of a millisecond
# unless the broker stalls, and then every probe ends at its deadline anyway.
CAST_THREADS = 4


class Prober:
    """Probes services through `api_for(topic)` and reports to `metrics`.

    `on_outcome(service, kind, timings)` callables hear of every probe's
    end: `timings` is None when it was lost.
    """

    def __init__(self, api_for, metrics, reply_host, sleep, timeout,
                 method_book=None, on_outcome=(), max_calls=32,
                 clock_offsets=None, executor=None,
                 clock=time.time, monotonic=time.monotonic,
                 remember_lost=100000):
        self._api_for = api_for
        self._metrics = metrics
        self.reply_host = reply_host
        self.sleep = sleep
        self.timeout = timeout
        self.methods = method_book or methods.MethodBook()
        self.offsets = clock_offsets or skew.ClockOffsets()
        self._on_outcome = list(on_outcome)
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._pending = {}   # inflight probe id -> Pending, by deadline
        self._lost = collections.OrderedDict()  # id -> (service, counted)
        self._remember_lost = remember_lost
        # Casts and calls apart: services that answer no kind hold calls for
        # probe_timeout each, and must not hold up the others' probes.
        self._casts = executor or futures.ThreadPoolExecutor(
            CAST_THREADS, thread_name_prefix='inflight-cast')
        self._calls = executor or futures.ThreadPoolExecutor(
            max_calls, thread_name_prefix='inflight-call')
        self._stopping = False
        self.counts = collections.Counter()

    def _count(self, **counts):
        with self._lock:
            self.counts.update(counts)

    def pending(self):
        """How many probes are out, neither received nor lost."""
        return len(self._pending)

    def send(self, services):
        """Send one probe to each service, of the kind it answers."""
        services = list(services)
        self._count(sent=len(services))
        self._metrics.sent(services)
        for service in services:
            self._send(service, self.methods.plan(service), 0)

    def _send(self, service, plan, step):
        """Send the probe as the plan's kind number `step`.

        Every kind gets the same deadline, sleep + timeout from now, and is
        sent from a pool (casts and calls each their own): the runner owns
        the deadline, so a send or call stuck in the driver (while the
        broker stalls, say) holds up neither the periodic task nor the
        accounting.
        """
        probe = probe_msg.new_probe(self._clock(), self.sleep,
                                    self.reply_host)
        deadline = self._monotonic() + self.sleep + self.timeout
        with self._lock:
            self._pending[probe.id] = Pending(service, plan, step,
                                              probe.sent_at, deadline)
        pool = self._casts if plan.kinds[step] == INFLIGHT else self._calls
        try:
            pool.submit(self._run, service, plan, step, probe)
        except RuntimeError:          # the pool is shut down: stopping
            if self._settle(probe.id):
                self._lose(service, plan.kinds[step])

    def _run(self, service, plan, step, probe):
        """Send one probe (in a pool thread) and account for what it can."""
        kind = plan.kinds[step]
        with self._lock:
            pending = self._pending.get(probe.id)
            if pending is None:
                return                # over before it could start
            # t0 is when it leaves, not when it was queued for the pool.
            probe = probe._replace(sent_at=self._clock())
            self._pending[probe.id] = pending._replace(sent_at=probe.sent_at)
        try:
            probes.send(kind, self._api_for(service.topic), service.host,
                        probe, self.timeout)
            error = None
        except Exception as e:  # noqa: BLE001 - unsupported, timeouts
            error = e
        answered = error is None
        if not answered:
            LOG.log(logging.WARNING if kind == INFLIGHT else logging.DEBUG,
                    'Could not send a probe to %s.%s (%s): %s',
                    service.topic, service.host, kind, error)
        if kind == INFLIGHT and answered:
            return                    # its result comes back on its own
        if not self._settle(probe.id):
            return                    # already counted at its deadline
        if answered:
            round_trip = self._clock() - probe.sent_at
            self._received(service, plan, kind,
                           timings.round_trip_only(round_trip))
        else:
            self._failed(service, plan, step)

    def _settle(self, probe_id):
        """Take a probe off the list of those out; False if it was not."""
        with self._lock:
            mine = self._pending.pop(probe_id, None) is not None
            if not self._pending:
                self._settled.notify_all()
        return mine

    def _failed(self, service, plan, step):
        """Hand the probe on to the plan's next kind, or count it lost."""
        if step + 1 < len(plan.kinds) and not self._stopping:
            self._send(service, plan, step + 1)
            return
        self.methods.missed(service, plan)
        self._lose(service, plan.kinds[step])

    def _lose(self, service, kind):
        self._count(lost=1)
        self._metrics.lost([service])
        LOG.debug('Probe to %s.%s lost', service.topic, service.host)
        for listener in self._on_outcome:
            listener(service, kind, None)

    def _received(self, service, plan, kind, breakdown, clock_offset=None):
        if self.methods.answered(service, kind, plan):
            self._metrics.method(service, kind, probes.ORDER)
        self._count(received=1)
        self._metrics.received(service, breakdown, clock_offset)
        LOG.debug('%s probe of %s.%s: %s', kind, service.topic, service.host,
                  breakdown)
        for listener in self._on_outcome:
            listener(service, kind, breakdown)

    def receive(self, message):
        """Account for one inflight result; its Timings, or None if not ours."""
        back_at = self._clock()
        try:
            result, malformed = probe_msg.parse_result(message), None
        except probe_msg.MalformedMessage as e:
            malformed = e
        if malformed is not None:
            self._count(rejected=1)
            LOG.warning('Dropped a malformed inflight result: %s', malformed)
            return None
        with self._lock:
            pending = self._pending.pop(result.id, None)
            service, counted = (None, False) if pending else self._lost.pop(
                result.id, (None, False))
            if not self._pending:
                self._settled.notify_all()
        if pending and pending.plan.kinds[pending.step] != INFLIGHT:
            self._count(rejected=1)   # a forged result for a ping probe
            LOG.warning('Dropped a result for ping probe %s', result.id)
            return None
        if pending is None:
            if counted:
                self._count(late=1)
                self._metrics.late([service])
            elif service is None:
                self._count(rejected=1)
                LOG.warning('Dropped a result for unknown probe %s from %s',
                            result.id, result.host)
            return None
        breakdown, offset = self.offsets.correct(
            pending.service, timings.breakdown(pending.sent_at, result,
                                               back_at))
        self._received(pending.service, pending.plan, INFLIGHT, breakdown,
                       offset)
        return breakdown

    def expire(self):
        """Deal with every inflight probe past its deadline."""
        return self._expire(lambda p: p.deadline <= self._monotonic())

    def wait_settled(self, timeout):
        """Wait up to `timeout` seconds for every probe out to end."""
        with self._settled:
            return self._settled.wait_for(lambda: not self._pending, timeout)

    def drain(self, timeout, tick=0.05):
        """Wait up to `timeout` seconds for the probes out, still handing
        overdue ones on to their next kind; True if all ended."""
        deadline = self._monotonic() + timeout
        while not self.wait_settled(tick):
            if self._monotonic() >= deadline:
                return False
            self.expire()
        return True

    def abandon(self):
        """At shutdown: count every probe still out lost, and stop the calls."""
        self._stopping = True
        expired = self._expire(lambda p: True)
        # Calls still running are counted already; do not wait for them.
        for pool in (self._casts, self._calls):
            pool.shutdown(wait=False, cancel_futures=True)
        return expired

    def _expire(self, is_due):
        due = []
        with self._lock:
            # Deadlines grow with insertion order: stop at the first not due.
            while self._pending:
                probe_id, pending = next(iter(self._pending.items()))
                if not is_due(pending):
                    break
                del self._pending[probe_id]
                due.append((probe_id, pending))
            if not self._pending:
                self._settled.notify_all()
        for probe_id, pending in due:
            last = (pending.step + 1 == len(pending.plan.kinds) or
                    self._stopping)
            if pending.plan.kinds[pending.step] == INFLIGHT:
                with self._lock:
                    # A result after this is late if the probe counts lost.
                    self._lost[probe_id] = (pending.service, last)
                    while len(self._lost) > self._remember_lost:
                        self._lost.popitem(last=False)
            self._failed(pending.service, pending.plan, pending.step)
        return [pending.service for _, pending in due]
