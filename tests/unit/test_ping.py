"""inflight ping's line for each probe: the phases, then the service's
figures when its result carried them."""

from inflight import ping

PHASES = {'to_service': 1.5, 'in_service': 1000.25, 'overhead': 0.25,
          'from_service': 2.0, 'round_trip': 1003.75, 'queue_total': 3.5}


def test_a_probes_line_shows_the_services_figures():
    outcome = dict(PHASES, seq=1, kind='inflight', lost=False, state={
        'executor_busy': 2, 'executor_max': 64, 'executor_waiting': 0,
        'hub_timers': 57, 'hub_listeners': 3})
    assert ping._line(outcome) == (
        'seq=1 inflight             to_service=1.50 in_service=1000.25 '
        'overhead=0.25 from_service=2.00 round_trip=1003.75 '
        'queue_total=3.50 ms busy=2/64 waiting=0 hub_timers=57 '
        'hub_listeners=3')


def test_without_figures_the_line_is_the_phases_alone():
    outcome = {'seq': 2, 'kind': 'baseapi', 'lost': False,
               'round_trip': 3.25}
    assert ping._line(outcome) == (
        'seq=2 baseapi              round_trip=3.25 ms')


def test_figures_a_service_gave_in_part():
    assert ping.figures({'executor_busy': 1}) == ['busy=1/?']
    assert ping.figures({'hub_listeners': 4}) == ['hub_listeners=4']
    assert ping.figures({}) == []
