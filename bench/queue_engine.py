"""Benchmark: a busy hall's day replayed through the durable queue as fast as one core can.

    .venv/bin/python bench/queue_engine.py [--tickets 2000] [--seed 7] [--dir PATH]

A seeded simulation makes the day: 2,000 residents arriving 09:00-18:00 (a morning peak
and a smaller afternoon one), 8 windows (two comprehensive 综合窗口, six for groups of
services), log-normal service times, some priority (老弱病残孕) and appointment tickets and a
few no-shows (过号). Every take, call, skip and complete goes through ``DurableQueue.execute``
on a real SQLite file, so each is committed before the next begins. Printed:

- persisted actions per second with ``synchronous=full`` and ``synchronous=normal``, one
  commit per action;
- the same day's actions replayed with group commit (``DurableQueue.execute_batch``, as the
  hub does with a burst of requests): one transaction per batch, same decisions, same state;
- the time to rebuild the day's state from the event log (a restart);
- the waiting-time estimate's error: the wait a ticket showed when it was taken against the
  wait the resident then had until first called, in the simulated day.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import random
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hallkit.config import HallConfig, parse_config
from hallkit.queue.engine import Refused
from hallkit.queue.models import CallNext, Command, Complete, Priority, Skip, TakeTicket, TicketCalled
from hallkit.store.durable import DurableQueue
from hallkit.store.sqlite import Synchronous

GOAL_ACTIONS_PER_SECOND = 5_000
GOAL_REBUILD_SECONDS = 1.0

# service id, prefix, mean minutes: quick social-security and civil-affairs errands dominate a
# busy township hall; permits and land matters take longer.
SERVICES = [
    ("pension", "A", 1.6),
    ("medical", "A", 1.8),
    ("relief", "B", 2.4),
    ("household", "C", 1.5),
    ("labour", "D", 2.0),
    ("veterans", "E", 2.2),
    ("farm", "F", 2.6),
    ("permit", "G", 3.5),
]
SHARE = [0.22, 0.18, 0.12, 0.14, 0.1, 0.06, 0.1, 0.08]
WINDOWS = [
    (1, ["*"]),
    (2, ["*"]),
    (3, ["pension", "medical"]),
    (4, ["pension", "medical"]),
    (5, ["relief", "household"]),
    (6, ["labour", "veterans"]),
    (7, ["farm", "permit"]),
    (8, ["household", "permit"]),
]
OPEN_HOUR, CLOSE_HOUR = 9, 18
DAY = datetime(2026, 11, 23, tzinfo=UTC) - timedelta(hours=8)  # midnight Beijing, a Monday


def hall_config() -> HallConfig:
    services = "".join(
        f'\n[[services]]\nid = "{sid}"\nname = "{sid}"\nprefix = "{prefix}"\ndefault_service_minutes = {mean}\n'
        for sid, prefix, mean in SERVICES
    )
    windows = "".join(
        f'\n[[windows]]\nnumber = {n}\nname = "窗口{n}"\nservices = [{", ".join(f"{s!r}" for s in serves)}]\n'
        .replace("'", '"')
        for n, serves in WINDOWS
    )
    return parse_config(
        f"""
[hall]
id = "bench-hall"
name = "基准镇便民服务中心"
level = "township"
region_code = "652323100000"

[queue]
max_priority_in_a_row = 3
no_show_requeue = 1
accept_outside_hours = true

