"""The clock offset between the prober and each service, from the probes.

NTP's way (RFC 5905): each probe gives an offset θ = ((t1-t0) + (t2-t3)) / 2
and a delay δ = (t3-t0) - (t2-t1). The true offset lies within δ/2 of θ, so
the sample with the smallest δ in a sliding window bounds it best.

θ assumes both legs take as long; they need not (a slow return path makes
θ = -D/2 with clocks in step). So when that sample's bounds [θ-δ/2, θ+δ/2]
hold 0, the clocks are taken to agree and the legs are left as read; only
an offset the probes prove (0 outside the bounds) corrects them. Legs never
come out negative, and their sum stays δ (queue_total), which no offset
touches.
"""

import collections
import threading

from inflight.timings import Timings


class ClockOffsets:
    """Per service: the last `window` samples, and the best offset."""

    def __init__(self, window=8):
        self.window = window
        self._samples = {}
        self._lock = threading.Lock()

    def correct(self, service, timings):
        """(Timings with the legs corrected, the offset applied, in seconds)."""
        to, back = timings.to_service, timings.from_service
        delay = max(0.0, to + back)
        with self._lock:
            samples = self._samples.get(service.key)
            if samples is None:
                samples = self._samples[service.key] = collections.deque(
                    maxlen=self.window)
            samples.append((delay, (to - back) / 2))
            best_delay, offset = min(samples)
        if abs(offset) <= best_delay / 2:
            offset = 0.0     # the probes cannot tell the clocks apart
        to, back = to - offset, back + offset
        if to < 0:
            to, back = 0.0, delay
        elif back < 0:
            to, back = delay, 0.0
        return Timings(to, timings.in_service, timings.overhead, back,
                       timings.round_trip, delay), offset

    def forget(self, services):
        """Forget the samples of `services` (they left this prober)."""
        with self._lock:
            for service in services:
                self._samples.pop(service.key, None)
