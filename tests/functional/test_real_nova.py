"""Real, unmodified Nova 34.0.0 (see real_nova.py), on eventlet and on
native threads: quiet when nobody probes it, and every one of its services
measured by nova-inflight, configured as the README says."""

import time

import pytest

from harness import stop_daemon
from inflight import metrics
import real_nova

COUNT = 3   # round trips awaited from each service

INFLIGHT_CONF = '''[statsd]
port = %d
[inflight]
cycle_seconds = 1
sleep = 0.1
probe_timeout = 2
richer_retry_interval = 3
'''


@pytest.mark.parametrize('mode', real_nova.MODES)
def test_unmodified_nova_is_quiet_and_probed_by_round_trip(
        mode, nova_cloud, processes, statsd, tmp_path):
    cloud = nova_cloud(mode)
    services = cloud.services()
    assert sorted(services) == sorted((s, cloud.host)
                                      for s in real_nova.SERVICES)

    # Left alone for a heartbeat of each service, Nova logs no error.
    cloud.wait_for_heartbeats(real_nova.SERVICES,
                              more_than=cloud.heartbeats())
    assert cloud.problems() == {}

    probed = cloud.mark()
    conf = tmp_path / 'inflight.conf'
    conf.write_text(INFLIGHT_CONF % statsd.port)
    daemon = processes.daemon(str(cloud.conf), str(conf))
    started = time.monotonic()
    names = {s: 'inflight.' + metrics.service_name(*s) for s in services}
    statsd.wait_for(lambda m: all(
        len(statsd.values(name + '.round_trip')) >= COUNT
        for name in names.values()), timeout=60)
    # (Probes still out when the daemon stops count lost: look before.)
    lost = {s: statsd.total(name + '.lost') for s, name in names.items()}
    stop_daemon(daemon, statsd)
    seconds = time.monotonic() - started

    assert lost == {s: 0 for s in services}
    for service, name in names.items():
        # They answer Nova's own ping only: a round trip, no breakdown.
        assert statsd.values(name + '.method.baseapi')[-1] == 1, service
        assert statsd.values(name + '.to_service') == [], service
    # What probing leaves in Nova's logs today (the mixin's cast, which no
    # endpoint of theirs takes), for the record.
    for service, lines in cloud.problems(since=probed).items():
        print('nova-%s on %s: %d ERROR or Traceback lines in %.0f s of '
              'probing, the first: %s'
              % (service, mode, len(lines), seconds, lines[0]))
