"""Nova's cells v2: the cells the API database maps, and the services of all.

The API database's `cell_mappings` names each cell's database and broker,
maybe as templates filled in from this host's own `[database] connection`
and `[DEFAULT] transport_url`, as Nova fills them in. Every cell is read,
disabled ones too: a disabled cell takes no new instances, but its services
run, and Nova's service list shows them. cell0 holds no computes, but
control services may have registered in it; its `none:///` broker means
their queues are on the top-level transport.
"""

from concurrent import futures
import logging
import threading
import time
from urllib import parse

from oslo_utils import netutils
import sqlalchemy as sa

from inflight.cloud import db
from inflight import logs

LOG = logging.getLogger(__name__)

CELL0_UUID = '00000000-0000-0000-0000-000000000000'

# The transport_url of a cell without a broker of its own (cell0).
NO_TRANSPORT = 'none:///'

# Seconds a cell's services table may take to answer one read, at most
# (Nova waits 60 s for each cell); the read of the others goes on meanwhile.
CELL_TIMEOUT = 60.0

metadata = sa.MetaData()

# Nova 34's `cell_mappings` table (API database).
cell_mappings = sa.Table(
    'cell_mappings', metadata,
    sa.Column('created_at', sa.DateTime),
    sa.Column('updated_at', sa.DateTime),
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('uuid', sa.String(36), nullable=False),
    sa.Column('name', sa.String(255)),
    sa.Column('transport_url', sa.Text),
    sa.Column('database_connection', sa.Text),
    sa.Column('disabled', sa.Boolean, default=False),
    sa.UniqueConstraint('uuid', name='uniq_cell_mappings0uuid'),
    sa.Index('uuid_idx', 'uuid'),
    mysql_engine='InnoDB',
    mysql_charset='utf8',
)


class Cell:
    """One mapped cell, its URLs filled in."""

    def __init__(self, uuid, name, database_connection, transport_url,
                 disabled=False):
        self.uuid = uuid
        self.name = name or uuid     # the name services are known by
        self.database_connection = database_connection
        self.transport_url = transport_url
        self.disabled = bool(disabled)

    def __repr__(self):
        return 'Cell(%r)' % self.name

    def __eq__(self, other):
        return isinstance(other, Cell) and vars(self) == vars(other)

    @property
    def is_cell0(self):
        return self.uuid == CELL0_UUID


def _netloc_fields(netloc):
    """username, password, hostname, port of one `user:pass@host:port`."""
    userpass, _, hostport = netloc.partition('@') if '@' in netloc else (
        '', '', netloc)
    hostname, port = netutils.parse_host_port(hostport)
    username, password = (userpass.split(':', 1) if ':' in userpass
                          else (userpass, None))
    return {'username': username, 'password': password,
            'hostname': hostname, 'port': port}


def fill_in(template, default):
    """`template` with its `{field}`s taken from the `default` URL, as Nova
    fills in a cell mapping's URLs: username, password, hostname, port,
    scheme, path, query, fragment; and username1, hostname1, ... for each
    host of a URL listing several. The template as it is when there is no
    default or a field is not known."""
    if not default or template is None:
        return template
    try:
        parsed = parse.urlparse(default)
        fields = {'username': parsed.username, 'password': parsed.password,
                  'hostname': parsed.hostname, 'port': parsed.port,
                  'scheme': parsed.scheme, 'query': parsed.query,
                  'fragment': parsed.fragment,
                  'path': parsed.path.lstrip('/')}
        if ',' in parsed.netloc:
            for index, netloc in enumerate(parsed.netloc.split(','), 1):
                for field, value in _netloc_fields(netloc).items():
                    fields['%s%d' % (field, index)] = value
        return template.format(**fields)
    except (ValueError, KeyError, IndexError, AttributeError) as e:
        error = e
    # Logged out of the except clause: oslo.log would repeat the error.
    LOG.warning('Could not fill in a cell mapping URL from this host\'s '
                'own: %s', error)
    return template


def read_cells(engine, database_connection, transport_url):
    """The cells mapped in the API database, by id, their URLs filled in."""
    t = cell_mappings.c
    query = sa.select(t.uuid, t.name, t.database_connection,
                      t.transport_url, t.disabled).order_by(t.id)
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    return [Cell(uuid, name, fill_in(database, database_connection),
                 fill_in(transport, transport_url), disabled)
            for uuid, name, database, transport, disabled in rows]


def sync(engine):
    """Create the cell_mappings table if it is not there (tests, demos)."""
    metadata.create_all(engine, checkfirst=True)


