"""Sends probes, each of the kinds its plan names in turn, within one deadline.

The prober is the runner: it picks each probe's plan (inflight.methods),
sends its kinds (inflight.probes) one after another as long as the service
says at once that it lacks the one sent, owns the deadline and the timing,
and keeps the book of probes out (inflight.book) so that every probe sent
ends once: received, or lost when no kind answered within sleep + timeout
of its first send. It never asks which kind it sends: the kind's record
says whether it waits for a reply and whether its answer comes back apart.
"""

from concurrent import futures
import collections
import logging
import threading
import time

from inflight import book as probe_book
from inflight import methods
from inflight import probe as probe_msg
from inflight import probes
from inflight import skew
from inflight import timings

LOG = logging.getLogger(__name__)

class Prober:
    """Probes services through `api_for(service)` and reports to `metrics`.

    `on_outcome(service, kind, timings, state)` callables hear of every
    probe's end: `kind` the name of the last kind tried, `timings` None when
    lost, `state` what the service looked like when it took the probe (the
    result's figures, inflight.state) or None.
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
        self.book = probe_book.ProbeBook(remember_lost)
        self._on_outcome = list(on_outcome)
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # Sends that wait (calls) go to threads of their own: services that
        # answer nothing hold a call up to the deadline, and must not hold
        # up the others' probes. A cast goes from the thread that sends the
        # probe (the tick): it takes a fraction of a millisecond, and
        # handing it to another thread cost more than the cast. A broker
        # that stalls holds it at most for oslo.messaging's socket timeout
        # on a publish ([oslo_messaging_rabbit] heartbeat_timeout_threshold),
        # and the probes out meanwhile are counted lost when it returns.
        self._calls = executor or futures.ThreadPoolExecutor(
            max_calls, thread_name_prefix='inflight-call')
        self._stopping = False
        self.counts = collections.Counter()

    def _count(self, outcome, count=1):
        with self._lock:
            self.counts[outcome] += count

    def pending(self):
        """How many probes are out, neither received nor lost."""
        return len(self.book)

    def send(self, services):
        """Send one probe to each service, by the plan made for it."""
        services = list(services)
        self._count('sent', len(services))
        self._metrics.sent(services)
        for service in services:
            plan = self.methods.plan(service)
            kinds = probes.for_plan(plan.kinds)
            probe = probe_msg.new_probe(self._clock(), self.sleep,
                                        self.reply_host)
            out = probe_book.Out(
                service, plan, kinds, 0, probe.sent_at,
                self._monotonic() + self.sleep + self.timeout)
            self.book.open(probe.id, out)
            self._submit(probe, out)

    def _submit(self, probe, out):
        """Send the probe at the kind it is at (`out`, as booked when
        `probe` was stamped): a cast from this thread, a call in a pool
        thread."""
        if self._stopping:
            self._end_lost(probe.id)
        elif not out.kinds[out.step].waits:
            self._run(probe, out)
        else:
            try:
                self._calls.submit(self._run, probe)
            except RuntimeError:      # the pool is shut down: stopping
                self._end_lost(probe.id)

    def _run(self, probe, out=None):
        """Send the probe as the kind it is at: `out` as booked, or None
        in a call thread, where it is read from the book and stamped anew
        (t0 is when it leaves, not when it was queued)."""
        if out is None:
            out = self.book.update(probe.id, sent_at=self._clock())
            if out is None:
                return                # over before it could start
            probe = probe._replace(sent_at=out.sent_at)
        kind = out.kinds[out.step]
        left = out.deadline - self._monotonic()
        try:
            probes.send(kind, self._api_for(out.service), out.service.host,
                        probe, max(left - (self.sleep if kind.apart else 0.0),
                                   0.001))
            error = None
        except Exception as e:  # noqa: BLE001 - unsupported, timeouts
            error = e
        if error is not None:
            LOG.debug('%s probe of %s failed: %s', kind.name, out.service,
                      error)
            self._next_kind(probe)
        elif not kind.apart:
            done = self.book.close(probe.id)
            if done is not None:      # not yet counted at its deadline
                self._received(done, timings.round_trip_only(
                    self._clock() - done.sent_at))

    def _next_kind(self, probe):
        """The service lacks the kind sent: the plan's next kind, within
        the same deadline; else the probe is lost."""
        out = self.book.get(probe.id)
        if out is None:
            return
        if (out.step + 1 < len(out.kinds) and not self._stopping and
                self._monotonic() < out.deadline):
            out = self.book.update(probe.id, step=out.step + 1,
                                   sent_at=self._clock())
            if out is not None:
                self._submit(probe._replace(sent_at=out.sent_at), out)
        else:
            self._end_lost(probe.id)

    def _end_lost(self, probe_id):
        out = self.book.close(probe_id)
        if out is not None:
            self._lose(out)

    def _lose(self, out):
        self.methods.missed(out.service, out.plan)
        self._count('lost')
        self._metrics.lost([out.service])
        LOG.debug('Probe to %s lost', out.service)
        for listener in self._on_outcome:
            listener(out.service, out.kinds[out.step].name, None, None)

    def _received(self, out, breakdown, clock_offset=None, state=None):
        kind = out.kinds[out.step].name
        if self.methods.answered(out.service, kind, out.plan):
            self._metrics.method(out.service, kind, probes.ORDER)
        self._count('received')
        self._metrics.received(out.service, kind, breakdown, clock_offset,
                               state)
        LOG.debug('%s probe of %s: %s', kind, out.service, breakdown)
        for listener in self._on_outcome:
            listener(out.service, kind, breakdown, state)

    def out_for(self, services):
        """Those of `services` with a probe out."""
        keys = self.book.keys_out()
        return [s for s in services if s.key in keys]

    def forget(self, services):
        """Forget what was learnt of `services` (they left this prober);
        their probes out still end as usual."""
        self.methods.forget(services)
        self.offsets.forget(services)

    def receive(self, message):
        """Account for one inflight result; its Timings, or None if not ours."""
        back_at = self._clock()
        try:
            result, malformed = probe_msg.parse_result(message), None
        except probe_msg.MalformedMessage as e:
            malformed = e
        if malformed is not None:
            self._count('rejected')
            LOG.warning('Dropped a malformed inflight result: %s', malformed)
            return None
        out, why = self.book.close_for_result(result.id)
        if why == 'late':
            self._count('late')
            self._metrics.late([out.service])
            return None
        if why is not None:
            self._count('rejected')
            LOG.warning('Dropped a result for %s probe %s from %s', why,
                        result.id, result.host)
            return None
        breakdown, offset = self.offsets.correct(
            out.service, timings.breakdown(out.sent_at, result, back_at))
        self._received(out, breakdown, offset, result.state)
        return breakdown

    def expire(self):
        """Count lost every probe past its deadline; their services."""
        return self._expire(everything=False)

    def wait_settled(self, timeout):
        """Wait up to `timeout` seconds for every probe out to end."""
        return self.book.wait_settled(timeout)

    def drain(self, timeout, tick=0.05):
        """Wait up to `timeout` seconds for the probes out, counting lost
        those past their deadline meanwhile; True if all ended."""
        deadline = self._monotonic() + timeout
        while not self.wait_settled(tick):
            if self._monotonic() >= deadline:
                return False
            self.expire()
        return True

    def abandon(self):
        """At shutdown: count every probe still out lost, and stop sending."""
        self._stopping = True
        expired = self._expire(everything=True)
        # Calls still running are counted already; do not wait for them.
        self._calls.shutdown(wait=False, cancel_futures=True)
        return expired

    def _expire(self, everything):
        ended = self.book.due(self._monotonic(), everything)
        for _, out in ended:
            self._lose(out)
        return [out.service for _, out in ended]
