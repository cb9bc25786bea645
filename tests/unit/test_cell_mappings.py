"""Cells v2: the mappings read, their URLs filled in as Nova does, and the
services of every cell, each cell failing on its own."""

import logging
import threading
import time

from oslo_db import exception as db_exc
import pytest

from inflight.cloud import cells
from inflight.cloud import db
from inflight.cloud import record

CELL1 = '1b5c7a9e-0000-4000-8000-000000000001'
CELL2 = '1b5c7a9e-0000-4000-8000-000000000002'


# --- Filling in templated URLs ------------------------------------------------

@pytest.mark.parametrize('template, default, expected', [
    # Every field of a one-host URL.
    ('{scheme}://{username}:{password}@{hostname}:{port}/{path}_cell1'
     '?{query}#{fragment}',
     'mysql+pymysql://nova:pw@db1.example.org:3307/nova?charset=utf8#x',
     'mysql+pymysql://nova:pw@db1.example.org:3307/nova_cell1'
     '?charset=utf8#x'),
    # A URL naming several hosts: indexed fields, from 1.
    ('rabbit://{username2}:{password1}@{hostname2}:{port1}/cell2',
     'rabbit://alice:pa@mq1:5672,bob:pb@mq2:5673/',
     'rabbit://bob:pa@mq2:5672/cell2'),
    # An IPv6 host comes without its brackets.
    ('rabbit://{username2}@[{hostname2}]:{port2}/',
     'rabbit://alice:pa@mq1:5672,bob:pb@[fd00::7]:5673/',
     'rabbit://bob@[fd00::7]:5673/'),
    # A host without a user: an empty username, no password, no port.
    ('rabbit://{username1}x:{password1}@{hostname1}:{port1}/',
     'rabbit://mq1,bob:pb@mq2:5673/',
     'rabbit://x:None@mq1:None/'),
    # No template: as it is.
    ('rabbit://u:p@mq9:5672/cell9', 'rabbit://a:b@mq1/',
     'rabbit://u:p@mq9:5672/cell9'),
    # This host has no URL of its own to fill in from: as it is.
    ('{scheme}://{hostname}/', None, '{scheme}://{hostname}/'),
    # A field Nova does not know: as it is.
    ('{scheme}://{host}/', 'rabbit://a:b@mq1/', '{scheme}://{host}/'),
])
def test_urls_are_filled_in_as_nova_does(template, default, expected):
    assert cells.fill_in(template, default) == expected


def test_a_bad_default_leaves_the_template_and_says_so(caplog):
    template = '{scheme}://{port}/'
    assert cells.fill_in(template, 'rabbit://mq1:notaport/') == template
    assert 'Could not fill in a cell mapping URL' in caplog.text


# --- Reading the mappings ---------------------------------------------------

@pytest.fixture
def api_engine(tmp_path):
    engine = db.create_engine('sqlite:///%s' % (tmp_path / 'api.db'),
                              read_only=False)
    cells.sync(engine)
    yield engine
    engine.dispose()


def test_every_mapped_cell_is_read_filled_in(api_engine):
    cells.add_cell(api_engine, cells.CELL0_UUID, 'cell0',
                   'mysql+pymysql://{username}:{password}@{hostname}/cell0',
                   cells.NO_TRANSPORT)
    cells.add_cell(api_engine, CELL1, None, 'sqlite:///c1.db',
                   'rabbit://{username}:{password}@{hostname}:{port}/cell1')
    with api_engine.begin() as conn:
        conn.execute(cells.cell_mappings.update()
                     .where(cells.cell_mappings.c.uuid == CELL1)
                     .values(disabled=True))
    read = cells.read_cells(api_engine, 'mysql+pymysql://nova:pw@db1/nova',
                            'rabbit://nova:mq@mq1:5672/')
    assert read == [
        cells.Cell(cells.CELL0_UUID, 'cell0',
                   'mysql+pymysql://nova:pw@db1/cell0', 'none:///'),
        # No name: known by its uuid. Disabled: read all the same.
        cells.Cell(CELL1, CELL1, 'sqlite:///c1.db',
                   'rabbit://nova:mq@mq1:5672/cell1', disabled=True)]
    assert read[0].is_cell0 and not read[1].is_cell0


# --- The services of every cell ---------------------------------------------

def _cell_db(tmp_path, name, *hosts):
    path = tmp_path / ('%s.db' % name)
    engine = db.create_engine('sqlite:///%s' % path, read_only=False)
    db.sync(engine)
    for host in hosts:
        db.register_service(engine, host, 'nova-compute', 'compute')
    engine.dispose()
    return 'sqlite:///%s' % path, path


def _source(api_engine, **kwargs):
    return cells.CellServices(str(api_engine.url), None, 'rabbit://mq1/',
                              **kwargs)


def _keys(services):
    return sorted(s.key for s in services)