def add_cell(engine, uuid, name, database_connection, transport_url):
    """Map one cell, as `nova-manage cell_v2 create_cell` does."""
    with engine.begin() as conn:
        conn.execute(cell_mappings.insert().values(
            uuid=uuid, name=name, database_connection=database_connection,
            transport_url=transport_url, disabled=False))


class _CellRead:
    """One cell's services table, and how its reads go."""

    def __init__(self, cell, table):
        self.cell = cell
        self.table = table
        self.services = []      # from its last read that answered
        self.failures = 0       # reads in a row that failed
        self.reading = None     # the future of a read under way
        self.answered = False   # whether a read ever answered
        self.since = None       # when the read under way began (monotonic)


class CellServices:
    """The enabled services of every mapped cell, each keyed by its cell.

    `enabled()` reads the mappings again (cells are added while the daemon
    runs), then every cell's services table at once. It raises when the API
    database fails; a cell whose own database fails or takes longer than
    `timeout` keeps its services from its last read, and its outage is
    logged once, and its return; a cell's first read (connecting) may take
    up to CELL_TIMEOUT before it counts as failed. `on_cells(cells)` hears
    every mapping read.
    """

    def __init__(self, api_connection, database_connection, transport_url,
                 include_topics=(), exclude_topics=(), timeout=CELL_TIMEOUT,
                 on_cells=(), max_workers=8, make_table=db.ServiceTable):
        self.api_connection = api_connection
        self.database_connection = database_connection
        self.transport_url = transport_url
        self.include_topics = include_topics
        self.exclude_topics = exclude_topics
        self.timeout = timeout
        self._on_cells = list(on_cells)
        self._make_table = make_table
        self._engine = None
        self._reads = {}        # cell uuid -> _CellRead
        self._lock = threading.Lock()
        self._pool = futures.ThreadPoolExecutor(
            max_workers, thread_name_prefix='inflight-cell-read')

    def cells(self):
        """The cells mapped now; raises oslo.db errors when the API DB fails."""
        if self._engine is None:
            self._engine = db.translate_errors(db.create_engine,
                                               self.api_connection)
        return db.translate_errors(read_cells, self._engine,
                                   self.database_connection,
                                   self.transport_url)

    def enabled(self):
        """Enabled services of every cell now (or as last read)."""
        cells = self.cells()
        for on_cells in self._on_cells:
            on_cells(cells)
        with self._lock:
            reads = [self._read_of(cell) for cell in cells]
            self._drop_unmapped({cell.uuid for cell in cells})
        for read in reads:
            if read.reading is None:
                read.reading = self._pool.submit(read.table.enabled)
                read.since = time.monotonic()
        futures.wait([read.reading for read in reads], self.timeout)
        services = []
        for read in reads:
            self._settle(read)
            services += read.services
        return services

    def _read_of(self, cell):
        """The cell's read; a new one when its database or name changed."""
        read = self._reads.get(cell.uuid)
        if read is None or (read.cell.database_connection,
                            read.cell.name) != (cell.database_connection,
                                                cell.name):
            if read is not None:
                read.table.close()
            read = self._reads[cell.uuid] = _CellRead(cell, self._make_table(
                cell.database_connection, self.include_topics,
                self.exclude_topics, cell=cell.name))
        read.cell = cell
        return read

    def _drop_unmapped(self, mapped):
        for uuid in set(self._reads) - mapped:
            self._reads.pop(uuid).table.close()

    def _settle(self, read):
        """Take the cell's read if it ended; note its outage or return."""
        future = read.reading
        if future.done():
            read.reading = None
            error = future.exception()
        elif read.answered or time.monotonic() - read.since > CELL_TIMEOUT:
            error = 'no answer in %.1fs' % (time.monotonic() - read.since)
        else:
            return                # connecting still: not failed yet
        if error is None:
            read.services = future.result()
            read.answered = True
            if read.failures:
                LOG.info('Read the services table of cell %s again after %s',
                         read.cell.name, logs.plural(
                             read.failures, 'failed try', 'failed tries'))
            read.failures = 0
            return
        if not read.failures:
            LOG.warning('Could not read the services table of cell %s, '
                        'probing the %s known until it answers: %s',
                        read.cell.name,
                        logs.plural(len(read.services), 'service'),
                        logs.reason(error))
        read.failures += 1

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for read in self._reads.values():
                read.table.close()
        if self._engine is not None:
            self._engine.dispose()
