"""nova-inflight as an oslo.service service: RPC server, prober and periodic tasks."""

import logging
import threading
import time

import oslo_messaging
from oslo_service.backend import base

from inflight import config
from inflight import db
from inflight import deaf
from inflight import handover
from inflight import manager
from inflight import methods
from inflight import metrics
from inflight import mixin
from inflight import prober
from inflight import ring
from inflight import rpcapi
from inflight import skew

LOG = logging.getLogger(__name__)

# The longest the RPC server takes to stop: its listener waits for messages
# up to 5 s at a time (oslo.messaging's RabbitMQ driver) before it sees a
# stop. At stop, up to this much (and at most half) of probe_timeout is kept
# for it.
CLOSE_RESERVE = 5.0


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
        # Made here, in the launcher, so that every worker it forks shares
        # them: the ring's place, and the last configuration found valid.
        self._place = handover.SharedSlot()
        self._valid_config = handover.SharedSlot(size=65536)

    def start(self):
        conf = self.conf
        self._take_config()
        if self.transport is None:
            self.transport = oslo_messaging.get_rpc_transport(conf)
        statsd = metrics.Metrics(conf.statsd.host, conf.statsd.port,
                                 conf.statsd.prefix)
        services = ring.ServiceRing()
        watch = deaf.DeafWatch(statsd, conf.inflight.deaf_after,
                               conf.service_down_time,
                               services.newest_row)
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
                                               self._table.enabled,
                                               place=self._place)
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

    def _take_config(self):
        """Check the configuration this worker starts with (the files are
        read again on SIGHUP); when it is not valid, go on with the last
        valid one rather than fail, and say why."""
        try:
            config.check(self.conf)
        except config.ConfigError as e:
            error = e
        else:
            self._valid_config.save(config.snapshot(self.conf))
            return
        last_valid = self._valid_config.load()
        if last_valid is None:
            raise error
        LOG.error('The configuration files are not valid, so this worker goes '
                  'on with the last valid configuration: %s',
                  ' '.join(str(error).split()))
        config.restore(self.conf, last_valid)

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
            return
        except Exception as e:  # noqa: BLE001 - probing others goes on
            error = e
        finally:
            engine.dispose()
        # Logged out of the except clause: oslo.log would repeat the error.
        LOG.warning('Could not register nova-inflight in the services '
                    'table: %s', error)

    def _tick(self):
        while not self._stopping.is_set():
            idle_for = self.manager.periodic_tasks()
            self._stopping.wait(idle_for)

    def stop(self, graceful=False):
        """Stop probing, wait for the probes out, count the rest lost; all
        within probe_timeout, whatever the broker or the database do."""
        if self._stopping.is_set() or self._server is None:
            self._stopped.set()
            return
        began = time.monotonic()
        ends = began + self.conf.inflight.probe_timeout
        self._stopping.set()
        # A tick stuck in a table read or a send must not hold the exit.
        self._ticker.join(max(0.0, ends - time.monotonic()))
        reserve = min(CLOSE_RESERVE, self.conf.inflight.probe_timeout / 2)
        settled = self.prober.drain(
            max(0.0, ends - reserve - time.monotonic()))
        lost = self.prober.abandon()
        closer = threading.Thread(target=self._close, daemon=True,
                                  name='inflight-close')
        closer.start()
        closer.join(max(0.0, ends - time.monotonic()))
        LOG.info('nova-inflight stopped in %.1fs%s: %s%s',
                 time.monotonic() - began,
                 ', leaving the RPC server stopping' if closer.is_alive()
                 else '', dict(self.prober.counts),
                 '' if settled else ', %d probes out counted lost' % len(lost))
        self._stopped.set()

    def _close(self):
        """Stop the RPC server and let go of the broker and the database."""
        self._server.stop()
        self._server.wait()
        self._table.close()
        if self._own_transport:
            self.transport.cleanup()

    def wait(self):
        self._stopped.wait()

    def reset(self):
        """Nothing to reset: the launcher restarts the process on SIGHUP."""
