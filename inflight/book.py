"""The book of probes out: each ends once, received or lost, and a result
that comes back after its probe was counted lost is told apart (late).

The runner (inflight.prober) writes in it; it sends nothing.
"""

import collections
import threading

Out = collections.namedtuple('Out', 'service plan kinds step sent_at deadline')
Out.__doc__ = """A probe out: its service, plan and kinds (probes.Kind), the
kind it is at (`step`), when that kind left (t0, wall clock) and when the
probe counts lost (monotonic clock), whatever kind it is at by then."""


class ProbeBook:
    """Probes out by id, oldest deadline first; and, for a while, the ids of
    those counted lost whose result could still come back."""

    def __init__(self, remember_lost=100000):
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._out = {}      # id -> Out; deadlines grow with insertion order
        self._lost = collections.OrderedDict()   # id -> Out, counted lost
        self._remember_lost = remember_lost
        self._awaiting_settled = 0   # threads in wait_settled()

    def __len__(self):
        return len(self._out)

    def keys_out(self):
        """The keys of the services with a probe out."""
        with self._lock:
            return {out.service.key for out in self._out.values()}

    def open(self, probe_id, out):
        """A probe just sent."""
        with self._lock:
            self._out[probe_id] = out

    def get(self, probe_id):
        """The probe out under `probe_id`, or None once it ended."""
        with self._lock:
            return self._out.get(probe_id)

    def update(self, probe_id, **changes):
        """Change a probe out in place (its deadline stays, and so does its
        place); the new Out, or None if it ended meanwhile."""
        with self._lock:
            out = self._out.get(probe_id)
            if out is not None:
                out = self._out[probe_id] = out._replace(**changes)
            return out

    def close(self, probe_id):
        """End a probe; its Out, or None if it had ended already."""
        with self._lock:
            out = self._out.pop(probe_id, None)
            self._notify_if_settled()
            return out

    def close_for_result(self, probe_id):
        """End the probe a result answers: (its Out, None) when it awaits a
        result; (its Out, 'late') when it was counted lost (once only);
        (None, 'a ping') for a probe at a kind answered by its reply, which
        stays out; (None, 'an unknown') for any other id."""
        with self._lock:
            out = self._out.get(probe_id)
            if out is not None and not out.kinds[out.step].apart:
                return None, 'a ping'
            if out is not None:
                del self._out[probe_id]
                self._notify_if_settled()
                return out, None
            out = self._lost.pop(probe_id, None)
        return (out, 'late') if out is not None else (None, 'an unknown')

    def due(self, now, everything=False):
        """End and return [(id, Out)] of the probes whose deadline is past
        `now` (all of them, with `everything`); those awaiting a result are
        remembered, so that one coming back still is told late."""
        ended = []
        with self._lock:
            while self._out:
                probe_id, out = next(iter(self._out.items()))
                if not everything and out.deadline > now:
                    break
                del self._out[probe_id]
                ended.append((probe_id, out))
                if out.kinds[out.step].apart:
                    self._lost[probe_id] = out
                    while len(self._lost) > self._remember_lost:
                        self._lost.popitem(last=False)
            self._notify_if_settled()
        return ended

    def wait_settled(self, timeout):
        """Wait up to `timeout` seconds for no probe to be out."""
        with self._settled:
            self._awaiting_settled += 1
            try:
                return self._settled.wait_for(lambda: not self._out, timeout)
            finally:
                self._awaiting_settled -= 1

    def _notify_if_settled(self):
        if self._awaiting_settled and not self._out:
            self._settled.notify_all()
