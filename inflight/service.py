"""nova-inflight as an oslo.service service: RPC server, prober and periodic tasks."""

import logging
import threading
import time

import oslo_messaging
from oslo_service.backend import base

from inflight import broker
from inflight import config
from inflight.cloud import cells
from inflight.cloud import db
from inflight.cloud import partition
from inflight import deaf
from inflight import handover
from inflight import logs
from inflight import manager
from inflight import methods
from inflight import mixin
from inflight import outputs
from inflight import prober
from inflight import ring
from inflight import rpcapi
from inflight import skew
from inflight import transports

LOG = logging.getLogger(__name__)

# The longest the RPC server takes to stop: its listener waits for messages
# up to 5 s at a time (oslo.messaging's RabbitMQ driver) before it sees a
# stop. At stop, up to this much (and at most half) of probe_timeout is kept
# for it.
CLOSE_RESERVE = 5.0


class InflightService(base.ServiceBase):
    """Everything runs from start(), in the process that serves.

    `on_fatal()` is called when this worker cannot go on, with any
    configuration (the broker refuses every login): the launcher's to stop
    the daemon, rather than start the same worker again. Without it, the
    error is raised. With `log_options`, each worker lists the options (at
    DEBUG) once it found them valid.
    """

    def __init__(self, conf, transport=None, on_fatal=None,
                 log_options=False):
        self.conf = conf
        self.transport = transport
        self._on_fatal = on_fatal
        self._log_options = log_options
        self.manager = self.prober = self._outputs = None
        self._apis = {}
        self._own_transport = transport is None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._server = self._ticker = self._table = None
        self._transports = None   # the cells' brokers, in a cloud with cells
        self._partition = None
        self._restored = False    # on the last valid configuration
        # Made here, in the launcher, so that every worker it forks shares
        # them: the ring's place, and the last configuration found valid.
        self._place = handover.SharedSlot()
        self._valid_config = handover.SharedSlot(size=65536)

    def start(self):
        conf = self.conf
        if not self._take_config() or self._stopping.is_set():
            return
        self._outputs = outputs.from_conf(conf)
        services = self._join_partition()
        watch = deaf.DeafWatch(self._outputs, conf.inflight.deaf_after,
                               conf.service_down_time,
                               services.newest_row)
        self.prober = prober.Prober(
            self.api_for, self._outputs, conf.host, conf.inflight.sleep,
            conf.inflight.probe_timeout,
            methods.MethodBook(conf.inflight.probe_methods,
                               conf.inflight.richer_retry_interval,
                               relearn_after=conf.inflight.deaf_after),
            on_outcome=[watch.outcome], max_calls=conf.inflight.max_calls,
            clock_offsets=skew.ClockOffsets(conf.inflight.offset_window))
        self._table = self._service_source()
        if conf.inflight.register_service:
            self._register()
        self.manager = manager.InflightManager(
            conf, self.prober, services, self._table.enabled,
            place=self._place, known=[self._outputs.known],
            forget=[self.prober.forget, watch.forget, self._outputs.forget],
            partition=self._partition)
        self._serve_cells()
        endpoints = [self.manager,
                     mixin.InflightEndpoint.from_conf(conf, self.transport)]
        self._server = oslo_messaging.get_rpc_server(
            self.transport,
            oslo_messaging.Target(topic=rpcapi.TOPIC, server=conf.host),
            endpoints)
        self._server.start()
        ticker = threading.Thread(target=self._tick, daemon=True,
                                  name='inflight-periodic-tasks')
        ticker.start()
        self._ticker = ticker
        LOG.info('nova-inflight on %s: probing every %.3gs, results on '
                 'topic %s', conf.host, conf.inflight.probe_interval,
                 rpcapi.TOPIC)

    def _join_partition(self):
        """The ring to walk: with [coordination] backend_url, this prober's
        share of the services, walked in ring order as every prober walks
        its own (see ring.SharedRing). The group is joined by the
        manager's first check, in a thread of its own: a backend away may
        take a minute to say so."""
        self._partition = partition.Partition.from_conf(self.conf)
        if self._partition is None:
            return ring.ServiceRing()
        return ring.SharedRing()

    def _take_config(self):
        """Check the configuration this worker starts with (the files are
        read again on SIGHUP) and reach the broker with it; when it is not
        valid or the broker refuses its login, go on with the last valid
        one rather than fail, and say why. False if stopped first."""
        last_valid = self._valid_config.load()
        if last_valid is not None and not self._restored:
            config.warn_unknown_options(self.conf)   # main() saw the first
        current = None
        try:
            config.check(self.conf)
            current = config.snapshot(self.conf)
            reached = self._reach_broker()
        except config.ConfigError as e:
            error = ' '.join(str(e).split())
        else:
            if reached:
                self._valid_config.save(current)
                if self._log_options:
                    self.conf.log_opt_values(LOG, logging.DEBUG)
            return reached
        if (last_valid is None or self._restored or
                config.same(current, last_valid)):
            return self._fatal(error)
        LOG.error('The configuration files are not valid, so this worker goes '
                  'on with the last valid configuration: %s', error)
        config.restore(self.conf, last_valid)
        self._restored = True
        return self._take_config()

    def _reach_broker(self):
        """Wait until the broker takes the login; False if stopped first."""
        if self._own_transport:
            if self.transport is not None:
                self.transport.cleanup()
            self.transport = oslo_messaging.get_rpc_transport(self.conf)
        return broker.wait(self.conf, self.transport, self._stopping)

    def _fatal(self, error):
        """This worker cannot start with any configuration: stop the daemon."""
        if self._on_fatal is None:
            raise config.ConfigError(error)
        LOG.error('nova-inflight cannot go on and stops: %s', error)
        self._on_fatal()
        return False

    def api_for(self, service):
        """The BaseAPI client for the service's topic on its cell's
        transport, made once."""
        transport, up = self.transport, True
        if self._transports is not None:
            transport, up = self._transports.transport_for(service.cell)
        if not up:
            return transports.DownAPI(service.cell)
        api = self._apis.get((transport, service.topic))
        if api is None:
            api = self._apis[transport, service.topic] = rpcapi.BaseAPI(
                transport, service.topic)
        return api

    def _service_source(self):
        """Every cell's services with [api_database] connection; else
        those of the [database] connection's table."""
        conf = self.conf
        if not conf.api_database.connection:
            return db.ServiceTable(conf.database.connection,
                                   conf.inflight.include_topics,
                                   conf.inflight.exclude_topics)
        return cells.CellServices(
            conf.api_database.connection, conf.database.connection,
            conf.transport_url, conf.inflight.include_topics,
            conf.inflight.exclude_topics,
            timeout=min(cells.CELL_TIMEOUT,
                        conf.inflight.refresh_interval / 2),
            on_cells=[self._cells_mapped])

    def _serve_cells(self):
        """In a cloud with cells: a results server on every cell's broker."""
        if self.conf.api_database.connection:
            self._transports = transports.CellTransports(
                self.conf, self.transport, [self.manager])

    def _cells_mapped(self, mapped):
        """The cells were read: reach the brokers of those new."""
        if self._transports is not None:
            self._transports.update(mapped)

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
        if self._stopping.is_set():
            self._stopped.set()
            return
        self._stopping.set()
        if self._ticker is None:
            LOG.info('nova-inflight stopped before it began probing')
            self._stopped.set()
            return
        began = time.monotonic()
        ends = began + self.conf.inflight.probe_timeout
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
                 else '', logs.tally(self.prober.counts),
                 '' if settled else '; %s still out, counted lost'
                 % logs.plural(len(lost), 'probe'))
        self._stopped.set()

    def _close(self):
        """Leave the probers' group; stop the RPC server and let go of the
        broker and the database. The group is left beside the rest: tooz
        takes a second to stop its client once the group is left (its
        executor's threads), as long as the RPC server takes to stop."""
        leaving = None
        if self._partition is not None:
            leaving = threading.Thread(target=self._partition.leave,
                                       daemon=True, name='inflight-leave')
            leaving.start()
        self._server.stop()
        self._server.wait()
        self._table.close()
        self._outputs.close()
        if self._transports is not None:
            self._transports.close(CLOSE_RESERVE)
        if self._own_transport:
            self.transport.cleanup()
        if leaving is not None:
            leaving.join()

    def wait(self):
        self._stopped.wait()

    def reset(self):
        """Nothing to reset: the launcher restarts the process on SIGHUP."""
