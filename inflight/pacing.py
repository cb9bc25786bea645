"""How many probes each tick sends, to cover every service once per cycle.

The rate is services / cycle_seconds, spread over the ticks; a cap on the
probes out holds it back when the services answer slower than the rate
needs, and the pacer says so.
"""

import logging
import time

from inflight import logs

LOG = logging.getLogger(__name__)


class Pacer:
    """Probes due on each tick: every service once per `cycle_seconds`."""

    def __init__(self, cycle_seconds, max_in_flight, monotonic=time.monotonic):
        self.cycle_seconds = cycle_seconds
        self.max_in_flight = max_in_flight
        self._monotonic = monotonic
        self._credit = 1.0          # the first tick probes one at once
        self._last = None
        self._held_back_logged = None

    def rate(self, services):
        """Probes per second that cover `services` once per cycle."""
        return services / self.cycle_seconds

    def spacing(self, services, longest):
        """Seconds between ticks: about one probe a tick, within [0.01, longest]."""
        if not services:
            return longest
        return max(0.01, min(longest, self.cycle_seconds / services))

    def check(self, services, sleep):
        """Warn when the cap cannot let a whole cycle through in time."""
        needed = self.rate(services) * sleep   # probes out at that rate, at least
        if needed > self.max_in_flight:
            LOG.warning(
                '%d services every %gs is %.1f probes/s; each stays out at '
                'least %gs, so %d probes would be out, over max_in_flight '
                '%d: a cycle will take at least %.0fs', services,
                self.cycle_seconds, self.rate(services), sleep, needed,
                self.max_in_flight, services * sleep / self.max_in_flight)
            return False
        return True

    def due(self, services, in_flight):
        """How many probes to send now."""
        now = self._monotonic()
        if self._last is not None:
            self._credit += (now - self._last) * self.rate(services)
        self._last = now
        self._credit = min(self._credit, max(1.0, float(services)))
        due = int(self._credit)
        room = max(0, self.max_in_flight - in_flight)
        if due > room:
            if (self._held_back_logged is None or
                    now - self._held_back_logged >= self.cycle_seconds):
                LOG.warning('%s out, the most allowed (max_in_flight): '
                            'probing falls behind the %gs cycle',
                            logs.plural(in_flight, 'probe'),
                            self.cycle_seconds)
                self._held_back_logged = now
            due = room
        self._credit -= due
        return due
