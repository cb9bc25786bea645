"""One prober for benchmark 6, in a process of its own.

    prober_process.py BROKER_URL TAG HOST WORKDIR

What nova-inflight runs (bench_rpc.ProberSide: the real Prober, its RPC
server, the InflightManager and the baseline's EchoBack), as server HOST on
topic `inflight`, probing services of the run TAG (bench_rpc.Services).

The parent talks to it over stdin/stdout, as to a probed service:

    run KIND COUNT WINDOW HOST[,HOST...]
               ->  DONE <JSON of ProberSide.pipelined()>: COUNT messages of
                   KIND (probe or echo), WINDOW out at most, to the HOSTs
    (EOF)      ->  stops (its queue is left for the parent to delete)

It prints `READY` once its server consumes.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

# Before oslo.messaging: the prober runs on oslo.service's threading backend.
import inflight.cmd  # noqa: E402,F401

import json  # noqa: E402
import logging  # noqa: E402

import bench_rpc  # noqa: E402


def serve(side, lines, out):
    """Answer `run` lines until EOF."""
    for line in lines:
        word, kind, count, window, hosts = line.split()
        assert word == 'run', line
        hosts = hosts.split(',')
        if hosts != side.hosts:
            side.aim(hosts)
        figures = side.pipelined(kind, int(count), int(window))
        out.write('DONE %s\n' % json.dumps(figures))
        out.flush()


def main():
    broker_url, tag, host, workdir = sys.argv[1:5]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format='%(levelname)s %(name)s: %(message)s')
    side = bench_rpc.ProberSide(broker_url, tag, bench_rpc.topic_of(tag), [],
                                host, workdir)
    side.start()
    print('READY', flush=True)
    serve(side, sys.stdin, sys.stdout)
    # The parent deletes this prober's queue; a graceful stop of a RabbitMQ
    # listener takes seconds and would only slow the run down.
    sys.stdout.flush()
    os._exit(0)


if __name__ == '__main__':
    main()
