"""One probed service: the key that tells it from every other, and its row.

Every per-service store (the ring, the kinds learnt, the clock offsets, the
deaf watch, the outputs) is keyed by `Key`: (cell, topic, host), the cell
'' in a cloud read without cells.
"""

import collections


class Key(collections.namedtuple('Key', 'cell topic host')):
    """(cell, topic, host): one service, in every store and on every prober."""

    __slots__ = ()

    def __str__(self):
        name = '%s.%s' % (self.topic, self.host)
        return '%s in cell %s' % (name, self.cell) if self.cell else name

    def __tooz_hash__(self):
        """The bytes a tooz hash ring places the service by."""
        return '\0'.join(self).encode('utf-8')


class Service(collections.namedtuple(
        'Service', 'key id binary last_seen_up created_at')):
    """One enabled service, as the ring hands it out: its key and its row."""

    __slots__ = ()

    @classmethod
    def of(cls, topic, host, cell='', id=None, binary=None,
           last_seen_up=None, created_at=None):
        """The service `topic`.`host` (in `cell`), with what is known of
        its row."""
        return cls(Key(cell, topic, host), id, binary, last_seen_up,
                   created_at)

    @property
    def cell(self):
        return self.key.cell

    @property
    def topic(self):
        return self.key.topic

    @property
    def host(self):
        return self.key.host

    def __str__(self):
        return str(self.key)
