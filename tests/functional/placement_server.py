"""Placement's WSGI application on 127.0.0.1, for a Nova under test.

    placement_server.py CONFIG_DIR

Reads CONFIG_DIR/placement.conf, listens on a free port, prints
`LISTENING <port>` once it answers, and serves until it is stopped. Run with
the Python of the virtualenv that has Placement.
"""

import os
import socketserver
import sys
from wsgiref import simple_server

os.environ['OS_PLACEMENT_CONFIG_DIR'] = sys.argv[1]

from placement.wsgi import api  # noqa: E402  (reads the variable above)


class Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True


class QuietHandler(simple_server.WSGIRequestHandler):
    """Placement logs each request itself: no second line on stderr."""

    def log_message(self, format, *args):
        pass


def main():
    httpd = simple_server.make_server('127.0.0.1', 0, api.application,
                                      server_class=Server,
                                      handler_class=QuietHandler)
    print('LISTENING %d' % httpd.server_port, flush=True)
    httpd.serve_forever()


if __name__ == '__main__':
    main()
