"""inflight.cloud.db against real SQLite, MariaDB and PostgreSQL databases."""

import datetime
import subprocess
import sys
import time
import uuid

from oslo_db import exception as db_exc
import pytest
import sqlalchemy as sa

from inflight.cloud import db
from inflight.cloud import record
import servers

# Nova 34's services columns, in the order Nova creates them.
NOVA_COLUMNS = [
    'created_at', 'updated_at', 'deleted_at', 'id', 'host', 'binary',
    'topic', 'report_count', 'disabled', 'deleted', 'disabled_reason',
    'last_seen_up', 'forced_down', 'version', 'uuid',
]

# Whole seconds: MySQL's DATETIME keeps no fractions.
T0 = datetime.datetime(2025, 3, 4, 5, 6, 7)

# What a write through a read-only engine may raise.
WRITE_ERRORS = (db_exc.DBError, sa.exc.DBAPIError)

# Nova's services table as its migrations leave it, one per dialect.
NOVA_DDL = {
    'mysql': ["""
        CREATE TABLE services (
            created_at DATETIME NULL,
            updated_at DATETIME NULL,
            deleted_at DATETIME NULL,
            id INT(11) NOT NULL AUTO_INCREMENT,
            host VARCHAR(255) NULL,
            `binary` VARCHAR(255) NULL,
            topic VARCHAR(255) NULL,
            report_count INT(11) NOT NULL,
            disabled TINYINT(1) NULL,
            deleted INT(11) NULL,
            disabled_reason VARCHAR(255) NULL,
            last_seen_up DATETIME NULL,
            forced_down TINYINT(1) NULL,
            version INT(11) NULL,
            uuid VARCHAR(36) NULL,
            PRIMARY KEY (id),
            UNIQUE KEY uniq_services0host0topic0deleted (host, topic, deleted),
            UNIQUE KEY uniq_services0host0binary0deleted
                (host, `binary`, deleted),
            UNIQUE KEY services_uuid_idx (uuid)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8
    """],
    'postgresql': ["""
        CREATE TABLE services (
            created_at TIMESTAMP WITHOUT TIME ZONE,
            updated_at TIMESTAMP WITHOUT TIME ZONE,
            deleted_at TIMESTAMP WITHOUT TIME ZONE,
            id SERIAL NOT NULL,
            host VARCHAR(255),
            "binary" VARCHAR(255),
            topic VARCHAR(255),
            report_count INTEGER NOT NULL,
            disabled BOOLEAN,
            deleted INTEGER,
            disabled_reason VARCHAR(255),
            last_seen_up TIMESTAMP WITHOUT TIME ZONE,
            forced_down BOOLEAN,
            version INTEGER,
            uuid VARCHAR(36),
            CONSTRAINT services_pkey PRIMARY KEY (id),
            CONSTRAINT uniq_services0host0topic0deleted
                UNIQUE (host, topic, deleted),
            CONSTRAINT uniq_services0host0binary0deleted
                UNIQUE (host, "binary", deleted)
        )
    """, 'CREATE UNIQUE INDEX services_uuid_idx ON services (uuid)'],
    'sqlite': ["""
        CREATE TABLE services (
            created_at DATETIME,
            updated_at DATETIME,
            deleted_at DATETIME,
            id INTEGER NOT NULL,
            host VARCHAR(255),
            "binary" VARCHAR(255),
            topic VARCHAR(255),
            report_count INTEGER NOT NULL,
            disabled BOOLEAN,
            deleted INTEGER,
            disabled_reason VARCHAR(255),
            last_seen_up DATETIME,
            forced_down BOOLEAN,
            version INTEGER,
            uuid VARCHAR(36),
            PRIMARY KEY (id),
            CONSTRAINT uniq_services0host0topic0deleted
                UNIQUE (host, topic, deleted),
            CONSTRAINT uniq_services0host0binary0deleted
                UNIQUE (host, "binary", deleted),
            CHECK (disabled IN (0, 1)),
            CHECK (forced_down IN (0, 1))
        )
    """, 'CREATE UNIQUE INDEX services_uuid_idx ON services (uuid)'],
}


