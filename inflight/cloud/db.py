"""The services table, with Nova's schema: where the ring's services come from."""

import datetime
import uuid

from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import engines
import sqlalchemy as sa

from inflight.cloud import record

metadata = sa.MetaData()

# Nova 34's `services` table (cell database); deleted is 0 for live rows.
services = sa.Table(
    'services', metadata,
    sa.Column('created_at', sa.DateTime),
    sa.Column('updated_at', sa.DateTime),
    sa.Column('deleted_at', sa.DateTime),
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('host', sa.String(255)),
    sa.Column('binary', sa.String(255)),
    sa.Column('topic', sa.String(255)),
    sa.Column('report_count', sa.Integer, nullable=False, default=0),
    sa.Column('disabled', sa.Boolean, default=False),
    sa.Column('deleted', sa.Integer, default=0),
    sa.Column('disabled_reason', sa.String(255)),
    sa.Column('last_seen_up', sa.DateTime, nullable=True),
    sa.Column('forced_down', sa.Boolean, default=False),
    sa.Column('version', sa.Integer, default=0),
    sa.Column('uuid', sa.String(36), nullable=True),
    sa.UniqueConstraint('host', 'topic', 'deleted',
                        name='uniq_services0host0topic0deleted'),
    sa.UniqueConstraint('host', 'binary', 'deleted',
                        name='uniq_services0host0binary0deleted'),
    sa.Index('services_uuid_idx', 'uuid', unique=True),
    mysql_engine='InnoDB',
    mysql_charset='utf8',
)

# Statements that make a session refuse writes, by SQLAlchemy dialect name.
_READ_ONLY = {
    'sqlite': 'PRAGMA query_only = ON',
    'mysql': 'SET SESSION TRANSACTION READ ONLY',
    'postgresql': 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY',
}


# The drivers inflight installs, for URLs that name a database but no
# driver: SQLAlchemy's own choices (MySQLdb, psycopg 3) are not installed.
# MariaDB is read as MySQL: oslo.db knows the MySQL dialect, not SQLAlchemy's
# MariaDB one.
DRIVERS = {
    'mysql': 'mysql+pymysql',
    'mariadb': 'mysql+pymysql',
    'postgresql': 'postgresql+psycopg2',
}


def url(connection):
    """`connection` as a SQLAlchemy URL; naming no driver, it gets ours."""
    parsed = sa.engine.make_url(connection)
    return parsed.set(drivername=DRIVERS.get(parsed.drivername,
                                             parsed.drivername))


def create_engine(connection, read_only=True):
    """An engine on `connection`; a read-only one refuses every write."""
    # TRADITIONAL: the mode oslo.db (and Nova) set on MySQL's sessions;
    # without one, oslo.db warns of the server's own at each connect.
    engine = engines.create_engine(url(connection), max_retries=1,
                                   retry_interval=0,
                                   mysql_sql_mode='TRADITIONAL')
    statement = _READ_ONLY.get(engine.dialect.name)
    if read_only and statement:
        @sa.event.listens_for(engine, 'connect')
        def _read_only(dbapi_connection, connection_record):
            cursor = dbapi_connection.cursor()
            cursor.execute(statement)
            cursor.close()
            # PostgreSQL: a rollback of the open transaction would undo it.
            dbapi_connection.commit()
        # oslo.db tested a connection already: start the pool afresh.
        engine.dispose()
    return engine


def sync(engine):
    """Create the services table if it is not there (for clouds without Nova)."""
    metadata.create_all(engine, checkfirst=True)


def enabled_services(engine, include_topics=(), exclude_topics=(), cell=''):
    """Enabled RPC services: not disabled, not deleted, with a topic; as
    records of `cell`."""
    t = services.c
    query = (sa.select(t.id, t.host, t.binary, t.topic, t.last_seen_up,
                       t.created_at)
             .where(t.disabled == sa.false(), t.deleted == 0,
                    t.topic.is_not(None), t.host.is_not(None))
             .order_by(t.id))
    if include_topics:
        query = query.where(t.topic.in_(list(include_topics)))
    if exclude_topics:
        query = query.where(t.topic.not_in(list(exclude_topics)))
    with engine.connect() as conn:
        return [record.Service(record.Key(cell, topic, host), id_, binary,
                               last_seen_up, created_at)
                for id_, host, binary, topic, last_seen_up, created_at
                in conn.execute(query)]


def register_service(engine, host, binary, topic, now=None):
    """Insert or refresh this service's live row, as a Nova service does at start."""
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None)
    t = services.c
    live = (t.host == host, t.binary == binary, t.deleted == 0)
    refresh = (services.update().where(*live)
               .values(topic=topic, updated_at=now, last_seen_up=now,
                       report_count=t.report_count + 1))
    with engine.begin() as conn:
        if conn.execute(refresh).rowcount:
            return
        try:
            with conn.begin_nested():
                conn.execute(services.insert().values(
                    host=host, binary=binary, topic=topic, created_at=now,
                    last_seen_up=now, report_count=0, disabled=False,
                    deleted=0, forced_down=False, version=0,
                    uuid=str(uuid.uuid4())))
        except db_exc.DBDuplicateEntry:
            conn.execute(refresh)  # another process inserted it first


def translate_errors(function, *args):
    """function(*args), its database errors raised as oslo.db's."""
    try:
        return function(*args)
    except sa.exc.OperationalError as e:   # oslo.db misses some wordings
        raise db_exc.DBConnectionError(e)
    except sa.exc.DBAPIError as e:
        raise db_exc.DBError(e)


class ServiceTable:
    """The enabled services in one database, connecting when first asked."""

    def __init__(self, connection, include_topics=(), exclude_topics=(),
                 cell=''):
        self.connection = connection
        self.cell = cell
        self.include_topics = include_topics
        self.exclude_topics = exclude_topics
        self._engine = None

    def enabled(self):
        """Enabled services now; raises oslo.db errors when the DB fails."""
        if self._engine is None:
            self._engine = translate_errors(create_engine, self.connection)
        return translate_errors(enabled_services, self._engine,
                                self.include_topics, self.exclude_topics,
                                self.cell)

    def close(self):
        if self._engine is not None:
            self._engine.dispose()
