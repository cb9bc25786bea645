"""Which kind of probe each service answers, learnt from the probes themselves.

Each probe follows a plan: kinds to try in turn, the next one as soon as
one fails (no result, or unsupported). A service not heard from yet gets
every kind, richest first (the inflight mixin, then Nova's baseapi ping,
then oslo_rpc_server_ping). Once it answered one, it gets that kind only,
so that a deaf service is found out in one probe timeout; now and then the
richest kind is tried first again, and after `relearn_after` probes lost in
a row every kind is tried again, in case the service lost its mixin.
"""

import collections
import logging
import threading
import time

from inflight import probes

LOG = logging.getLogger(__name__)

# `learnt` is how many kinds had been learnt for the service when the plan
# was made: an answer to a plan made before the last thing learnt is old news.
Plan = collections.namedtuple('Plan', 'kinds learnt')


class _State:
    __slots__ = ('kind', 'learnt', 'richer_tried_at', 'missed')

    def __init__(self, now):
        self.kind = None          # the kind it answers, once known
        self.learnt = 0           # kinds learnt so far, one after another
        self.richer_tried_at = now
        self.missed = 0           # plans in a row of which no kind answered


class MethodBook:
    """Remembers, per service, the kind of probe that works."""

    def __init__(self, overrides=None, richer_retry_interval=300.0,
                 relearn_after=3, monotonic=time.monotonic):
        self.overrides = dict(overrides or {})
        self.richer_retry_interval = richer_retry_interval
        self.relearn_after = relearn_after
        self._monotonic = monotonic
        self._states = {}
        self._lock = threading.Lock()

    def _state(self, service):
        state = self._states.get(service.key)
        if state is None:
            state = self._states[service.key] = _State(self._monotonic())
        return state

    def forget(self, services):
        """Forget what was learnt of `services` (they left this prober)."""
        with self._lock:
            for service in services:
                self._states.pop(service.key, None)

    def plan(self, service):
        """The kinds to try, in turn, for the next probe of `service`."""
        now = self._monotonic()
        with self._lock:
            state = self._state(service)
            if service.topic in self.overrides:
                return Plan((self.overrides[service.topic],), state.learnt)
            if state.kind is None or state.missed >= self.relearn_after:
                return Plan(probes.ORDER, state.learnt)
            if (state.kind != probes.ORDER[0] and
                    now - state.richer_tried_at >= self.richer_retry_interval):
                state.richer_tried_at = now
                return Plan((probes.ORDER[0], state.kind), state.learnt)
            return Plan((state.kind,), state.learnt)

    def answered(self, service, kind, plan):
        """A probe of `kind` came back; True when that is news."""
        with self._lock:
            state = self._state(service)
            if plan.learnt < state.learnt:
                return False      # the answer to a plan made before we knew
            state.missed = 0
            if state.kind == kind:
                return False
            state.kind = kind
            state.learnt += 1
        LOG.info('%s answers %s probes', service, kind)
        return True

    def missed(self, service, plan):
        """No kind of `plan` answered."""
        with self._lock:
            state = self._state(service)
            if plan.learnt == state.learnt:
                state.missed += 1
