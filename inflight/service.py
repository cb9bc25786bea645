"""nova-inflight as an oslo.service service: RPC server, prober and periodic tasks."""

import logging
import threading

import oslo_messaging
from oslo_service.backend import base

from inflight import db
from inflight import deaf
from inflight import manager
from inflight import methods
from inflight import metrics
from inflight import mixin
from inflight import prober
from inflight import ring
from inflight import rpcapi
from inflight import skew

LOG = logging.getLogger(__name__)


class InflightService(base.ServiceBase):
    """Everything runs from start(), in the process that serves."""

    def __init__(self, conf, transport=None):
        self.conf = conf
        self.transport = transport
        self.manager = self.prober = None
        self._apis = {}
        self._own_transport = transport is None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._server = self._ticker = self._table = None

    def start(self):
        conf = self.conf
        if self.transport is None:
            self.transport = oslo_messaging.get_rpc_transport(conf)
        statsd = metrics.Metrics(conf.statsd.host, conf.statsd.port,
                                 conf.statsd.prefix)
        services = ring.ServiceRing()
        watch = deaf.DeafWatch(statsd, conf.inflight.deaf_after,
                               conf.service_down_time,
                               read_at=lambda: services.read_at)
        self.prober = prober.Prober(
            self.api_for, statsd, conf.host, conf.inflight.sleep,
            conf.inflight.probe_timeout,
            methods.MethodBook(conf.inflight.probe_methods,
                               conf.inflight.richer_retry_interval,
                               relearn_after=conf.inflight.deaf_after),
            on_outcome=[watch.outcome], max_calls=conf.inflight.max_calls,
            clock_offsets=skew.ClockOffsets(conf.inflight.offset_window))
        self._table = db.ServiceTable(conf.database.connection,
                                      conf.inflight.include_topics,
                                      conf.inflight.exclude_topics)
        if conf.inflight.register_service:
            self._register()
        self.manager = manager.InflightManager(conf, self.prober, services,
                                               self._table.enabled)
        endpoints = [self.manager,
                     mixin.InflightEndpoint.from_conf(conf, self.transport)]
        self._server = oslo_messaging.get_rpc_server(
            self.transport,
            oslo_messaging.Target(topic=rpcapi.TOPIC, server=conf.host),
            endpoints)
        self._server.start()
        self._ticker = threading.Thread(target=self._tick, daemon=True,
                                        name='inflight-periodic-tasks')
        self._ticker.start()
        LOG.info('nova-inflight on %s: probing every %.3gs, results on '
                 'topic %s', conf.host, conf.inflight.probe_interval,
                 rpcapi.TOPIC)

    def api_for(self, topic):
        """The BaseAPI client for one topic, made once."""
        if topic not in self._apis:
            self._apis[topic] = rpcapi.BaseAPI(self.transport, topic)
        return self._apis[topic]

    def _register(self):
        engine = db.create_engine(self.conf.database.connection,
                                  read_only=False)
        try:
            db.register_service(engine, self.conf.host, 'nova-inflight',
                                rpcapi.TOPIC)
        except Exception as e:  # noqa: BLE001 - probing others goes on
            LOG.warning('Could not register nova-inflight in the services '
                        'table: %s', e)
        finally:
            engine.dispose()

    def _tick(self):
        while not self._stopping.is_set():
            idle_for = self.manager.periodic_tasks()
            self._stopping.wait(idle_for)

    def stop(self, graceful=False):
        """Stop probing; wait for probes out, then count the rest lost."""
        if self._stopping.is_set() or self._server is None:
            self._stopped.set()
            return
        self._stopping.set()
        self._ticker.join()
        settled = self.prober.drain(
            self.conf.inflight.sleep + self.conf.inflight.probe_timeout)
        self._server.stop()
        self._server.wait()
        lost = self.prober.abandon()
        LOG.info('nova-inflight stopped: %s%s', dict(self.prober.counts),
                 '' if settled else ', %d probes out counted lost' % len(lost))
        self._table.close()
        if self._own_transport:
            self.transport.cleanup()
        self._stopped.set()

    def wait(self):
        self._stopped.wait()

    def reset(self):
        """Nothing to reset: the launcher restarts the process on SIGHUP."""