@pytest.fixture
def engine(db_url):
    """A writable engine on the test's own empty database."""
    engine = db.create_engine(db_url, read_only=False)
    yield engine
    engine.dispose()


@pytest.fixture
def synced(engine):
    """A writable engine whose database has the services table."""
    db.sync(engine)
    return engine


@pytest.fixture
def read_only(db_url, synced):
    """A read-only engine on the same database (made after the table)."""
    engine = db.create_engine(db_url)
    yield engine
    engine.dispose()


def insert(engine, soft_deleted=False, **values):
    """Insert one services row with Core; soft-deleted rows get deleted=id."""
    row = dict(created_at=T0, report_count=0, disabled=False, deleted=0,
               forced_down=False, version=0, uuid=str(uuid.uuid4()))
    row.update(values)
    with engine.begin() as conn:
        id_ = conn.execute(db.services.insert().values(**row)
                           ).inserted_primary_key[0]
        if soft_deleted:
            conn.execute(db.services.update()
                         .where(db.services.c.id == id_)
                         .values(deleted=id_, deleted_at=T0))
    return id_


def rows(engine):
    """Every services row, by id."""
    with engine.connect() as conn:
        return conn.execute(sa.select(db.services)
                            .order_by(db.services.c.id)).all()


def count(engine):
    """How many services rows there are, deleted or not."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count())
                            .select_from(db.services)).scalar_one()


def add_nova_rows(engine):
    """Rows as a Nova cell has them; return the ids of the enabled RPC ones."""
    insert(engine, id=50, host='c1', binary='nova-compute', topic='compute',
           last_seen_up=T0)
    insert(engine, id=10, host='ctl', binary='nova-scheduler',
           topic='scheduler', last_seen_up=T0 + datetime.timedelta(seconds=1))
    insert(engine, id=30, host='ctl', binary='nova-conductor',
           topic='conductor', created_at=None, last_seen_up=None)
    insert(engine, id=20, host='ctl', binary='nova-osapi_compute', topic=None)
    insert(engine, id=40, host='ctl', binary='nova-metadata', topic=None)
    insert(engine, id=60, host='c2', binary='nova-compute', topic='compute',
           disabled=True, disabled_reason='maintenance')
    insert(engine, id=70, host='c3', binary='nova-compute', topic='compute',
           soft_deleted=True)
    insert(engine, id=80, host=None, binary='nova-compute', topic='compute')
    return [10, 30, 50]


# 1. sync


def test_sync_creates_nova_columns(engine):
    """sync makes a services table with exactly Nova 34's columns."""
    db.sync(engine)
    columns = [c['name'] for c in sa.inspect(engine).get_columns('services')]
    assert columns == NOVA_COLUMNS


def test_sync_twice_is_harmless(synced):
    """A second sync keeps the table and its rows as they were."""
    id_ = insert(synced, host='c1', binary='nova-compute', topic='compute')
    db.sync(synced)
    columns = [c['name'] for c in sa.inspect(synced).get_columns('services')]
    assert columns == NOVA_COLUMNS
    assert [r.id for r in rows(synced)] == [id_]


# 2. enabled_services


def test_enabled_services_filters_and_orders(synced):
    """Only live, enabled rows with a host and a topic come back, by id."""
    add_nova_rows(synced)
    services = db.enabled_services(synced)
    assert services == [
        record.Service.of('scheduler', 'ctl', id=10, binary='nova-scheduler',
                          last_seen_up=T0 + datetime.timedelta(seconds=1),
                          created_at=T0),
        record.Service.of('conductor', 'ctl', id=30, binary='nova-conductor'),
        record.Service.of('compute', 'c1', id=50, binary='nova-compute',
                          last_seen_up=T0, created_at=T0),
    ]
    assert all(type(s) is record.Service for s in services)
    assert services[2].host == 'c1' and services[2].binary == 'nova-compute'
    assert services[2].last_seen_up == T0 and services[2].created_at == T0


