"""Timings and counts to statsd, named for graphite.

Names are `<prefix>.<topic>.<host>.<leaf>`, or `<prefix>.<cell>.<topic>.<host>.
<leaf>` in a cloud read with its cells, each part made graphite-safe; two
services whose safe names would be the same get told apart (`Names`). A
metrics failure never reaches the caller: it is counted, and logged at most
once a minute, and probing goes on without statsd.
"""

import hashlib
import logging
import re
import threading
import time

import statsd

from inflight import logs
from inflight.timings import PHASES

LOG = logging.getLogger(__name__)

_UNSAFE = re.compile(r'[^A-Za-z0-9_-]')
# A character that makes a part's safe name maybe another's ('.' alone
# cannot: what it becomes, '_', is not in it).
_ODD = re.compile(r'[^A-Za-z0-9.-]')

WARN_EVERY = 60.0   # seconds between two warnings of dropped metrics

# Largest UDP packet a pipeline fills before it starts another: statsd's
# advice for a LAN (an Ethernet MTU less the headers), so that one probe's
# metrics are one packet.
MAX_UDP_SIZE = 1432


def graphite_safe(part):
    """`part` as one graphite node: dots and other symbols become '_'."""
    return _UNSAFE.sub('_', part) or '_'


def phase_values(timings):
    """(name, seconds) of each phase `timings` measures; a ping's lone
    round trip is named ping_round_trip."""
    measured = [(phase, seconds)
                for phase, seconds in zip(timings._fields, timings)
                if seconds is not None]
    if len(measured) == 1 and measured[0][0] == 'round_trip':
        return [('ping_round_trip', measured[0][1])]
    return measured


def service_name(topic, host, cell=''):
    """`[<cell>.]<topic>.<host>`, each made one graphite node."""
    parts = (cell, topic, host) if cell else (topic, host)
    return '.'.join(graphite_safe(part) for part in parts)


def metric_name(topic, host, leaf, cell=''):
    """The name, under the prefix, of one service's metric (plain: not told
    apart from another service's)."""
    return '%s.%s' % (service_name(topic, host, cell), leaf)


def _unchanged(key, name):
    """Whether making `key` graphite-safe left its parts as they were."""
    return name == '.'.join(part for part in key if part)


def _distinct(key, name):
    """`name` told apart by a digest of the key's parts."""
    digest = hashlib.sha1('\0'.join(key).encode('utf-8')).hexdigest()[:8]
    return '%s_%s' % (name, digest)


