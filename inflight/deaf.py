"""Up but deaf: a service whose heartbeat says up while it answers no probe.

Up is Nova's rule: `last_seen_up` (else `created_at`) within
`service_down_time` of the moment the services table was read, judged on
the newest read of the service's row. Not on the row a probe was sent with:
the table may have been read again by the time the probe counts lost, and
that older row against the newer read's time would make a service whose
heartbeat goes on look down.
"""

import datetime
import logging
import threading

from inflight import logs

LOG = logging.getLogger(__name__)


def utc(timestamp):
    """A POSIX timestamp as Nova stores times: naive UTC."""
    return datetime.datetime.fromtimestamp(
        timestamp, datetime.timezone.utc).replace(tzinfo=None)


def is_up(service, read_at, down_time):
    """Nova's verdict on `service`, as of its row read at `read_at`."""
    seen = service.last_seen_up or service.created_at
    if seen is None:
        return False
    return abs((read_at - seen).total_seconds()) <= down_time


class DeafWatch:
    """Counts lost probes in a row per service; flags the up ones past a limit."""

    def __init__(self, metrics, deaf_after, down_time, newest_row):
        """`newest_row(key)` is the service's row as the newest read of the
        table found it and when that read was (naive UTC): (None, read_at)
        once the service left the table."""
        self._metrics = metrics
        self.deaf_after = deaf_after
        self.down_time = down_time
        self._newest_row = newest_row
        self._lost_in_row = {}
        self._deaf = set()
        self._gauged = {}   # Key -> last value sent (statsd keeps gauges)
        self._lock = threading.Lock()

    def is_deaf(self, service):
        return service.key in self._deaf

    def outcome(self, service, kind, timings, state=None):
        """A probe's end, as the prober reports it (timings None: lost)."""
        if timings is None:
            self.lost(service)
        else:
            self.answered(service)

    def answered(self, service):
        """A probe came back: whatever it was, the service hears."""
        key = service.key
        with self._lock:
            self._lost_in_row.pop(key, None)
            was_deaf = key in self._deaf
            self._deaf.discard(key)
        if was_deaf:
            LOG.info('%s answers probes again', service)
        self._gauge(service, False)

    def lost(self, service):
        """A probe was lost; flag the service deaf if its heartbeat says up."""
        key = service.key
        row, read_at = self._newest_row(key)
        up = row is not None and is_up(row, read_at, self.down_time)
        with self._lock:
            lost = self._lost_in_row[key] = self._lost_in_row.get(key, 0) + 1
            now_deaf = up and lost >= self.deaf_after
            newly = now_deaf and key not in self._deaf
            if now_deaf:
                self._deaf.add(key)
            else:
                self._deaf.discard(key)
        if newly:
            LOG.warning('%s is up by its heartbeat but deaf: it lost %s in '
                        'a row', service, logs.plural(lost, 'probe'))
        self._gauge(service, now_deaf)

    def forget(self, services):
        """Forget `services` (they left the table, or this prober): a deaf
        gauge goes back to 0, as statsd would keep sending a 1 for ever."""
        cleared = []
        with self._lock:
            for service in services:
                self._lost_in_row.pop(service.key, None)
                self._deaf.discard(service.key)
                if self._gauged.pop(service.key, None):
                    cleared.append(service)
        for service in cleared:
            self._metrics.deaf(service, False)

    def _gauge(self, service, deaf):
        with self._lock:
            if self._gauged.get(service.key) == deaf:
                return
            self._gauged[service.key] = deaf
        self._metrics.deaf(service, deaf)