def test_enabled_services_empty_table(synced):
    """An empty table gives an empty list."""
    assert db.enabled_services(synced) == []


# (include_topics, exclude_topics, ids expected from add_nova_rows' rows)
TOPIC_FILTERS = [
    (['compute'], [], [50]),
    (('compute', 'conductor'), (), [30, 50]),
    ([], ['compute'], [10, 30]),
    ([], ['compute', 'scheduler'], [30]),
    (['compute', 'scheduler'], ['scheduler'], [50]),
    (['nothing'], [], []),
    ([], ['nothing'], [10, 30, 50]),
]


def test_enabled_services_topic_filters(synced):
    """include_topics and exclude_topics narrow the enabled services."""
    add_nova_rows(synced)
    got = [(include, exclude, [s.id for s in db.enabled_services(
        synced, include, exclude)]) for include, exclude, _ in TOPIC_FILTERS]
    assert got == TOPIC_FILTERS


def test_enabled_services_include_never_revives(synced):
    """Including a topic does not bring back disabled or deleted rows."""
    insert(synced, host='c2', binary='nova-compute', topic='compute',
           disabled=True)
    insert(synced, host='c3', binary='nova-compute', topic='compute',
           soft_deleted=True)
    assert db.enabled_services(synced, include_topics=['compute']) == []


# 3. register_service


def test_register_service_inserts_live_row(synced):
    """A first registration inserts one live, enabled row."""
    db.register_service(synced, 'probe1', 'nova-inflight', 'inflight',
                        now=T0)
    [row] = rows(synced)
    assert (row.host, row.binary, row.topic) == (
        'probe1', 'nova-inflight', 'inflight')
    assert row.deleted == 0
    assert row.disabled is False
    assert row.forced_down is False
    assert row.report_count == 0
    assert row.version == 0
    assert row.created_at == T0 and row.last_seen_up == T0
    assert row.deleted_at is None
    assert str(uuid.UUID(row.uuid)) == row.uuid
    assert db.enabled_services(synced) == [
        record.Service.of('inflight', 'probe1', id=row.id,
                          binary='nova-inflight', last_seen_up=T0,
                          created_at=T0)]


def test_register_service_default_now(synced):
    """Without now=, the row is stamped with the current UTC time."""
    before = datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None, microsecond=0)
    db.register_service(synced, 'probe1', 'nova-inflight', 'inflight')
    after = datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None) + datetime.timedelta(seconds=1)
    [row] = rows(synced)
    assert before <= row.created_at <= after
    assert row.last_seen_up == row.created_at


def test_register_service_again_refreshes(synced):
    """Registering the same host and binary again updates that one row."""
    db.register_service(synced, 'probe1', 'nova-inflight', 'inflight',
                        now=T0)
    [first] = rows(synced)
    later = T0 + datetime.timedelta(minutes=5)
    db.register_service(synced, 'probe1', 'nova-inflight', 'inflight',
                        now=later)
    [row] = rows(synced)
    assert (row.id, row.uuid, row.created_at) == (
        first.id, first.uuid, T0)
    assert row.report_count == 1
    assert row.last_seen_up == later and row.updated_at == later
    assert row.deleted == 0 and row.disabled is False
    db.register_service(synced, 'probe1', 'nova-inflight', 'inflight',
                        now=later + datetime.timedelta(minutes=5))
    [row] = rows(synced)
    assert row.report_count == 2
    assert row.last_seen_up == later + datetime.timedelta(minutes=5)


