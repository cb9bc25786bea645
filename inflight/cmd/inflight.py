"""nova-inflight: the daemon that probes every enabled service."""

import sys

from oslo_config import cfg
from oslo_log import log
from oslo_service import backend

from inflight import config
from inflight import service


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
    config.warn_unknown_options(conf)
    launch = backend.get_component('launch')
    launcher = launch(conf, service.InflightService(conf),
                      restart_method='reload')
    return launcher.wait()


if __name__ == '__main__':
    sys.exit(main())