[privacy]
id_hash_key = "bench-secret-0123456789"
{services}{windows}"""
    )


@dataclass(order=True, slots=True)
class Arrival:
    at: datetime
    service: str = field(compare=False)
    priority: Priority = field(compare=False)


def arrivals(rng: random.Random, count: int) -> list[Arrival]:
    """Arrival times with a 10:00 peak and a 15:30 one, by rejection sampling."""

    def rate(hour: float) -> float:
        return 0.3 + math.exp(-((hour - 10.0) ** 2) / 1.5) + 0.6 * math.exp(-((hour - 15.5) ** 2) / 1.2)

    times: list[float] = []
    while len(times) < count:
        hour = rng.uniform(OPEN_HOUR, CLOSE_HOUR - 0.25)
        if rng.uniform(0, 1.35) < rate(hour):
            times.append(hour)
    times.sort()
    ids = [s[0] for s in SERVICES]
    out = []
    for hour in times:
        roll = rng.random()
        priority = Priority.PRIORITY if roll < 0.08 else Priority.APPOINTMENT if roll < 0.13 else Priority.NORMAL
        out.append(Arrival(DAY + timedelta(hours=hour), rng.choices(ids, SHARE)[0], priority))
    return out


@dataclass(slots=True)
class DayResult:
    seconds: float
    actions: int
    takes: int
    calls: int
    errors: list[float]  # estimate minus actual wait, minutes
    waits: list[float]  # actual wait until first called, minutes
    queue: DurableQueue
    journal: list[tuple[Command, datetime]]  # every persisted command, with its time


def simulate(config: HallConfig, path: Path, synchronous: Synchronous, seed: int, count: int) -> DayResult:
    rng = random.Random(seed)
    means = {sid: mean for sid, _, mean in SERVICES}
    queue = DurableQueue(config, path, synchronous=synchronous)
    pending = arrivals(rng, count)
    # (time, order, window): when a window is next free; idle windows wait for an arrival.
    free: list[tuple[datetime, int, int]] = []
    idle = {n for n, _ in WINDOWS}
    taken: dict[str, tuple[datetime, float]] = {}  # ticket id -> (taken at, predicted minutes)
    waits: dict[str, float] = {}
    actions = takes = calls = 0
    order = 0
    journal: list[tuple[Command, datetime]] = []

    def run(command: Command, now: datetime) -> list[TicketCalled]:
        nonlocal actions
        outcome = queue.execute(command, now)
        journal.append((command, now))
        actions += 1
        return [e for e in outcome.events if isinstance(e, TicketCalled)]

    def serve(window: int, now: datetime) -> None:
        """The window calls next; the resident comes (or not) and is served for a while."""
        nonlocal calls, order
        try:
            called = run(CallNext(window=window), now)
        except Refused:
            idle.add(window)
            return
        if not called:  # it only completed the last ticket: nobody left for this window
            idle.add(window)
            return
        calls += 1
        ticket = called[0].ticket_id
        if ticket not in waits:
            waits[ticket] = (now - taken[ticket][0]).total_seconds() / 60
        if rng.random() < 0.03:  # 过号: nobody comes within a minute
            after = now + timedelta(minutes=1)
            run(Skip(window=window), after)
        else:
            record = queue.engine.state.tickets[ticket]
            minutes = rng.lognormvariate(math.log(means[record.service_id]) - 0.18, 0.6)
            after = now + timedelta(minutes=minutes)
        order += 1
        heapq.heappush(free, (after, order, window))

    started = time.perf_counter()
    i = 0
    while i < len(pending) or free:
        if free and (i == len(pending) or free[0][0] <= pending[i].at):
            now, _, window = heapq.heappop(free)
            serve(window, now)
            continue
        arrival = pending[i]
        i += 1
        take = TakeTicket(service_id=arrival.service, priority=arrival.priority)
        outcome = queue.execute(take, arrival.at)
        journal.append((take, arrival.at))
        actions += 1
        takes += 1
        assert outcome.ticket is not None
        taken[outcome.ticket.ticket_id] = (arrival.at, outcome.ticket.estimated_wait_minutes)
        for window in sorted(idle):
            if arrival.service in config.served_by(config.window(window)):
                idle.discard(window)
                serve(window, arrival.at)
                break
    for window in sorted({n for n, _ in WINDOWS} - idle):
        run(Complete(window=window), DAY + timedelta(hours=23))
    seconds = time.perf_counter() - started
    errors = [taken[t][1] - wait for t, wait in waits.items()]
    return DayResult(seconds, actions, takes, calls, errors, list(waits.values()), queue, journal)


def _outcomes(queue: DurableQueue) -> dict[str, tuple[str, int | None]]:
    """Each ticket's final state and window: what two runs of the same day must agree on."""
    return {tid: (r.state.value, r.window) for tid, r in queue.engine.state.tickets.items()}


