"""The inflight probe: a cast answered by InflightMixin, with the full breakdown."""


def send(api, host, probe, timeout):
    """Cast `probe` to `topic.host`; its result comes back on its own."""
    api.inflight({}, host, probe)