def test_register_service_other_hosts_are_separate(synced):
    """Each host gets a row of its own; others' rows are left alone."""
    compute = insert(synced, host='c1', binary='nova-compute',
                     topic='compute', last_seen_up=T0)
    db.register_service(synced, 'probe1', 'nova-inflight', 'inflight',
                        now=T0)
    db.register_service(synced, 'probe2', 'nova-inflight', 'inflight',
                        now=T0)
    db.register_service(synced, 'probe1', 'nova-inflight', 'inflight',
                        now=T0 + datetime.timedelta(seconds=1))
    by_host = {r.host: r for r in rows(synced)}
    assert sorted(by_host) == ['c1', 'probe1', 'probe2']
    assert by_host['c1'].id == compute and by_host['c1'].report_count == 0
    assert by_host['c1'].last_seen_up == T0
    assert by_host['probe1'].report_count == 1
    assert by_host['probe2'].report_count == 0
    assert by_host['probe1'].uuid != by_host['probe2'].uuid


def test_register_service_beside_soft_deleted(synced):
    """A soft-deleted row of the same host and binary is not revived."""
    old = insert(synced, host='probe1', binary='nova-inflight',
                 topic='inflight', report_count=7, soft_deleted=True)
    db.register_service(synced, 'probe1', 'nova-inflight', 'inflight',
                        now=T0)
    old_row, new_row = rows(synced)
    assert old_row.id == old and old_row.deleted == old
    assert old_row.report_count == 7 and old_row.last_seen_up is None
    assert new_row.id != old and new_row.deleted == 0
    assert new_row.report_count == 0 and new_row.last_seen_up == T0
    assert new_row.uuid != old_row.uuid
    db.register_service(synced, 'probe1', 'nova-inflight', 'inflight',
                        now=T0 + datetime.timedelta(seconds=1))
    old_row, new_row = rows(synced)
    assert old_row.report_count == 7 and old_row.deleted == old
    assert new_row.report_count == 1
    assert [s.id for s in db.enabled_services(synced)] == [new_row.id]


# 4. read-only engines


def test_read_only_engine_reads(synced, read_only):
    """A read-only engine lists the enabled services."""
    expected = add_nova_rows(synced)
    for _ in range(3):
        assert [s.id for s in db.enabled_services(read_only)] == expected


def test_read_only_engine_refuses_insert(synced, read_only):
    """INSERT through a read-only engine fails, even on a reused connection."""
    insert(synced, host='c1', binary='nova-compute', topic='compute')
    db.enabled_services(read_only)  # the pooled connection is used once
    for _ in range(2):
        with pytest.raises(WRITE_ERRORS):
            with read_only.begin() as conn:
                conn.execute(db.services.insert().values(
                    host='evil', binary='nova-evil', topic='evil',
                    report_count=0, deleted=0))
    assert count(synced) == 1


def test_read_only_engine_refuses_update(synced, read_only):
    """UPDATE through a read-only engine fails and changes nothing."""
    id_ = insert(synced, host='c1', binary='nova-compute', topic='compute')
    db.enabled_services(read_only)
    for _ in range(2):
        with pytest.raises(WRITE_ERRORS):
            with read_only.begin() as conn:
                conn.execute(db.services.update().values(disabled=True))
    [row] = rows(synced)
    assert row.id == id_ and row.disabled is False
    assert [s.id for s in db.enabled_services(read_only)] == [id_]


def test_read_only_engine_refuses_register(synced, read_only):
    """register_service through a read-only engine fails and adds nothing."""
    insert(synced, host='c1', binary='nova-compute', topic='compute')
    db.enabled_services(read_only)
    with pytest.raises(WRITE_ERRORS):
        db.register_service(read_only, 'probe1', 'nova-inflight', 'inflight')
    with pytest.raises(WRITE_ERRORS):
        db.register_service(read_only, 'c1', 'nova-compute', 'compute')
    [row] = rows(synced)
    assert row.host == 'c1' and row.report_count == 0


def test_read_only_engine_first_statement(synced, read_only):
    """A write as the read-only engine's very first statement fails too."""
    with pytest.raises(WRITE_ERRORS):
        with read_only.begin() as conn:
            conn.execute(db.services.insert().values(
                host='evil', binary='nova-evil', topic='evil',
                report_count=0, deleted=0))
    assert count(synced) == 0


# 5. a table made by Nova's own DDL


