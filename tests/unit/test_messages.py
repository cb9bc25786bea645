"""The result's `state`: optional, strictly read, known figures only."""

import pytest

from inflight import probe

FIGURES = {'executor_busy': 2, 'executor_max': 64, 'executor_waiting': 0,
           'hub_timers': 57, 'hub_listeners': 3}


def a_result(**fields):
    result = probe.Result('p1', 'cmp1', 1.0, 2.0, 1.0, 1.0)._asdict()
    result.update(fields)
    return result


def test_a_result_without_state_stays_valid():
    older = a_result()
    del older['state']
    assert probe.parse_result(older).state is None
    assert probe.parse_result(a_result(state=None)).state is None


def test_the_figures_come_through():
    assert probe.parse_result(a_result(state=FIGURES)).state == FIGURES
    assert probe.parse_result(a_result(state={})).state is None


def test_a_figure_it_does_not_know_is_left_out():
    # A service with more figures than its prober knows keeps its timings.
    result = probe.parse_result(a_result(state={
        'executor_busy': 1, 'threads_alive': 12}))
    assert result.state == {'executor_busy': 1}
    assert result.received_at == 1.0


@pytest.mark.parametrize('state', [
    [], 'busy', 3, {'executor_busy': -1}, {'executor_busy': 1.5},
    {'executor_busy': '2'}, {'executor_busy': True}, {'executor_busy': None},
    {'executor_busy': probe.MAX_COUNT + 1}, {'executor_busy': 2 ** 64},
    {1: 2}, {'': 1}, {'Executor Busy': 1}, {'x' * 65: 1},
    {'figure_%d' % i: 1 for i in range(33)},
])
def test_a_malformed_state_is_rejected(state):
    with pytest.raises(probe.MalformedMessage) as raised:
        probe.parse_result(a_result(state=state))
    assert len(str(raised.value)) < 100   # a log line, not the message


@pytest.mark.parametrize('field,value', [
    (field, value)
    for field in ('received_at', 'replied_at', 'requested_sleep', 'slept')
    for value in (None, '1.0', True, float('nan'), float('inf'), [1.0])] + [
    (field, value)
    for field in ('id', 'host')
    for value in (None, '', 'x' * 256, 7, b'p1', ['p1'])])
def test_a_field_of_the_wrong_kind_is_named(field, value):
    with pytest.raises(probe.MalformedMessage) as raised:
        probe.parse_result(a_result(**{field: value}))
    assert repr(field) in str(raised.value)


def test_a_whole_number_is_read_as_seconds():
    result = probe.parse_result(a_result(received_at=1, slept=0))
    assert (type(result.received_at), type(result.slept)) == (float, float)
    assert result[:6] == ('p1', 'cmp1', 1.0, 2.0, 1.0, 0.0)
    assert probe.parse_result(a_result(id='x' * 255)).id == 'x' * 255
