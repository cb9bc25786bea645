"""Log lines read as sentences, and amqp's stop-time noise is dropped."""

import collections
import logging

from inflight import logs


def test_plural():
    assert logs.plural(1, 'probe') == '1 probe'
    assert logs.plural(0, 'probe') == '0 probes'
    assert logs.plural(2, 'failed try', 'failed tries') == '2 failed tries'
    assert logs.plural(1, 'failed try', 'failed tries') == '1 failed try'


def test_tally_reads_as_a_sentence():
    counts = collections.Counter(sent=1, received=1)
    assert logs.tally(counts) == '1 probe sent, 1 received, 0 lost'
    counts.update(sent=6, lost=5, late=2)
    assert logs.tally(counts) == '7 probes sent, 1 received, 5 lost, 2 late'
    assert logs.tally({}) == '0 probes sent, 0 received, 0 lost'


def test_amqp_closing_channel_noise_is_dropped_and_nothing_else(caplog):
    logs.quiet_library_noise()
    logs.quiet_library_noise()             # twice: still one filter
    amqp = logging.getLogger('amqp')
    assert sum(isinstance(f, logs._Quiet) for f in amqp.filters) == 1
    with caplog.at_level(logging.WARNING, logger='amqp'):
        amqp.warning('Received method %s during closing channel %s. This '
                     'method will be ignored', (60, 30), 1)
        amqp.warning('Something else went wrong')
    assert [r.getMessage() for r in caplog.records] == [
        'Something else went wrong']


def test_a_database_error_is_one_line_without_the_link_to_its_page():
    import sqlalchemy as sa
    error = sa.exc.OperationalError(
        'SELECT 1', None, Exception('(1045, "Access denied for user")'))
    assert '\n' in str(error) and 'sqlalche.me' in str(error)
    assert logs.reason(error) == (
        '(builtins.Exception) (1045, "Access denied for user") [SQL: SELECT 1]')
