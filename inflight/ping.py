"""`inflight ping TOPIC HOST`: probe one service, like ping(8), from a shell.

It runs the daemon's prober (same kinds, same fallback) on a reply queue of
its own, one probe at a time, and sends nothing to statsd.
"""

import json
import math
import os
import queue
import statistics
import sys
import threading
import time

from oslo_log import log
import oslo_messaging

from inflight import broker
from inflight.cloud import record
from inflight import logs
from inflight import methods
from inflight.outputs import statsd
from inflight import prober
from inflight import rpcapi
from inflight import timings


class _Results:
    """The endpoint results come back to."""

    target = oslo_messaging.Target(version=rpcapi.InflightAPI.RPC_API_VERSION)

    def __init__(self, prober):
        self.prober = prober

    def inflight_result(self, context, result):
        self.prober.receive(result)


def set_defaults(conf):
    """Quiet logs: each probe's outcome is printed anyway."""
    conf.set_default('default_log_levels', log.get_default_log_levels() + [
        'inflight=WARN'])


def percentile(values, fraction):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarise(outcomes):
    """Sent, received, loss % and min/median/p90/max (ms) of each phase."""
    answered = [o for o in outcomes if not o.get('lost')]
    phases = {}
    for phase in timings.PHASES:
        values = [o[phase] for o in answered if phase in o]
        if values:
            phases[phase] = {'min': min(values),
                             'median': statistics.median(values),
                             'p90': percentile(values, 0.9),
                             'max': max(values)}
    sent = len(outcomes)
    return {'sent': sent, 'received': len(answered),
            'loss_percent': 100.0 * (sent - len(answered)) / sent if sent
            else 0.0,
            'phases': phases}


def _line(outcome):
    if outcome.get('lost'):
        return 'seq=%d lost (no answer within the timeout)' % outcome['seq']
    line = 'seq=%d %-20s %s ms' % (outcome['seq'], outcome['kind'], ' '.join(
        '%s=%.2f' % (p, outcome[p]) for p in timings.PHASES if p in outcome))
    return ' '.join([line] + figures(outcome.get('state') or {}))


def figures(state):
    """The service's figures (a result's state) as a probe's line shows
    them: busy=2/64 waiting=0 hub_timers=57 hub_listeners=3."""
    words = []
    if 'executor_busy' in state:
        words.append('busy=%d/%s' % (state['executor_busy'],
                                     state.get('executor_max', '?')))
    if 'executor_waiting' in state:
        words.append('waiting=%d' % state['executor_waiting'])
    words += ['%s=%d' % (name, state[name])
              for name in ('hub_timers', 'hub_listeners') if name in state]
    return words


def _report(name, summary, out):
    print('--- %s inflight ping statistics ---' % name, file=out)
    print('%s sent, %d received, %.1f%% loss'
          % (logs.plural(summary['sent'], 'probe'), summary['received'],
             summary['loss_percent']), file=out)
    if summary['phases']:
        print('%-13s %10s %10s %10s %10s  (ms)'
              % ('phase', 'min', 'median', 'p90', 'max'), file=out)
    for phase, s in summary['phases'].items():
        print('%-13s %10.2f %10.2f %10.2f %10.2f'
              % (phase, s['min'], s['median'], s['p90'], s['max']), file=out)


def _started(server, timeout):
    """Start `server`, unless the broker cannot be reached in `timeout` s."""
    started = threading.Event()

    def start():
        server.start()
        started.set()
    threading.Thread(target=start, daemon=True).start()
    return started.wait(timeout)


def _reach(conf, transport, timeout, monotonic=time.monotonic):
    """Try the broker for up to `timeout` s: None once it takes the login,
    else why it could not be reached; raises broker.LoginRefused."""
    ends = monotonic() + timeout
    while True:
        why = broker.check(conf, transport)
        if why is None or monotonic() >= ends:
            return why
        time.sleep(min(0.5, max(0.0, ends - monotonic())))


def run(conf, topic, host, count, interval, method=None, as_json=False,
        out=None):
    """Probe topic.host `count` times; 0 if all answered, 1 on any loss."""
    out = out or sys.stdout
    reply_host = '%s.ping-%d' % (conf.host, os.getpid())
    transport = oslo_messaging.get_rpc_transport(conf)
    try:
        why = _reach(conf, transport, conf.inflight.probe_timeout)
    except broker.LoginRefused:
        transport.cleanup()
        raise
    if why is not None:
        transport.cleanup()
        print('inflight ping: error: no broker answered at %s within %gs: %s'
              % (broker.masked(conf), conf.inflight.probe_timeout, why),
              file=sys.stderr, flush=True)
        return 1
    outcomes = queue.Queue()
    overrides = dict(conf.inflight.probe_methods)
    if method:
        overrides[topic] = method
    runner = prober.Prober(
        lambda s: rpcapi.BaseAPI(transport, s.topic), statsd.NullMetrics(),
        reply_host, conf.inflight.sleep, conf.inflight.probe_timeout,
        methods.MethodBook(overrides, richer_retry_interval=math.inf),
        on_outcome=[lambda *outcome: outcomes.put(outcome)])
    server = oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic=rpcapi.TOPIC, server=reply_host),
        [_Results(runner)])
    if not _started(server, conf.inflight.probe_timeout):
        print('inflight ping: error: the broker at %s stopped answering'
              % broker.masked(conf), file=sys.stderr, flush=True)
        os._exit(1)   # the driver goes on retrying in threads of its own
    service = record.Service.of(topic, host)
    name = '%s.%s' % (topic, host)
    results = []
    try:
        if not as_json:
            print('INFLIGHT %s: %s, sleep %.3g s, timeout %.3g s, '
                  'exchange %s' % (name, logs.plural(count, 'probe'),
                                   conf.inflight.sleep,
                                   conf.inflight.probe_timeout,
                                   conf.control_exchange), file=out)
        for seq in range(1, count + 1):
            started = time.monotonic()
            runner.send([service])
            while True:
                runner.expire()
                try:
                    _, kind, t, state = outcomes.get(timeout=0.05)
                    break
                except queue.Empty:
                    continue
            outcome = {'seq': seq, 'kind': kind, 'lost': t is None}
            if t is not None:
                outcome.update((p, v * 1000.0) for p, v in t._asdict().items()
                               if v is not None)
            if state:
                outcome['state'] = state
            results.append(outcome)
            if not as_json:
                print(_line(outcome), file=out, flush=True)
            if seq < count:
                time.sleep(max(0.0, started + interval - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        runner.abandon()
        server.stop()
        server.wait()
        transport.cleanup()
        # This run's own queue (its pid in the name): gone, even if the
        # broker has not yet let go of the consumer just closed.
        broker.remove(conf, ['%s.%s' % (rpcapi.TOPIC, reply_host)],
                      if_unused=False)
    summary = summarise(results)
    if as_json:
        json.dump({'topic': topic, 'host': host, 'probes': results,
                   'summary': summary}, out, indent=2)
        print(file=out)
    else:
        _report(name, summary, out)
    return 0 if results and summary['received'] == summary['sent'] else 1