class Names:
    """Each service's name under the prefix, the same on every prober.

    A service's name is its parts made graphite-safe. Where that gives one
    name to several services of the tables read (`known()`), the service
    whose parts needed no change keeps it, and the others get a suffix from
    a digest of their parts. So names depend on what the tables hold, never
    on the order the services come in, nor on which prober probes them.

    Two names can only be the same if one of the services has a part with
    a character other than letters, digits, '-' and '.' ('_' included):
    rare in host names, so a read of the tables is a quick scan, and only
    the names told apart are kept, with the names of the services this
    prober probes (until they are forgotten).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._told_apart = {}   # Key -> its name, where not the plain one
        self._named = {}        # Key -> its name, for the services named
        self._odd = {}          # cell or topic -> whether it is odd

    def name(self, key):
        """The name of the service keyed `key`."""
        name = self._named.get(key)
        if name is None:
            name = self._told_apart.get(key) or service_name(
                key.topic, key.host, key.cell)
            self._named[key] = name
        return name

    def forget(self, keys):
        """Drop the names of `keys` (their services left this prober)."""
        for key in keys:
            self._named.pop(key, None)

    def _is_odd(self, key):
        odd = self._odd
        for part in (key.cell, key.topic):
            if part not in odd:
                odd[part] = _ODD.search(part) is not None
            if odd[part]:
                return True
        return _ODD.search(key.host) is not None

    def known(self, keys):
        """The services of the tables just read (on every prober alike)."""
        keys = list(keys)
        odd = {}            # plain name -> the odd keys that make it
        for key in keys:
            if self._is_odd(key):
                odd.setdefault(service_name(key.topic, key.host, key.cell),
                               []).append(key)
        if odd:
            for key in keys:
                if not self._is_odd(key):
                    name = service_name(key.topic, key.host, key.cell)
                    if name in odd:
                        odd[name].append(key)
        told_apart = {}
        for name, sharing in odd.items():
            if len(sharing) > 1:
                for key in sharing:
                    if not _unchanged(key, name):
                        told_apart[key] = _distinct(key, name)
        with self._lock:
            new = sorted((key, told_apart[key]) for key in told_apart
                         if key not in self._told_apart)
            changed = set(told_apart).symmetric_difference(self._told_apart)
            self._told_apart = told_apart
            for key in changed:
                self._named.pop(key, None)
        for key, distinct in new:
            LOG.warning('%s and another service both make the metric name '
                        '%s: it is sent as %s', key,
                        service_name(key.topic, key.host, key.cell), distinct)


class _UDPClient(statsd.StatsClient):
    """pystatsd's UDP client on a connected socket, letting send errors
    (an ICMP port unreachable, say) through to be counted."""

    def __init__(self, host, port, prefix):
        super().__init__(host, port, prefix=prefix, maxudpsize=MAX_UDP_SIZE)
        self._sock.connect(self._addr)

    def _send(self, data):
        self._sock.send(data.encode('ascii'))

    def send_lines(self, lines):
        """Send statsd lines, joined into packets of under MAX_UDP_SIZE
        characters as pystatsd's pipeline joins them (a line too long for
        one goes alone)."""
        if not lines:
            return
        data = '\n'.join(lines)
        if len(data) < MAX_UDP_SIZE:
            self._send(data)              # as most batches are: one packet
            return
        data = lines[0]
        for line in lines[1:]:
            if len(line) + len(data) + 1 >= MAX_UDP_SIZE:
                self._send(data)
                data = line
            else:
                data += '\n' + line
        self._send(data)


class _Batch:
    """The lines of one batch, written as pystatsd writes them, for a
    fraction of what its pipeline costs per line (a result's metrics are
    17 lines)."""

    __slots__ = ('lines', '_lead')

    def __init__(self, lead):
        self.lines = []
        self._lead = lead

    def incr(self, name, count=1):
        self.lines.append('%s%s:%s|c' % (self._lead, name, count))

    def timing(self, name, ms):
        self.lines.append('%s%s:%0.6f|ms' % (self._lead, name, ms))

    def gauge(self, name, value):
        self.lines.append(_gauge(self._lead + name, value))


# The last value of a phase, in ms, as its gauge writes it (to the µs).
_TO_THE_US = '%0.3f'


def _gauge(name, value, form='%s'):
    """A gauge's line, its value written by `form`; a signed one set 0
    first (statsd reads a signed gauge as a change)."""
    line = ('%s:' + form + '|g') % (name, value)
    return '%s:0|g\n%s' % (name, line) if value < 0 else line


class _ResultLines:
    """The lines of one service's results, their names made once: a
    result's metrics are 15 lines, its clock offset and figures aside."""

    __slots__ = ('_under', '_phases', '_counts', '_every_phase', '_forms')

    def __init__(self, lead, name):
        under = self._under = '%s%s.' % (lead, name)
        self._phases = {phase: ('%s%s:' % (under, phase),
                                '%slast.%s' % (under, phase))
                        for phase in PHASES + ('ping_round_trip',)}
        self._counts = '%ssent:1|c\n%sreceived:1|c\n%slost:0|c' % (
            under, under, under)
        # An inflight probe's lines, every phase measured and none of them
        # negative: one format of them all (a '%' in the prefix kept).
        self._every_phase = '\n'.join(
            '%s%%0.6f|ms\n%s:%s|g' % (_escaped(timer), _escaped(last),
                                     _TO_THE_US)
            for timer, last in (self._phases[phase] for phase in PHASES)
        ) + '\n' + _escaped(self._counts)
        # (with a clock offset, the names of the figures) -> (that format
        # followed by their gauges, the names in the order written)
        self._forms = {}

    def of(self, timings, clock_offset, state):
        """The lines of one result, as the pipeline would write them."""
        lines = self._at_once(timings, clock_offset, state)
        if lines is not None:
            return lines
        lines = []
        for phase, seconds in phase_values(timings):
            ms = seconds * 1000.0
            timer, last = self._phases[phase]
            lines.append('%s%0.6f|ms' % (timer, ms))
            lines.append(_gauge(last, ms, _TO_THE_US))
        lines.append(self._counts)
        under = self._under
        if clock_offset is not None:
            lines.append(_gauge(under + 'clock_offset',
                                clock_offset * 1000.0, _TO_THE_US))
        if state:
            for name in sorted(state):
                lines.append(_gauge(under + name, state[name]))
        return lines

    def _at_once(self, timings, clock_offset, state):
        """[every line, in one format], or None unless every phase was
        measured and none of them, nor the clock offset, is negative (a
        signed gauge takes two lines)."""
        if None in timings or (clock_offset is not None and
                               clock_offset < 0.0):
            return None
        ms = [seconds * 1000.0 for seconds in timings]
        if min(ms) < 0.0:
            return None
        values = ms * 2
        values[0::2] = values[1::2] = ms
        key = (clock_offset is not None, tuple(state) if state else ())
        form = self._forms.get(key)
        if form is None:
            form = self._forms[key] = self._form(*key)
        form, names = form
        if clock_offset is not None:
            values.append(clock_offset * 1000.0)
        for name in names:
            values.append(state[name])
        return [form % tuple(values)]

    def _form(self, clock_offset, names):
        """The format of every line, and the figures' names in its order."""
        under = _escaped(self._under)
        form = self._every_phase
        if clock_offset:
            form += '\n%sclock_offset:%s|g' % (under, _TO_THE_US)
        names = sorted(names)
        for name in names:
            form += '\n%s%s:%%s|g' % (under, _escaped(name))
        return form, names


