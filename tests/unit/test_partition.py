"""Probers sharing the services through a tooz group (file:// backend: no
server), the manager's check of it, and the ring walked in ring order."""

import collections
import logging

from oslo_config import cfg
import pytest
from tooz import coordination
import tooz

from inflight.cloud import partition
from inflight.cloud import record
from inflight import logs
from inflight import manager
from inflight import opts
from inflight import ring

SERVICES = [record.Service.of(topic, 'host%03d' % i, id=i)
            for i in range(100) for topic in ('compute', 'conductor')]


def prober(url, host, weight=1):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    conf.set_override('host', host)
    conf.set_override('backend_url', url, 'coordination')
    conf.set_override('weight', weight, 'coordination')
    return partition.Partition.from_conf(conf)


@pytest.fixture
def url(tmp_path):
    """A file:// backend with the group made (tooz's first join would
    wait a second for it otherwise)."""
    url = 'file://%s' % tmp_path
    maker = coordination.get_coordinator(url, b'maker')
    maker.start()
    maker.create_group(b'nova-inflight').get()
    maker.stop()
    return url


@pytest.fixture
def probers(url):
    made = []

    def make(*hosts):
        for host in hosts:
            made.append(prober(url, host))
            assert made[-1].check() is True
        for each in made:
            each.check()
        return list(made)
    yield make
    for each in made:
        each.leave()


def keys(services):
    return {s.key for s in services}


def test_no_backend_url_is_no_partition():
    assert prober('', 'p1') is None


def test_every_service_has_one_prober_and_one_only(probers):
    shares = [keys(p.share(SERVICES)) for p in probers('p1', 'p2', 'p3')]
    assert set.union(*shares) == keys(SERVICES)
    assert sum(map(len, shares)) == len(SERVICES)
    assert all(40 < len(share) < 100 for share in shares), shares


def test_a_prober_leaving_gives_its_share_to_the_others(probers):
    p1, p2, p3 = probers('p1', 'p2', 'p3')
    before = [keys(p.share(SERVICES)) for p in (p1, p2)]
    p3.leave()
    assert p1.check() is True and p2.check() is True
    after = [keys(p.share(SERVICES)) for p in (p1, p2)]
    assert after[0] | after[1] == keys(SERVICES)
    assert not after[0] & after[1]
    # Each keeps what it had: only p3's services moved.
    assert before[0] <= after[0] and before[1] <= after[1]
    assert p1.check() is False                    # nothing changed since


def test_a_heavier_prober_takes_more(url):
    light, heavy = prober(url, 'light'), prober(url, 'heavy', weight=3)
    try:
        for p in (light, heavy, light):
            p.check()
        light_share = len(light.share(SERVICES))
        assert 0.1 * len(SERVICES) < light_share < 0.4 * len(SERVICES)
    finally:
        light.leave()
        heavy.leave()


def test_the_share_is_hashed_once_per_membership(probers, monkeypatch):
    p1, _ = probers('p1', 'p2')
    first = p1.share(SERVICES)
    hashed = []
    real = record.Key.__tooz_hash__
    monkeypatch.setattr(record.Key, '__tooz_hash__',
                        lambda key: hashed.append(key) or real(key))
    assert p1.share(SERVICES) == first
    assert hashed == []
    probers('p3')                     # p1 checks and sees p3 join
    assert b'p3' in p1.members
    assert len(p1.share(SERVICES)) < len(first)
    assert len(hashed) == len(SERVICES)


def test_a_member_left_behind_by_the_same_host_is_taken_over(url):
    ghost = prober(url, 'p1')       # as a prober killed before it left
    assert ghost.check() is True
    again = prober(url, 'p1')
    try:
        assert again.check() is True
        assert list(again.members) == [b'p1']
        assert keys(again.share(SERVICES)) == keys(SERVICES)
    finally:
        again.leave()


def test_a_prober_joining_while_another_joins_is_seen_by_it(url):
    """p2 joins while p1 joins, between two reads of the members (tooz's
    partitioned group reads them once for its ring and again to start
    watching: p2 was on neither the ring nor any later join event). p1's
    next check sees p2, and the two share."""
    p1, p2 = prober(url, 'p1'), prober(url, 'p2')
    coordinator = p1._coordinator
    real = coordinator.get_members
    reads = []

    def get_members(group):
        members = real(group).get()
        reads.append(members)
        if len(reads) == 1:
            assert p2.check() is True       # p2 joins just after the read
        return Done(members)
    coordinator.get_members = get_members
    try:
        p1.check()
        p1.check()
        assert set(p1.members) == {b'p1', b'p2'}
        p2.check()
        shares = [keys(p.share(SERVICES)) for p in (p1, p2)]
        assert shares[0] | shares[1] == keys(SERVICES)
        assert not shares[0] & shares[1]
    finally:
        p1.leave()
        p2.leave()


class Done:
    """A tooz result already there."""

    def __init__(self, value):
        self.value = value

    def get(self, timeout=None):
        return self.value


class Unreachable:
    """A coordinator whose backend answers only once told to."""

    def __init__(self, url):
        self.up = False
        self.real = coordination.get_coordinator(url, b'p1')

    def __getattr__(self, name):
        if not self.up:
            raise coordination.ToozConnectionError('Connection refused')
        return getattr(self.real, name)


