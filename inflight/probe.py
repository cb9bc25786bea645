"""The two messages on the wire: the probe sent out and the result cast back.

Both are plain dicts (oslo.messaging serialises them as JSON). Readers go
through `parse_probe` / `parse_result`, which raise `MalformedMessage`
instead of letting a bad field reach the arithmetic.

A result may carry `state`: what the service looked like when it took the
probe (inflight.state), a mapping of STATE names to counts. A result
without it is valid; names it does not know are left out, so that a
service with more figures than its prober knows still gives its timings.
"""

import collections
import math
import re
import uuid

# What a reply host may be: printable, no spaces (it ends a routing key).
_HOST = re.compile(r'[!-~]+')

Probe = collections.namedtuple('Probe', 'id sent_at sleep reply_host')

Result = collections.namedtuple(
    'Result', 'id host received_at replied_at requested_sleep slept state',
    defaults=(None,))

# What a result's `state` may hold (see inflight.state for their meaning).
STATE = ('executor_busy', 'executor_max', 'executor_waiting', 'hub_timers',
         'hub_listeners')
# The largest count believed: beyond it, the figure is a bug, not a service.
MAX_COUNT = 10 ** 7
_STATE_NAME = re.compile(r'[a-z][a-z0-9_]{0,63}')
_KNOWN_STATE = frozenset(STATE)
_MAX_STATE_NAMES = 32


class MalformedMessage(ValueError):
    """A probe or result whose fields are missing or of the wrong kind."""


def new_probe(sent_at, sleep, reply_host):
    """A probe with a fresh id, as the prober casts it."""
    return Probe(uuid.uuid4().hex, sent_at, sleep, reply_host)


def _field(message, name, kind):
    try:
        value = message[name]
    except (KeyError, TypeError):
        raise MalformedMessage('no %r field' % name)
    if kind is float:
        if type(value) is float and math.isfinite(value):
            return value              # as nearly every field comes
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MalformedMessage('%r is not a number' % name)
        if not math.isfinite(value):
            raise MalformedMessage('%r is not finite' % name)
        return float(value)
    if not isinstance(value, str) or not value or len(value) > 255:
        raise MalformedMessage('%r is not a short string' % name)
    return value


def _fields(message, names, kinds):
    if not isinstance(message, dict):
        raise MalformedMessage('not a mapping')
    values = [message.get(name) for name in names]
    for value, kind in zip(values, kinds):    # as nearly every message is
        if type(value) is not kind:
            break
        if kind is float:
            if not math.isfinite(value):
                break
        elif not 0 < len(value) <= 255:
            break
    else:
        return values
    # One is not as it should be: say which.
    return [_field(message, name, kind) for name, kind in zip(names, kinds)]


_PROBE_KINDS = (str, float, float, str)
# Every field of a Result but the last, `state`.
_RESULT_FIELDS = Result._fields[:-1]
_RESULT_KINDS = (str, str, float, float, float, float)


def parse_probe(message):
    """A Probe from a received dict, or MalformedMessage."""
    probe = Probe(*_fields(message, Probe._fields, _PROBE_KINDS))
    if probe.sleep < 0:
        raise MalformedMessage('negative sleep')
    if not _HOST.fullmatch(probe.reply_host):
        raise MalformedMessage('reply_host is not a host name')
    return probe


def parse_result(message):
    """A Result from a received dict, or MalformedMessage."""
    result = Result(*_fields(message, _RESULT_FIELDS, _RESULT_KINDS),
                    _state(message.get('state')))
    if result.slept < 0 or result.requested_sleep < 0:
        raise MalformedMessage('negative sleep')
    return result


def _state(state):
    """The known figures of a result's `state` (None if it has none)."""
    if state is None:
        return None
    if not isinstance(state, dict) or len(state) > _MAX_STATE_NAMES:
        raise MalformedMessage("'state' is not a mapping of a few figures")
    figures = {}
    for name, count in state.items():
        known = name in _KNOWN_STATE
        if not known and (not isinstance(name, str) or
                          not _STATE_NAME.fullmatch(name)):
            raise MalformedMessage("'state' has a figure named %s"
                                   % _short(name))
        if type(count) is not int or not 0 <= count <= MAX_COUNT:
            raise MalformedMessage("'state' %s is not a count: %s"
                                   % (name, _short(count)))
        if known:
            figures[name] = count
    return figures or None


def _short(value):
    """A value as a log line may quote it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + '...'
