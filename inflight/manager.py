"""nova-inflight's manager: the periodic tasks and the results endpoint.

The tasks' spacings change as the daemon runs (a table that fails is read
again sooner; the pacer spaces the ticks by the ring's size), so the
manager keeps its own schedule: `periodic_tasks()` runs what is due and
returns the seconds until something is due again, which the caller waits.
"""

import logging
import threading
import time

import oslo_messaging

from inflight.cloud import record
from inflight import deaf
from inflight import logs
from inflight import pacing
from inflight import rpcapi

LOG = logging.getLogger(__name__)

RETRY_FIRST = 1.0   # seconds before the first retry of a failed table read


def _spawn_thread(function):
    threading.Thread(target=function, daemon=True,
                     name='inflight-table-read').start()


class InflightManager:
    """Walks the ring of enabled services, probing a few on every tick.

    Each table read is told to `known` callables (every service read), and
    the services that left the ring to `forget` callables, so that nothing
    is kept of them. `share(services)` is the part of the services read
    that this prober probes (all of them without it); with a `partition`
    (cloud.partition.Partition), its share, checked every
    [coordination] check_interval seconds.
    """

    target = oslo_messaging.Target(version=rpcapi.InflightAPI.RPC_API_VERSION)

    # The periodic tasks, in the order they run when due at once.
    TASKS = ('refresh_services', 'check_inflight')

    def __init__(self, conf, prober, ring, list_services, place=None,
                 known=(), forget=(), share=None, partition=None,
                 clock=time.time, monotonic=time.monotonic, spawn=None):
        self.conf = conf
        self._clock = clock
        self._monotonic = monotonic
        self._spawn = spawn or _spawn_thread
        self._known = list(known)
        self._forget = list(forget)
        self._share = share
        self._last_read = None    # (services, read_at) of the last read
        self._lock = threading.Lock()
        self._applying = threading.Lock()   # one share applied at a time
        self._reading_since = None   # when the table read under way began
        self.prober = prober
        self.ring = ring
        self.place = place    # a handover.SharedSlot: the ring's place
        self._list_services = list_services
        self._db_failures = 0     # reads in a row that failed
        self._leaving = {}        # key -> service left, with a probe out
        self._cycles_logged = 0
        self.pacer = None
        if conf.inflight.cycle_seconds:
            self.pacer = pacing.Pacer(conf.inflight.cycle_seconds,
                                      conf.inflight.max_in_flight)
        # Seconds between two runs of each task, as they stand now.
        self.spacing = {'refresh_services': conf.inflight.refresh_interval,
                        'check_inflight': conf.inflight.probe_interval}
        self._last_run = {}       # task -> when it last began (monotonic)
        self.tasks = self.TASKS
        self._partition = partition
        self._checking = False    # a check of the partition under way
        if partition is not None:
            self._share = partition.share
            self.tasks += ('check_partition',)
            self.spacing['check_partition'] = conf.coordination.check_interval

    def periodic_tasks(self, context=None):
        """Run what is due; the seconds until something is due again."""
        for task in self.tasks:
            last = self._last_run.get(task)
            if last is not None and self._monotonic() < (
                    last + self.spacing[task]):
                continue
            self._last_run[task] = self._monotonic()
            try:
                getattr(self, task)(context)
            except Exception:  # noqa: BLE001 - the next run may do better
                LOG.exception('The periodic task %s failed', task)
        now = self._monotonic()
        return max(0.0, min(self._last_run[task] + self.spacing[task] - now
                            for task in self.tasks))

    def refresh_services(self, context):
        """Read the services table in a thread of its own, so that a
        database that hangs holds up no probe, and refresh the ring."""
        with self._lock:
            reading_since = self._reading_since
            if reading_since is None:
                self._reading_since = time.monotonic()
        if reading_since is None:
            self._spawn(self._read)
        else:
            self._read_failed('no answer in %.1fs'
                              % (time.monotonic() - reading_since))

    def _read(self):
        try:
            read_at = deaf.utc(self._clock())
            services, error = self._list_services(), None
        except Exception as e:  # noqa: BLE001 - keep the last known ring
            error = e
        try:
            if error is not None:
                self._read_failed(error)
            else:
                self._refresh(services, read_at)
        finally:
            with self._lock:
                self._reading_since = None

    def _read_failed(self, why):
        """Keep the ring; try again sooner, backing off to the usual spacing;
        say so once per outage."""
        with self._lock:
            if not self._db_failures:
                LOG.warning('Could not read the services table, probing the '
                            '%d services known until it answers: %s',
                            len(self.ring), logs.reason(why))
            self._db_failures += 1
            self.spacing['refresh_services'] = min(
                self.conf.inflight.refresh_interval,
                RETRY_FIRST * 2 ** (self._db_failures - 1))

    def _refresh(self, services, read_at):
        with self._lock:
            if self._db_failures:
                LOG.info('Read the services table again after %s',
                         logs.plural(self._db_failures, 'failed try',
                                     'failed tries'))
                self._db_failures = 0
                self.spacing['refresh_services'] = (
                    self.conf.inflight.refresh_interval)
            self._last_read = (services, read_at)
        for known in self._known:
            known(services)
        self._apply(services, read_at)

    def reshare(self):
        """The share of the last services read changed (probers joined or
        left): refresh the ring with the new one."""
        with self._lock:
            last_read = self._last_read
        if last_read is not None:
            self._apply(*last_read)

    def _apply(self, services, read_at):
        """Refresh the ring with this prober's share of `services`; forget
        those that left it. A read and a reshare apply one after the other,
        so that the last applied is the share as it stands."""
        with self._applying:
            self._apply_share(services, read_at)

    def _apply_share(self, services, read_at):
        share = services if self._share is None else self._share(services)
        with self._lock:
            before = len(self.ring)
            first = self.ring.read_at is None
            left = self.ring.refresh(share, read_at)
            if first:
                self._take_place()
            changed = len(self.ring) != before
        if left:
            self._leave(left)
        if not changed:
            return
        LOG.info('Probing %s', logs.plural(len(self.ring), 'enabled service'))
        if self.pacer:
            self.pacer.check(len(self.ring), self.conf.inflight.sleep)
            self.spacing['check_inflight'] = self.pacer.spacing(
                len(self.ring), self.conf.inflight.probe_interval)

    def _leave(self, left):
        """Forget the services that left this prober; those with a probe
        out once it has ended (check_inflight sees to it), so that its end
        does not learn them again."""
        out = self.prober.out_for(left)
        with self._lock:
            self._leaving.update((s.key, s) for s in out)
        keys = {s.key for s in out}
        self._tell_forget([s for s in left if s.key not in keys])

    def _forget_ended(self):
        """Forget the services left whose probes out have all ended, and
        that have not come back meanwhile."""
        with self._lock:
            if not self._leaving:
                return
            leaving = list(self._leaving.values())
        still = {s.key for s in self.prober.out_for(leaving)}
        ended = [s for s in leaving if s.key not in still]
        with self._lock:
            for service in ended:
                self._leaving.pop(service.key, None)
        self._tell_forget([s for s in ended
                           if self.ring.newest_row(s.key)[0] is None])

    def _tell_forget(self, services):
        if services:
            for forget in self._forget:
                forget(services)

    def check_partition(self, context):
        """See whether probers joined or left, in a thread of its own so
        that a backend that hangs holds up no probe; share the services
        again when they did."""
        with self._lock:
            if self._checking:
                return
            self._checking = True
        self._spawn(self._check_partition)

    def _check_partition(self):
        try:
            if self._partition.check():
                self.reshare()
        except Exception:  # noqa: BLE001 - the next check may do better
            LOG.exception('The periodic task check_partition failed')
        finally:
            with self._lock:
                self._checking = False

    def _take_place(self):
        """Go on where the last worker left the ring (after SIGHUP, say);
        with no last worker, in cycle mode, where the cycle stands by the
        clock, so that restarts do not favour the top of the ring."""
        handed = self._handed_place()
        if handed:
            key, cycles = handed
            self.ring.resume(key, cycles)
            self._cycles_logged = cycles
            LOG.info('Going on after %s, where the last worker left the '
                     'ring', key)
        elif self.pacer:
            cycle = self.conf.inflight.cycle_seconds
            self.ring.seek((self._clock() % cycle) / cycle)

    def _handed_place(self):
        """The place the last worker saved: (Key, cycles), or None."""
        if self.place is None:
            return None
        try:
            (cell, topic, host), cycles = self.place.load()
            return record.Key(str(cell), str(topic), str(host)), int(cycles)
        except (TypeError, ValueError):
            return None               # nothing saved, or not a place

    def check_inflight(self, context):
        """Deal with overdue probes, then probe the next services due."""
        self.prober.expire()
        self._forget_ended()
        if self.ring.cycles != self._cycles_logged:
            self._cycles_logged = self.ring.cycles
            LOG.info('Cycle %d over %s: %s out; so far %s',
                     self.ring.cycles, logs.plural(len(self.ring), 'service'),
                     logs.plural(self.prober.pending(), 'probe'),
                     logs.tally(self.prober.counts))
        if self.pacer:
            due = self.pacer.due(len(self.ring), self.prober.pending())
        else:
            due = self.conf.inflight.probes_per_tick
        self.prober.send(self.ring.take(due))
        place = self.ring.place()
        if self.place and place:
            self.place.save(place)

    def inflight_result(self, context, result):
        """A service's result of one probe (InflightAPI 1.0)."""
        self.prober.receive(result)
