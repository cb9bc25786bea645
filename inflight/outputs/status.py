"""The status file: every service's recent probes, for `inflight top`.

Per service it keeps the outcomes of its last probes (WINDOW_PROBES at most,
none older than WINDOW seconds) in one flat array, the newest answer among
them its latest breakdown; its kind, whether it is deaf, its latest figures
and its counts. A writer
thread writes a JSON snapshot every `status_interval` seconds, atomically
(a file beside it, then a rename), mode 0644: the daemon's host and pid,
its settings and totals, and the ROWS worst services, worst first (deaf,
then loss over the window, then the 90th percentile of the time spent
queued). It holds no URL and no password.

A file that cannot be written is said once, in one warning line naming the
path, the error and the option; it is tried again on every interval, and
one line says when it works again. At a clean stop the last snapshot says
`stopped`; after a crash the file is left as it was, and its age shows.
"""

from array import array
import heapq
import json
import logging
import math
import operator
import os
import threading
import time

from inflight.outputs import statsd
from inflight import timings

LOG = logging.getLogger(__name__)

FORMAT = 1
WINDOW = 600.0           # seconds of a service's outcomes kept, at most
WINDOW_PROBES = 20       # outcomes kept per service, at most
ROWS = 500               # services written, worst first
FORGET_AFTER = 3600.0    # seconds without a probe after which a service
#                          (gone from the table) is forgotten
WARN_EVERY = 60.0        # seconds between two warnings of a failing snapshot
CHUNK = 1000             # services summed up per hold of the lock
JOIN_TIMEOUT = 5.0       # seconds close() waits for a write under way

# The values kept of each outcome: the phases, and a ping's round trip apart
# from the inflight round trip (as statsd names them). NaN: not measured;
# all NaN: lost.
LEAVES = timings.PHASES + ('ping_round_trip',)
SLOTS = len(LEAVES)
FIGURES = ('executor_busy', 'executor_max', 'executor_waiting',
           'hub_timers', 'hub_listeners')
NAN = float('nan')
ENTRY = 1 + SLOTS
_LOST = array('f', [NAN] * SLOTS)
_QUEUE, _ROUND_TRIP, _PING = (LEAVES.index(leaf) for leaf in
                              ('queue_total', 'round_trip', 'ping_round_trip'))


def leaves(breakdown):
    """The SLOTS values (s, NaN where not measured) of one Timings."""
    values = dict(statsd.phase_values(breakdown))
    return array('f', [values.get(leaf, NAN) for leaf in LEAVES])


def p90(values):
    """Nearest-rank 90th percentile of the values not NaN; None if none."""
    ordered = sorted(v for v in values if v == v)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def ms(seconds):
    """Seconds as ms to the µs; None for NaN or None."""
    if seconds is None or seconds != seconds:
        return None
    return round(seconds * 1000.0, 3)


def _lost(entry):
    """Whether one outcome's SLOTS values are a lost probe's."""
    return entry[_ROUND_TRIP] != entry[_ROUND_TRIP] and \
        entry[_PING] != entry[_PING]


