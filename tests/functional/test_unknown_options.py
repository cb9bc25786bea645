"""The real daemon warns of the options it does not know in its own groups,
once at start and again on SIGHUP, one line each."""

import signal

from harness import daemon_conf

UNKNOWN = ('WARNING inflight.config [-] [inflight] %s in %s is not an '
           'inflight option (did you mean %s?); it is ignored\n')


def test_the_daemon_warns_of_unknown_options(
        processes, broker_url, exchange, services_db, statsd, tmp_path):
    db_url, _ = services_db
    conf = daemon_conf(tmp_path, broker_url, exchange, db_url, statsd.port,
                       cycle_second=5)
    daemon = processes.daemon(conf)
    at_start = UNKNOWN % ('cycle_second', conf, 'cycle_seconds')
    processes.wait_for_log(statsd, at_start)
    processes.wait_for_log(statsd, 'nova-inflight on ')
    daemon_conf(tmp_path, broker_url, exchange, db_url, statsd.port,
                probe_timout=5)
    daemon.send_signal(signal.SIGHUP)
    on_reload = UNKNOWN % ('probe_timout', conf, 'probe_timeout')
    processes.wait_for_log(statsd, on_reload)
    processes.wait_for_log(statsd, 'nova-inflight on ', times=2)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0

    log = processes.log()
    assert log.count(at_start) == 1   # not again from the first worker
    assert log.count(on_reload) == 1
    assert log.count('is not an inflight option') == 2
