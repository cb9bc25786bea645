"""`inflight top`: a snapshot drawn at 80 columns, worst first, its age
said; the file found from the options, or said missing in one line."""

import json
import subprocess
import sys

from rich.console import Console

from inflight.cloud import record
from inflight.outputs import status
from inflight import timings
from inflight import top

NOW = 10000.0


def snapshot(tmp_path, written_ago=1.0, stopped=False, hosts=None):
    """A snapshot as the status output makes it, of a few services."""
    clock = [NOW - written_ago - 60]
    out = status.StatusFile(str(tmp_path / 'status.json'), 2.0,
                            'ctl1.example.org', clock=lambda: clock[0],
                            start=False)

    def svc(topic, host):
        return record.Service.of(topic, host, id=1, binary='nova-' + topic)
    cmp1 = svc('compute', 'cmp1.example.org')
    cmp2 = svc('compute', 'cmp2.example.org')
    ctl1 = svc('conductor', 'ctl1.example.org')
    cmp9 = svc('compute', 'cmp9.example.org')
    long_name = svc('compute',
                    'cmp-rack12-node034-with-a-long-name.example.org')
    for n in range(10):
        clock[0] += 6
        out.sent([cmp1, cmp2, ctl1, cmp9, long_name])
        out.received(cmp1, 'inflight', timings.Timings(
            0.002, 1.0012, 0.0012, 0.003, 1.0062, 0.005 + n / 10000.0),
            state={'executor_busy': 1, 'executor_max': 64,
                   'executor_waiting': 0})
        out.received(cmp2, 'baseapi', timings.round_trip_only(0.0071))
        out.received(ctl1, 'oslo_rpc_server_ping',
                     timings.round_trip_only(0.0042))
        out.received(long_name, 'inflight', timings.Timings(
            0.1, 1.0013, 0.0013, 0.003, 1.1043, 0.103))
        out.lost([cmp9])
    out.deaf(cmp9, True)
    clock[0] = NOW - written_ago
    return out.snapshot(stopped=stopped)


def drawn(shot, height=None, width=80):
    console = Console(width=width, record=True, color_system=None)
    console.print(top.frame(shot, NOW, height))
    return console.export_text().splitlines()


def test_a_frame_at_80_columns_lists_the_worst_first(tmp_path):
    lines = drawn(snapshot(tmp_path))
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0] == ('updated 1 s ago: nova-inflight on ctl1.example.org, '
                        'pid %d' % status.os.getpid())
    assert lines[1] == ('5 services, 1 deaf, loss 20% over 10 min; hosts are '
                        '*.example.org')
    assert lines[2] == 'probes sent 50, received 40, lost 10, late 0'
    assert lines[3].split() == ['service', 'kind', 'last', 'ms', 'p90', 'ms',
                                'ovh', 'ms', 'loss', 'busy', 'wait']
    rows = [line.split() for line in lines[4:-1]]
    assert rows == [
        ['compute.cmp9', '-', '-', '-', '-', '100%', 'DEAF', '-', '-'],
        [lines[5].split()[0], 'inflight', '103', '103', '1.30', '0%', '-',
         '-'],
        ['compute.cmp2', 'baseapi', '7.10', '7.10', '-', '0%', '-', '-'],
        ['compute.cmp1', 'inflight', '5.90', '5.80', '1.20', '0%', '1/64',
         '0'],
        ['conductor.ctl1', 'oslo', '4.20', '4.20', '-', '0%', '-', '-'],
    ]
    # A name too long for its column is cut, and says so.
    assert lines[5].startswith('compute.cmp-rack12-node') and '…' in lines[5]
    assert lines[-1] == '5 of 5 services, worst first'


def test_old_data_says_how_old_and_a_clean_stop_says_stopped(tmp_path):
    assert drawn(snapshot(tmp_path, written_ago=4.0))[0].startswith(
        'updated 4 s ago')
    assert drawn(snapshot(tmp_path, written_ago=37.0))[0].startswith(
        'not updated for 37 s: nova-inflight on ctl1.example.org')
    assert drawn(snapshot(tmp_path, written_ago=300.0))[0].startswith(
        'not updated for 5 min')
    assert drawn(snapshot(tmp_path, written_ago=12.0, stopped=True))[
        0].startswith('stopped 12 s ago')


def test_a_frame_fits_the_height_given(tmp_path):
    lines = drawn(snapshot(tmp_path), height=8)
    assert len(lines) == 8
    assert lines[-1] == '3 of 5 services, worst first  q quits'
    assert 'DEAF' in lines[4]


