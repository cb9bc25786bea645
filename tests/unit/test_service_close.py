"""The daemon's close at stop: what it lets go of, and in what order."""

import threading

from oslo_config import cfg

from inflight import opts
from inflight import service


class Closing:
    """Stand-ins for what the daemon closes, each saying when it was."""

    def __init__(self):
        self.closed = []
        self.server_stopped = threading.Event()

    def leave(self):
        # tooz's client takes a second to stop once the group is left: a
        # close that waited for it before stopping the server would wait
        # here for good.
        assert self.server_stopped.wait(10), 'the server waited for the leave'
        self.closed.append('group')

    def stop(self):
        self.server_stopped.set()
        self.closed.append('server')

    def wait(self):
        pass

    def close(self):
        self.closed.append('table or outputs')


def test_the_group_is_left_while_the_server_stops():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    daemon = service.InflightService(conf, transport=object())
    closing = Closing()
    daemon._partition = closing
    daemon._server = daemon._table = daemon._outputs = closing
    closer = threading.Thread(target=daemon._close, daemon=True)
    closer.start()
    closer.join(20)
    assert not closer.is_alive()
    # Everything let go of, the group last: _close waited for the leave.
    assert closing.closed == ['server', 'table or outputs',
                              'table or outputs', 'group']
