"""Fixtures for the real servers the tests talk to (see servers.py)."""

import os
import shutil
import tempfile
import uuid
import warnings

import kombu
import pytest

# nova-inflight runs on oslo.service's threading backend; oslo.messaging
# fixes the backend on import, so choose it before any test imports it.
import inflight.cmd  # noqa: F401
import servers
import turns


RABBITMQCTL = servers.Rabbitmqctl()
_vhosts_made = []
_TURNS_FOLDER = pytest.StashKey[str]()
_TURNS = pytest.StashKey[turns.Turns]()


def pytest_configure(config):
    """The run's controller makes the folder of the tests' turns (see
    turns.py); each worker of a parallel run opens it."""
    folder = turns.folder_for_workers(config)
    if folder is not None:
        config.stash[_TURNS] = turns.Turns(folder)
    elif not hasattr(config, 'workerinput'):
        config.stash[_TURNS_FOLDER] = tempfile.mkdtemp(
            prefix='inflight-turns-')


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """(pytest-xdist, on the controller) Hand a worker the turns' folder."""
    node.workerinput['inflight_turns'] = node.config.stash[_TURNS_FOLDER]


def pytest_unconfigure(config):
    if _TURNS in config.stash:
        config.stash[_TURNS].close()
    if _TURNS_FOLDER in config.stash:
        shutil.rmtree(config.stash[_TURNS_FOLDER], ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """In a parallel run, each test in its turn: set-up, test and
    tear-down alone if it is marked `alone`, beside other tests if not."""
    if _TURNS not in item.config.stash:
        return (yield)
    alone = item.get_closest_marker('alone') is not None
    with item.config.stash[_TURNS].turn(alone):
        return (yield)


@pytest.fixture(scope='session', autouse=True)
def _nothing_left_on_the_broker():
    """At the end of the run: no vhost of the run's is left, and nothing
    of the run's (its exchanges are named after it) went to the default
    vhost."""
    yield
    if not _vhosts_made:
        return
    left = RABBITMQCTL.vhosts(servers.VHOST_PREFIX)
    _, exchanges = RABBITMQCTL.contents('/')
    strays = [name for name in exchanges
              if name.startswith(servers.VHOST_PREFIX)]
    for vhost in left:
        RABBITMQCTL.delete_vhost(vhost)
    if strays:
        with kombu.Connection(servers.BROKER_URL.replace(
                'rabbit:', 'amqp:', 1)) as connection:
            for name in strays:
                connection.default_channel.exchange_delete(name)
    assert not left and not strays, (
        'left on RabbitMQ by this run: vhosts %s; exchanges in / %s'
        % (left, strays))


@pytest.fixture(autouse=True)
def _broker_vhost():
    """Deletes the test's vhost, and all its processes declared in it, once
    every other fixture has stopped them (an autouse fixture is set up first,
    so torn down last)."""
    made = []
    yield made
    for vhost in made:
        RABBITMQCTL.delete_vhost(vhost)


@pytest.fixture
def broker_url(_broker_vhost):
    """RabbitMQ, in a vhost of the test's own (on / where rabbitmqctl cannot
    make one, and then what the test declares is left there)."""
    servers.require('RabbitMQ', servers.BROKER,
                    'INFLIGHT_REQUIRE_BROKER')
    if not RABBITMQCTL.usable():
        reason = ('no vhost of its own for the test (%s): what it declares '
                  'is left on /' % RABBITMQCTL.error)
        if os.environ.get('INFLIGHT_REQUIRE_BROKER') == '1':
            pytest.fail('%s, and INFLIGHT_REQUIRE_BROKER=1 requires one'
                        % reason)
        warnings.warn(reason)
        return servers.BROKER_URL
    vhost = servers.VHOST_PREFIX + uuid.uuid4().hex[:12]
    RABBITMQCTL.add_vhost(vhost)
    _broker_vhost.append(vhost)
    _vhosts_made.append(vhost)
    return servers.vhost_url(vhost)


@pytest.fixture
def broker_vhost(broker_url):
    """The test's vhost (its name, and contents() listing what is declared
    in it); skips where there is none."""
    name = broker_url.rpartition('/')[2]
    if not name:
        pytest.skip('no vhost of its own for the test: %s' % RABBITMQCTL.error)
    return servers.Vhost(name, RABBITMQCTL)


@pytest.fixture
def exchange():
    """An exchange of the test's own: nothing else's messages cross it."""
    return servers.VHOST_PREFIX + uuid.uuid4().hex[:12]


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
