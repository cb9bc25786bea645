"""A service to probe, in a process of its own, on eventlet or on native threads.

    probed_service.py MODE CONFIG_FILE TOPIC HOST [--db URL] [--answers ...]
                      [--hog SECONDS] [--switch-interval SECONDS]
                      [--log-arrivals]

MODE `eventlet` monkey-patches first and puts InflightMixin on its manager,
as a Nova manager would; MODE `threading` appends an InflightEndpoint to its
RPC server's endpoints. --answers picks what it answers: `mixin` (the
default), `baseapi` (a Nova-style ping endpoint), `gated-mixin` (the mixin,
but only after SIGUSR1), `hook` (the endpoint switched on by the config
file's notification driver `inflight`, the code unchanged). oslo_rpc_server_ping is answered when the config
file sets rpc_ping_enabled. It prints `READY <mode>` once it consumes, and
stops on SIGTERM.

For the accuracy tests: the manager's `slow(seconds)` holds its RPC worker
that long (a backlog, when the config file sets executor_thread_pool_size
= 1), then writes `SLOW <time.time()>` to stderr. Its `hold(gate)` prints
`HOLDING <gate>` and holds its worker until the file `gate`, or `all` in
the same folder, exists; then it prints `RELEASED <gate>`. Every inflight
endpoint is told its RPC server (InflightEndpoint.serve), as the README
says, so that its results carry the executor's figures. With --hog D, each
SIGUSR2 turns starving on (it prints `HOGGING`) or off again (`RESTING`):
while on, on each probe it takes, once the sleeper is started, a
greenthread (eventlet) or thread (threading) spins without yielding until
D seconds after the probe was taken, then writes `HOG <ms from taking the
probe to the end of the spin>` to stderr. --switch-interval sets
sys.setswitchinterval, so that a spinning thread keeps the GIL (Python
hands it over every 5 ms by default).
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
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402

from inflight.cloud import db  # noqa: E402
from inflight import mixin  # noqa: E402
from inflight import rpcapi  # noqa: E402
from inflight import sleepers  # noqa: E402


class Manager:
    """The shape of a Nova manager: a host and additional endpoints."""

    target = oslo_messaging.Target(version='6.4')

    def __init__(self, host):
        self.host = host
        self.additional_endpoints = []

    def do_work(self, ctxt):
        return 'done'

    def slow(self, ctxt, seconds):
        """Hold the RPC worker `seconds` (a greenthread sleep on eventlet);
        write `SLOW <time.time() at the end>` to stderr."""
        time.sleep(seconds)
        say('SLOW %.6f' % time.time(), sys.stderr)

    def hold(self, ctxt, gate):
        """Hold the RPC worker until the file `gate` (or `all` beside it)
        exists."""
        say('HOLDING %s' % gate)
        every = os.path.join(os.path.dirname(gate), 'all')
        while not (os.path.exists(gate) or os.path.exists(every)):
            time.sleep(0.01)
        say('RELEASED %s' % gate)


_saying = threading.Lock()


def say(line, stream=None):
    """Print one whole line to stdout (or `stream`), whichever threads print
    at once: in one write, for print() writes the newline apart, and a log
    line of another thread's could land between ('HOG 100.003DEBUG ...')."""
    stream = stream or sys.stdout
    with _saying:
        stream.write(line + '\n')
        stream.flush()


class ComputeManager(mixin.InflightMixin, Manager):
    pass


class BaseRPCAPI:
    """Like nova.baserpc.BaseRPCAPI: every Nova RPC server has one."""

    target = oslo_messaging.Target(namespace='baseapi', version='1.1')

    def __init__(self, service_name):
        self.service_name = service_name

    def ping(self, context, arg):
        return {'service': self.service_name, 'arg': arg}


class GatedEndpoint(mixin.InflightEndpoint):
    """The mixin's endpoint, as if absent until `gate` is set."""

    gate = threading.Event()

    def inflight(self, ctxt, probe):
        if not self.gate.is_set():
            raise oslo_messaging.NoSuchMethod(rpcapi.METHOD)
        return super().inflight(ctxt, probe)


