"""The status file: each service's window, its p90 and loss, worst first,
at most ROWS rows, written whole or not at all, and one warning when it
cannot be written."""

import json
import logging
import os
import stat
import threading
import time

from oslo_config import cfg
from oslo_log import formatters
from oslo_log import log as oslo_log
import pytest

from inflight import config
from inflight.cloud import record
from inflight import demo
from inflight import opts
from inflight.outputs import status
from inflight import timings


def service(host, topic='compute'):
    return record.Service.of(topic, host, id=1, binary='nova-' + topic)


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def inflight_timings(queue_total, overhead=0.001):
    half = queue_total / 2
    return timings.Timings(half, 1.0 + overhead, overhead, half,
                           1.0 + overhead + queue_total, queue_total)


def make(tmp_path, clock=None, **kwargs):
    return status.StatusFile(str(tmp_path / 'status.json'), 2.0, 'prober1',
                             {'cycle_seconds': 60.0}, clock=clock or Clock(),
                             start=False, **kwargs)


def rows_by_host(snapshot):
    return {row['host']: row for row in snapshot['rows']}


def test_a_row_has_the_latest_breakdown_the_p90_over_the_window_and_figures(
        tmp_path):
    clock = Clock()
    out = make(tmp_path, clock)
    cmp1 = service('cmp1')
    for queued in range(1, 11):                  # 1 .. 10 ms
        clock.now += 1
        out.sent([cmp1])
        out.received(cmp1, 'inflight', inflight_timings(queued / 1000.0),
                     state={'executor_busy': 2, 'executor_max': 64,
                            'executor_waiting': 1})
    clock.now += 3
    row, = out.snapshot()['rows']
    assert row['kind'] == 'inflight' and row['deaf'] is False
    assert row['latest']['queue_total'] == pytest.approx(10.0, abs=1e-3)
    assert row['latest']['in_service'] == pytest.approx(1001.0, abs=1e-3)
    assert 'ping_round_trip' not in row['latest']
    # Nearest rank: the 9th of ten.
    assert row['p90']['queue_total'] == pytest.approx(9.0, abs=1e-3)
    assert set(row['p90']) == set(timings.PHASES)
    assert row['window'] == {'probes': 10, 'lost': 0, 'loss_percent': 0.0}
    assert row['figures'] == {'executor_busy': 2, 'executor_max': 64,
                              'executor_waiting': 1}
    assert row['since_answer'] == pytest.approx(3.0)
    assert row['counts'] == {'sent': 10, 'received': 10, 'lost': 0,
                             'late': 0}


def test_a_ping_measures_its_own_round_trip_only(tmp_path):
    out = make(tmp_path)
    cmp2 = service('cmp2')
    out.received(cmp2, 'baseapi', timings.round_trip_only(0.007))
    row, = out.snapshot()['rows']
    assert row['latest'] == {'ping_round_trip': pytest.approx(7.0, abs=1e-3)}
    assert row['p90'] == {'ping_round_trip': pytest.approx(7.0, abs=1e-3)}
    assert row['figures'] is None and row['kind'] == 'baseapi'


def test_loss_is_over_the_window_and_old_outcomes_leave_it(tmp_path):
    clock = Clock()
    out = make(tmp_path, clock)
    cmp1 = service('cmp1')
    for _ in range(3):
        out.lost([cmp1])
    clock.now += 1
    out.received(cmp1, 'inflight', inflight_timings(0.002))
    row, = out.snapshot()['rows']
    assert row['window'] == {'probes': 4, 'lost': 3, 'loss_percent': 75.0}
    # The three losses leave the window WINDOW seconds after they came.
    clock.now += status.WINDOW - 0.5
    row, = out.snapshot()['rows']
    assert row['window'] == {'probes': 1, 'lost': 0, 'loss_percent': 0.0}
    assert row['counts']['lost'] == 3           # the counts stay
    clock.now += 1
    row, = out.snapshot()['rows']
    assert row['window'] == {'probes': 0, 'lost': 0, 'loss_percent': None}
    assert row['latest'] is None and row['p90'] == {}


