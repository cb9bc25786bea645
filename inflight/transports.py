"""The brokers of a cloud with cells: one transport for each cell's broker,
each with an RPC server on which that cell's services cast their results.

A cell without a broker of its own (cell0's `none:///`), or on the
top-level broker, uses the top-level transport. A cell broker is reached
in threads of its own, so that one down holds up neither the start nor
the other cells; while it is down, its probes are not sent (they count
lost), and its outage is logged once, and its return.
"""

import logging
import threading
import time

import oslo_messaging

from inflight import broker
from inflight.cloud import cells as cells_db
from inflight import rpcapi

LOG = logging.getLogger(__name__)

CHECK_EVERY = 5.0     # seconds between two checks of each cell broker


class BrokerDown(Exception):
    """The cell's broker does not answer: its probes are not sent."""


class DownAPI:
    """A BaseAPI stand-in for a cell whose broker is down: every send fails."""

    def __init__(self, name):
        self.name = name

    def _down(self, *args, **kwargs):
        raise BrokerDown('the broker of cell %s does not answer' % self.name)

    inflight = inflight_call = _down

    @property
    def client(self):
        self._down()


class CellBroker:
    """One cell broker: its transport, its results server, its health."""

    def __init__(self, conf, url, cell, endpoints, stopping):
        self.conf = conf
        self.url = url
        self.cells = {cell}       # names of the cells on this broker
        self.transport = oslo_messaging.get_rpc_transport(conf, url=url)
        self.masked = broker.masked(conf, url)
        self.up = True            # until a check says otherwise
        self._stopping = stopping
        self._endpoints = endpoints
        self._lock = threading.Lock()
        self._server = None       # the results server, once made
        self._threads = [
            threading.Thread(target=self._serve, daemon=True,
                             name='inflight-cell-server'),
            threading.Thread(target=self._watch, daemon=True,
                             name='inflight-cell-broker')]
        for thread in self._threads:
            thread.start()

    def _serve(self):
        """Serve the results on this broker. A start it refuses (the login,
        say: the check says why) is tried again, on a new server, at each
        check, until it starts or the daemon stops."""
        while True:
            server = oslo_messaging.get_rpc_server(
                self.transport,
                oslo_messaging.Target(topic=rpcapi.TOPIC,
                                      server=self.conf.host),
                self._endpoints)
            with self._lock:
                if self._stopping.is_set():
                    return
                self._server = server
            try:
                server.start()
                return
            except Exception as e:  # noqa: BLE001 - the check says why
                LOG.debug('The results server on the broker of cell %s did '
                          'not start: %s', self.name, e)
            with self._lock:
                self._server = None
            if self._stopping.wait(CHECK_EVERY):
                return

    def _watch(self):
        """Check the broker now and then; say when it goes and comes back."""
        while True:
            try:
                why = broker.check(self.conf, self.transport)
            except broker.LoginRefused as e:
                why = str(e)
            if why is None and not self.up:
                LOG.info('The broker of cell %s at %s answers again',
                         self.name, self.masked)
            elif why is not None and self.up:
                LOG.warning('The broker of cell %s at %s does not answer, '
                            'its probes count lost until it does: %s',
                            self.name, self.masked, why)
            self.up = why is None
            if self._stopping.wait(CHECK_EVERY):
                return

    @property
    def name(self):
        return ', '.join(sorted(self.cells))

    def close(self):
        """Stop the server and let go of the broker (maybe blocking)."""
        with self._lock:
            server = self._server
        if server is not None:
            try:
                server.stop()
                server.wait()
            except Exception as e:  # noqa: BLE001 - a start that failed
                LOG.debug('The results server on the broker of cell %s did '
                          'not stop: %s', self.name, e)
        self.transport.cleanup()


class CellTransports:
    """The transport of each cell, made as the cells are read."""

    def __init__(self, conf, top_transport, endpoints):
        self.conf = conf
        self.top = top_transport
        self._endpoints = endpoints
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._brokers = {}        # transport URL -> CellBroker
        self._of_cell = {}        # cell name -> CellBroker (None: the top)

    def update(self, cells):
        """Know the brokers of `cells`, reaching those not known yet."""
        with self._lock:
            for cell in cells:
                url = cell.transport_url
                if self._on_top(url):
                    self._of_cell[cell.name] = None
                    continue
                found = self._brokers.get(url)
                if found is None:
                    found = self._brokers[url] = CellBroker(
                        self.conf, url, cell.name, self._endpoints,
                        self._stopping)
                found.cells.add(cell.name)
                self._of_cell[cell.name] = found

    def _on_top(self, url):
        return (not url or url == cells_db.NO_TRANSPORT or
                url == self.conf.transport_url)

    def transport_for(self, cell):
        """The transport `cell`'s services are reached on, and whether its
        broker answers."""
        found = self._of_cell.get(cell)
        if found is None:
            return self.top, True
        return found.transport, found.up

    def close(self, timeout):
        """Stop every cell's server, in parallel, waiting `timeout` at most."""
        self._stopping.set()
        closers = [threading.Thread(target=found.close, daemon=True,
                                    name='inflight-cell-close')
                   for found in self._brokers.values()]
        for closer in closers:
            closer.start()
        ends = time.monotonic() + timeout
        for closer in closers:
            closer.join(max(0.0, ends - time.monotonic()))
