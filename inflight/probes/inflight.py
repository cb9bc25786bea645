"""The inflight probe: answered by InflightEndpoint (the mixin or the hook),
with the full breakdown; its result comes back apart."""


def cast(api, host, probe, timeout):
    """Cast `probe` to `topic.host`: the service it is known to reach."""
    api.inflight({}, host, probe)


def call(api, host, probe, timeout):
    """Send `probe` as a call, answered at once by the endpoint when the
    service has it, or refused at once when it has not."""
    api.inflight_call({}, host, probe, timeout)
