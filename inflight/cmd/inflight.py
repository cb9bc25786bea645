"""nova-inflight: the daemon that probes every enabled service."""

import os
import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log
from oslo_service import backend
from oslo_service import opts as service_opts
import oslo_messaging

from inflight import broker
from inflight import config
from inflight import logs
from inflight import service

LOG = log.getLogger('inflight.cmd.inflight')


def wait_for_broker(conf):
    """Before the launcher tells systemd it is ready: wait for the broker
    to take the login. 'reached', 'stop' (SIGTERM or SIGINT came first) or
    'reload' (SIGHUP came first); raises broker.LoginRefused."""
    signalled = []
    woken = threading.Event()

    def on_signal(signum, frame):
        signalled.append(signum)
        woken.set()
    previous = {sig: signal.signal(sig, on_signal)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    transport = oslo_messaging.get_rpc_transport(conf)
    try:
        if broker.wait(conf, transport, woken, status=lambda text:
                       broker.notify_systemd('STATUS=%s' % text)):
            broker.notify_systemd('STATUS=Probing')
            return 'reached'
        return 'reload' if signalled[-1] == signal.SIGHUP else 'stop'
    finally:
        transport.cleanup()     # no connection is forked into the worker
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv=None):
    # oslo.messaging reads the global cfg.CONF itself: parse into it.
    conf = cfg.CONF
    try:
        config.parse_args(conf, sys.argv[1:] if argv is None else argv,
                          'nova-inflight')
        config.check(conf)
    except config.ConfigError as e:
        return config.fail('nova-inflight', e)
    log.setup(conf, 'inflight')
    logs.quiet_library_noise()
    config.warn_unknown_options(conf)
    try:
        reached = wait_for_broker(conf)
    except broker.LoginRefused as e:
        return config.fail('nova-inflight', e)
    if reached == 'stop':
        LOG.info('nova-inflight stopped before it began probing')
        return 0
    if reached == 'reload':
        LOG.info('Reading the configuration files again')
        # The same process (systemd's main PID), started afresh.
        os.execv(sys.executable, sys.orig_argv)
    # The launcher would list the options as it reloads, before they are
    # checked: a value that is not valid would be a traceback. Each worker
    # lists them instead, once they are found valid.
    service_opts.register_service_opts(conf)
    log_options = conf.log_options
    conf.set_override('log_options', False)
    launcher_pid = os.getpid()
    launch = backend.get_component('launch')
    launcher = launch(conf, service.InflightService(
        conf, on_fatal=lambda: os.kill(launcher_pid, signal.SIGINT),
        log_options=log_options), restart_method='reload')
    return launcher.wait()


if __name__ == '__main__':
    sys.exit(main())