def _escaped(text):
    """`text` as it stays in a %-format."""
    return text.replace('%', '%%')


class Metrics:
    """Sends probe outcomes to one statsd server over UDP."""

    def __init__(self, host, port, prefix, monotonic=time.monotonic):
        self.address = (host, port)
        self.prefix = prefix
        self._lead = prefix + '.' if prefix else ''   # before every name
        self.dropped = 0          # pipelines that could not be sent
        self._monotonic = monotonic
        self._warned_at = None
        self._client = None
        self._unresolved = None   # (when, error) of a failed name lookup
        self.names = Names()
        self._lock = threading.Lock()
        self._lines = {}          # a service's name -> _ResultLines

    def _statsd(self):
        if self._client is None:
            # Name resolution can take long: once it failed, not again
            # before WARN_EVERY, so that probing is not held up.
            now = self._monotonic()
            if self._unresolved and now - self._unresolved[0] < WARN_EVERY:
                raise self._unresolved[1]
            host, port = self.address
            try:
                self._client = _UDPClient(host, port, self.prefix)
            except OSError as e:
                self._unresolved = (now, e)
                raise
        return self._client

    def _send(self, fill):
        """Fill one pipeline (one UDP packet, or a few) and send it."""
        try:
            client = self._statsd()
            batch = _Batch(self._lead)
            fill(batch)
            client.send_lines(batch.lines)
            return
        except Exception as e:  # noqa: BLE001 - metrics never break probing
            error = e
        self._dropped(error)

    def _dropped(self, error):
        with self._lock:
            self.dropped += 1
            now = self._monotonic()
            if (self._warned_at is not None and
                    now - self._warned_at < WARN_EVERY):
                return
            self._warned_at = now
            dropped = self.dropped
        LOG.warning('Could not send metrics to statsd at %s:%s (%s dropped '
                    'so far): %s', self.address[0], self.address[1],
                    logs.plural(dropped, 'batch', 'batches'), error)

    def name(self, service, leaf):
        """The metric name of one service's leaf, unique to that service."""
        return '%s.%s' % (self.names.name(service.key), leaf)

    def known(self, services):
        """The services of the tables just read: they name the metrics."""
        self.names.known(service.key for service in services)

    def forget(self, services):
        """Drop the names of `services`: statsd itself keeps their gauges."""
        for service in services:
            self._lines.pop(self.names.name(service.key), None)
        self.names.forget(service.key for service in services)

    def _count(self, services, leaf):
        def fill(pipe):
            for service in services:
                pipe.incr(self.name(service, leaf))
        self._send(fill)

    def sent(self, services):
        """Nothing yet: statsd counts a probe sent once it ended (lost() and
        received()), in the packet of its outcome, so that in every flush
        `sent` is `received` + `lost`, and a probe costs one packet."""

    def lost(self, services):
        """Count one probe sent and lost for each of `services`."""
        def fill(pipe):
            for service in services:
                under = self.name(service, '')
                pipe.incr(under + 'sent')
                pipe.incr(under + 'lost')
        self._send(fill)

    def late(self, services):
        """Count one result that came back after its probe was counted lost."""
        self._count(services, 'late')

    def received(self, service, kind, timings, clock_offset=None,
                 state=None):
        """The timings (sent in ms) of one probe that came back, counted
        sent and received, and none lost: statsd then has a lost counter
        (0) for every service probed, so that lost over sent is 0 %, not
        nothing, for a service that loses none.

        Each phase the probe's kind measures goes twice: as a timer (its
        distribution per flush) and as the gauge `last.<phase>`, which
        statsd sends on every flush, so that a service probed once a cycle
        still draws a line at every graphite resolution. The round trip of
        a kind that measures nothing else (a ping, with no sleep in it) is
        `ping_round_trip`, apart from the inflight round trips. The clock
        offset (s), where known, goes as the gauge clock_offset (ms); the
        service's figures (the result's state), where it gave them, as one
        gauge each (executor_busy, ...); all in the same packet.
        """
        try:
            client = self._statsd()
            name = self.names.name(service.key)
            lines = self._lines.get(name)
            if lines is None:
                lines = self._lines[name] = _ResultLines(self._lead, name)
            client.send_lines(lines.of(timings, clock_offset, state))
            return
        except Exception as e:  # noqa: BLE001 - metrics never break probing
            error = e
        self._dropped(error)

    def deaf(self, service, deaf):
        """Gauge `deaf`: 1 while the service is up but deaf, else 0."""
        self._send(lambda pipe: pipe.gauge(self.name(service, 'deaf'),
                                           int(deaf)))

    def method(self, service, kind, kinds):
        """Gauges `method.<kind>`: 1 for the kind the service answers, 0 else."""
        def fill(pipe):
            for each in kinds:
                pipe.gauge(self.name(service, 'method.' + each),
                           int(each == kind))
        self._send(fill)


class NullMetrics:
    """Metrics sent nowhere: for probing by hand."""

    def __getattr__(self, name):
        return lambda *args: None
