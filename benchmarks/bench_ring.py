"""Benchmark 4: the ring at 100,000 service rows.

A SQLite services table (Nova's schema, db.sync) with `rows` enabled rows,
read the way nova-inflight reads it (db.ServiceTable.enabled(), i.e.
db.enabled_services() on a read-only engine), into a ServiceRing.

* refresh: enabled_services() + ServiceRing.refresh(), into an empty ring
  (start) and into a ring half way through its cycle (every
  refresh_interval after). Baseline: a plain SQLAlchemy select of the same
  columns into a list. Goal: < 1 s.
* scheduling: ServiceRing.next(), ServiceRing.take() and Pacer.due(), in us
  per probe. Baseline: next() on an itertools.cycle over the same services.
* memory: tracemalloc, what the rows and the ring hold once built (and the
  peak while building). Baseline: the rows alone. Goal: < 100 MB.
"""

import datetime
import gc
import itertools
import os
import statistics
import time
import tracemalloc
import uuid

import sqlalchemy as sa

from inflight.cloud import db
from inflight import pacing
from inflight import ring

TOPICS = ('compute', 'compute', 'compute', 'compute', 'conductor',
          'scheduler')


def make_table(url, rows, chunk=10000):
    """`rows` live, enabled service rows, as Nova writes them."""
    engine = db.create_engine(url, read_only=False)
    db.sync(engine)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    with engine.begin() as conn:
        for start in range(0, rows, chunk):
            batch = []
            for i in range(start, min(rows, start + chunk)):
                topic = TOPICS[i % len(TOPICS)]
                batch.append(dict(
                    host='host%06d.rack%03d.example.org' % (i, i % 500),
                    binary='nova-%s' % topic, topic=topic, report_count=i,
                    disabled=False, deleted=0, forced_down=False, version=66,
                    created_at=now, updated_at=now, last_seen_up=now,
                    uuid=str(uuid.uuid4())))
            conn.execute(db.services.insert(), batch)
    engine.dispose()


def plain_fetch(engine):
    """The baseline: the same columns, a plain select, into a list."""
    t = db.services.c
    query = sa.select(t.id, t.host, t.binary, t.topic, t.last_seen_up,
                      t.created_at)
    with engine.connect() as conn:
        return list(conn.execute(query))


def _timed(function, *args):
    started = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - started, value


def _mb(nbytes):
    return nbytes / 2**20


