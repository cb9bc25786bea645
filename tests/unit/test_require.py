"""Tests needing a server skip, or fail where the environment requires it."""

import socket

import pytest

import servers


def closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return ('127.0.0.1', port)


def test_unreachable_server_skips_with_the_reason(monkeypatch):
    monkeypatch.delenv('INFLIGHT_REQUIRE_BROKER', raising=False)
    with pytest.raises(pytest.skip.Exception,
                       match='RabbitMQ is not reachable.*INFLIGHT_REQUIRE_'):
        servers.require('RabbitMQ', closed_port(), 'INFLIGHT_REQUIRE_BROKER')


def test_unreachable_server_fails_when_required(monkeypatch):
    monkeypatch.setenv('INFLIGHT_REQUIRE_BROKER', '1')
    with pytest.raises(pytest.fail.Exception, match='requires it'):
        servers.require('RabbitMQ', closed_port(), 'INFLIGHT_REQUIRE_BROKER')


def test_any_of_the_variables_named_requires_the_server(monkeypatch):
    monkeypatch.delenv('INFLIGHT_REQUIRE_BROKER', raising=False)
    monkeypatch.setenv('INFLIGHT_REQUIRE_NOVA', '1')
    with pytest.raises(pytest.fail.Exception,
                       match='INFLIGHT_REQUIRE_NOVA=1 requires it'):
        servers.require('RabbitMQ', closed_port(), 'INFLIGHT_REQUIRE_BROKER',
                        'INFLIGHT_REQUIRE_NOVA')


def test_the_skip_names_every_variable_that_would_require_it(monkeypatch):
    monkeypatch.delenv('INFLIGHT_REQUIRE_BROKER', raising=False)
    monkeypatch.delenv('INFLIGHT_REQUIRE_NOVA', raising=False)
    with pytest.raises(pytest.skip.Exception,
                       match='set INFLIGHT_REQUIRE_BROKER=1 or '
                             'INFLIGHT_REQUIRE_NOVA=1 to make'):
        servers.unavailable('pip could not install nova==34.0.0',
                            'INFLIGHT_REQUIRE_BROKER', 'INFLIGHT_REQUIRE_NOVA')
