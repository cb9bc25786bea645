"""The phases of a probe, from its four timestamps.

    prober                                   service
      t0  ── probe ── to_service ──────────►  t1
                                              │ in_service (sleep + overhead)
      t3  ◄─────────── from_service ─ result  t2

t0 and t3 are read on the prober's clock, t1 and t2 on the service's, so
to_service and from_service carry the offset between the two clocks (see
inflight.skew); queue_total = round_trip - in_service is their sum, exact
whatever the offset.
"""

import collections

PHASES = ('to_service', 'in_service', 'overhead', 'from_service',
          'round_trip', 'queue_total')

Timings = collections.namedtuple('Timings', PHASES)


def breakdown(sent_at, result, received_back_at):
    """Timings, in seconds, of one probe and the Result that came back."""
    round_trip = received_back_at - sent_at
    in_service = result.replied_at - result.received_at
    return Timings(
        to_service=result.received_at - sent_at,
        in_service=in_service,
        overhead=result.slept - result.requested_sleep,
        from_service=received_back_at - result.replied_at,
        round_trip=round_trip,
        queue_total=round_trip - in_service,
    )


def round_trip_only(round_trip):
    """Timings of a probe kind that measures the round trip alone."""
    return Timings(None, None, None, None, round_trip, None)
