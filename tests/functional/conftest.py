"""Fixtures of the functional tests: processes, a services table, real
Nova, and a real graphite."""

import os

import pytest

import graphite
from harness import Processes
from inflight.cloud import db
import real_nova
import servers


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def services_db(sqlite_url):
    engine = db.create_engine(sqlite_url, read_only=False)
    db.sync(engine)
    yield sqlite_url, engine
    engine.dispose()


@pytest.fixture(scope='session')
def nova_venv(tmp_path_factory):
    """A virtualenv with real Nova and this checkout (see real_nova.py)."""
    try:
        base = real_nova.base_venv()
    except real_nova.Unavailable as e:
        servers.unavailable(str(e), 'INFLIGHT_REQUIRE_NOVA')
    return real_nova.session_venv(base,
                                  tmp_path_factory.mktemp('nova') / 'venv')


@pytest.fixture(scope='session')
def nova_databases(nova_venv, tmp_path_factory):
    """Nova's databases, made once for the clouds to copy (the cell's on
    MariaDB, dropped at the end)."""
    cell_url, drop = servers.scratch_database('mariadb')
    try:
        yield real_nova.database_template(
            nova_venv, tmp_path_factory.mktemp('nova-databases'), cell_url)
    finally:
        drop()


@pytest.fixture
def nova_cloud(nova_venv, nova_databases, tmp_path):
    """Starts a NovaCloud(mode, extra_conf); stops it at the test's end."""
    servers.require('RabbitMQ', servers.BROKER, 'INFLIGHT_REQUIRE_BROKER',
                    'INFLIGHT_REQUIRE_NOVA')
    clouds = []

    def start(mode, extra_conf=''):
        path = tmp_path / ('nova-%d-%s' % (len(clouds) + 1, mode))
        path.mkdir()
        cloud = real_nova.NovaCloud(nova_venv, nova_databases, path, mode,
                                    extra_conf)
        clouds.append(cloud)
        try:
            cloud.start()
        except real_nova.Unavailable as e:
            servers.unavailable(str(e), 'INFLIGHT_REQUIRE_NOVA')
        return cloud
    yield start
    for cloud in clouds:
        cloud.stop()


@pytest.fixture(scope='session')
def graphite_install():
    """statsd, carbon-cache and graphite-web, installed once (graphite.py).

    Skipped without node and npm or the registries, unless
    INFLIGHT_REQUIRE_GRAPHITE=1 or CI=true: then it fails."""
    try:
        return graphite.install()
    except graphite.Unavailable as e:
        if os.environ.get('CI') == 'true':
            pytest.fail('%s, and CI=true requires it' % e)
        servers.unavailable(str(e), 'INFLIGHT_REQUIRE_GRAPHITE')