def measure_once(table, engine, rows):
    """One repeat: every timing, in seconds or us."""
    out = {}
    gc.collect()
    out['plain_fetch_s'], fetched = _timed(plain_fetch, engine)
    assert len(fetched) == rows, len(fetched)
    del fetched
    gc.collect()
    out['enabled_services_s'], services = _timed(table.enabled)
    assert len(services) == rows, len(services)

    services_ring = ring.ServiceRing()
    out['refresh_first_s'], _ = _timed(services_ring.refresh, services)
    # Half way through the cycle, the same membership read again.
    half = rows // 2
    started = time.perf_counter()
    for _ in range(half):
        services_ring.next()
    out['next_us'] = (time.perf_counter() - started) / half * 1e6
    again = table.enabled()
    out['refresh_steady_s'], _ = _timed(services_ring.refresh, again)
    assert len(services_ring) == rows
    out['refresh_total_s'] = out['enabled_services_s'] + max(
        out['refresh_first_s'], out['refresh_steady_s'])

    # take(n): n as on a tick of the pacer at this size (cycle 60 s, ticks
    # of at least 10 ms).
    per_tick = max(1, round(rows / 60.0 * 0.01))
    ticks = max(1, rows // per_tick)
    started = time.perf_counter()
    for _ in range(ticks):
        services_ring.take(per_tick)
    out['take_us'] = (time.perf_counter() - started) / (
        ticks * per_tick) * 1e6
    out['take_batch'] = per_tick

    # Pacer.due() on a fake clock, one call per 10 ms tick.
    now = [0.0]
    pacer = pacing.Pacer(60.0, 1000, monotonic=lambda: now[0])
    due_total = 0
    calls = max(1000, ticks)
    started = time.perf_counter()
    for _ in range(calls):
        now[0] += 0.01
        due_total += pacer.due(rows, 0)
    elapsed = time.perf_counter() - started
    out['due_us_per_call'] = elapsed / calls * 1e6
    out['due_us'] = elapsed / max(1, due_total) * 1e6
    out['scheduling_us'] = out['take_us'] + out['due_us']

    # The baseline: the cheapest ring there is.
    cycle = itertools.cycle(services)
    started = time.perf_counter()
    for _ in range(rows):
        next(cycle)
    out['cycle_next_us'] = (time.perf_counter() - started) / rows * 1e6
    return out


def measure_memory(table, rows):
    """tracemalloc: the rows alone, the ring over them, and the peak."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        services = table.enabled()
        rows_bytes = tracemalloc.get_traced_memory()[0] - base
        services_ring = ring.ServiceRing(services)
        del services
        for _ in range(rows // 2):   # a cycle half done: _probed is full
            services_ring.next()
        held = tracemalloc.get_traced_memory()[0] - base
        peak = tracemalloc.get_traced_memory()[1] - base
        # Every refresh_interval: read the table again and refresh, while
        # the ring still holds the last read.
        tracemalloc.reset_peak()
        services_ring.refresh(table.enabled())
        refresh_peak = tracemalloc.get_traced_memory()[1] - base
        assert len(services_ring) == rows
    finally:
        tracemalloc.stop()
    return {'rows_mb': _mb(rows_bytes), 'ring_held_mb': _mb(held),
            'ring_only_mb': _mb(held - rows_bytes), 'peak_mb': _mb(peak),
            'refresh_peak_mb': _mb(refresh_peak),
            'bytes_per_service': held / rows}


def run(rows, repeats, workdir, log=print):
    path = os.path.join(workdir, 'services-%d.sqlite' % rows)
    url = 'sqlite:///%s' % path
    started = time.perf_counter()
    make_table(url, rows)
    log('  %d rows written in %.1fs' % (rows, time.perf_counter() - started))
    table = db.ServiceTable(url)
    table.enabled()          # warm: connect, compile, page cache
    engine = db.create_engine(url)
    plain_fetch(engine)
    reps = []
    try:
        for r in range(repeats):
            reps.append(measure_once(table, engine, rows))
            log('  repeat %d/%d: read %.3fs + refresh %.3fs (plain fetch '
                '%.3fs); next %.2fus take %.2fus due %.3fus' % (
                    r + 1, repeats, reps[-1]['enabled_services_s'],
                    reps[-1]['refresh_steady_s'], reps[-1]['plain_fetch_s'],
                    reps[-1]['next_us'], reps[-1]['take_us'],
                    reps[-1]['due_us']))
        memory = measure_memory(table, rows)
    finally:
        table.close()
        engine.dispose()
        os.unlink(path)

    def med(key):
        return statistics.median(r[key] for r in reps)

    def med_ratio(num, den):
        return statistics.median(r[num] / r[den] for r in reps)

    refresh_s = med('refresh_total_s')
    return {
        'title': 'The ring at %d service rows' % rows,
        'goal': 'enabled_services() + refresh() < 1 s; ring memory < 100 MB',
        'met': refresh_s < 1.0 and memory['ring_held_mb'] < 100.0,
        'goals': {'refresh < 1 s': refresh_s < 1.0,
                  'memory < 100 MB': memory['ring_held_mb'] < 100.0},
        'ratios': {
            '(enabled_services + refresh) / plain fetch':
                med_ratio('refresh_total_s', 'plain_fetch_s'),
            'enabled_services / plain fetch':
                med_ratio('enabled_services_s', 'plain_fetch_s'),
            'ServiceRing.next / itertools.cycle next':
                med_ratio('next_us', 'cycle_next_us'),
            'scheduling (take + due) / itertools.cycle next':
                med_ratio('scheduling_us', 'cycle_next_us'),
            'memory (rows + ring) / rows alone':
                memory['ring_held_mb'] / memory['rows_mb'],
        },
        'figures': {
            'rows': rows,
            'refresh_total_s': refresh_s,
            'enabled_services_s': med('enabled_services_s'),
            'refresh_first_s': med('refresh_first_s'),
            'refresh_steady_s': med('refresh_steady_s'),
            'plain_fetch_s': med('plain_fetch_s'),
            'next_us': med('next_us'),
            'take_us': med('take_us'),
            'take_batch': reps[0]['take_batch'],
            'due_us': med('due_us'),
            'due_us_per_call': med('due_us_per_call'),
            'scheduling_us': med('scheduling_us'),
            'cycle_next_us': med('cycle_next_us'),
            # At this many services every 60 s: the share of one core the
            # scheduling takes.
            'scheduling_core_share': med('scheduling_us') * 1e-6 * rows / 60,
            'memory_rows_mb': memory['rows_mb'],
            'memory_ring_held_mb': memory['ring_held_mb'],
            'memory_ring_only_mb': memory['ring_only_mb'],
            'memory_peak_mb': memory['peak_mb'],
            'memory_refresh_peak_mb': memory['refresh_peak_mb'],
            'memory_bytes_per_service': memory['bytes_per_service'],
        },
        'repeats': reps,
    }
