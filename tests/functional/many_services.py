"""Many services in one process: an RPC server with the inflight endpoint for
each of the hosts given, all on one transport (threading).

    many_services.py CONFIG_FILE TOPIC HOST...

It prints `READY <count>` once every server consumes, and exits on SIGTERM
at once (stopping the servers one by one would take seconds each; what
they declared is in the test's vhost, deleted after it).

Each server runs WORKERS workers, not oslo.messaging's 64: a service is one
server in one process, and 50 servers of 64 workers each would make one
process of 3,200 threads, which the probes grow one by one (futurist starts
a worker on each message until it has them all). Past about 1,500 threads
such a process answers seconds late, and the probes sent to it are lost.
"""

import sys

from oslo_service import backend
backend.init_backend(backend.BackendType.THREADING)

import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402

from inflight import mixin  # noqa: E402

WORKERS = 4     # per server: its probes are taken at once, measured apart


def main():
    config_file, topic, hosts = sys.argv[1], sys.argv[2], sys.argv[3:]
    logging.basicConfig(level=logging.WARNING,
                        format='%(levelname)s %(name)s %(message)s')
    conf = cfg.CONF
    conf(['--config-file', config_file], project='many-services')
    transport = oslo_messaging.get_rpc_transport(conf)
    servers = []
    for host in hosts:
        endpoint = mixin.InflightEndpoint(host, transport)
        server = oslo_messaging.get_rpc_server(
            transport, oslo_messaging.Target(topic=topic, server=host),
            [endpoint])
        endpoint.serve(server)
        server.start(override_pool_size=WORKERS)
        servers.append(server)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    print('READY', len(servers), flush=True)
    stop.wait()
    os._exit(0)


if __name__ == '__main__':
    main()
