"""The probe kinds, richest first, each behind one signature.

    send(api, host, probe, timeout) -> None

`api` is the topic's rpcapi.BaseAPI. The inflight kind casts and its result
comes back later; the ping kinds call and return once the service answered,
raising `Unsupported` when it does not know the method. The runner
(inflight.prober), not the kinds, owns deadlines, timing and accounting.
"""

import oslo_messaging

from inflight.probes import baseapi
from inflight.probes import inflight
from inflight.probes import oslo_ping


class Unsupported(Exception):
    """The service does not answer this kind of probe."""


# Name -> send function, richest first: the order the prober falls back in.
KINDS = {
    'inflight': inflight.send,
    'baseapi': baseapi.send,
    'oslo_rpc_server_ping': oslo_ping.send,
}

ORDER = tuple(KINDS)

# Only the inflight kind measures the legs; the pings time the round trip.
ROUND_TRIP_ONLY = frozenset(ORDER[1:])

_UNSUPPORTED = (oslo_messaging.UnsupportedVersion, oslo_messaging.NoSuchMethod)


def send(kind, api, host, probe, timeout):
    """Send one probe of `kind`; Unsupported if the service lacks it."""
    try:
        return KINDS[kind](api, host, probe, timeout)
    except _UNSUPPORTED as e:
        raise Unsupported(e)
    except oslo_messaging.RemoteError as e:
        if e.exc_type in ('UnsupportedVersion', 'NoSuchMethod'):
            raise Unsupported(e)
        raise
