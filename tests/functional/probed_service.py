"""A service to probe, in a process of its own, on eventlet or on native threads.

    probed_service.py MODE CONFIG_FILE TOPIC HOST [--db URL]

MODE `eventlet` monkey-patches first and puts InflightMixin on its manager,
as a Nova manager would; MODE `threading` appends an InflightEndpoint to its
RPC server's endpoints. It prints `READY <mode>` once it consumes, and stops
on SIGTERM.
"""

import sys

MODE = sys.argv[1]
if MODE == 'eventlet':
    import eventlet
    eventlet.monkey_patch()
else:
    from oslo_service import backend
    backend.init_backend(backend.BackendType.THREADING)

import argparse  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402

from inflight import db  # noqa: E402
from inflight import mixin  # noqa: E402


class Manager:
    """The shape of a Nova manager: a host and additional endpoints."""

    target = oslo_messaging.Target(version='6.4')

    def __init__(self, host):
        self.host = host
        self.additional_endpoints = []

    def do_work(self, ctxt):
        return 'done'


class ComputeManager(mixin.InflightMixin, Manager):
    pass


def main():
    parser = argparse.ArgumentParser()
    for name in ('mode', 'config_file', 'topic', 'host'):
        parser.add_argument(name)
    parser.add_argument('--db')
    parser.add_argument('--binary', default='nova-compute')
    args = parser.parse_args()

    conf = cfg.CONF   # oslo.messaging reads it, as in a Nova service
    conf(['--config-file', args.config_file], project='probed-service')
    if args.db:
        engine = db.create_engine(args.db, read_only=False)
        db.register_service(engine, args.host, args.binary, args.topic)
        engine.dispose()

    transport = oslo_messaging.get_rpc_transport(conf)
    if args.mode == 'eventlet':
        manager = ComputeManager(args.host)
        endpoints = [manager] + manager.additional_endpoints
        sleeper = manager.inflight_endpoint
    else:
        sleeper = mixin.InflightEndpoint(args.host, transport)
        endpoints = [Manager(args.host), sleeper]
    server = oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic=args.topic, server=args.host),
        endpoints)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    print('READY', sleeper.mode, flush=True)
    while not stop.wait(0.2):
        pass
    server.stop()
    server.wait()
    transport.cleanup()


if __name__ == '__main__':
    main()
