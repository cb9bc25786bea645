"""The broker: reaching it before probing, and removing what a command
declared on it.

A login the broker refuses (a wrong user or password, a virtual host that
does not exist or is not the user's) is a configuration error: waiting would
not mend it. A broker that does not answer yet (down, still starting, a name
that does not resolve) is waited for, with few log lines.

The check is one cast through the transport's own driver, with its own TLS
and login settings, and no retry: to the `inflight` topic on a server name
no one listens on, so the broker drops it.
"""

import logging
import os
import socket
import time

import amqp
import amqp.exceptions
import kombu
from kombu import exceptions as kombu_exceptions
import oslo_messaging

from inflight import config
from inflight import rpcapi

LOG = logging.getLogger(__name__)

# What a broker says to a login it will never accept.
_REFUSALS = (amqp.exceptions.AccessRefused, amqp.exceptions.NotAllowed)

RETRY_FIRST = 1.0     # seconds before the first retry, doubling ...
RETRY_MAX = 30.0      # ... up to this
LOG_EVERY = 600.0     # seconds between two "still waiting" lines

# The oslo.messaging drivers that speak AMQP 0-9-1 to RabbitMQ.
RABBIT_DRIVERS = ('rabbit', 'kombu')


class LoginRefused(config.ConfigError):
    """The broker refused the login: a configuration error."""


def masked(conf, url=None):
    """The transport URL (conf's, or `url`) with its passwords masked, as an
    operator reads it."""
    url = oslo_messaging.TransportURL.parse(conf, url)
    hosts = ','.join(
        '%s%s%s' % ((h.username or '') + (':***' if h.password else '') +
                    ('@' if h.username or h.password else ''),
                    h.hostname or '', ':%s' % h.port if h.port else '')
        for h in url.hosts)
    return '%s://%s/%s' % (url.transport, hosts, url.virtual_host or '')


def _reason(error):
    """A broker's or a socket's error, in one line."""
    reply = getattr(error, 'reply_text', None)
    return ' '.join(str(reply or error).split()) or type(error).__name__


def check(conf, transport):
    """Try the broker once: None when it takes the login, else why it could
    not be reached; raises LoginRefused when it refuses the login."""
    client = oslo_messaging.get_rpc_client(
        transport, oslo_messaging.Target(
            topic=rpcapi.TOPIC, server='%s.broker-check' % conf.host))
    try:
        client.prepare(retry=0).cast({}, 'broker_check')
        return None
    except _REFUSALS as e:
        refused = e
    except Exception as e:  # noqa: BLE001 - unreachable, in any wording
        return _reason(e)
    raise LoginRefused('the broker at %s refused the login: %s'
                       % (masked(conf), _reason(refused)))


def wait(conf, transport, stopping, status=None, clock=time.monotonic):
    """Try the broker until it takes the login; False if `stopping` (an
    Event) was set first. Logs when it starts waiting, every LOG_EVERY
    seconds it still waits, and when the broker answers; `status(text)`
    hears each try's outcome. Raises LoginRefused."""
    delay, began, logged_at = RETRY_FIRST, clock(), None
    while True:
        why = check(conf, transport)
        if why is None:
            if logged_at is not None:
                LOG.info('The broker at %s answers, after %.0fs',
                         masked(conf), clock() - began)
            return True
        text = 'Waiting for the broker at %s: %s' % (masked(conf), why)
        if status:
            status(text)
        if logged_at is None or clock() - logged_at >= LOG_EVERY:
            LOG.warning('%s; probing starts once it answers (next try in '
                        '%.0fs)', text, delay)
            logged_at = clock()
        if stopping.wait(delay):
            return False
        delay = min(delay * 2, RETRY_MAX)


def notify_systemd(state):
    """Tell systemd `state` (e.g. 'STATUS=...'), when it started us."""
    address = os.environ.get('NOTIFY_SOCKET')
    if not address:
        return
    if address.startswith('@'):
        address = '\0' + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as e:
        LOG.debug('Could not notify systemd: %s', e)


def remove(conf, queues=(), exchanges=(), if_empty=False, if_unused=True):
    """Delete `queues` then `exchanges` on conf's broker, best effort.

    Only what nothing uses goes: a queue without consumers (and, with
    `if_empty`, without messages), an exchange without bindings; so a name
    shared with a running service is left to it. Names already gone are
    fine. `if_unused=False` deletes the queues whatever: for a queue of
    the caller's own, whose consumer the broker may not have let go yet.
    """
    url = oslo_messaging.TransportURL.parse(conf)
    if url.transport not in RABBIT_DRIVERS or not (queues or exchanges):
        return
    for host in url.hosts:
        try:
            with kombu.Connection(
                    hostname=host.hostname, port=host.port or 5672,
                    userid=host.username, password=host.password,
                    virtual_host=url.virtual_host or '/',
                    transport='pyamqp', connect_timeout=5) as connection:
                connection.connect()
                _delete(connection, queues, exchanges, if_empty, if_unused)
                return
        except (OSError, kombu_exceptions.KombuError, amqp.AMQPError) as e:
            LOG.debug('Could not remove %s from %s:%s: %s',
                      ', '.join([*queues, *exchanges]), host.hostname,
                      host.port or 5672, e)


def _delete(connection, queues, exchanges, if_empty, if_unused):
    deletes = [(name, 'queue_delete',
                dict(if_unused=if_unused, if_empty=if_empty))
               for name in queues]
    deletes += [(name, 'exchange_delete', dict(if_unused=True))
                for name in exchanges]
    for name, method, precondition in deletes:
        # A refused delete closes its channel: one channel each.
        channel = connection.channel()
        try:
            getattr(channel, method)(name, **precondition)
            channel.close()
        except amqp.exceptions.PreconditionFailed:
            LOG.debug('%s is still in use: left on the broker', name)
