"""`oslo_rpc_server_ping`, answered by any oslo.messaging server with
`[DEFAULT] rpc_ping_enabled = true`."""


class WrongAnswer(Exception):
    """The service answered something other than 'pong'."""


def send(api, host, probe, timeout):
    """Call oslo_rpc_server_ping and check it says 'pong'."""
    cctxt = api.client.prepare(server=host, timeout=timeout, retry=0)
    reply = cctxt.call({}, 'oslo_rpc_server_ping')
    if reply != 'pong':
        raise WrongAnswer('oslo_rpc_server_ping answered %r' % (reply,))