def test_the_window_keeps_the_last_outcomes_only(tmp_path):
    clock = Clock()
    out = make(tmp_path, clock)
    cmp1 = service('cmp1')
    for _ in range(status.WINDOW_PROBES):
        out.lost([cmp1])
    for _ in range(status.WINDOW_PROBES):
        clock.now += 0.1
        out.received(cmp1, 'inflight', inflight_timings(0.002))
    row, = out.snapshot()['rows']
    assert row['window'] == {'probes': status.WINDOW_PROBES, 'lost': 0,
                             'loss_percent': 0.0}


def test_rows_are_worst_first_deaf_then_loss_then_time_queued(tmp_path):
    out = make(tmp_path)
    quick, slow, ping, lossy, deaf = (service(h) for h in (
        'quick', 'slow', 'ping', 'lossy', 'deaf'))
    out.received(quick, 'inflight', inflight_timings(0.002))
    out.received(slow, 'inflight', inflight_timings(0.080))
    out.received(ping, 'baseapi', timings.round_trip_only(0.030))
    out.received(lossy, 'inflight', inflight_timings(0.001))
    out.lost([lossy])
    out.received(deaf, 'inflight', inflight_timings(0.001))   # and then:
    out.lost([deaf])
    out.lost([deaf])
    out.deaf(deaf, True)
    hosts = [row['host'] for row in out.snapshot()['rows']]
    assert hosts == ['deaf', 'lossy', 'slow', 'ping', 'quick']
    out.deaf(deaf, False)
    hosts = [row['host'] for row in out.snapshot()['rows']]
    assert hosts == ['deaf', 'lossy', 'slow', 'ping', 'quick']   # 67% loss
    out.received(deaf, 'inflight', inflight_timings(0.001))
    out.received(deaf, 'inflight', inflight_timings(0.001))
    out.received(deaf, 'inflight', inflight_timings(0.001))
    hosts = [row['host'] for row in out.snapshot()['rows']]
    assert hosts == ['lossy', 'deaf', 'slow', 'ping', 'quick']   # 33%


def test_at_most_rows_are_written_with_totals_over_all_services(
        tmp_path, monkeypatch):
    monkeypatch.setattr(status, 'ROWS', 3)
    out = make(tmp_path)
    for n in range(10):
        cmp = service('cmp%d' % n)
        out.sent([cmp])
        out.received(cmp, 'inflight', inflight_timings(n / 1000.0))
    out.sent([service('cmp9')])
    out.lost([service('cmp9')])
    out.deaf(service('cmp5'), True)
    out.late([service('cmp9')])
    snapshot = out.snapshot()
    assert [row['host'] for row in snapshot['rows']] == ['cmp5', 'cmp9',
                                                         'cmp8']
    assert snapshot['rows_written'] == 3
    assert snapshot['services'] == 10
    assert snapshot['deaf'] == 1 and snapshot['with_loss'] == 1
    assert snapshot['counts'] == {'sent': 11, 'received': 10, 'lost': 1,
                                  'late': 1}
    assert snapshot['window'] == {'probes': 11, 'lost': 1,
                                  'loss_percent': 9.1}


def test_the_header_says_whose_data_and_when(tmp_path):
    clock = Clock(5000.0)
    out = make(tmp_path, clock)
    clock.now += 42.5
    snapshot = out.snapshot()
    assert snapshot['format'] == status.FORMAT
    assert snapshot['host'] == 'prober1'
    assert snapshot['pid'] == os.getpid()
    assert snapshot['written_at'] == 5042.5
    assert snapshot['started_at'] == 5000.0
    assert snapshot['interval'] == 2.0 and snapshot['stopped'] is False
    assert snapshot['settings'] == {'cycle_seconds': 60.0}
    assert snapshot['services'] == 0 and snapshot['rows'] == []


def test_a_service_not_probed_for_long_is_forgotten(tmp_path):
    clock = Clock()
    out = make(tmp_path, clock)
    out.sent([service('gone')])
    clock.now += status.FORGET_AFTER - 1
    out.sent([service('here')])
    assert out.snapshot()['services'] == 2
    clock.now += 2
    snapshot = out.snapshot()
    assert [row['host'] for row in snapshot['rows']] == ['here']