class ServiceStatus:
    """What is known of one service, changed under StatusFile's lock.

    Its window is one flat array of float32, ENTRY values per outcome: when
    (seconds since the status file began: to the second for 194 days, to
    16 s after 8 years, close enough for a window of minutes) and the SLOTS
    values. Its counts over the window and its sort key are made again only
    when an outcome came in or the oldest one left the window.
    """

    __slots__ = ('cell', 'topic', 'host', 'kind', 'deaf', 'figures', 'sent',
                 'received', 'lost', 'late', 'answered_at', 'probed_at',
                 'window', 'changed', 'probes_in_window', 'lost_in_window',
                 'expires', 'key')

    def __init__(self, key, now):
        self.cell, self.topic, self.host = key
        self.kind = None
        self.deaf = False
        self.figures = None           # tuple in FIGURES order, or None
        self.sent = self.received = self.lost = self.late = 0
        self.answered_at = None
        self.probed_at = now
        self.window = array('f')
        self.changed = True
        self.probes_in_window = self.lost_in_window = 0
        self.expires = math.inf
        self.key = (True, 0.0, 0.0)

    def add(self, now, values):
        """One outcome at `now`: its SLOTS values (all NaN: lost)."""
        self.window.append(now)
        self.window.extend(values)
        if len(self.window) > WINDOW_PROBES * ENTRY:
            del self.window[:ENTRY]
        self.changed = True

    def entries(self):
        """The window's outcomes, oldest first: (when, SLOTS values)."""
        w = self.window
        return [(w[at], w[at + 1:at + ENTRY]) for at in range(0, len(w),
                                                              ENTRY)]

    def sum_up(self, now):
        """Drop the outcomes older than WINDOW; count those left, lost and
        all, and make the sort key."""
        w = self.window
        old = 0
        while old < len(w) and w[old] < now - WINDOW:
            old += ENTRY
        if old:
            del w[:old]
        trips, pings = w[1 + _ROUND_TRIP::ENTRY], w[1 + _PING::ENTRY]
        self.probes_in_window = len(trips)
        self.lost_in_window = sum(1 for trip, ping in zip(trips, pings)
                                  if trip != trip and ping != ping)
        self.expires = w[0] + WINDOW if w else math.inf
        self.changed = False
        # Worst first: deaf, then loss, then time queued (a ping's round
        # trip where the probe measures nothing else).
        delay = p90(w[1 + _QUEUE::ENTRY])
        if delay is None:
            delay = p90(pings)
        self.key = (not self.deaf, -(self.loss_percent() or 0.0),
                    -(delay or 0.0))

    def p90s(self):
        """The 90th percentile (s) over the window of each leaf measured."""
        w = self.window
        found = {leaf: p90(w[1 + slot::ENTRY])
                 for slot, leaf in enumerate(LEAVES)}
        return {leaf: value for leaf, value in found.items()
                if value is not None}

    def loss_percent(self):
        """Loss over the window, %; None with no probe in it."""
        if not self.probes_in_window:
            return None
        return 100.0 * self.lost_in_window / self.probes_in_window

    def latest(self):
        """The SLOTS values of the newest answer in the window, or None."""
        for _, values in reversed(self.entries()):
            if not _lost(values):
                return values
        return None

    def row(self, now):
        """This service's row of the snapshot."""
        latest = self.latest()
        loss = self.loss_percent()
        return {
            'cell': self.cell,
            'topic': self.topic,
            'host': self.host,
            'kind': self.kind,
            'deaf': self.deaf,
            'latest': (None if latest is None else
                       {leaf: ms(v) for leaf, v in zip(LEAVES, latest)
                        if v == v}),
            'p90': {leaf: ms(v) for leaf, v in self.p90s().items()},
            'window': {'probes': self.probes_in_window,
                       'lost': self.lost_in_window,
                       'loss_percent': None if loss is None
                       else round(loss, 1)},
            'figures': (None if self.figures is None else
                        {name: value for name, value in
                         zip(FIGURES, self.figures) if value is not None}),
            'since_answer': (None if self.answered_at is None else
                             round(now - self.answered_at, 1)),
            'counts': {'sent': self.sent, 'received': self.received,
                       'lost': self.lost, 'late': self.late},
        }


