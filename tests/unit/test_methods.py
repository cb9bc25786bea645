"""The method book: which kinds each probe tries, learnt from the answers."""

from inflight.cloud import record
from inflight import methods

CMP1 = record.Service.of('compute', 'cmp1', id=1, binary='nova-compute')
ALL = ('inflight', 'baseapi', 'oslo_rpc_server_ping')


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def book(**kwargs):
    clock = Clock()
    return methods.MethodBook(monotonic=clock, **kwargs), clock


def test_unknown_services_get_every_kind_richest_first():
    b, clock = book()
    assert b.plan(CMP1).kinds == ALL


def test_a_known_kind_alone_then_the_richest_now_and_then():
    b, clock = book(richer_retry_interval=60)
    plan = b.plan(CMP1)
    clock.now = 1
    assert b.answered(CMP1, 'baseapi', plan) is True
    assert b.answered(CMP1, 'baseapi', b.plan(CMP1)) is False
    assert b.plan(CMP1).kinds == ('baseapi',)
    clock.now = 61
    assert b.plan(CMP1).kinds == ('inflight', 'baseapi')
    assert b.plan(CMP1).kinds == ('baseapi',)     # once per interval


def test_an_old_plan_answering_does_not_undo_what_was_learnt():
    b, clock = book(richer_retry_interval=0)
    b.answered(CMP1, 'baseapi', b.plan(CMP1))
    clock.now = 1
    old = b.plan(CMP1)                 # ('inflight', 'baseapi')
    clock.now = 2
    richer = b.plan(CMP1)
    clock.now = 3
    assert b.answered(CMP1, 'inflight', richer) is True
    assert b.answered(CMP1, 'baseapi', old) is False
    assert b.plan(CMP1).kinds == ('inflight',)


def test_every_kind_again_after_misses_in_a_row():
    b, clock = book(relearn_after=2)
    b.answered(CMP1, 'inflight', b.plan(CMP1))
    clock.now = 1
    b.missed(CMP1, b.plan(CMP1))
    assert b.plan(CMP1).kinds == ('inflight',)
    b.missed(CMP1, b.plan(CMP1))
    assert b.plan(CMP1).kinds == ALL
    clock.now = 2
    assert b.answered(CMP1, 'baseapi', b.plan(CMP1)) is True
    assert b.plan(CMP1).kinds == ('baseapi',)


def test_a_topic_override_is_the_only_kind():
    b, clock = book(overrides={'compute': 'baseapi'})
    assert b.plan(CMP1).kinds == ('baseapi',)


def test_the_first_answer_is_learnt_on_the_real_clock():
    b = methods.MethodBook()           # time.monotonic, read as it goes
    plan = b.plan(CMP1)
    assert plan.kinds == ALL
    assert b.answered(CMP1, 'baseapi', plan) is True
    assert b.plan(CMP1).kinds == ('baseapi',)


def test_answers_to_plans_made_before_the_first_answer_are_old_news():
    b = methods.MethodBook(relearn_after=1)
    first, second = b.plan(CMP1), b.plan(CMP1)   # both out at once
    assert b.answered(CMP1, 'baseapi', first) is True
    assert b.answered(CMP1, 'oslo_rpc_server_ping', second) is False
    b.missed(CMP1, second)                       # nor is its loss counted
    assert b.plan(CMP1).kinds == ('baseapi',)
