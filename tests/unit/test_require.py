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