class Hog:
    """Starve the process on each probe an endpoint takes, while `on`."""

    on = threading.Event()

    def __init__(self, endpoint, seconds):
        self.seconds = seconds
        _, self._spawn, self._yield = sleepers.concurrency()
        take = endpoint.inflight

        def inflight(ctxt, probe):
            taken = time.monotonic()   # just before the endpoint's own reading
            take(ctxt, probe)          # the sleeper is started now
            if self.on.is_set():
                self._spawn(self.spin, taken + self.seconds, taken)
        endpoint.inflight = inflight   # what the RPC dispatcher calls

    def spin(self, until, taken):
        self._yield(0)   # let the sleeper start sleeping, if it had not
        while time.monotonic() < until:
            pass         # no I/O, no sleep: the hub (or the GIL) is ours
        say('HOG %.3f' % ((time.monotonic() - taken) * 1000.0), sys.stderr)


def main():
    parser = argparse.ArgumentParser()
    for name in ('mode', 'config_file', 'topic', 'host'):
        parser.add_argument(name)
    parser.add_argument('--db')
    parser.add_argument('--binary', default='nova-compute')
    parser.add_argument('--clock-offset', type=float, default=0.0,
                        help='seconds this service\'s clock is ahead')
    parser.add_argument('--answers', nargs='*', default=['mixin'],
                        choices=['mixin', 'baseapi', 'gated-mixin', 'hook'])
    parser.add_argument('--hog', type=float, default=None,
                        help='while SIGUSR2 has it on, spin this many '
                             'seconds from the taking of each probe')
    parser.add_argument('--switch-interval', type=float, default=None,
                        help='sys.setswitchinterval, in seconds')
    parser.add_argument('--log-arrivals', action='store_true',
                        help='log each message as the RPC server hands it '
                             'to its executor (oslo.messaging\'s DEBUG line '
                             '"Poll the incoming message ...")')
    args = parser.parse_args()
    # What a service would log at WARNING and above (ERRORs and tracebacks
    # included), as in a real service's log file.
    logging.basicConfig(level=logging.WARNING,
                        format='%(levelname)s %(name)s %(message)s')
    # And what it says of messages it cannot dispatch, down to DEBUG
    # ("Method ... not found"), so that tests can count those.
    logging.getLogger('oslo_messaging.rpc.server').setLevel(logging.DEBUG)
    if args.log_arrivals:
        logging.getLogger('oslo_messaging._drivers.amqpdriver').setLevel(
            logging.DEBUG)
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)

    conf = cfg.CONF   # oslo.messaging reads it, as in a Nova service
    conf(['--config-file', args.config_file], project='probed-service')
    if args.db:
        engine = db.create_engine(args.db, read_only=False)
        db.register_service(engine, args.host, args.binary, args.topic)
        engine.dispose()

    transport = oslo_messaging.get_rpc_transport(conf)
    if 'hook' in args.answers:
        # As Nova's rpc.init() does, before any RPC server: the notifier
        # loads the drivers its configuration names (the hook's, here).
        oslo_messaging.Notifier(
            oslo_messaging.get_notification_transport(conf))
    clock = lambda: time.time() + args.clock_offset  # noqa: E731
    ComputeManager.inflight_clock = staticmethod(clock)
    if 'mixin' in args.answers and args.mode == 'eventlet':
        manager = ComputeManager(args.host)
        endpoints = [manager] + manager.additional_endpoints
    else:
        endpoints = [Manager(args.host)]
        if 'mixin' in args.answers:
            endpoints.append(mixin.InflightEndpoint(args.host, transport,
                                                    clock=clock))
        if 'gated-mixin' in args.answers:
            endpoints.append(GatedEndpoint(args.host, transport, clock=clock))
            signal.signal(signal.SIGUSR1, lambda *a: GatedEndpoint.gate.set())
    if 'baseapi' in args.answers:
        endpoints.append(BaseRPCAPI(args.binary))
    if args.hog is not None:
        for endpoint in endpoints:
            if isinstance(endpoint, mixin.InflightEndpoint):
                Hog(endpoint, args.hog)

        def hog_switch(*unused):
            if Hog.on.is_set():
                Hog.on.clear()
                print('RESTING', flush=True)
            else:
                Hog.on.set()
                print('HOGGING', flush=True)
        signal.signal(signal.SIGUSR2, hog_switch)
    server = oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic=args.topic, server=args.host),
        endpoints)
    for endpoint in endpoints:
        if isinstance(endpoint, mixin.InflightEndpoint):
            endpoint.serve(server)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    print('READY', sleepers.concurrency()[0], flush=True)
    while not stop.wait(0.2):
        pass
    server.stop()
    server.wait()
    transport.cleanup()


if __name__ == '__main__':
    main()