@pytest.fixture
def nova_engine(engine):
    """A writable engine whose services table Nova's DDL made."""
    dialect = engine.dialect.name
    true, false = ('true', 'false') if dialect == 'postgresql' else ('1', '0')
    with engine.begin() as conn:
        for statement in NOVA_DDL[dialect]:
            conn.exec_driver_sql(statement)
        # Rows as Nova writes them, literal values in the column types.
        conn.execute(sa.text(
            "INSERT INTO services (created_at, host, %(b)s, topic, "
            "report_count, disabled, deleted, last_seen_up, forced_down, "
            "version, uuid) VALUES "
            "('2025-03-04 05:06:07', 'c1', 'nova-compute', 'compute', 4, "
            "%(f)s, 0, '2025-03-04 05:06:07', %(f)s, 66, 'u1'), "
            "('2025-03-04 05:06:07', 'c2', 'nova-compute', 'compute', 4, "
            "%(t)s, 0, NULL, %(f)s, 66, 'u2'), "
            "('2025-03-04 05:06:07', 'ctl', 'nova-osapi_compute', NULL, 4, "
            "%(f)s, 0, NULL, %(f)s, 66, 'u3'), "
            "('2025-03-04 05:06:07', 'ctl', 'nova-scheduler', 'scheduler', "
            "4, %(f)s, 0, NULL, %(f)s, 66, 'u4'), "
            "('2025-03-04 05:06:07', 'c3', 'nova-compute', 'compute', 4, "
            "%(f)s, 0, NULL, %(f)s, 66, 'u5')"
            % {'b': engine.dialect.identifier_preparer.quote('binary'),
               't': true, 'f': false}))
        conn.execute(sa.text(
            "UPDATE services SET deleted = id, deleted_at = created_at "
            "WHERE host = 'c3'"))
    return engine


def test_nova_ddl_enabled_services(nova_engine):
    """enabled_services reads a table Nova's DDL made, with Nova's values."""
    services = db.enabled_services(nova_engine)
    assert [(s.host, s.binary, s.topic) for s in services] == [
        ('c1', 'nova-compute', 'compute'),
        ('ctl', 'nova-scheduler', 'scheduler')]
    assert services[0].last_seen_up == T0 and services[0].created_at == T0
    assert services[0].id < services[1].id
    assert [s.host for s in db.enabled_services(
        nova_engine, exclude_topics=['scheduler'])] == ['c1']


def test_nova_ddl_register_service(nova_engine):
    """register_service inserts into and refreshes a table Nova's DDL made."""
    db.sync(nova_engine)  # the table exists: sync leaves it alone
    db.register_service(nova_engine, 'probe1', 'nova-inflight', 'inflight',
                        now=T0)
    db.register_service(nova_engine, 'c3', 'nova-compute', 'compute',
                        now=T0)
    later = T0 + datetime.timedelta(seconds=30)
    db.register_service(nova_engine, 'probe1', 'nova-inflight', 'inflight',
                        now=later)
    db.register_service(nova_engine, 'c1', 'nova-compute', 'compute',
                        now=later)
    with nova_engine.connect() as conn:
        raw = conn.execute(sa.text(
            "SELECT host, disabled, deleted, report_count, last_seen_up "
            "FROM services WHERE deleted = 0 ORDER BY id"
        ).columns(last_seen_up=sa.DateTime)).all()
        assert conn.execute(sa.text(
            "SELECT count(*) FROM services")).scalar_one() == 7
    assert [(r.host, int(r.disabled), r.deleted, r.report_count)
            for r in raw] == [
        ('c1', 0, 0, 5), ('c2', 1, 0, 4), ('ctl', 0, 0, 4),
        ('ctl', 0, 0, 4), ('probe1', 0, 0, 1), ('c3', 0, 0, 0)]
    assert raw[4].last_seen_up == later and raw[5].last_seen_up == T0
    assert [s.host for s in db.enabled_services(nova_engine)] == [
        'c1', 'ctl', 'probe1', 'c3']


# 6. ServiceTable


