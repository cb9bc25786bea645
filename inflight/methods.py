"""Which kind of probe each service answers, learnt from the probes themselves.

Until a service answers, each probe tries the kinds richest first (the
inflight mixin, then Nova's baseapi ping, then oslo_rpc_server_ping): one
that fails (no result, or unsupported) hands the probe on to the next. Once
it answered a kind, the service stays on it, even while probes are lost: it
is deaf then, it did not lose the method. A service on a poorer kind is
tried on the richest one again now and then.
"""

import logging
import threading
import time

from inflight import probes

LOG = logging.getLogger(__name__)


class _State:
    __slots__ = ('kind', 'answered', 'richer_tried_at')

    def __init__(self, kind, now):
        self.kind = kind
        self.answered = False
        self.richer_tried_at = now


class MethodBook:
    """Remembers, per (topic, host), the kind of probe that works."""

    def __init__(self, overrides=None, richer_retry_interval=300.0,
                 monotonic=time.monotonic):
        self.overrides = dict(overrides or {})
        self.richer_retry_interval = richer_retry_interval
        self._monotonic = monotonic
        self._states = {}
        self._lock = threading.Lock()

    def _state(self, service):
        key = (service.topic, service.host)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State(probes.ORDER[0],
                                               self._monotonic())
        return state

    def kind_of(self, service):
        """The kind the service is known (or presumed) to answer."""
        if service.topic in self.overrides:
            return self.overrides[service.topic]
        with self._lock:
            return self._state(service).kind

    def choose(self, service):
        """The kind of the next probe: the known one, or now and then the richest."""
        if service.topic in self.overrides:
            return self.overrides[service.topic]
        with self._lock:
            state = self._state(service)
            now = self._monotonic()
            if (state.kind != probes.ORDER[0] and state.answered and
                    now - state.richer_tried_at >= self.richer_retry_interval):
                state.richer_tried_at = now
                return probes.ORDER[0]
            return state.kind

    def answered(self, service, kind):
        """A probe of `kind` came back; True when that is news."""
        with self._lock:
            state = self._state(service)
            changed = state.kind != kind or not state.answered
            state.kind, state.answered = kind, True
        if changed:
            LOG.info('%s.%s answers %s probes', service.topic, service.host,
                     kind)
        return changed

    def failed(self, service, kind, tried):
        """A probe of `kind` failed; the kind to try it with now, or None."""
        if service.topic in self.overrides:
            return None
        with self._lock:
            state = self._state(service)
            if state.answered and kind == state.kind:
                return None        # it answered this kind before: deaf
            if state.answered:     # a richer kind, tried now and then
                return state.kind if state.kind not in tried else None
        # Not heard on any kind yet: hand the probe on to the next kind;
        # the next probe starts the round over from the richest.
        LOG.debug('%s.%s did not answer %s', service.topic, service.host, kind)
        following = probes.ORDER[probes.ORDER.index(kind) + 1:]
        untried = [k for k in following if k not in tried]
        return untried[0] if untried else None
