"""Nova's `ping` in the `baseapi` namespace, which every Nova RPC server answers."""

NAMESPACE = 'baseapi'
VERSION = '1.0'


class WrongAnswer(Exception):
    """The service answered, but not to this probe."""


def send(api, host, probe, timeout):
    """Call ping(arg=probe id) and check the service echoes it back."""
    cctxt = api.client.prepare(server=host, namespace=NAMESPACE,
                               version=VERSION, timeout=timeout, retry=0)
    reply = cctxt.call({}, 'ping', arg=probe.id)
    if not isinstance(reply, dict) or reply.get('arg') != probe.id:
        raise WrongAnswer('ping answered %r' % (reply,))
