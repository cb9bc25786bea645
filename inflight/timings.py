"""The five phases of a probe, from its four timestamps.

    prober                                   service
      t0  ── probe ── to_service ──────────►  t1
                                              │ in_service (sleep + overhead)
      t3  ◄─────────── from_service ─ result  t2

t0 and t3 are read on the prober's clock, t1 and t2 on the service's.
"""

import collections

PHASES = ('to_service', 'in_service', 'overhead', 'from_service',
          'round_trip')

Timings = collections.namedtuple('Timings', PHASES)


def breakdown(sent_at, result, received_back_at):
    """Timings, in seconds, of one probe and the Result that came back."""
    return Timings(
        to_service=result.received_at - sent_at,
        in_service=result.replied_at - result.received_at,
        overhead=result.slept - result.requested_sleep,
        from_service=received_back_at - result.replied_at,
        round_trip=received_back_at - sent_at,
    )
