"""Reaching the broker: passwords masked, a refusal is a configuration
error, waiting logs a bounded number of lines."""

import threading

from oslo_config import cfg
import oslo_messaging
import pytest

from inflight import broker
from inflight import config
from inflight import opts


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    oslo_messaging.TransportURL.parse(conf)      # registers transport_url
    return conf


@pytest.mark.parametrize('url, shown', [
    ('rabbit://guest:s3cret@127.0.0.1:5672/',
     'rabbit://guest:***@127.0.0.1:5672/'),
    ('rabbit://nova:a%40b@mq1:5672,nova:a%40b@mq2:5672/cell1',
     'rabbit://nova:***@mq1:5672,nova:***@mq2:5672/cell1'),
    ('rabbit://mq1/', 'rabbit://mq1/'),
])
def test_masked_hides_every_password(conf, url, shown):
    conf.set_override('transport_url', url)
    assert broker.masked(conf) == shown


def test_a_refused_login_is_a_configuration_error():
    assert issubclass(broker.LoginRefused, config.ConfigError)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Tries:
    """Stands in for broker.check: unreachable `failures` times, then up;
    each wait advances the fake clock by what was asked."""

    def __init__(self, clock, failures):
        self.clock = clock
        self.failures = failures
        self.tries = 0

    def check(self, conf, transport):
        self.tries += 1
        return None if self.tries > self.failures else 'Connection refused'


class FakeEvent(threading.Event):
    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.waits = []

    def wait(self, timeout=None):
        self.waits.append(timeout)
        self.clock.now += timeout
        return self.is_set()


def test_waiting_an_hour_logs_a_few_lines(conf, monkeypatch, caplog):
    clock = Clock()
    tries = Tries(clock, failures=130)        # about an hour, at 30 s
    monkeypatch.setattr(broker, 'check', tries.check)
    statuses = []
    stopping = FakeEvent(clock)
    with caplog.at_level('INFO', logger='inflight.broker'):
        assert broker.wait(conf, None, stopping, status=statuses.append,
                           clock=clock)
    assert len(statuses) == 130                  # systemd hears every try
    assert stopping.waits[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert max(stopping.waits) == broker.RETRY_MAX
    lines = [r.getMessage() for r in caplog.records]
    waiting = [line for line in lines if line.startswith('Waiting')]
    # One when it starts waiting, then one per LOG_EVERY, and the end.
    assert len(waiting) == 1 + int(clock.now // broker.LOG_EVERY)
    assert len(waiting) <= 8
    assert lines[-1].startswith('The broker at ')


def test_waiting_ends_when_stopped(conf, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(broker, 'check', Tries(clock, failures=10**6).check)
    stopping = FakeEvent(clock)
    stopping.set()
    assert broker.wait(conf, None, stopping, clock=clock) is False
    assert stopping.waits == [1.0]