def test_an_unreachable_backend_keeps_the_share_and_says_so_once(url, caplog):
    caplog.set_level(logging.INFO)
    backend = Unreachable(url)
    p1 = partition.Partition(backend, b'p1', 'nova-inflight')
    other = prober(url, 'p2')
    try:
        assert p1.share(SERVICES) == []           # not checked yet: none
        assert p1.check() is True                 # never joined: all
        assert p1.share(SERVICES) == SERVICES
        assert p1.check() is None
        backend.up = True
        other.check()
        assert p1.check() is True
        share = keys(p1.share(SERVICES))
        assert 0 < len(share) < len(SERVICES)
        backend.up = False
        for _ in range(3):
            assert p1.check() is None
        assert keys(p1.share(SERVICES)) == share   # as it was
        backend.up = True
        assert p1.check() is False
    finally:
        backend.up = True
        p1.leave()
        other.leave()
    text = caplog.text
    assert text.count('Could not join the coordination group') == 1
    assert text.count('Could not reach the coordination backend') == 1
    assert 'Reached the coordination backend again after 3' in text
    assert 'Traceback' not in text


def test_leaving_with_the_backend_gone_says_so_in_one_line(url, caplog):
    backend = Unreachable(url)
    backend.up = True
    p1 = partition.Partition(backend, b'p1', 'nova-inflight')
    assert p1.check() is True
    backend.up = False
    p1.leave()          # neither raises nor logs a traceback
    backend.real.stop()
    assert 'Traceback' not in caplog.text


def test_the_heartbeat_retries_of_tooz_are_quiet(caplog):
    logs.quiet_library_noise()
    log = logging.getLogger('tooz.coordination')
    log.warning('Retrying %s in %s seconds as it %s %s.', 'heartbeat', 1.0,
                'raised', 'ToozConnectionError: refused')
    log.warning('Heartbeating took too long to execute')
    assert 'Retrying' not in caplog.text
    assert 'Heartbeating took too long' in caplog.text


def test_only_drivers_with_groups_are_offered():
    assert 'redis' in partition.drivers() and 'file' in partition.drivers()
    assert 'mysql' not in partition.drivers()


class Members:
    """A partition the test moves: its check says whether the share changed."""

    def __init__(self, share):
        self.mine, self.changed, self.checks = share, False, 0

    def share(self, services):
        return [s for s in services if s.host in self.mine]

    def check(self):
        self.checks += 1
        return self.changed


def test_the_manager_checks_the_partition_and_reshares():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    conf.set_override('check_interval', 5.0, 'coordination')
    members = Members({'host000'})
    m = manager.InflightManager(
        conf, None, ring.SharedRing(), lambda: SERVICES,
        partition=members, spawn=lambda f: f())
    m.refresh_services(None)
    assert {s.host for s in m.ring.services()} == {'host000'}
    m.check_partition(None)
    assert members.checks == 1 and len(m.ring) == 2
    members.mine, members.changed = {'host000', 'host001'}, True
    m.check_partition(None)
    assert len(m.ring) == 4
    assert 'check_partition' in m.tasks and m.spacing['check_partition'] == 5


def test_a_shared_ring_keeps_a_moved_service_at_its_place_in_the_cycle():
    a, b, c, d, e = sorted(
        (record.Service.of('compute', h) for h in 'abcde'),
        key=lambda s: ring.order(s.key))        # in ring order
    walk = ring.SharedRing([b, d])
    assert walk.next() == b                  # done up to b
    assert walk.refresh([a, b, c, d, e]) == []   # a, c, e moved in
    # a comes before the place: its last prober has probed it this cycle.
    assert [walk.next() for _ in range(3)] == [c, d, e]
    assert walk.next() == a                  # the next cycle, in ring order
    assert walk.cycles == 1
    assert walk.refresh([a, c]) == [b, d, e]     # b, d, e moved away
    assert walk.next() == c


def test_cells_come_mixed_in_a_ring():
    services = [record.Service.of('compute', 'cmp%03d' % i, cell=cell)
                for cell in ('cell1', 'cell2', 'cell3') for i in range(100)]
    for walk in (ring.ServiceRing(services), ring.SharedRing(services)):
        first = walk.take(30)
        assert {s.cell for s in first} == {'cell1', 'cell2', 'cell3'}
        assert max(collections.Counter(s.cell for s in first).values()) < 20


@pytest.mark.parametrize('error', [tooz.ToozError('gone'),
                                   coordination.ToozConnectionError('gone'),
                                   ConnectionError('Connection refused')])
def test_a_check_never_raises_what_a_backend_raises(error):
    """Not only tooz's errors: its redis driver lets redis' own through
    run_watchers."""
    class Failing:
        def start(self, start_heart=False):
            raise error
    p1 = partition.Partition(Failing(), b'p1', 'g')
    assert p1.check() is True and p1.check() is None
    assert p1.share(SERVICES) == SERVICES


def test_the_membership_is_said_in_words_that_fit_the_count(probers, caplog):
    caplog.set_level(logging.INFO)
    p1, p2 = probers('p1', 'p2')
    assert '2 probers share the services: p1, p2' in caplog.text
    p2.leave()
    assert p1.check() is True
    assert '1 prober probes the services: p1' in caplog.text
    assert '1 probers' not in caplog.text