class StatusFile:
    """An output keeping each service's recent probes, and a thread writing
    them to `path` every `interval` seconds."""

    def __init__(self, path, interval, host, settings=None, clock=time.time,
                 monotonic=time.monotonic, start=True):
        self.path = path
        self.interval = interval
        self.host = host
        self.settings = dict(settings or {})
        self._clock = clock
        self._monotonic = monotonic
        self.started_at = clock()
        self._services = {}           # record.Key -> ServiceStatus
        self.counts = dict(sent=0, received=0, lost=0, late=0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.failing = None           # the error the file last failed with
        self._warned_at = None
        self._thread = None
        if start:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name='inflight-status-file')
            self._thread.start()

    @classmethod
    def from_conf(cls, conf):
        """The status file `conf` asks for, its settings in the header."""
        i = conf.inflight
        settings = {name: getattr(i, name) for name in (
            'cycle_seconds', 'probe_interval', 'probes_per_tick',
            'max_in_flight', 'sleep', 'probe_timeout', 'deaf_after')}
        return cls(i.status_file, i.status_interval, conf.host, settings)

    def _now(self):
        """Seconds since the status began: what the windows hold."""
        return self._clock() - self.started_at

    def _service(self, service, now):
        status = self._services.get(service.key)
        if status is None:
            status = self._services[service.key] = ServiceStatus(
                service.key, now)
        return status

    def known(self, services):
        """Rows come with the first probe: nothing to do."""

    def forget(self, services):
        """Drop the rows of `services` (they left this prober)."""
        with self._lock:
            for service in services:
                self._services.pop(service.key, None)

    def sent(self, services):
        now = self._now()
        with self._lock:
            for service in services:
                status = self._service(service, now)
                status.sent += 1
                status.probed_at = now
                self.counts['sent'] += 1

    def lost(self, services):
        now = self._now()
        with self._lock:
            for service in services:
                status = self._service(service, now)
                status.lost += 1
                status.add(now, _LOST)
                self.counts['lost'] += 1

    def late(self, services):
        now = self._now()
        with self._lock:
            for service in services:
                self._service(service, now).late += 1
                self.counts['late'] += 1

    def received(self, service, kind, timings, clock_offset=None,
                 state=None):
        now = self._now()
        values = leaves(timings)
        figures = (tuple(state.get(name) for name in FIGURES)
                   if state else None)
        with self._lock:
            status = self._service(service, now)
            status.received += 1
            status.kind = kind
            status.figures = figures
            status.answered_at = now
            status.add(now, values)
            self.counts['received'] += 1

    def deaf(self, service, deaf):
        with self._lock:
            status = self._service(service, self._now())
            status.deaf = bool(deaf)
            status.changed = True

    def method(self, service, kind, kinds):
        with self._lock:
            self._service(service, self._now()).kind = kind

    def snapshot(self, stopped=False):
        """The status as a dict: the header, the totals, the worst rows."""
        now = self._now()
        with self._lock:
            for key in [key for key, s in self._services.items()
                        if now - s.probed_at > FORGET_AFTER]:
                del self._services[key]
            services = list(self._services.values())
            counts = dict(self.counts)
        # A chunk at a time, so that outcomes coming in are held up little.
        for start in range(0, len(services), CHUNK):
            with self._lock:
                for status in services[start:start + CHUNK]:
                    if status.changed or now >= status.expires:
                        status.sum_up(now)
        probes = lost = deaf = with_loss = 0
        for status in services:
            probes += status.probes_in_window
            lost += status.lost_in_window
            deaf += status.deaf
            with_loss += status.lost_in_window > 0
        worst = heapq.nsmallest(ROWS, services,
                                key=operator.attrgetter('key'))
        with self._lock:
            rows = [status.row(now) for status in worst]
        return {
            'format': FORMAT,
            'host': self.host,
            'pid': os.getpid(),
            'written_at': round(self.started_at + now, 3),
            'started_at': round(self.started_at, 3),
            'interval': self.interval,
            'stopped': stopped,
            'window_seconds': WINDOW,
            'window_probes': WINDOW_PROBES,
            'settings': self.settings,
            'services': len(services),
            'deaf': deaf,
            'with_loss': with_loss,
            'counts': counts,
            'window': {'probes': probes, 'lost': lost,
                       'loss_percent': (round(100.0 * lost / probes, 1)
                                        if probes else None)},
            'rows_written': len(rows),
            'rows': rows,
        }

    def write(self, stopped=False):
        """Write a snapshot to the file, atomically; False if it failed."""
        # Logged out of the except clauses: oslo.log would add the error's
        # traceback to the line.
        error = None
        try:
            text = json.dumps(self.snapshot(stopped), separators=(',', ':'))
        except Exception as e:  # noqa: BLE001 - never the prober's
            error = e
        if error is not None:
            self._snapshot_failed(error)
            return False
        try:
            replace(self.path, text)
        except OSError as e:
            error = e
        if error is not None:
            if self.failing is None:
                LOG.warning('Cannot write the status file %s: %s; set '
                            '[inflight] status_file to a path this user can '
                            'write (empty: no status file)', self.path,
                            error.strerror or error)
            self.failing = error
            return False
        if self.failing is not None:
            LOG.info('Writing the status file %s again', self.path)
            self.failing = None
        return True

    def _snapshot_failed(self, error):
        now = self._monotonic()
        if self._warned_at is not None and now - self._warned_at < WARN_EVERY:
            return
        self._warned_at = now
        LOG.warning('Could not make the status for %s: %s', self.path, error)

    def _run(self):
        while not self._stop.is_set():
            self.write()
            self._stop.wait(self.interval)

    def close(self):
        """Stop the writer; the last snapshot says the daemon stopped."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT)
        self.write(stopped=True)


def replace(path, text):
    """Write `text` to `path` (mode 0644) through a file beside it, renamed
    over it: a reader sees the old file or the new, never part of one."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, '.%s.%d.tmp' % (name, os.getpid()))
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.fchmod(fd, 0o644)       # whatever the umask
        with os.fdopen(fd, 'w') as f:
            fd = None
            f.write(text)
        os.replace(temporary, path)
    except BaseException:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