def test_services_of_every_cell_carry_their_cell(tmp_path, api_engine):
    url1, _ = _cell_db(tmp_path, 'c1', 'cmp1')
    url2, _ = _cell_db(tmp_path, 'c2', 'cmp1', 'cmp2')
    cells.add_cell(api_engine, CELL1, 'cell1', url1, 'rabbit://mq1/cell1')
    heard = []
    source = _source(api_engine, on_cells=[heard.append])
    try:
        assert _keys(source.enabled()) == [
            record.Key('cell1', 'compute', 'cmp1')]
        # A cell mapped while running is read at the next refresh.
        cells.add_cell(api_engine, CELL2, 'cell2', url2, 'rabbit://mq1/cell2')
        assert _keys(source.enabled()) == [
            record.Key('cell1', 'compute', 'cmp1'),
            record.Key('cell2', 'compute', 'cmp1'),
            record.Key('cell2', 'compute', 'cmp2')]
        assert [[c.name for c in mapped] for mapped in heard] == [
            ['cell1'], ['cell1', 'cell2']]
    finally:
        source.close()


def test_a_failing_cell_keeps_its_services_and_says_so_once(
        tmp_path, api_engine, caplog):
    url1, path1 = _cell_db(tmp_path, 'c1', 'cmp1')
    url2, _ = _cell_db(tmp_path, 'c2', 'cmp2')
    cells.add_cell(api_engine, CELL1, 'cell1', url1, 'rabbit://mq1/cell1')
    cells.add_cell(api_engine, CELL2, 'cell2', url2, 'rabbit://mq1/cell2')
    source = _source(api_engine)
    try:
        first = _keys(source.enabled())
        engine = db.create_engine(url1, read_only=False)
        with engine.begin() as conn:
            conn.exec_driver_sql('ALTER TABLE services RENAME TO gone')
        engine2 = db.create_engine(url2, read_only=False)
        db.register_service(engine2, 'cmp3', 'nova-compute', 'compute')
        caplog.set_level(logging.INFO)
        for _ in range(3):
            during = _keys(source.enabled())
        # cell1 as last read; cell2 read afresh.
        assert during == sorted(first + [record.Key('cell2', 'compute',
                                                    'cmp3')])
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert 'services table of cell cell1' in warnings[0].getMessage()
        with engine.begin() as conn:
            conn.exec_driver_sql('ALTER TABLE gone RENAME TO services')
        engine.dispose()
        engine2.dispose()
        assert _keys(source.enabled()) == during
        assert ('Read the services table of cell cell1 again after 3 failed '
                'tries') in caplog.text
    finally:
        source.close()


def test_a_hanging_cell_holds_up_no_other(api_engine, caplog):
    cells.add_cell(api_engine, CELL1, 'cell1', 'sqlite://', 'rabbit://mq1/1')
    cells.add_cell(api_engine, CELL2, 'cell2', 'sqlite://', 'rabbit://mq1/2')
    hang, release = threading.Event(), threading.Event()

    class Table:
        def __init__(self, connection, include, exclude, cell):
            self.cell = cell

        def enabled(self):
            if self.cell == 'cell1' and hang.is_set():
                release.wait(30)
            return [record.Service.of('compute', 'cmp', cell=self.cell)]

        def close(self):
            pass

    both = [record.Key('cell1', 'compute', 'cmp'),
            record.Key('cell2', 'compute', 'cmp')]
    caplog.set_level(logging.INFO)
    source = _source(api_engine, make_table=Table, timeout=0.05)
    try:
        assert _keys(source.enabled()) == both
        hang.set()
        # cell1 as last read, cell2 afresh; and once said.
        assert _keys(source.enabled()) == both
        assert 'cell cell1, probing the 1 service known' in caplog.text
        # Still hanging: not read twice at once, nor said twice.
        assert _keys(source.enabled()) == both
        assert caplog.text.count('Could not read') == 1
        release.set()
        deadline = time.monotonic() + 30
        while 'cell cell1 again after' not in caplog.text:
            assert _keys(source.enabled()) == both
            assert time.monotonic() < deadline
    finally:
        release.set()
        source.close()


def test_a_cell_still_connecting_at_first_is_not_failed(api_engine, caplog):
    cells.add_cell(api_engine, CELL1, 'cell1', 'sqlite://', 'rabbit://mq1/1')
    release = threading.Event()

    class Table:
        def __init__(self, *args, cell):
            pass

        def enabled(self):
            release.wait(30)
            return []

        def close(self):
            pass

    source = _source(api_engine, make_table=Table, timeout=0.05)
    try:
        assert source.enabled() == []
        assert 'Could not read' not in caplog.text
    finally:
        release.set()
        source.close()


def test_an_api_database_that_fails_raises(tmp_path):
    source = cells.CellServices('sqlite:///%s' % (tmp_path / 'no.db'), None,
                                None)
    try:
        with pytest.raises(db_exc.DBError):
            source.enabled()
    finally:
        source.close()