def test_the_file_is_replaced_whole_mode_0644_without_leftovers(tmp_path):
    out = make(tmp_path)
    old = os.umask(0o077)
    try:
        out.received(service('cmp1'), 'inflight', inflight_timings(0.002))
        assert out.write()
    finally:
        os.umask(old)
    path = tmp_path / 'status.json'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert json.loads(path.read_text())['rows'][0]['host'] == 'cmp1'
    assert os.listdir(tmp_path) == ['status.json']
    inode = path.stat().st_ino
    assert out.write()
    assert path.stat().st_ino != inode       # a new file, renamed over


def test_readers_see_the_old_file_or_the_new_never_part_of_one(tmp_path):
    out = make(tmp_path)
    for n in range(300):
        out.received(service('cmp%d.example.org' % n), 'inflight',
                     inflight_timings(0.002))
    path = tmp_path / 'status.json'
    out.write()
    done = threading.Event()

    def rewrite():
        while not done.is_set():
            out.write()
    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        for _ in range(300):
            assert len(json.loads(path.read_text())['rows']) == 300
    finally:
        done.set()
        writer.join()


def test_an_unwritable_path_is_one_warning_then_one_line_when_it_works(
        tmp_path, caplog):
    folder = tmp_path / 'run'
    out = status.StatusFile(str(folder / 'status.json'), 2.0, 'prober1',
                            clock=Clock(), start=False)
    with caplog.at_level(logging.INFO, 'inflight.outputs.status'):
        for _ in range(3):
            assert not out.write()
        folder.mkdir()
        assert out.write() and out.write()
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [
        ('WARNING', 'Cannot write the status file %s/status.json: No such '
                    'file or directory; set [inflight] status_file to a '
                    'path this user can write (empty: no status file)'
         % folder),
        ('INFO', 'Writing the status file %s/status.json again' % folder)]


def test_the_warning_is_one_line_in_the_daemons_log_format(tmp_path):
    """oslo.log's formatter adds the error being handled to a line logged
    in an except clause: the warning is logged out of it."""
    conf = cfg.ConfigOpts()
    oslo_log.register_options(conf)
    conf([], default_config_files=[], default_config_dirs=[])
    lines = []
    handler = logging.Handler()
    handler.setFormatter(formatters.ContextFormatter(config=conf))
    handler.emit = lambda record: lines.append(handler.format(record))
    logger = logging.getLogger('inflight.outputs.status')
    logger.addHandler(handler)
    try:
        out = status.StatusFile(str(tmp_path / 'not-here' / 'status.json'),
                                2.0, 'prober1', clock=Clock(), start=False)
        out.write()
    finally:
        logger.removeHandler(handler)
    [line] = lines
    assert line.endswith('Cannot write the status file %s/not-here/'
                         'status.json: No such file or directory; set '
                         '[inflight] status_file to a path this user can '
                         'write (empty: no status file)' % tmp_path), line


def test_the_writer_thread_writes_every_interval_and_stopped_at_close(
        tmp_path):
    path = tmp_path / 'status.json'
    out = status.StatusFile(str(path), 0.05, 'prober1')
    seen = set()
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        if path.exists():
            seen.add(json.loads(path.read_text())['written_at'])
    assert len(seen) >= 3
    out.close()
    assert not out._thread.is_alive()
    assert json.loads(path.read_text())['stopped'] is True


def test_no_url_or_password_reaches_the_file(tmp_path):
    """Only what the header names: no option beyond the probing ones."""
    conf = cfg.ConfigOpts()
    for group, group_opts in opts.list_opts():
        conf.register_opts(group_opts,
                           group=None if group == 'DEFAULT' else group)
    conf([], default_config_files=[], default_config_dirs=[])
    conf.set_override('transport_url', 'rabbit://nova:s3cret@mq1:5672/')
    conf.set_override('connection', 'mysql+pymysql://nova:s3cret@db1/nova',
                      'database')
    conf.set_override('status_file', str(tmp_path / 'status.json'),
                      'inflight')
    out = status.StatusFile.from_conf(conf)
    out.close()
    text = (tmp_path / 'status.json').read_text()
    assert 's3cret' not in text and '://' not in text
    assert json.loads(text)['settings']['sleep'] == conf.inflight.sleep


def test_the_demo_writes_no_status_file():
    """The file at the default path is a running daemon's."""
    conf = cfg.ConfigOpts()
    config.register(conf)
    demo.set_defaults(conf)
    conf([], default_config_files=[], default_config_dirs=[])
    assert conf.inflight.status_file == ''
