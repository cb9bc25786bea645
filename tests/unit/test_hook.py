"""The hook: a service's configuration, not its code, switches the endpoint
on in every RPC server the process makes."""

import logging

from oslo_config import cfg
import oslo_messaging
import pytest

from inflight import hook
from inflight import mixin


@pytest.fixture
def conf(monkeypatch):
    """A service's configuration; oslo.messaging as it was, afterwards."""
    monkeypatch.setattr(oslo_messaging, 'get_rpc_server',
                        oslo_messaging.get_rpc_server)
    conf = cfg.ConfigOpts()
    conf([])
    conf.register_opts([cfg.StrOpt('host', default='ctl1')])
    return conf


def fake_transport(conf):
    return oslo_messaging.get_rpc_transport(conf, url='fake:/')


class Manager:
    target = oslo_messaging.Target(version='3.0')

    def do_work(self, ctxt):
        return 'done'


def endpoints_of(server):
    return server.dispatcher.endpoints


def test_every_server_made_after_it_answers_probes(conf):
    transport = fake_transport(conf)
    manager = Manager()
    assert hook.install(conf)
    servers = [oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic=topic, server='cmp1'),
        [manager], executor='threading') for topic in ('compute',
                                                       'compute-alt')]
    for server in servers:
        first, added = endpoints_of(server)
        assert first is manager
        assert isinstance(added, mixin.InflightEndpoint)
        assert added.host == 'cmp1'            # the server's own host
        assert added._transport is transport   # and its own transport
        assert added.server is server
    assert endpoints_of(servers[0])[1] is not endpoints_of(servers[1])[1]
    transport.cleanup()


def test_its_limits_come_from_the_service_configuration(conf):
    assert hook.install(conf)        # registers [inflight] max_sleep, ...
    conf.set_override('max_sleep', 0.5, group='inflight')
    transport = fake_transport(conf)
    server = oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic='t', server='h'), [Manager()],
        executor='threading')
    assert endpoints_of(server)[1].max_sleep == 0.5
    transport.cleanup()


def test_installing_twice_wraps_once(conf):
    assert hook.install(conf) and hook.install(conf)
    wrapped = oslo_messaging.get_rpc_server
    assert wrapped.inflight_hook
    assert not getattr(wrapped.__wrapped__, 'inflight_hook', False)


def test_an_oslo_messaging_it_does_not_know_starts_as_before(
        conf, monkeypatch, caplog):
    def get_rpc_server(target, transport, endpoints):   # not the known shape
        return 'server'
    monkeypatch.setattr(oslo_messaging, 'get_rpc_server', get_rpc_server)
    with caplog.at_level(logging.WARNING, logger='inflight.hook'):
        assert hook.install(conf) is False
    assert oslo_messaging.get_rpc_server is get_rpc_server
    [record] = caplog.records
    assert 'answers no inflight probe' in record.getMessage()


def test_the_notification_driver_installs_it_and_sends_nothing(conf):
    transport = oslo_messaging.get_notification_transport(conf,
                                                          url='fake:/')
    notifier = oslo_messaging.Notifier(transport, driver='inflight',
                                       publisher_id='conductor.ctl1')
    assert oslo_messaging.get_rpc_server.inflight_hook
    notifier.info({}, 'compute.instance.create.end', {'a': 1})   # no error
    transport.cleanup()
