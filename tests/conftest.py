"""Fixtures for the real servers the tests talk to (see servers.py)."""

import uuid

import pytest

# nova-inflight runs on oslo.service's threading backend; oslo.messaging
# fixes the backend on import, so choose it before any test imports it.
import inflight.cmd  # noqa: F401
import servers


@pytest.fixture
def broker_url():
    servers.require('RabbitMQ', servers.BROKER,
                    'INFLIGHT_REQUIRE_BROKER')
    return servers.BROKER_URL


@pytest.fixture
def exchange():
    """An exchange of the test's own: nothing else's messages cross it."""
    return 'inflight-test-%s' % uuid.uuid4().hex[:12]


@pytest.fixture
def statsd():
    sink = servers.StatsdSink()
    yield sink
    sink.sock.close()


@pytest.fixture(params=['sqlite', 'mariadb', 'postgresql'])
def db_url(request, tmp_path):
    """An empty database of the test's own, on each backend in turn."""
    if request.param == 'sqlite':
        yield 'sqlite:///%s' % (tmp_path / 'nova.sqlite')
        return
    url, drop = servers.scratch_database(request.param)
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def sqlite_url(tmp_path):
    return 'sqlite:///%s' % (tmp_path / 'nova.sqlite')
