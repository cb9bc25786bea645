"""nova-inflight's manager: the periodic tasks and the results endpoint."""

import logging
import threading
import time

import oslo_messaging
from oslo_service import periodic_task

from inflight import deaf
from inflight import logs
from inflight import pacing
from inflight import rpcapi

LOG = logging.getLogger(__name__)

RETRY_FIRST = 1.0   # seconds before the first retry of a failed table read


def _spawn_thread(function):
    threading.Thread(target=function, daemon=True,
                     name='inflight-table-read').start()


class InflightManager(periodic_task.PeriodicTasks):
    """Walks the ring of enabled services, probing a few on every tick."""

    target = oslo_messaging.Target(version=rpcapi.InflightAPI.RPC_API_VERSION)

    def __init__(self, conf, prober, ring, list_services, place=None,
                 clock=time.time, spawn=None):
        super().__init__(conf)
        self._clock = clock
        self._spawn = spawn or _spawn_thread
        self._lock = threading.Lock()
        self._reading_since = None   # when the table read under way began
        self.prober = prober
        self.ring = ring
        self.place = place    # a handover.SharedSlot: the ring's place
        self._list_services = list_services
        self._db_failures = 0     # reads in a row that failed
        self._cycles_logged = 0
        self.pacer = None
        if conf.inflight.cycle_seconds:
            self.pacer = pacing.Pacer(conf.inflight.cycle_seconds,
                                      conf.inflight.max_in_flight)
        # Spacings come from the configuration, not from import time.
        self._periodic_spacing = dict(
            self._periodic_spacing,
            refresh_services=conf.inflight.refresh_interval,
            check_inflight=conf.inflight.probe_interval)

    def periodic_tasks(self, context=None):
        """Run what is due; the seconds until something is due again."""
        return self.run_periodic_tasks(context)

    @periodic_task.periodic_task(run_immediately=True)
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
                            len(self.ring), why)
            self._db_failures += 1
            self._periodic_spacing['refresh_services'] = min(
                self.conf.inflight.refresh_interval,
                RETRY_FIRST * 2 ** (self._db_failures - 1))

    def _refresh(self, services, read_at):
        with self._lock:
            if self._db_failures:
                LOG.info('Read the services table again after %s',
                         logs.plural(self._db_failures, 'failed try',
                                     'failed tries'))
                self._db_failures = 0
                self._periodic_spacing['refresh_services'] = (
                    self.conf.inflight.refresh_interval)
            before = len(self.ring)
            first = self.ring.read_at is None
            self.ring.refresh(services, read_at)
            if first:
                self._take_place()
            if len(self.ring) == before:
                return
            LOG.info('Probing %s', logs.plural(len(self.ring),
                                                'enabled service'))
            if self.pacer:
                self.pacer.check(len(self.ring), self.conf.inflight.sleep)
                self._periodic_spacing['check_inflight'] = self.pacer.spacing(
                    len(self.ring), self.conf.inflight.probe_interval)

    def _take_place(self):
        """Go on where the last worker left the ring (after SIGHUP, say);
        with no last worker, in cycle mode, where the cycle stands by the
        clock, so that restarts do not favour the top of the ring."""
        handed = self._handed_place()
        if handed:
            (topic, host), cycles = handed
            self.ring.resume((topic, host), cycles)
            self._cycles_logged = cycles
            LOG.info('Going on after %s.%s, where the last worker left the '
                     'ring', topic, host)
        elif self.pacer:
            cycle = self.conf.inflight.cycle_seconds
            self.ring.seek((self._clock() % cycle) / cycle)

    def _handed_place(self):
        """The place the last worker saved: ((topic, host), cycles), or
        None."""
        if self.place is None:
            return None
        try:
            (topic, host), cycles = self.place.load()
            return (str(topic), str(host)), int(cycles)
        except (TypeError, ValueError):
            return None               # nothing saved, or not a place

    @periodic_task.periodic_task(run_immediately=True)
    def check_inflight(self, context):
        """Deal with overdue probes, then probe the next services due."""
        self.prober.expire()
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