def test_service_table_enabled_and_close(db_url, synced):
    """ServiceTable lists enabled services and close() disposes its pool."""
    add_nova_rows(synced)
    table = db.ServiceTable(db_url, include_topics=['compute', 'conductor'],
                            exclude_topics=['conductor'])
    try:
        assert [s.id for s in table.enabled()] == [50]
        assert [s.id for s in table.enabled()] == [50]
        pool = table._engine.pool
        # oslo.db gives SQLite files a NullPool, which keeps nothing open.
        pooled = isinstance(pool, sa.pool.QueuePool)
        if pooled:
            assert pool.checkedin() == 1
    finally:
        table.close()
    if pooled:
        assert pool.checkedin() == 0 and pool.checkedout() == 0


def test_service_table_close_unused(db_url):
    """close() before any query connects to nothing."""
    table = db.ServiceTable(db_url)
    table.close()
    assert table._engine is None


@pytest.mark.parametrize('url', [
    'mysql+pymysql://root:@127.0.0.1:1/x',
    'postgresql+psycopg2://postgres@127.0.0.1:1/x',
])
def test_service_table_unreachable(url):
    """An unreachable server raises an oslo.db error at once, not a hang."""
    table = db.ServiceTable(url)
    try:
        for _ in range(2):
            start = time.monotonic()
            with pytest.raises(db_exc.DBError):
                table.enabled()
            assert time.monotonic() - start < 5
    finally:
        table.close()


def test_service_table_without_table(db_url):
    """A database without a services table raises, not lists nothing."""
    table = db.ServiceTable(db_url)
    try:
        # oslo.db passes MySQL's 1146 through as SQLAlchemy's own error.
        with pytest.raises((db_exc.DBError, sa.exc.DBAPIError)):
            table.enabled()
    finally:
        table.close()


# 7. URLs that name no driver, as operators write them


@pytest.mark.parametrize('kind, dialect', [
    ('mariadb', 'mysql'), ('mariadb', 'mariadb'), ('postgresql', 'postgresql'),
])
def test_urls_without_a_driver(tmp_path, kind, dialect):
    """`inflight db sync` and the daemon's reads work on mysql://,
    mariadb:// and postgresql:// URLs; their engines are read-only too."""
    url, drop = servers.scratch_database(kind)
    bare = dialect + url[url.index('://'):]
    conf = tmp_path / 'inflight.conf'
    conf.write_text('[database]\nconnection = %s\n' % bare)
    try:
        run = subprocess.run(
            [sys.executable, '-m', 'inflight.cmd.manage', '--config-file',
             str(conf), 'db', 'sync'],
            capture_output=True, text=True, timeout=60)
        assert (run.returncode, run.stdout) == (0, 'services table ready\n'), \
            run.stderr
        writer = db.create_engine(bare, read_only=False)
        reader = db.create_engine(bare)
        table = db.ServiceTable(bare)
        try:
            id_ = insert(writer, host='c1', binary='nova-compute',
                         topic='compute')
            assert [s.id for s in table.enabled()] == [id_]
            with pytest.raises(WRITE_ERRORS):
                db.register_service(reader, 'probe1', 'nova-inflight',
                                    'inflight')
            assert count(writer) == 1
        finally:
            table.close()
            reader.dispose()
            writer.dispose()
    finally:
        drop()


def test_mariadb_sessions_take_a_strict_mode_and_say_nothing_of_it(caplog):
    """oslo.db warns of a server's mode short of TRADITIONAL at each first
    connect: inflight sets TRADITIONAL on its sessions, as Nova does."""
    url, drop = servers.scratch_database('mariadb')
    try:
        for read_only in (False, True):
            engine = db.create_engine(url, read_only=read_only)
            with engine.connect() as conn:
                mode = conn.execute(sa.text('SELECT @@SESSION.sql_mode')
                                    ).scalar()
            engine.dispose()
            assert 'STRICT_ALL_TABLES' in mode.split(','), mode
    finally:
        drop()
    assert 'SQL mode' not in caplog.text, caplog.text
