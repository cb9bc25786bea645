"""`inflight top`: the status file nova-inflight writes, as a live table.

It reads the file alone (no broker, no database, no configuration needed):
one line per service, worst first, the header saying whose data it is and
how old. The file is read again every interval; `q` or Ctrl-C quits.
"""

import contextlib
import json
import os
import select
import sys
import termios
import time
import tty

from rich.console import Console
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

FORMAT = 1
# Data older than this many of the daemon's intervals is said to be stale.
STALE_INTERVALS = 3
# Lines of the frame that are not service rows: three of header, the
# table's own header, the footer.
FRAME_LINES = 5
KINDS = {'oslo_rpc_server_ping': 'oslo'}   # shortened to fit 80 columns


class NoStatus(Exception):
    """The status file cannot be read; the message says why, in one line."""


def load(path):
    """The snapshot the status file at `path` holds."""
    try:
        with open(path) as f:
            snapshot = json.load(f)
    except FileNotFoundError:
        raise NoStatus('no status file at %s: nova-inflight writes it, while '
                       'it runs, where [inflight] status_file says; give '
                       'that path with --status-file' % path)
    except OSError as e:
        raise NoStatus('cannot read the status file %s: %s'
                       % (path, e.strerror or e))
    except ValueError as e:
        raise NoStatus('%s is not a status file nova-inflight wrote: %s'
                       % (path, e))
    if not isinstance(snapshot, dict) or snapshot.get('format') != FORMAT:
        raise NoStatus('%s is not a status file of this version of '
                       'nova-inflight (format %r, not %d)'
                       % (path, snapshot.get('format')
                          if isinstance(snapshot, dict) else None, FORMAT))
    return snapshot


def ms(value):
    """A time in ms, in at most 7 characters; '-' when not measured."""
    if value is None:
        return '-'
    if value < 10:
        return '%.2f' % value
    if value < 100:
        return '%.1f' % value
    return '%.0f' % value


def percent(value):
    """'0%', '2.5%', '100%'; '-' with no probe to count."""
    if value is None:
        return '-'
    if value == 0 or value >= 10:
        return '%.0f%%' % value
    return '%.1f%%' % value


def span(seconds):
    """'4 s', '3 min', '2 h', '5 d'."""
    seconds = max(0, seconds)
    for unit, size in (('d', 86400), ('h', 3600), ('min', 60)):
        if seconds >= 2 * size:
            return '%d %s' % (seconds // size, unit)
    return '%d s' % seconds


def count(value):
    """A count, its thousands apart: '100,000'."""
    return '{:,}'.format(value)


def services(value):
    """'1 service', '100,000 services'."""
    return '%s service%s' % (count(value), '' if value == 1 else 's')


def common_domain(hosts):
    """The dot-labels every host ends with, keeping one label of each:
    '.example.org' for cmp1.example.org and ctl1.example.org; '' if none."""
    split = [host.split('.') for host in hosts]
    if len(split) < 2:
        return ''
    shared = []
    for labels in zip(*(reversed(labels[1:]) for labels in split)):
        if len(set(labels)) != 1:
            break
        shared.insert(0, labels[0])
    return '.' + '.'.join(shared) if shared else ''


def latency(row, which):
    """The row's time queued (a ping's round trip), latest or p90, ms."""
    values = row.get(which) or {}
    if 'queue_total' in values:
        return values['queue_total']
    return values.get('ping_round_trip')


def line(*parts):
    """One line of text, cut rather than wrapped where it is too long."""
    text = Text(no_wrap=True, overflow='ellipsis')
    for part in parts:
        if isinstance(part, tuple):
            text.append(*part)
        else:
            text.append(part)
    return text


def header(snapshot, now, domain):
    """The lines above the table: whose data and how old; the services;
    the probes."""
    age = now - snapshot['written_at']
    interval = snapshot.get('interval') or 2.0
    if snapshot.get('stopped'):
        freshness = ('stopped %s ago' % span(age), 'bold yellow')
    elif age > STALE_INTERVALS * interval:
        freshness = ('not updated for %s' % span(age), 'bold red')
    else:
        freshness = ('updated %s ago' % span(age), '')
    counts, window = snapshot['counts'], snapshot['window']
    deaf = snapshot['deaf']
    return [
        line(freshness, ': nova-inflight on %s, pid %s'
             % (snapshot['host'], snapshot['pid'])),
        line('%s, ' % services(snapshot['services']),
             ('%s deaf' % count(deaf), 'bold red' if deaf else ''),
             ', loss %s over %s' % (percent(window['loss_percent']),
                                    span(snapshot['window_seconds'])),
             '; hosts are *%s' % domain if domain else ''),
        line('probes sent %s, received %s, lost %s, late %s' % (
            count(counts['sent']), count(counts['received']),
            count(counts['lost']), count(counts['late']))),
    ]


def table(rows, domain):
    """The services' rows, as given (worst first)."""
    grid = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False,
                 expand=True, header_style='bold')
    grid.add_column('service', ratio=1, no_wrap=True, overflow='ellipsis')
    grid.add_column('kind', width=8, no_wrap=True, overflow='crop')
    for name, width in (('last ms', 7), ('p90 ms', 7), ('ovh ms', 6),
                        ('loss', 5)):
        grid.add_column(name, width=width, justify='right', no_wrap=True)
    grid.add_column('', width=4, no_wrap=True)
    grid.add_column('busy', width=7, justify='right', no_wrap=True)
    grid.add_column('wait', width=4, justify='right', no_wrap=True)
    for row in rows:
        host = row['host']
        if domain and host.endswith(domain):
            host = host[:-len(domain)]
        kind = row.get('kind')
        figures = row.get('figures') or {}
        busy = (('%s/%s' % (figures['executor_busy'],
                            figures.get('executor_max', '?')))
                if 'executor_busy' in figures else '-')
        loss = row['window']['loss_percent']
        name = '%s.%s' % (row['topic'], host)
        grid.add_row(
            '%s:%s' % (row['cell'], name) if row.get('cell') else name,
            KINDS.get(kind, kind) or '-',
            ms(latency(row, 'latest')),
            ms(latency(row, 'p90')),
            ms((row.get('latest') or {}).get('overhead')),
            Text(percent(loss), style='red' if loss else ''),
            Text('DEAF', style='bold red') if row['deaf'] else '',
            busy,
            str(figures.get('executor_waiting', '-')),
        )
    return grid


