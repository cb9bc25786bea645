"""The circular queue: wraps around, and a refresh keeps its place."""

import string

from hypothesis import given
from hypothesis import strategies as st

from inflight.cloud import record
from inflight import ring

# Host names in ring order (a hash of the key): 'a' comes first, then 'b',
# ...; 'bb' between 'b' and 'c', in no ring here.
_IN_ORDER = sorted(('host%02d' % i for i in range(40)),
                   key=lambda h: ring.order(record.Key('', 'compute', h)))
HOST = dict(zip(string.ascii_lowercase[:10], _IN_ORDER[::2]))
HOST['bb'] = _IN_ORDER[3]
LETTER = {host: letter for letter, host in HOST.items()}


def services(*names):
    return [record.Service.of('compute', HOST[name], id=i,
                              binary='nova-compute')
            for i, name in enumerate(names)]


def hosts(taken):
    return [LETTER[s.host] for s in taken]


def key(name):
    return record.Key('', 'compute', HOST[name])


def test_hands_out_in_turn_and_wraps_around():
    r = ring.ServiceRing(services('a', 'b', 'c'))
    assert hosts(r.next() for _ in range(7)) == list('abcabca')
    assert r.cycles == 2


def test_empty_ring_hands_out_nothing():
    r = ring.ServiceRing()
    assert r.next() is None
    assert r.take(5) == []


def test_take_never_repeats_within_one_call():
    r = ring.ServiceRing(services('a', 'b', 'c'))
    assert hosts(r.take(2)) == ['a', 'b']
    assert hosts(r.take(10)) == ['c', 'a', 'b']


def test_refresh_appends_new_services_at_the_end_of_the_cycle():
    r = ring.ServiceRing(services('a', 'b', 'c'))
    assert hosts(r.take(2)) == ['a', 'b']
    r.refresh(services('a', 'b', 'c', 'd'))
    assert hosts(r.take(4)) == ['c', 'd', 'a', 'b']


def test_refresh_drops_removed_services_without_losing_the_place():
    r = ring.ServiceRing(services('a', 'b', 'c', 'd'))
    assert hosts(r.take(2)) == ['a', 'b']
    r.refresh(services('b', 'd'))   # a and c disabled
    assert hosts(r.take(3)) == ['d', 'b']
    assert LETTER[r.next().host] == 'd'


def test_refresh_updates_the_record_handed_out():
    r = ring.ServiceRing(services('a'))
    fresh = services('a')[0]._replace(binary='nova-conductor')
    r.refresh([fresh])
    assert r.next().binary == 'nova-conductor'


operations = st.lists(
    st.one_of(
        st.tuples(st.just('take'), st.integers(1, 12)),
        st.tuples(st.just('refresh'),
                  st.sets(st.sampled_from('abcdefghij'), max_size=10))),
    max_size=40)


@given(st.sets(st.sampled_from('abcdefghij')), operations)
def test_nobody_is_probed_twice_in_a_cycle_and_members_are_not_skipped(
        start, ops):
    r = ring.ServiceRing(services(*sorted(start)))
    members = set(start)
    in_cycle = []           # hosts handed out since the last wrap
    present_all_cycle = set(members)
    for op, arg in ops:
        if op == 'refresh':
            r.refresh(services(*sorted(arg)))
            members = set(arg)
            present_all_cycle &= members
            continue
        for _ in range(arg):
            cycles = r.cycles
            service = r.next()
            if service is None:
                assert not members
                break
            if r.cycles != cycles:   # wrapped: the cycle just ended
                assert present_all_cycle <= set(in_cycle)
                in_cycle, present_all_cycle = [], set(members)
            assert LETTER[service.host] in members
            assert LETTER[service.host] not in in_cycle
            in_cycle.append(LETTER[service.host])


def test_seek_goes_part_of_the_way_round_and_completes_the_cycle():
    r = ring.ServiceRing(services('a', 'b', 'c', 'd'))
    r.seek(0.5)
    assert hosts(r.take(4)) == ['c', 'd', 'a', 'b']
    assert r.cycles == 1


def test_place_is_the_last_handed_out_and_the_cycles():
    r = ring.ServiceRing(services('a', 'b', 'c'))
    assert r.place() is None
    for _ in range(4):
        r.next()
    assert r.place() == (key('a'), 1)


def test_resume_goes_on_after_the_place_even_if_it_left():
    for after, rest in (('b', ['c', 'd']), ('bb', ['c', 'd']),
                        ('d', ['a', 'b', 'c', 'd'])):
        r = ring.ServiceRing(services('a', 'b', 'c', 'd'))
        r.resume(key(after), 7)
        assert hosts(r.take(len(rest))) == rest
        assert r.cycles == 7 + (after == 'd')
    # Up to the place counts probed in this cycle: a refresh keeps that.
    r = ring.ServiceRing(services('a', 'b', 'c', 'd'))
    r.resume(key('b'), 0)
    r.refresh(services('a', 'b', 'c', 'd', 'e'))
    assert hosts(r.take(5)) == ['c', 'd', 'e', 'a', 'b']


def test_refresh_says_which_services_left():
    r = ring.ServiceRing(services('a', 'b', 'c'))
    assert hosts(r.refresh(services('a', 'c', 'd'))) == ['b']
    assert r.refresh(services('a', 'c', 'd')) == []