def test_hosts_keep_their_name_when_they_share_no_domain():
    assert top.common_domain(['cmp1.example.org', 'ctl1.example.org']) == \
        '.example.org'
    assert top.common_domain(['a.dc1.example.org', 'b.dc2.example.org']) == \
        '.example.org'
    assert top.common_domain(['cmp1.example.org', 'cmp1']) == ''
    assert top.common_domain(['cmp1.example.org']) == ''
    assert top.common_domain(['example.org', 'cmp1.example.org']) == '.org'


def inflight_top(*args, cwd=None):
    return subprocess.run([sys.executable, '-m', 'inflight.cmd.manage',
                           *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env={'COLUMNS': '80',
                                                    'PATH': '/usr/bin:/bin'})


def test_once_prints_the_frame_and_exits_0(tmp_path):
    path = tmp_path / 'status.json'
    path.write_text(json.dumps(snapshot(tmp_path, written_ago=-1e9)))
    done = inflight_top('top', '--once', '--status-file', str(path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ''
    lines = done.stdout.splitlines()
    assert 'compute.cmp9' in lines[4] and 'DEAF' in lines[4]
    assert all(len(line) <= 80 for line in lines)


def test_the_file_is_the_one_the_configuration_names(tmp_path):
    path = tmp_path / 'elsewhere.json'
    path.write_text(json.dumps(snapshot(tmp_path)))
    conf = tmp_path / 'inflight.conf'
    conf.write_text('[inflight]\nstatus_file = %s\n' % path)
    done = inflight_top('--config-file', str(conf), 'top', '--once')
    assert done.returncode == 0, done.stderr
    assert 'compute.cmp9' in done.stdout


def test_no_file_is_one_line_naming_it_and_what_to_set(tmp_path):
    path = tmp_path / 'status.json'
    for args in (['--once'], []):
        done = inflight_top('top', '--status-file', str(path), *args)
        assert done.returncode == 1
        assert done.stdout == ''
        assert done.stderr == (
            'inflight top: error: no status file at %s: nova-inflight '
            'writes it, while it runs, where [inflight] status_file says; '
            'give that path with --status-file\n' % path)


def test_configuration_it_cannot_read_leaves_the_default(tmp_path):
    """As for a user who may not read the daemon's files: top goes on with
    the option's default (here: not there either)."""
    done = inflight_top('--config-file', str(tmp_path / 'nova.conf'), 'top',
                        '--once')
    assert done.returncode == 1
    assert done.stderr == (
        'inflight top: error: no status file at '
        '/run/nova-inflight/status.json: nova-inflight writes it, while it '
        'runs, where [inflight] status_file says; give that path with '
        '--status-file\n')
    # Other commands still say the configuration file is missing.
    done = inflight_top('--config-file', str(tmp_path / 'nova.conf'), 'ping',
                        'compute', 'cmp1')
    assert done.returncode == 2 and 'nova.conf' in done.stderr


def test_a_file_that_is_not_a_status_file_is_said_so(tmp_path):
    path = tmp_path / 'status.json'
    path.write_text('{"rows": [')
    done = inflight_top('top', '--once', '--status-file', str(path))
    assert done.returncode == 1
    assert done.stderr.startswith('inflight top: error: %s is not a status '
                                  'file nova-inflight wrote' % path)
    assert len(done.stderr.splitlines()) == 1


def test_an_empty_status_file_option_is_said_so(tmp_path):
    conf = tmp_path / 'inflight.conf'
    conf.write_text('[inflight]\nstatus_file =\n')
    done = inflight_top('--config-file', str(conf), 'top')
    assert done.returncode == 1
    assert done.stderr.startswith('inflight top: error: [inflight] '
                                  'status_file is empty')


def test_one_service_is_one_service_not_one_services():
    assert top.services(1) == '1 service'
    assert top.services(100000) == '100,000 services'


def test_a_service_of_a_cell_shows_its_cell(tmp_path):
    out = status.StatusFile(str(tmp_path / 'status.json'), 2.0,
                            'ctl1.example.org', clock=lambda: NOW - 1,
                            start=False)
    in_cell = record.Service.of('compute', 'cmp1.example.org', cell='cell1')
    without = record.Service.of('conductor', 'ctl1.example.org')
    out.sent([in_cell, without])
    for service in (in_cell, without):
        out.received(service, 'baseapi', timings.round_trip_only(0.004))
    text = '\n'.join(drawn(out.snapshot()))
    assert 'cell1:compute.cmp1' in text
    assert '\nconductor.ctl1 ' in text