def frame(snapshot, now, height=None):
    """What the screen shows: header, table, footer; with `height`, as many
    rows as fit in that many lines."""
    rows = snapshot['rows']
    domain = common_domain([row['host'] for row in rows])
    shown = rows if height is None else rows[:max(0, height - FRAME_LINES)]
    footer = '%s of %s, worst first' % (count(len(shown)),
                                        services(snapshot['services']))
    return Group(*header(snapshot, now, domain), table(shown, domain),
                 Text(footer + ('  q quits' if height else ''),
                      style='dim'))


def message(text):
    """A frame that is a message: what keeps the file from being shown."""
    return Text(text, style='bold red')


class Keys:
    """Keys typed on a terminal, one at a time, without echo; on anything
    else, nothing (but the wait)."""

    def __init__(self, stream):
        self.fd = stream.fileno() if stream.isatty() else None
        self._saved = None

    def __enter__(self):
        if self.fd is not None:
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def wait(self, timeout):
        """The keys typed within `timeout` seconds ('' if none)."""
        if self.fd is None:
            time.sleep(timeout)
            return ''
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return ''
        # A terminal gone (end of file) is as good as q.
        return os.read(self.fd, 64).decode(errors='replace') or 'q'


def once(path, console, clock=time.time):
    """Print one frame, every row the file holds; the exit status."""
    console.print(frame(load(path), clock()))
    return 0


def watch(path, interval, console, keys, clock=time.time):
    """Show the file, read again every `interval` s, until q or Ctrl-C."""
    load(path)          # a wrong path is said at once, not on a blank screen
    with contextlib.suppress(KeyboardInterrupt), keys, \
            Live(console=console, screen=True, auto_refresh=False) as live:
        while True:
            try:
                shown = frame(load(path), clock(), console.size.height)
            except NoStatus as e:
                shown = message(str(e))
            live.update(shown, refresh=True)
            if 'q' in keys.wait(interval).lower():
                break
    return 0


def run(path, interval, only_once=False, console=None):
    """`inflight top`; its exit status: 0, or 1 if the file cannot be read."""
    console = console or Console()
    try:
        if only_once:
            return once(path, console)
        return watch(path, interval, console, Keys(sys.stdin))
    except NoStatus as e:
        print('inflight top: error: %s' % e, file=sys.stderr)
        return 1
