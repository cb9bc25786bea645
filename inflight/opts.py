"""Configuration options, as module lists for oslo-config-generator."""

import copy
import socket

from oslo_config import cfg
from oslo_config import types
from oslo_db import options as db_options
import oslo_messaging
from oslo_messaging import opts as messaging_opts

from inflight.timings import PHASES

# Nova's exchange; oslo.messaging's own default is 'openstack'.
NOVA_EXCHANGE = 'nova'

host_opts = [
    cfg.StrOpt('host',
               default=socket.gethostname(),
               sample_default='<server-hostname>',
               help='Name of this host, as in the services table. Results '
                    'of probes come back to the queue inflight.<host>.'),
    cfg.IntOpt('service_down_time', default=60, min=1,
               help='Seconds since its last heartbeat (last_seen_up) after '
                    'which Nova deems a service down; read from nova.conf.'),
]

# What a process answering probes honours: in nova-inflight, and in services
# with the mixin or the hook (registered on their own configuration).
service_opts = [
    cfg.FloatOpt('max_sleep', default=5.0, min=0.0,
                 help='Longest sleep this process honours when it answers '
                      'a probe; longer requests are clamped.'),
    cfg.IntOpt('max_sleeping', default=100, min=1,
               help='Probes this process lets sleep at once; more are '
                    'dropped (and counted lost by the prober).'),
]

inflight_opts = [
    cfg.FloatOpt('probe_interval', default=1.0, min=0.01,
                 help='Seconds between two ticks of the check_inflight '
                      'periodic task, at most (pacing by cycle_seconds ticks '
                      'more often for large rings).'),
    cfg.FloatOpt('cycle_seconds', default=60.0, min=0.0,
                 help='Probe every enabled service once in this many '
                      'seconds, spread evenly (services / cycle_seconds '
                      'probes per second). 0: probes_per_tick on every tick '
                      'instead.'),
    cfg.IntOpt('max_in_flight', default=2000, min=1,
               help='Probes out at once, at most, when pacing by '
                      'cycle_seconds; a cycle that needs more takes longer, '
                      'and the log says so.'),
    cfg.IntOpt('probes_per_tick', default=10, min=1,
               help='With cycle_seconds = 0: services probed on each tick, '
                    'taken in turn from the circular queue.'),
    cfg.FloatOpt('sleep', default=1.0, min=0.0,
                 help='Seconds each probed service is asked to sleep; how '
                      'late it wakes is the event-loop overhead.'),
    cfg.FloatOpt('probe_timeout', default=10.0, min=0.01,
                 help='Seconds a probe may take beyond its requested sleep '
                      'before it counts as lost; also the longest '
                      'nova-inflight takes to stop on SIGTERM.'),
    cfg.FloatOpt('refresh_interval', default=60.0, min=0.01,
                 help='Seconds between two reads of the services table.'),
    cfg.ListOpt('include_topics', default=[],
                help='Probe only services with these topics (empty: all).'),
    cfg.ListOpt('exclude_topics', default=[],
                help='Never probe services with these topics.'),
    cfg.DictOpt('probe_methods', default={},
                help='Kind of probe to use for every service of a topic, '
                     'instead of finding it out: topic:kind pairs, kind one '
                     'of inflight (the mixin), baseapi (Nova\'s ping), '
                     'oslo_rpc_server_ping (servers with rpc_ping_enabled).'),
    cfg.FloatOpt('richer_retry_interval', default=300.0, min=0.0,
                 help='Seconds after which a service answering only a ping '
                      'is tried on the inflight mixin again.'),
    cfg.IntOpt('max_calls', default=32, min=1,
               help='Ping calls (the baseapi and oslo_rpc_server_ping '
                    'kinds) made at once; each holds a thread up to '
                    'probe_timeout. Inflight casts have threads of their own, '
                    'so calls to silent services never hold them up, and '
                    'deadlines still end every probe on time.'),
    cfg.IntOpt('offset_window', default=8, min=1,
               help='Probes per service over which its clock offset is '
                    'estimated: the one with the lowest delay is trusted.'),
    cfg.IntOpt('deaf_after', default=3, min=1,
               help='Probes lost in a row after which a service that is up '
                    'by its heartbeat is reported deaf.'),
    cfg.BoolOpt('register_service', default=False,
                help='Add (or refresh) this prober\'s own row in the '
                     'services table at start, so that it probes itself '
                     'too. Needs write access: leave off on a Nova '
                     'database.'),
    cfg.StrOpt('status_file', default='/run/nova-inflight/status.json',
               help='File the daemon writes every status_interval seconds '
                    'with each service\'s recent probes, worst first, for '
                    '`inflight top` (JSON, mode 0644: no URL or password in '
                    'it). Empty: none.'),
    cfg.FloatOpt('status_interval', default=2.0, min=0.1,
                 help='Seconds between two writes of status_file.'),
]

