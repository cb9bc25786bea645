"""The probe kinds, richest first, as records the runner reads.

Each kind is sent by one function of one signature,

    send(api, host, probe, timeout) -> None

`api` being the topic's rpcapi.BaseAPI, and says what it measures and
whether its answer comes back apart from the send (a result the service
casts back later) or as the reply to the send itself. The runner
(inflight.prober), not the kinds, owns deadlines, timing and accounting.
A kind the service does not know raises `Unsupported`.
"""

import collections

import oslo_messaging

from inflight.probes import baseapi
from inflight.probes import inflight
from inflight.probes import oslo_ping

Kind = collections.namedtuple('Kind', 'name send measures apart waits')
Kind.__doc__ = """One kind of probe.

name: what the service is said to answer (logs, gauges, overrides);
send: the send function; measures: 'breakdown' (every leg) or 'round_trip';
apart: its answer is a result cast back apart from the send;
waits: the send is a call, holding a thread until the service answers."""


class Unsupported(Exception):
    """The service does not answer this kind of probe."""


# Name -> kind, richest first: the order the prober falls back in.
KINDS = {
    'inflight': Kind('inflight', inflight.cast, 'breakdown', True, False),
    'baseapi': Kind('baseapi', baseapi.send, 'round_trip', False, True),
    'oslo_rpc_server_ping': Kind('oslo_rpc_server_ping', oslo_ping.send,
                                 'round_trip', False, True),
}

ORDER = tuple(KINDS)

# While it is not known whether a service has the endpoint, its inflight
# probe goes as a call: the endpoint takes it at once, and a service
# without it says so at once (oslo.messaging's NoSuchMethod, which it logs
# at DEBUG only), so that the next kind goes without waiting out the
# probe's timeout. The result comes back apart all the same.
INFLIGHT_BY_CALL = KINDS['inflight']._replace(send=inflight.call, waits=True)

_UNSUPPORTED = (oslo_messaging.UnsupportedVersion, oslo_messaging.NoSuchMethod)


def for_plan(names):
    """The kinds to send, in turn, for a plan naming `names`."""
    return tuple(INFLIGHT_BY_CALL if name == 'inflight' and len(names) > 1
                 else KINDS[name] for name in names)


def send(kind, api, host, probe, timeout):
    """Send one probe of `kind`; Unsupported if the service lacks it."""
    try:
        return kind.send(api, host, probe, timeout)
    except _UNSUPPORTED as e:
        raise Unsupported(e)
    except oslo_messaging.RemoteError as e:
        if e.exc_type in ('UnsupportedVersion', 'NoSuchMethod'):
            raise Unsupported(e)
        raise
