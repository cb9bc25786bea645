"""A small cloud to probe, with one service of each kind a dashboard shows,
and the daemon's configuration for it, at production's pace scaled in time.

    cmp1.example.org  compute    eventlet, the mixin: healthy
    ctl1.example.org  conductor  native threads, the mixin: healthy
    ctl2.example.org  scheduler  answers Nova's baseapi ping only
    cmp2.example.org  compute    eventlet, the mixin, starved: it spins
                                 without yielding until HOG after it takes
                                 each probe, so its sleeper wakes late (a
                                 large overhead)
    cmp3.example.org  compute    its results come back after the probe was
                                 counted lost (late): it spins past
                                 sleep + probe_timeout
    cmp4.example.org  compute    deaf: a row whose heartbeat is kept fresh,
                                 with nothing consuming its queue

The daemon's options are its defaults divided by TIME_SCALE (graphite.py):
each service probed once every 12 s (cycle_seconds 60 / 5), that is once
every 6 statsd flushes, as a 60 s cycle is on a 10 s flush.
"""

import signal

from harness import Heartbeat, add_row, daemon_conf, read_line
from inflight.cloud import db
import graphite

SCALE = graphite.TIME_SCALE
SLEEP = 1.0 / SCALE
PROBE_TIMEOUT = 10.0 / SCALE
HOG = 1.0                         # starved: overhead about HOG - SLEEP
LATE_HOG = SLEEP + PROBE_TIMEOUT + 1.0
HEARTBEAT_SECONDS = 10.0 / SCALE  # Nova's report_interval, scaled
SERVICE_DOWN_TIME = int(60 / SCALE)
DAEMON_OPTIONS = dict(
    cycle_seconds=60.0 / SCALE, probe_interval=1.0 / SCALE, sleep=SLEEP,
    probe_timeout=PROBE_TIMEOUT, refresh_interval=60.0 / SCALE,
    richer_retry_interval=300.0 / SCALE, deaf_after=3,
    register_service='false')
# (topic, host, probed_service.py mode, options of Processes.service)
SERVICES = (
    ('compute', 'cmp1.example.org', 'eventlet', {}),
    ('conductor', 'ctl1.example.org', 'threading', {}),
    ('scheduler', 'ctl2.example.org', 'threading',
     dict(answers=('baseapi',))),
    ('compute', 'cmp2.example.org', 'eventlet', dict(hog=HOG)),
    ('compute', 'cmp3.example.org', 'eventlet', dict(hog=LATE_HOG)),
)
DEAF = ('compute', 'cmp4.example.org')


class SmallCloud:
    """SERVICES as processes (started through a harness.Processes, which
    stops them), DEAF as a row with a heartbeat, in the services table of
    `db_url`, on `broker_url` and `exchange`."""

    def __init__(self, processes, broker_url, exchange, db_url):
        self.processes = processes
        self.broker_url = broker_url
        self.exchange = exchange
        self.db_url = db_url
        self.engine = db.create_engine(db_url, read_only=False)
        self.heartbeat = None

    def start(self):
        db.sync(self.engine)
        for topic, host, mode, options in SERVICES:
            proc = self.processes.service(mode, self.broker_url, self.exchange,
                                          topic, host, self.db_url, **options)
            if 'hog' in options:
                proc.send_signal(signal.SIGUSR2)    # starving from now on
                assert read_line(proc).split() == ['HOGGING']
        topic, host = DEAF
        add_row(self.engine, host, topic)
        self.heartbeat = Heartbeat(self.engine, host, HEARTBEAT_SECONDS)
        self.heartbeat.start()
        return self

    def daemon_conf(self, tmp_path, statsd_port, prefix='inflight'):
        """The daemon's configuration file for this cloud."""
        return daemon_conf(tmp_path, self.broker_url, self.exchange,
                           self.db_url, statsd_port, prefix=prefix,
                           defaults=dict(service_down_time=SERVICE_DOWN_TIME),
                           **DAEMON_OPTIONS)

    def stop(self):
        if self.heartbeat:
            self.heartbeat.stop()
        self.engine.dispose()
