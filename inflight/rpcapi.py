"""Client side of the inflight RPC API.

`BaseAPI` carries `inflight()`, the probe every service answers; a service's
own rpcapi class can inherit it. `InflightAPI` is nova-inflight's own API,
on which services cast their results back.
"""

import oslo_messaging

# nova-inflight's own topic: results come back to `inflight.<prober host>`.
TOPIC = 'inflight'

# Probes travel in the namespace of Nova's own ping, `baseapi`, which every
# Nova RPC server has an endpoint for, whatever its manager's version; and
# under a name that ends in `_ignore_errors`, whose absence oslo.messaging
# logs at DEBUG only. So a service without the endpoint drops a probe
# without an ERROR in its log, and refuses a call at once (NoSuchMethod).
NAMESPACE = 'baseapi'
METHOD = 'inflight_ignore_errors'


class BaseAPI:
    """Client side of the API every probed service answers.

    API version history:

        * 1.0 - inflight_ignore_errors(probe), in namespace baseapi
    """

    BASE_RPC_API_VERSION = '1.0'

    def __init__(self, transport, topic):
        self.topic = topic
        self.client = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic=topic))

    def _prepare(self, host, **kwargs):
        return self.client.prepare(server=host, namespace=NAMESPACE,
                                   version=self.BASE_RPC_API_VERSION,
                                   retry=0, **kwargs)

    def inflight(self, ctxt, host, probe):
        """Cast a probe to `topic.host`; it does not wait for the service."""
        self._prepare(host).cast(ctxt, METHOD, probe=probe._asdict())

    def inflight_call(self, ctxt, host, probe, timeout):
        """Send a probe as a call: the service's endpoint takes it at once
        (the result still comes back apart); one without it refuses it."""
        self._prepare(host, timeout=timeout).call(ctxt, METHOD,
                                                  probe=probe._asdict())


class InflightAPI(BaseAPI):
    """Client side of nova-inflight's own API.

    API version history:

        * 1.0 - inflight_result(result)
    """

    RPC_API_VERSION = '1.0'

    def __init__(self, transport):
        super().__init__(transport, TOPIC)

    def inflight_result(self, ctxt, host, result):
        """Cast a probe's result back to the prober on `host`."""
        cctxt = self.client.prepare(server=host, version=self.RPC_API_VERSION,
                                    retry=1)
        cctxt.cast(ctxt, 'inflight_result', result=result._asdict())
