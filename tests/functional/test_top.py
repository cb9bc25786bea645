"""`inflight top` in a real terminal (tmux, 80x24), fed by the real daemon
probing a small cloud over RabbitMQ: what a person sees, the README's
screen, and that q and Ctrl-C quit it cleanly.

Time is scaled down: the daemon writes its status file every 0.3 s (2 s by
default); probes time out after 0.5 s, and two lost in a row make a service
deaf.
"""

import datetime
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid

import pytest

from harness import add_row, daemon_conf
import readme
import servers

STATUS_INTERVAL = 0.3
WIDTH, HEIGHT = 80, 24
LINE = 'inflight top'
SYNOPSIS = 'inflight top [--status-file PATH] [--interval SECONDS] [--once]'


class Tmux:
    """A tmux server of the test's own (its own socket)."""

    def __init__(self, tmp_path):
        self.socket = str(tmp_path / 'tmux.sock')
        self.session = None

    def run(self, *args):
        return subprocess.run(['tmux', '-S', self.socket, *args],
                              capture_output=True, text=True, timeout=30,
                              check=True).stdout

    def start(self, argv, cwd, home, exit_status, errors):
        """Run `argv` in a new session (the one the other calls use), with
        `home` as HOME, its stderr to the file `errors` and its exit status
        to the file `exit_status`."""
        self.session = 'top-%s' % uuid.uuid4().hex[:8]
        command = '%s 2>%s; echo $? >%s' % (
            ' '.join(shlex.quote(arg) for arg in argv),
            shlex.quote(str(errors)), shlex.quote(str(exit_status)))
        self.run('new-session', '-d', '-s', self.session, '-x', str(WIDTH),
                 '-y', str(HEIGHT), '-c', str(cwd), '-e', 'HOME=%s' % home,
                 command)

    def screen(self):
        """The lines on the screen, wrapped ones joined (-J): a line wider
        than the terminal shows as one; the blank ones at the end left out."""
        shown = self.run('capture-pane', '-p', '-J', '-t', self.session)
        return [line.rstrip() for line in shown.rstrip().split('\n')]

    def keys(self, *keys):
        self.run('send-keys', '-t', self.session, *keys)

    def kill(self):
        subprocess.run(['tmux', '-S', self.socket, 'kill-server'],
                       capture_output=True, timeout=30)


@pytest.fixture
def tmux(tmp_path):
    if not shutil.which('tmux'):
        servers.unavailable('tmux is not installed (Debian: package tmux)',
                            'INFLIGHT_REQUIRE_TMUX')
    terminal = Tmux(tmp_path)
    yield terminal
    terminal.kill()


def wait_for(condition, what, timeout=20.0):
    """Poll `condition()` until it gives something true; that."""
    ends = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < ends, 'no %s within %ss' % (what, timeout)
        time.sleep(0.05)


def table(screen):
    """The rows under the table's header line, up to the footer."""
    starts = [i for i, line in enumerate(screen)
              if line.startswith('service ')]
    rows = []
    for line in screen[starts[0] + 1:] if starts else []:
        if ' services, worst first' in line:
            break
        rows.append(line)
    return rows


def shape(line, host):
    """A line of the screen with the numbers (and the daemon's host, which
    is the test's) made N, blanks made one."""
    line = line.replace(host, 'ctl1.example.org')
    return ' '.join(re.sub(r'\d+(\.\d+)?', 'N', line).split())


def exited(exit_status):
    """The exit status, once the command ended."""
    return wait_for(lambda: exit_status.exists() and
                    exit_status.read_text().strip(), 'exit status')


