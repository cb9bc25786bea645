"""The circular queue of services to probe."""

import bisect
import threading
import zlib


def order(key):
    """Where the service keyed `key` comes in a ring, the same on every
    prober: by a hash of the key, so that the cells, topics and hosts come
    mixed, and no cell's broker takes a whole cycle's probes at once."""
    return zlib.crc32(key.__tooz_hash__()), key


class ServiceRing:
    """Hands out services one after another and wraps around.

    A refresh keeps the place: services already probed in this cycle are not
    probed again before the cycle ends, new ones join at the end of the
    cycle, and disabled or deleted ones leave at once.
    """

    def __init__(self, services=()):
        self._lock = threading.Lock()
        self._order = []      # record.Key of each service, in ring order
        self._services = {}   # Key -> record.Service
        self._next = 0        # index in _order of the next service to probe
        self._probed = set()  # keys handed out in this cycle, even if gone
        self._last = None     # key of the service last handed out
        self.cycles = 0       # completed passes over the ring
        self.read_at = None   # when the services were read (naive UTC)
        self.refresh(services)

    def __len__(self):
        return len(self._order)

    def newest_row(self, key):
        """The service keyed `key` as the last refresh had it, and when its
        services were read; (None, read_at) when it is not in the ring."""
        with self._lock:
            return self._services.get(key), self.read_at

    def services(self):
        """The services in the ring now."""
        with self._lock:
            return list(self._services.values())

    def refresh(self, services, read_at=None):
        """Replace the membership with `services`, keeping the place; the
        services that left."""
        fresh = {s.key: s for s in services}
        with self._lock:
            self.read_at = read_at
            known = set(self._order)
            added = sorted((k for k in fresh if k not in known), key=order)
            # Probed in this cycle (maybe before leaving and coming back),
            # then the rest: the cycle goes on where it was.
            walk = [k for k in self._order if k in fresh] + added
            done = [k for k in walk if k in self._probed]
            self._order = done + [k for k in walk if k not in self._probed]
            left = [s for k, s in self._services.items() if k not in fresh]
            self._services = fresh
            self._next = len(done)
        return left

    def seek(self, fraction):
        """Go to `fraction` (0 to 1) of the way round, as if the services
        before it had been probed in this cycle."""
        with self._lock:
            self._next = min(int(fraction * len(self._order)),
                             len(self._order))
            self._probed = set(self._order[:self._next])

    def place(self):
        """Where the ring stands: the last service handed out (a key) and
        the cycles completed, or None before the first."""
        with self._lock:
            return None if self._last is None else (self._last, self.cycles)

    def resume(self, after, cycles):
        """Take over a place: go on after the service keyed `after` in the
        order of a fresh ring (`order()`), as if those up to it had been
        probed in this cycle, whether or not `after` is still here."""
        with self._lock:
            self._next = bisect.bisect_right(self._order, order(after),
                                             key=order)
            self._probed = set(self._order[:self._next])
            self._last = after
            self.cycles = cycles

    def next(self):
        """The next service to probe, or None when the ring is empty."""
        with self._lock:
            if not self._order:
                return None
            if self._next >= len(self._order):
                self._next = 0
                self._probed.clear()
                self.cycles += 1
            key = self._order[self._next]
            self._probed.add(key)
            self._last = key
            self._next += 1
            return self._services[key]

    def take(self, count):
        """Up to `count` services, never the same one twice in one call."""
        taken = []
        for _ in range(min(count, len(self))):
            taken.append(self.next())
        return [s for s in taken if s is not None]


class SharedRing(ServiceRing):
    """A ring walked in `order()`, every cycle, whatever came when.

    Probers sharing the services walk their shares in the same order, at
    the same pace, from where the cycle stands by the clock: a service that
    moves from one to another mid-cycle (a prober joined or left) keeps
    about its place in the cycle. Those that come before the place are
    deemed probed in this cycle (the prober that had them has, most
    likely), the others are probed at their turn: neither twice nor
    skipped, but for the few the two probers' paces set apart.
    """

    def refresh(self, services, read_at=None):
        """Replace the membership with `services`, in `order()`, keeping
        the place: the key up to which this cycle is done; the services
        that left."""
        fresh = {s.key: s for s in services}
        walk = sorted(fresh, key=order)
        with self._lock:
            done_upto = self._order[self._next - 1] if self._next else None
            self.read_at = read_at
            self._next = (0 if done_upto is None else
                          bisect.bisect_right(walk, order(done_upto),
                                              key=order))
            self._order = walk
            left = [s for k, s in self._services.items() if k not in fresh]
            self._services = fresh
        return left
