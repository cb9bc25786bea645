"""The service side: take a probe, sleep apart from the RPC worker, cast the result back.

`InflightMixin` goes on a manager class; `InflightEndpoint` is the same
thing as an endpoint object to append to an RPC server's endpoints.
"""

import collections
import logging
import threading
import time

from oslo_config import cfg
import oslo_messaging

from inflight import probe as probe_msg
from inflight import rpcapi
from inflight import sleepers as sleeping
from inflight import state as service_state

LOG = logging.getLogger(__name__)


class InflightEndpoint:
    """Answers inflight probes; append it to an RPC server's endpoints."""

    target = oslo_messaging.Target(namespace=rpcapi.NAMESPACE,
                                   version=rpcapi.BaseAPI.BASE_RPC_API_VERSION)

    def __init__(self, host, transport=None, max_sleep=5.0, max_sleeping=100,
                 clock=time.time, later=None):
        self.host = host
        self.max_sleep = max_sleep
        self.clock = clock
        self.mode = sleeping.concurrency()[0]
        # later(seconds, function, *args), as sleepers.later_for() gives it.
        self._later = later or sleeping.later_for(self.mode)
        self.max_sleeping = max_sleeping
        self.sleeping = 0         # probes taken whose result is not yet sent
        self._transport = transport
        self._api = None
        self._api_lock = threading.Lock()
        self._lock = threading.Lock()   # sleeping and counts
        self.counts = collections.Counter()   # accepted, rejected, busy
        self.server = None

    @classmethod
    def from_conf(cls, conf, transport=None, clock=time.time):
        """An endpoint set up from `conf` (`[DEFAULT] host`, `[inflight]`)."""
        return cls(conf.host, transport, conf.inflight.max_sleep,
                   conf.inflight.max_sleeping, clock)

    def _results_api(self):
        with self._api_lock:
            if self._api is None:
                transport = (self._transport or
                             oslo_messaging.get_rpc_transport(cfg.CONF))
                self._api = rpcapi.InflightAPI(transport)
            return self._api

    def serve(self, server):
        """The RPC server this endpoint answers on: its executor's figures
        then go with every result (inflight.state)."""
        self.server = server

    def inflight_ignore_errors(self, ctxt, probe):
        """A probe (rpcapi.METHOD), cast or called: taken at once."""
        return self.inflight(ctxt, probe)

    def inflight(self, ctxt, probe):
        """Take a probe and return at once; the measurement runs apart."""
        # What the service looks like as it takes the probe (a few
        # microseconds, before t1: none of it counts in the service's time).
        state = service_state.read(self.server, self.mode)
        received_at = self.clock()
        started = time.monotonic()
        try:
            probe, malformed = probe_msg.parse_probe(probe), None
        except probe_msg.MalformedMessage as e:
            malformed = e
        if malformed is not None:
            self._count('rejected')
            LOG.warning('Dropped a malformed inflight probe: %s', malformed)
            return
        if not self._take_a_place():
            LOG.warning('Dropped inflight probe %s: too many probes already '
                        'sleeping in this process', probe.id)
            return
        sleep = min(probe.sleep, self.max_sleep)
        try:
            self._later(sleep, self._measure, probe, sleep, received_at,
                        started, state)
        except Exception:
            self._leave_a_place()
            LOG.exception('Could not start the sleeper for probe %s', probe.id)

    def _count(self, outcome):
        with self._lock:
            self.counts[outcome] += 1

    def _take_a_place(self):
        """Count the probe accepted and asleep, or busy: False when
        max_sleeping are asleep already."""
        with self._lock:
            if self.sleeping >= self.max_sleeping:
                self.counts['busy'] += 1
                return False
            self.sleeping += 1
            self.counts['accepted'] += 1
            return True

    def _leave_a_place(self):
        with self._lock:
            self.sleeping -= 1

    def _measure(self, probe, sleep, received_at, started, state):
        """Once slept: see how late we woke, cast the result to the prober."""
        try:
            error = self._reply(probe, sleep, received_at, started, state)
            if error is not None:
                # One line, out of the except clause: no traceback in the
                # service's log for a broker that went away.
                LOG.warning('Could not send the result of probe %s to %s: %s',
                            probe.id, probe.reply_host, error)
        finally:
            self._leave_a_place()

    def _reply(self, probe, sleep, received_at, started, state):
        """The measurement itself; the error that stopped it, or None."""
        try:
            slept = time.monotonic() - started
            result = probe_msg.Result(probe.id, self.host, received_at,
                                      self.clock(), sleep, slept, state)
            self._results_api().inflight_result({}, probe.reply_host, result)
        except Exception as e:  # noqa: BLE001 - the broker, most likely
            return e
        return None


class InflightMixin:
    """Add to a manager class so that its service answers inflight() probes.

    The manager needs `self.host`. Its endpoint is appended to
    `self.additional_endpoints`, which Nova's service adds to its RPC server.
    Override the class attributes, or `inflight_transport()`, to tune it.
    The manager never sees that server: where the service makes it,
    `manager.inflight_endpoint.serve(server)` gives the results the
    executor's figures too (inflight.state).
    """

    inflight_max_sleep = 5.0
    inflight_max_sleeping = 100
    inflight_clock = staticmethod(time.time)   # the service's wall clock

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inflight_endpoint = InflightEndpoint(
            self.host, self.inflight_transport(), self.inflight_max_sleep,
            self.inflight_max_sleeping, self.inflight_clock)
        if not hasattr(self, 'additional_endpoints'):
            self.additional_endpoints = []
        self.additional_endpoints.append(self.inflight_endpoint)

    def inflight_transport(self):
        """The transport results go back on; None: the process's cfg.CONF."""
        return None

    def inflight(self, ctxt, probe):
        """Take a probe and return at once; the measurement runs apart."""
        return self.inflight_endpoint.inflight(ctxt, probe)
