"""Switching the endpoint on in a service whose code cannot change.

A service that names the notification driver `inflight`

    [oslo_messaging_notifications]
    driver = inflight

loads this module's `Driver` when it builds its notifier: Nova does so in
`rpc.init()`, before its services create their RPC servers. From then on,
every RPC server the process makes through `oslo_messaging.get_rpc_server`
answers inflight probes: an `InflightEndpoint` on the server's own host
(its target's `server`), sending results back on the server's own
transport, with what the server's executor was doing as it took each probe
(inflight.state). The driver itself sends no notification anywhere.

If this oslo.messaging is not one the hook knows, the service starts as
before, answering no inflight probe, and logs one warning. Removing the
driver line undoes it all.
"""

import functools
import inspect
import logging
import threading

from oslo_config import cfg
import oslo_messaging
from oslo_messaging.notify import notifier

from inflight import mixin
from inflight import opts

LOG = logging.getLogger(__name__)

# The arguments get_rpc_server has taken since oslo.messaging 5.x.
_SIGNATURE = ('transport', 'target', 'endpoints')

_lock = threading.Lock()


def install(conf):
    """Make every RPC server built from now on answer inflight probes;
    True if it took hold (or had already)."""
    with _lock:
        original = oslo_messaging.get_rpc_server
        if getattr(original, 'inflight_hook', False):
            return True
        try:
            params = tuple(inspect.signature(original).parameters)[:3]
        except (TypeError, ValueError):
            params = ()
        if params != _SIGNATURE:
            LOG.warning('inflight cannot add its endpoint to RPC servers '
                        'with this oslo.messaging (get_rpc_server%s): this '
                        'process answers no inflight probe', params or '()')
            return False
        conf.register_opts(opts.service_opts, group='inflight')
        limits = conf.inflight

        @functools.wraps(original)
        def get_rpc_server(transport, target, endpoints, *args, **kwargs):
            endpoint = mixin.InflightEndpoint(
                target.server or conf.host, transport,
                max_sleep=limits.max_sleep,
                max_sleeping=limits.max_sleeping)
            server = original(transport, target,
                              list(endpoints) + [endpoint], *args, **kwargs)
            endpoint.serve(server)
            LOG.info('The RPC server on %s.%s answers inflight probes',
                     target.topic, endpoint.host)
            return server
        get_rpc_server.inflight_hook = True
        oslo_messaging.get_rpc_server = get_rpc_server
    return True


class Driver(notifier.Driver):
    """The notification driver `inflight`: installs the hook, sends nothing."""

    def __init__(self, conf, topics, transport):
        super().__init__(conf, topics, transport)
        install(conf if conf is not None else cfg.CONF)

    def notify(self, ctxt, message, priority, retry):
        """Notifications go nowhere: the driver is here for the hook."""
