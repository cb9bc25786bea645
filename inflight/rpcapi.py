"""Client side of the inflight RPC API.

`BaseAPI` carries `inflight()`, the probe every service answers; a service's
own rpcapi class can inherit it. `InflightAPI` is nova-inflight's own API,
on which services cast their results back.
"""

import oslo_messaging

# nova-inflight's own topic: results come back to `inflight.<prober host>`.
TOPIC = 'inflight'

# Probes travel in their own namespace, so that a manager whose own target
# is at version 6.x still receives them (as Nova's `baseapi` ping does).
NAMESPACE = 'inflight'


class BaseAPI:
    """Client side of the API every probed service answers.

    API version history:

        * 1.0 - inflight(probe)
    """

    BASE_RPC_API_VERSION = '1.0'

    def __init__(self, transport, topic):
        self.topic = topic
        self.client = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic=topic))

    def inflight(self, ctxt, host, probe):
        """Cast a probe to `topic.host`; it does not wait for the service."""
        cctxt = self.client.prepare(server=host, namespace=NAMESPACE,
                                    version=self.BASE_RPC_API_VERSION,
                                    retry=0)
        cctxt.cast(ctxt, 'inflight', probe=probe._asdict())


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