def test_top_shows_the_deaf_service_first_and_refreshes_until_q(
        tmux, processes, broker_url, exchange, services_db, statsd,
        tmp_path):
    db_url, engine = services_db
    processes.service('eventlet', broker_url, exchange, 'compute',
                      'cmp1.example.org', db_url)
    processes.service('threading', broker_url, exchange, 'compute',
                      'cmp2.example.org', db_url, answers=('baseapi',))
    # Up by its heartbeat, but nothing consumes its queue.
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    add_row(engine, 'cmp9.example.org', 'compute', last_seen_up=now)
    status_file = tmp_path / 'status.json'
    processes.daemon(daemon_conf(
        tmp_path, broker_url, exchange, db_url, statsd.port, sleep=0.1,
        probe_timeout=0.5, deaf_after=2, register_service='false',
        status_file=status_file, status_interval=STATUS_INTERVAL))
    # `inflight top` as the README shows it: [inflight] status_file from
    # the configuration file oslo.config finds first, in ~/.inflight/.
    home = tmp_path / 'home'
    (home / '.inflight').mkdir(parents=True)
    (home / '.inflight' / 'inflight.conf').write_text(
        '[inflight]\nstatus_file = %s\n' % status_file)
    shown = readme.shown(LINE)
    status, errors = tmp_path / 'top.status', tmp_path / 'top.stderr'
    wait_for(status_file.exists, 'status file')   # as a person would
    tmux.start(readme.argv(LINE), tmp_path, home, status, errors)

    def answered_and_deaf():
        screen = tmux.screen()
        rows = table(screen)
        names = [row.split()[0] for row in rows if row.strip()]
        if (names[:1] == ['compute.cmp9'] and 'DEAF' in rows[0] and
                'compute.cmp1' in names and 'compute.cmp2' in names and
                re.search(r'compute\.cmp1 +inflight +\d', '\n'.join(rows))):
            return screen
        return None
    screen = wait_for(answered_and_deaf, 'frame with every service')
    assert all(len(line) <= WIDTH for line in screen), screen
    assert len(screen) <= HEIGHT
    header = re.match(r'updated \d+ s ago: nova-inflight on (\S+), pid '
                      r'\d+$', screen[0])
    assert header, screen
    assert re.match(r'3 services, 1 deaf, loss \d+(\.\d)?% over 10 min; '
                    r'hosts are \*\.example\.org$', screen[1]), screen
    probes = re.match(r'probes sent (\d+), received (\d+), lost (\d+), late '
                      r'\d+$', screen[2])
    assert probes, screen
    rows = table(screen)
    deaf = rows[0].split()
    assert deaf[:2] == ['compute.cmp9', '-'], rows
    assert deaf[5:7] == ['100%', 'DEAF'], rows
    [healthy] = [row.split() for row in rows
                 if row.startswith('compute.cmp1 ')]
    # last, p90, overhead (ms); no loss; the mixin's figures.
    assert all(re.fullmatch(r'\d+(\.\d+)?', v) for v in healthy[2:5]), rows
    assert healthy[1] == 'inflight' and healthy[5] == '0%', rows
    assert re.fullmatch(r'\d+/\d+', healthy[6]), rows
    [ping] = [row.split() for row in rows if row.startswith('compute.cmp2 ')]
    assert ping[1] == 'baseapi' and ping[4] == '-', rows
    assert screen[len(screen) - 1] == '3 of 3 services, worst first  q quits'
    # The README's screen, but for the numbers (and the order of the
    # healthy two, which goes by their p90).
    host = header.group(1)
    assert [shape(line, host) for line in screen[:5]] == \
        [shape(line, host) for line in shown[:5]]
    assert sorted(shape(line, host) for line in screen[5:]) == \
        sorted(shape(line, host) for line in shown[5:])

    # It refreshes: the counts go on.
    def counted_on():
        screen = tmux.screen()
        again = re.match(r'probes sent (\d+)', '\n'.join(screen[2:3]))
        return again and int(again.group(1)) > int(probes.group(1)) and screen
    later = wait_for(counted_on, 'refreshed count')
    (tmp_path / 'screen.txt').write_text('\n'.join(later) + '\n')

    tmux.keys('q')
    assert exited(status) == '0'
    assert errors.read_text() == ''

    # Ctrl-C quits as cleanly.
    status.unlink()
    tmux.start(readme.argv(LINE), tmp_path, home, status, errors)
    wait_for(lambda: table(tmux.screen()), 'frame')
    tmux.keys('C-c')
    assert exited(status) == '0'
    assert errors.read_text() == ''

    # The synopsis, every option given; --once prints every row and ends.
    assert readme.shown(SYNOPSIS) is None
    line = SYNOPSIS
    for written, given in [('PATH', str(status_file)), ('SECONDS', '0.5'),
                           ('[', ''), (']', '')]:
        line = line.replace(written, given)
    done = subprocess.run(readme.argv(line), capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, COLUMNS='80'))
    assert done.returncode == 0 and done.stderr == '', done.stderr
    printed = done.stdout.splitlines()
    assert 'compute.cmp9' in printed[4] and 'DEAF' in printed[4]
    assert printed[-1] == '3 of 3 services, worst first'

    assert 'Traceback' not in processes.log()
    assert os.stat(status_file).st_mode & 0o777 == 0o644
