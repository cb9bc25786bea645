"""nova-inflight's manager: the periodic tasks and the results endpoint."""

import logging

import oslo_messaging
from oslo_service import periodic_task

from inflight import deaf
from inflight import rpcapi

LOG = logging.getLogger(__name__)


class InflightManager(periodic_task.PeriodicTasks):
    """Walks the ring of enabled services, probing a few on every tick."""

    target = oslo_messaging.Target(version=rpcapi.InflightAPI.RPC_API_VERSION)

    def __init__(self, conf, prober, ring, list_services):
        super().__init__(conf)
        self.prober = prober
        self.ring = ring
        self._list_services = list_services
        self._db_failing = False
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
        """Read the services table once, and refresh the ring from it."""
        try:
            read_at = deaf.utcnow()
            services = self._list_services()
        except Exception as e:  # noqa: BLE001 - keep the last known ring
            if not self._db_failing:
                LOG.warning('Could not read the services table, probing the '
                            '%d services known: %s', len(self.ring), e)
            self._db_failing = True
            return
        if self._db_failing:
            LOG.info('Reading the services table again')
        self._db_failing = False
        before = len(self.ring)
        self.ring.refresh(services, read_at)
        if len(self.ring) != before:
            LOG.info('Probing %d enabled services', len(self.ring))

    @periodic_task.periodic_task(run_immediately=True)
    def check_inflight(self, context):
        """Count overdue probes lost, then probe the next few services."""
        self.prober.expire()
        self.prober.send(self.ring.take(self.conf.inflight.probes_per_tick))

    def inflight_result(self, context, result):
        """A service's result of one probe (InflightAPI 1.0)."""
        self.prober.receive(result)
