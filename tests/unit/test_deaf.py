"""Up but deaf: lost probes in a row from a service whose heartbeat is fresh."""

import datetime

import pytest

from inflight import db
from inflight import deaf
from inflight import metrics

READ_AT = datetime.datetime(2026, 11, 22, 12, 0, 0)


def service(host, seen_ago=None, created_ago=None):
    ago = lambda s: None if s is None else READ_AT - datetime.timedelta(  # noqa
        seconds=s)
    return db.Service(1, host, 'nova-compute', 'compute', ago(seen_ago),
                      ago(created_ago))


@pytest.mark.parametrize('svc, up', [
    (service('a', seen_ago=10), True),
    (service('b', seen_ago=60), True),
    (service('c', seen_ago=61), False),
    (service('d', seen_ago=-30), True),        # a clock ahead of ours
    (service('e', created_ago=5), True),       # never heartbeated yet
    (service('f', seen_ago=300, created_ago=5), False),
    (service('g'), False),
])
def test_nova_up_rule(svc, up):
    assert deaf.is_up(svc, READ_AT, 60) is up


@pytest.fixture
def watch(statsd):
    return deaf.DeafWatch(metrics.Metrics('127.0.0.1', statsd.port, 'p'),
                          deaf_after=3, down_time=60, read_at=lambda: READ_AT)


def test_fresh_heartbeat_and_lost_probes_make_deaf_until_it_answers(
        watch, statsd, caplog):
    svc = service('cmp1', seen_ago=5)
    for _ in range(2):
        watch.lost(svc)
    assert not watch.is_deaf(svc)
    watch.lost(svc)
    assert watch.is_deaf(svc)
    assert 'compute.cmp1 is up by its heartbeat but deaf' in caplog.text
    watch.lost(svc)
    watch.answered(svc)
    assert not watch.is_deaf(svc)
    statsd.wait_for(lambda m: len(m) == 3)
    assert statsd.values('p.compute.cmp1.deaf') == [0, 1, 0]  # on change


def test_stale_heartbeat_is_down_not_deaf(watch, statsd):
    svc = service('cmp2', seen_ago=600)
    for _ in range(5):
        watch.lost(svc)
    assert not watch.is_deaf(svc)
    statsd.wait_for(lambda m: len(m) == 1)
    assert statsd.values('p.compute.cmp2.deaf') == [0]


def test_an_answer_resets_the_count(watch):
    svc = service('cmp3', seen_ago=5)
    watch.lost(svc)
    watch.lost(svc)
    watch.answered(svc)
    watch.lost(svc)
    watch.lost(svc)
    assert not watch.is_deaf(svc)