statsd_opts = [
    cfg.HostAddressOpt('host', default='127.0.0.1',
                       help='statsd server to send timings to.'),
    cfg.PortOpt('port', default=8125, help='statsd UDP port.'),
    cfg.StrOpt('prefix', default='inflight',
               help='First part of every metric name.'),
]

prometheus_opts = [
    cfg.PortOpt('port', default=0,
                help='TCP port on which nova-inflight serves its metrics to '
                     'Prometheus, at /metrics. 0: not served.'),
    cfg.HostAddressOpt('host', default='127.0.0.1',
                       help='Address the Prometheus port listens on: '
                            '0.0.0.0 (or ::) for every interface.'),
    cfg.ListOpt('phases', default=list(PHASES),
                item_type=types.String(choices=PHASES),
                help='Phases served as histograms, each about 20 series per '
                     'service: fewer phases for many services (queue_total '
                     'alone for the alerts of '
                     'etc/prometheus/inflight-rules.yml).'),
]

coordination_opts = [
    cfg.StrOpt('backend_url', default='', secret=True,
               help='tooz URL of the coordination backend through which '
                    'several nova-inflight share the services, each probing '
                    'its part: redis://host:6379?timeout=30, '
                    'etcd3+http://host:2379, zookeeper://host:2181. A prober '
                    'that dies is replaced after the URL\'s timeout (its '
                    'membership expiry, 30 s by default on Redis). Empty: '
                    'this prober probes every service.'),
    cfg.StrOpt('group_name', default='nova-inflight',
               help='Group the probers sharing the services join: the same '
                    'on each of them.'),
    cfg.IntOpt('weight', default=1, min=1,
               help='This prober\'s part of the services against the '
                    'others\': a prober of weight 2 probes twice as many as '
                    'one of weight 1.'),
    cfg.FloatOpt('check_interval', default=2.0, min=0.1,
                 help='Seconds between two looks at who is in the group; a '
                      'prober joining or leaving is seen within this, one '
                      'dying within this and the timeout of backend_url.'),
]


api_database_opts = [
    cfg.StrOpt('connection', secret=True,
               help='The SQLAlchemy URL of Nova\'s API database, as in '
                    'nova.conf: set, the services of every cell its '
                    'cell_mappings name are probed, each over its cell\'s '
                    'database and broker, and metric names carry the cell. '
                    'Unset: the services table of [database] connection, '
                    'on [DEFAULT] transport_url.'),
]


def _library_opts(list_opts, group, names):
    """Copies of a library's options, picked by name from its list_opts()."""
    opts = dict(list_opts())[group]
    return [copy.deepcopy(opt) for opt in opts if opt.name in names]


def _messaging_opts():
    opts = _library_opts(messaging_opts.list_opts, None,
                         ('transport_url', 'control_exchange'))
    for opt in opts:
        if opt.name == 'control_exchange':
            opt.default = NOVA_EXCHANGE
    return opts


def list_opts():
    """Entry point for oslo-config-generator (namespace `inflight`)."""
    return [
        ('DEFAULT', host_opts + _messaging_opts()),
        ('database', _library_opts(db_options.list_opts, 'database',
                                   ('connection',))),
        ('api_database', copy.deepcopy(api_database_opts)),
        ('inflight', copy.deepcopy(inflight_opts + service_opts)),
        ('statsd', copy.deepcopy(statsd_opts)),
        ('prometheus', copy.deepcopy(prometheus_opts)),
        ('coordination', copy.deepcopy(coordination_opts)),
    ]


def register_opts(conf):
    """Register every option inflight reads on `conf`."""
    conf.register_opts(host_opts)
    conf.register_opts(inflight_opts + service_opts, group='inflight')
    conf.register_opts(statsd_opts, group='statsd')
    conf.register_opts(api_database_opts, group='api_database')
    conf.register_opts(prometheus_opts, group='prometheus')
    conf.register_opts(coordination_opts, group='coordination')
    db_options.set_defaults(conf)
    # As Nova does: Nova's services listen on the exchange `nova`.
    oslo_messaging.set_transport_defaults(control_exchange=NOVA_EXCHANGE)
