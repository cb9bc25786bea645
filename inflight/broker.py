"""Removing from RabbitMQ the queues and exchanges a command declared."""

import logging

import amqp
import kombu
from kombu import exceptions as kombu_exceptions
import oslo_messaging

LOG = logging.getLogger(__name__)

# The oslo.messaging drivers that speak AMQP 0-9-1 to RabbitMQ.
RABBIT_DRIVERS = ('rabbit', 'kombu')


def remove(conf, queues=(), exchanges=(), if_empty=False):
    """Delete `queues` then `exchanges` on conf's broker, best effort.

    Only what nothing uses goes: a queue without consumers (and, with
    `if_empty`, without messages), an exchange without bindings; so a name
    shared with a running service is left to it. Names already gone are
    fine.
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
                _delete(connection, queues, exchanges, if_empty)
                return
        except (OSError, kombu_exceptions.KombuError, amqp.AMQPError) as e:
            LOG.debug('Could not remove %s from %s:%s: %s',
                      ', '.join([*queues, *exchanges]), host.hostname,
                      host.port or 5672, e)


def _delete(connection, queues, exchanges, if_empty):
    deletes = [(name, 'queue_delete', dict(if_unused=True, if_empty=if_empty))
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
