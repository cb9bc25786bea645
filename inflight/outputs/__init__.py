"""Where probe outcomes go: statsd, Prometheus, the status file.

Every output takes the same calls, made by the prober, the deaf watch and
the manager:

    sent(services)        lost(services)        late(services)
    received(service, kind, timings, clock_offset=None, state=None)
    deaf(service, deaf)   method(service, kind, kinds)
    known(services)       every service of the tables just read
    forget(services)      services that left this prober: drop what is kept
    close()

`Outputs` hands each call to every output in turn. An output that fails is
logged (at most once a minute per output) and never breaks the prober, nor
the outputs after it.
"""

import logging
import time

from inflight.outputs import prometheus
from inflight.outputs import statsd
from inflight.outputs import status

LOG = logging.getLogger(__name__)

WARN_EVERY = 60.0   # seconds between two warnings of one failing output

CALLS = ('sent', 'lost', 'late', 'received', 'deaf', 'method', 'known',
         'forget')


class Outputs:
    """Fans each outcome out to several outputs."""

    def __init__(self, outputs, monotonic=time.monotonic):
        self.outputs = list(outputs)
        self._monotonic = monotonic
        self._warned_at = {}     # output -> when its last failure was logged
        for call in CALLS:
            setattr(self, call, self._fan_out(call))

    def _fan_out(self, call):
        def each(*args, **kwargs):
            for output in self.outputs:
                error = None
                try:
                    getattr(output, call)(*args, **kwargs)
                except Exception as e:  # noqa: BLE001 - never the prober's
                    error = e
                if error is not None:   # logged out of the except clause
                    self._failed(output, call, error)
        each.__name__ = call
        return each

    def _failed(self, output, call, error):
        now = self._monotonic()
        last = self._warned_at.get(id(output))
        if last is not None and now - last < WARN_EVERY:
            return
        self._warned_at[id(output)] = now
        LOG.warning('The %s output failed to take %s: %s',
                    type(output).__name__, call, error)

    def close(self):
        """Stop what the outputs serve (an HTTP port, a writer thread)."""
        for output in self.outputs:
            close = getattr(output, 'close', None)
            if close is None:
                continue
            error = None
            try:
                close()
            except Exception as e:  # noqa: BLE001 - stopping goes on
                error = e
            if error is not None:
                self._failed(output, 'close', error)


def from_conf(conf):
    """The outputs `conf` asks for: statsd always, the others when set."""
    chosen = [statsd.Metrics(conf.statsd.host, conf.statsd.port,
                             conf.statsd.prefix)]
    if conf.prometheus.port:
        chosen.append(prometheus.Exporter(conf.prometheus.host,
                                          conf.prometheus.port,
                                          sleep=conf.inflight.sleep,
                                          phases=conf.prometheus.phases))
    if conf.inflight.status_file:
        chosen.append(status.StatusFile.from_conf(conf))
    return Outputs(chosen)