def replay_grouped(config: HallConfig, path: Path, journal: list[tuple[Command, datetime]],
                   batch: int) -> tuple[float, DurableQueue]:
    """The day's commands again, ``batch`` per transaction; seconds taken and the queue."""
    queue = DurableQueue(config, path, synchronous="full")
    started = time.perf_counter()
    for i in range(0, len(journal), batch):
        chunk = journal[i:i + batch]
        queue.execute_batch([c for c, _ in chunk], [t for _, t in chunk])
    return time.perf_counter() - started, queue


def commit_floor(folder: Path, synchronous: Synchronous) -> float:
    """Seconds per bare one-row commit on this disk: no queue can be faster than this."""
    conn = sqlite3.connect(folder / f"floor-{synchronous}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    conn.execute("CREATE TABLE t (body TEXT)")
    started = time.perf_counter()
    for _ in range(500):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?)", ("x" * 400,))
        conn.execute("COMMIT")
    conn.close()
    return (time.perf_counter() - started) / 500


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, help="where to put the SQLite files (default: a temp dir)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as on the hall's box
    config = hall_config()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        print(f"a busy day: {args.tickets} tickets, {len(WINDOWS)} windows, seed {args.seed}")
        result = None
        for synchronous in ("full", "normal"):
            path = Path(folder) / f"day-{synchronous}.db"
            result = simulate(config, path, synchronous, args.seed, args.tickets)
            rate = result.actions / result.seconds
            verdict = "ok" if rate >= GOAL_ACTIONS_PER_SECOND else "MISSED"
            floor = commit_floor(Path(folder), synchronous)
            print(f"synchronous={synchronous:<6}: {result.actions} persisted actions "
                  f"({result.takes} tickets issued, {result.calls} calls) in {result.seconds:.2f} s = "
                  f"{rate:,.0f} actions/s   goal >= {GOAL_ACTIONS_PER_SECOND:,}: {verdict}"
                  f"   (this disk's bare commit: {floor * 1e6:.0f} us = at most {1 / floor:,.0f}/s)")
            if synchronous == "full":
                for batch in (16, 64):
                    seconds, grouped = replay_grouped(config, Path(folder) / f"grouped-{batch}.db",
                                                      result.journal, batch)
                    rate = len(result.journal) / seconds
                    same = _outcomes(grouped) == _outcomes(result.queue)
                    grouped.close()
                    verdict = "ok" if rate >= GOAL_ACTIONS_PER_SECOND else "MISSED"
                    print(f"synchronous=full, group commit of {batch}: {len(result.journal)} actions in "
                          f"{seconds:.2f} s = {rate:,.0f} actions/s   goal >= {GOAL_ACTIONS_PER_SECOND:,}: "
                          f"{verdict}; same tickets: {same}")
            result.queue.close()
        assert result is not None
        path = Path(folder) / "day-normal.db"
        started = time.perf_counter()
        rebuilt = DurableQueue(config, path)
        rebuild = time.perf_counter() - started
        events = rebuilt.store.count()
        same = rebuilt.engine.snapshot() == result.queue.engine.snapshot()
        rebuilt.close()
        verdict = "ok" if rebuild < GOAL_REBUILD_SECONDS else "MISSED"
        print(f"rebuild from the log: {events} events in {rebuild:.3f} s   goal < {GOAL_REBUILD_SECONDS:.0f} s: "
              f"{verdict}; same state as before: {same}")
        absolute = [abs(e) for e in result.errors]
        print(f"wait estimate vs actual wait until called ({len(absolute)} tickets): "
              f"mean absolute error {statistics.fmean(absolute):.1f} min, p90 {percentile(absolute, 0.9):.1f} min, "
              f"mean bias {statistics.fmean(result.errors):+.1f} min; "
              f"actual wait: mean {statistics.fmean(result.waits):.1f} min, p90 {percentile(result.waits, 0.9):.1f} min")


if __name__ == "__main__":
    main()
