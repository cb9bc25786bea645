"""A probed service for the benchmarks, in a process of its own.

    probed.py CONFIG_FILE TOPIC HOST [--mode threading|eventlet]
              [--endpoint mixin|hook|none]

One RPC server on `TOPIC.HOST` with two endpoints side by side:

* inflight's `InflightEndpoint`, which answers probes: appended by hand
  (`--endpoint mixin`, the default), or by the hook, as in a service whose
  code is unchanged (`hook`: the process builds a notifier with the driver
  `inflight` before its RPC server, as Nova does); `none`: no endpoint;
* `Echo`, the bare baseline: an endpoint that does nothing but cast the
  message straight back to the sender, as a result of the same shape and on
  the same topic as the mixin's (`inflight.<reply host>`).

The parent talks to it over stdin/stdout, not over the broker, so that
asking does not cost the broker or the RPC server anything:

    cpu        ->  CPU <user+system seconds of this whole process>
    (EOF)      ->  stops (so a dead parent never leaves it behind)

It prints `READY <mode>` once its server consumes. SIGTERM stops it too.
"""

import sys

# Monkey-patching must come first: find the mode before argparse is imported.
MODE = ('eventlet' if '--mode=eventlet' in sys.argv or
        ' '.join(sys.argv).endswith('--mode eventlet') or
        '--mode eventlet ' in ' '.join(sys.argv) else 'threading')
if MODE == 'eventlet':
    import eventlet
    eventlet.monkey_patch()
else:
    import inflight.cmd  # noqa: F401 - oslo.service's threading backend

import argparse  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402

from inflight import mixin  # noqa: E402
from inflight import probe as probe_msg  # noqa: E402
from inflight import rpcapi  # noqa: E402
from inflight import sleepers  # noqa: E402

# The echo travels in a namespace of its own, beside inflight's.
NAMESPACE = 'bench'
VERSION = '1.0'


class Echo:
    """The baseline: cast a result-shaped answer back at once."""

    target = oslo_messaging.Target(namespace=NAMESPACE, version=VERSION)

    def __init__(self, host, transport):
        self.host = host
        self.client = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic=rpcapi.TOPIC))

    def echo(self, ctxt, probe):
        now = time.time()
        result = probe_msg.Result(probe['id'], self.host, now, now, 0.0, 0.0)
        # As InflightAPI.inflight_result() prepares its cast.
        cctxt = self.client.prepare(server=probe['reply_host'],
                                    namespace=NAMESPACE, version=VERSION,
                                    retry=1)
        cctxt.cast(ctxt, 'echo_back', result=result._asdict())


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _read_commands(stop):
    """Answer the parent on stdout; EOF on stdin stops the process."""
    if MODE == 'eventlet':
        from eventlet import tpool
        readline = lambda: tpool.execute(sys.stdin.readline)  # noqa: E731
    else:
        readline = sys.stdin.readline
    while True:
        line = readline()
        if not line:
            break
        if line.strip() == 'cpu':
            sys.stdout.write('CPU %.9f\n' % cpu_seconds())
            sys.stdout.flush()
    stop.set()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('config_file')
    parser.add_argument('topic')
    parser.add_argument('host')
    parser.add_argument('--mode', choices=['threading', 'eventlet'],
                        default='threading')
    parser.add_argument('--endpoint', choices=['mixin', 'hook', 'none'],
                        default='mixin')
    args = parser.parse_args()

    conf = cfg.CONF   # oslo.messaging reads it, as in a Nova service
    conf(['--config-file', args.config_file], project='inflight-bench')
    transport = oslo_messaging.get_rpc_transport(conf)
    endpoints = [Echo(args.host, transport)]
    if args.endpoint == 'mixin':
        endpoints.insert(0, mixin.InflightEndpoint(args.host, transport))
    elif args.endpoint == 'hook':
        oslo_messaging.Notifier(
            oslo_messaging.get_notification_transport(conf), driver='inflight')
    server = oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic=args.topic, server=args.host),
        endpoints)
    if args.endpoint == 'mixin':
        endpoints[0].serve(server)   # its figures cost what they cost
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    reader = threading.Thread(target=_read_commands, args=(stop,),
                              daemon=True)
    reader.start()
    print('READY', sleepers.concurrency()[0], flush=True)
    stop.wait()
    # The parent deletes this run's queues and exchange; a graceful stop of
    # a RabbitMQ listener takes seconds and would only slow the run down.
    sys.stdout.flush()
    os._exit(0)


if __name__ == '__main__':
    main()
