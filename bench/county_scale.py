"""One county on one machine: 500 halls × 10 devices against a real county broker and PostgreSQL.

What is real: the county Mosquitto (the project's configuration, ``hallkit.broker.testing``), ``hall county
ingest`` worker processes (one, then two), PostgreSQL, and on the hall side, per hall, the hub's
own uplink code: an outbox SQLite file with the hub's schema, :class:`broker.outbox.Outbox`
recording ratings and case updates (``record``) and turning device statuses into telemetry
(``handle``), and one :class:`broker.forwarder.Forwarder` holding one MQTT connection to the
county broker. What is simulated: the rest of each hub (no queue, no hall broker, no devices);
ratings, case updates, device statuses and queue statistics are made by a timer at a busy day's
rate, built from the real models; statistics are written as ``Outbox.write_stats`` writes them
but with made-up figures (no queue log behind them). The halls run as ``--processes`` worker
processes (500 forwarders in one Python process do not get their CONNECT out in time: the
harness would be the limit, not the county). Hall outboxes use ``synchronous=NORMAL`` (500 halls
share one disk here; a real hall has its own). Plain MQTT on loopback, anonymous: no TLS, no
per-hall password check.

The run:

1. the halls connect, all at once;
2. a busy day (``--steady`` seconds): each hall makes ``--ratings-per-hour`` ratings (one in 50
   bad, each opening a case), each device changes state ``--changes-per-hour`` times, statistics
   every ``--stats-minutes``; end-to-end lag from the item made at the hall to its row in
   PostgreSQL (the storing transaction's start);
3. an outage, four times (with one ingest worker, then two; each "live" and "queued"): every
   hall's link drops, the halls keep working, and ``--outage-hours`` of the busy day pile up in
   each outbox; then all halls come back in the same second. Live: the ingest runs meanwhile, so
   the halls' sending shares these cores with the county. Queued: the ingest workers are held
   (SIGSTOP) until every hall's backlog is at the broker, then let go: the county's own rate, as on
   a county machine whose halls are elsewhere (the halls still take the receipts and delete their
   rows, here). Printed: time until every hall is connected, until the county has every item made
   before the return, items per second, lag of items made during the storm, CPU per item of each
   part; then two workers ÷ one, live and queued;
4. exactly once: production stops, and every item sent is counted in PostgreSQL (ids are primary
   keys, so equal counts mean every item once); the quarantine must be empty.

Needs mosquitto and a PostgreSQL login that may create databases (``HALLKIT_TEST_PG``, default
the one scripts/bootstrap.sh makes). Run: ``.venv/bin/python bench/county_scale.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import heapq
import logging
import multiprocessing
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from hallkit.broker.testing import Mosquitto
from hallkit.contracts.hall import DeviceState, DeviceStatus, Refusal, Topics
from hallkit.contracts.mqtt import make_client
from hallkit.contracts.uplink import INGEST_FILTERS, QueueFigures, QueueStats, ServiceStats, UpKind, WindowStats, shared
from hallkit.county.schema import migrate
from hallkit.county.testing import create_database, database_dsn, drop_database
from hallkit.uplink.forwarder import Forwarder
from hallkit.uplink.outbox import Outbox
from hallkit.uplink.table import SCHEMA, add_item
from hallkit.uplink.testing import hall_config

from hallkit.rating.models import CaseStep, CaseUpdate, Level, Rating, RatingChannel

ROOT = Path(__file__).resolve().parents[1]


KINDS = ("rating", "case", "stats", "telemetry")
DEVICE_KINDS = ("kiosk", "printer", "card_reader", "pad", "pad", "pad", "pad", "display", "counter", "counter")
SERVICES = ("social", "medical", "pension", "household", "land", "civil")
TABLES = {  # kind: (table, the column holding when the item was made at the hall)
    "rating": ("ratings", "rated_at"),
    "case": ("case_updates", "at"),
    "stats": ("queue_stats", "as_of"),
    "telemetry": ("telemetry", "observed_at"),
}


def raise_nofile() -> None:
    """Mosquitto (started by us, so it inherits this) holds a socket per hall."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass(frozen=True)
class Rates:
    ratings_per_hour: float
    changes_per_hour: float
    stats_minutes: float
    devices: int


# ---- the hall side: one worker process holds many halls ----------------------------------------


def stamp(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class _NoHub:
    def refuse(self, topic: str, _reply_to: object, reason: str, detail: str, **_: object) -> None:
        raise ValueError(f"the outbox refused a simulated device status on {topic}: {reason} {detail}")


class SimHall:
    """One hall's uplink: the hub's outbox code and a real forwarder; what feeds it is simulated."""

    def __init__(self, hall_id: str, broker_url: str, folder: Path, rates: Rates) -> None:
        self.id = hall_id
        self.rates = rates
        self.config = hall_config(broker_url, hall_id=hall_id)
        assert self.config.upstream is not None
        self.upstream = self.config.upstream
        self.path = folder / f"{hall_id}.sqlite3"
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        for statement in SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO outbox_meta VALUES ('epoch', ?)", (uuid4().hex,))
        self.epoch = conn.execute("SELECT value FROM outbox_meta WHERE key = 'epoch'").fetchone()[0]
        conn.close()
        # What Outbox.attach does, without a hub: its own connection for telemetry and statistics.
        self.outbox = Outbox(self.config, self.upstream)
        self.outbox._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self.outbox._conn.execute("PRAGMA synchronous=1")
        self.outbox.hub = _NoHub()  # type: ignore[assignment]  # handle() asks it only to refuse bad input
        self.topics = Topics(hall_id)
        self.forwarder: Forwarder | None = None
        self.devices = [(f"{DEVICE_KINDS[d % len(DEVICE_KINDS)].replace('_', '-')}-{d}", DEVICE_KINDS[d % len(DEVICE_KINDS)])
                        for d in range(rates.devices)]
        self.device_state = [[True, 1, 0] for _ in self.devices]  # online, session, paper index
        self.lock = threading.Lock()
        self.ratings = 0
        self.stats_n = 0
        self.made: dict[str, array[float]] = {kind: array("d") for kind in KINDS}
        self.poller: sqlite3.Connection | None = None

    # ---- the link ----

    def prepare(self) -> None:
        """A new forwarder, as a restarting hub makes it; not started yet."""
        forwarder = Forwarder(self.path, self.upstream, self.config.hall, self.epoch, synchronous=1)
        self.forwarder = forwarder
        self.outbox.forwarder = forwarder

    def connect(self) -> None:
        if self.forwarder is None:
            self.prepare()
        assert self.forwarder is not None
        self.forwarder.start()

    def disconnect(self) -> None:
        forwarder, self.forwarder = self.forwarder, None
        self.outbox.forwarder = None
        if forwarder is not None:
            forwarder.stop()

    # ---- what the hall makes ----

    def rating(self, ts: float) -> None:
        with self.lock:
            self.ratings += 1
            n = self.ratings
        at = stamp(ts)
        level = Level.DISSATISFIED if n % 50 == 0 else (Level.VERY_SATISFIED if n % 3 else Level.SATISFIED)
        rating = Rating(
            rating_id=f"{self.id}-r{n:06d}", hall_id=self.id, region_code="652323100201",
            service_event_id=uuid4().hex, ticket_id=f"{at:%Y%m%d}-A{n:03d}", ticket_number=f"A{n % 1000:03d}",
            service_code=SERVICES[n % len(SERVICES)], service_name="低保申请", department="民政", window=1 + n % 6,
            staff_id=f"s{n % 6}", staff_name="张三", channel=RatingChannel.PAD, level=level, score=int(level),
            tags=["态度不好"] if level.bad else [], text="", served_at=at - timedelta(seconds=40), rated_at=at,
            resident_hash="ab" * 32)  # the outbox clears it, as for every rating
        with self.outbox._transaction() as conn:  # the rating part's transaction
            self.outbox.record(conn, rating)
            if level.bad:
                self.outbox.record(conn, CaseUpdate(
                    update_id=f"{rating.rating_id}-u1", case_id=f"case-{rating.rating_id}", rating_id=rating.rating_id,
                    hall_id=self.id, step=CaseStep.OPENED, by="hub", at=at, note="", deadline=at.date() + timedelta(days=7)))
        with self.lock:
            self.made["rating"].append(ts)
            if level.bad:
                self.made["case"].append(ts)

    def device_change(self, index: int, ts: float) -> None:
        """A device's retained status changed: the hub hands it to ``Outbox.handle``."""
        device, kind = self.devices[index]
        state = self.device_state[index]
        with self.lock:
            if kind == "printer" and state[0] and state[2] < 2:
                state[2] += 1  # ok → near_end → out, then offline for a new roll
            else:
                state[0] = not state[0]
                if state[0]:
                    state[1] += 1
                    state[2] = 0
        online, session, paper = state
        status = DeviceStatus(
            device=device, state=DeviceState.ONLINE if online else DeviceState.OFFLINE, session=session, kind=kind,
            version="2.3.1", ts=stamp(ts),
            detail={"paper": ("ok", "near_end", "out")[paper]} if kind == "printer" else {},
            problems=[Refusal(reason="printer.paper_out", zh="缺纸", en="paper out")] if paper == 2 else [])
        before = self.outbox.dropped
        self.outbox.handle(self.topics.device_status(device), status.model_dump_json().encode())
        if self.outbox.dropped == before:
            with self.lock:
                self.made["telemetry"].append(ts)

    def stats(self, ts: float) -> None:
        """Interval statistics, stored as ``Outbox.write_stats`` stores them (figures made up)."""
        with self.lock:
            self.stats_n += 1
            n = self.stats_n
        at = stamp(ts)
        day = at.date()
        taken = 20 * n
        waits = {"mean_wait_seconds": 312.5, "p90_wait_seconds": 780.0}
        stats = QueueStats(
            stats_id=f"{self.id}-{day.isoformat()}-{n}", hall_id=self.id, day=day, as_of=at, final=False,
            total=QueueFigures(taken=taken, served=taken - 6, abandoned=1, waiting=5, **waits),
            services=[ServiceStats(service_id=s, taken=taken // 6, served=taken // 6 - 1, abandoned=0, waiting=1, **waits)
                      for s in SERVICES],
            windows=[WindowStats(window=w, called=taken // 6, served=taken // 6 - 1, mean_service_seconds=240.0, **waits)
                     for w in range(1, 7)])
        with self.outbox._transaction() as conn:
            if not self.outbox._room_for(conn, 2000):
                return
            add_item(conn, UpKind.STATS, stats.stats_id, stats, thin_key=f"day:{day.isoformat()}")
        self.outbox._wake()
        with self.lock:
            self.made["stats"].append(ts)

    def backlog(self, hours: float, end: float) -> None:
        """What a busy day piles up in ``hours`` without a link, made at the hours before ``end``."""
        rates = self.rates
        events: list[tuple[float, Callable[[float], None]]] = []
        span = hours * 3600
        events += [(end - span * random.random(), self.rating) for _ in range(round(rates.ratings_per_hour * hours))]
        for d in range(rates.devices):
            change: Callable[[float], None] = functools.partial(self.device_change, d)
            events += [(end - span * random.random(), change) for _ in range(round(rates.changes_per_hour * hours))]
        events += [(end - span + i * rates.stats_minutes * 60, self.stats)
                   for i in range(int(hours * 60 / rates.stats_minutes))]
        for ts, make in sorted(events, key=lambda e: e[0]):
            make(round(ts, 6))

    def first_older(self, before: float) -> int | None:
        """The seq of the outbox's first item when it was made before ``before`` (in seq order, the
        oldest first), else None: all of those are stored at the county."""
        if self.poller is None:
            self.poller = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        row = self.poller.execute("SELECT seq, created FROM outbox ORDER BY seq LIMIT 1").fetchone()
        return int(row[0]) if row is not None and row[1] < before else None

    def counts(self, before: float | None) -> dict[str, int]:
        with self.lock:
            return {kind: len(made) if before is None else sum(1 for ts in made if ts < before)
                    for kind, made in self.made.items()}


class Producer(threading.Thread):
    """The busy day: Poisson ratings and device changes per hall, statistics on each hall's interval."""

    def __init__(self, halls: list[SimHall], rates: Rates) -> None:
        super().__init__(name="producer", daemon=True)
        self.halls = halls
        self.rates = rates
        self.running = threading.Event()
        self.stopping = threading.Event()
        self.heap: list[tuple[float, int, int]] = []  # (due, hall, stream: -2 rating, -1 stats, d device)
        self.failures = 0

    def _next(self, now: float, hall: int, stream: int) -> None:
        if stream == -1:
            due = now + self.rates.stats_minutes * 60
        else:
            rate = self.rates.ratings_per_hour if stream == -2 else self.rates.changes_per_hour
            due = now + random.expovariate(rate / 3600)
        heapq.heappush(self.heap, (due, hall, stream))

    def run(self) -> None:
        self.running.wait()
        now = time.time()
        for h in range(len(self.halls)):
            self._next(now, h, -2)
            heapq.heappush(self.heap, (now + random.uniform(0, self.rates.stats_minutes * 60), h, -1))
            for d in range(self.rates.devices):
                self._next(now, h, d)
        while not self.stopping.is_set():
            self.running.wait()
            due, h, stream = self.heap[0]
            delay = due - time.time()
            if delay > 0:
                self.stopping.wait(min(delay, 0.2))
                continue
            heapq.heappop(self.heap)
            hall = self.halls[h]
            ts = round(time.time(), 6)
            try:
                if stream == -2:
                    hall.rating(ts)
                elif stream == -1:
                    hall.stats(ts)
                else:
                    hall.device_change(stream, ts)
            except sqlite3.Error:
                self.failures += 1
            self._next(ts, h, stream)


def halls_main(first: int, count: int, broker_url: str, folder: str, rates: Rates, pipe: Connection) -> None:
    """Child process: ``count`` halls, driven by commands from the bench."""
    raise_nofile()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(filename=Path(folder) / f"halls-{first}.log", level=logging.WARNING)
    halls = [SimHall(f"hall-{h:03d}", broker_url, Path(folder), rates) for h in range(first, first + count)]
    producer = Producer(halls, rates)
    producer.start()
    while True:
        command, argument = pipe.recv()
        if command == "connect":
            for hall in halls:
                hall.connect()
            pipe.send(None)
        elif command == "connected":
            links = [h.forwarder for h in halls if h.forwarder is not None and h.forwarder.connected]
            pipe.send((len(links), max((f._connected_since for f in links), default=0.0)))
        elif command == "produce":
            (producer.running.set if argument else producer.running.clear)()
            pipe.send(None)
        elif command == "outage":
            hours, end = argument
            for hall in halls:
                hall.disconnect()
            for hall in halls:
                hall.backlog(hours, end)
                hall.prepare()  # built now, so that the return is only their start()
            pipe.send(None)
        elif command == "return":
            time.sleep(max(0.0, argument - time.time()))
            for hall in halls:
                hall.connect()
            pipe.send(time.time() - argument)
        elif command == "holding":
            pipe.send([seq for seq in (hall.first_older(argument) for hall in halls) if seq is not None])
        elif command == "acknowledged":
            pipe.send(sum(h.forwarder.broker_acknowledged for h in halls if h.forwarder is not None))
        elif command == "counts":
            totals = dict.fromkeys(KINDS, 0)
            for hall in halls:
                for kind, n in hall.counts(argument).items():
                    totals[kind] += n
            pipe.send((totals, producer.failures))
        elif command == "stop":
            producer.stopping.set()
            producer.running.set()
            for hall in halls:
                hall.disconnect()
            pipe.send(None)
            return


class HallProcesses:
    def __init__(self, processes: int, halls: int, broker: Mosquitto, folder: Path, rates: Rates) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        per = -(-halls // processes)
        for first in range(0, halls, per):
            parent, child = context.Pipe()
            process = context.Process(target=halls_main, daemon=True,
                                      args=(first, min(per, halls - first), broker.url, str(folder), rates, child))
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def ask(self, command: str, argument: Any = None) -> list[Any]:
        for pipe in self.pipes:
            pipe.send((command, argument))
        return [pipe.recv() for pipe in self.pipes]

    def connected(self) -> tuple[int, float]:
        answers = self.ask("connected")
        return sum(a[0] for a in answers), max(a[1] for a in answers)

    def counts(self, before: float | None = None) -> tuple[dict[str, int], int]:
        totals = dict.fromkeys(KINDS, 0)
        failures = 0
        for counts, failed in self.ask("counts", before):
            failures += failed
            for kind, n in counts.items():
                totals[kind] += n
        return totals, failures

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.ask("stop")
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


# ---- the county side ---------------------------------------------------------------------------


def county_broker(folder: Path, limits: str) -> Mosquitto:
    """Mosquitto with the project's configuration; ``county``: per-client queues unbounded, as
    docs/deployment.md says a county broker must run (the hall's caps drop messages the halls
    already had acknowledged when every hall comes back at once)."""
    broker = Mosquitto(folder)
    if limits == "county":
        text = broker.conf.read_text()
        for line in ("max_queued_messages 100000", "max_queued_bytes 268435456"):
            assert line in text, line
        text = text.replace("max_queued_messages 100000", "max_queued_messages 0")
        text = text.replace("max_queued_bytes 268435456", "max_queued_bytes 0")
        broker.conf.write_text(text)
    return broker


def register(broker: Mosquitto, worker: int) -> None:
    """The worker's persistent session and its share, before it runs: nothing sent meanwhile is dropped."""
    client = make_client(broker.address, f"county-ingest-{worker}", clean_session=False)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(broker.address.host, broker.port)
    client.loop_start()
    client.subscribe([(shared(f), 1) for f in INGEST_FILTERS])
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()


def start_ingest(broker: Mosquitto, dsn: str, worker: int, folder: Path) -> subprocess.Popen[bytes]:
    register(broker, worker)
    hall = Path(sys.executable).parent / "hall"
    command = [str(hall)] if hall.exists() else [sys.executable, "-c", "from hallkit.cli import main; main()"]
    log = open(folder / f"ingest-{worker}.log", "ab")  # noqa: SIM115 - the child holds it
    return subprocess.Popen([*command, "county", "ingest", "--broker", broker.url, "--db", dsn, "--worker", str(worker)],
                            cwd=ROOT, stdout=log, stderr=log)


CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS now, peak RSS) of a process, in MiB."""
    lines = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(lines["VmRSS"].split()[0]) / 1024, int(lines["VmHWM"].split()[0]) / 1024


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICK, total / CLOCK_TICK


def connections_held(port: int) -> int:
    """Established TCP connections whose local end is the broker's port: what Mosquitto holds."""
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                held += 1
    return held


class Meter:
    """CPU of the county's processes (and of the machine) over a stretch of time."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.started = time.monotonic()
        self.cpu = {name: self._cpu(name) for name in pids}
        self.machine = machine_busy()

    def _cpu(self, name: str) -> float:
        total = 0.0
        for pid in self.pids[name]:
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def used(self, name: str) -> float:
        """CPU seconds the processes of ``name`` used since the meter started."""
        return self._cpu(name) - self.cpu[name]

    def read(self) -> dict[str, float]:
        """Share of one core each used since the meter started; ``machine``: share of all cores."""
        elapsed = time.monotonic() - self.started
        shares = {name: (self._cpu(name) - before) / elapsed for name, before in self.cpu.items()}
        busy, total = machine_busy()
        shares["machine"] = (busy - self.machine[0]) / max(1e-9, total - self.machine[1])
        return shares


class County:
    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)

    def counts(self, before: float | None = None) -> dict[str, int]:
        parts = [f"(SELECT count(*) FROM {table}" + (f" WHERE {column} < to_timestamp(%(t)s))" if before else ")")
                 for table, column in TABLES.values()]
        row = self.conn.execute(f"SELECT {', '.join(parts)}", {"t": before}).fetchone()  # type: ignore[arg-type]
        assert row is not None
        return dict(zip(KINDS, (int(v) for v in row), strict=True))

    def lag(self, start: float, end: float, kinds: tuple[str, ...] = KINDS) -> tuple[int, float, float, float]:
        """Items made at the halls in [start, end): count, p50, p99, max seconds until stored."""
        union = " UNION ALL ".join(
            f"SELECT extract(epoch FROM received_at - {column}) AS s FROM {table} "
            f"WHERE {column} >= to_timestamp(%(a)s) AND {column} < to_timestamp(%(b)s)"
            for kind, (table, column) in TABLES.items() if kind in kinds)
        row = self.conn.execute(  # type: ignore[call-overload]
            f"SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY s), "
            f"percentile_cont(0.99) WITHIN GROUP (ORDER BY s), max(s) FROM ({union}) x", {"a": start, "b": end},
        ).fetchone()
        assert row is not None
        return int(row[0]), float(row[1] or 0), float(row[2] or 0), float(row[3] or 0)

    def last_stored(self, before: float) -> float:
        """When the last item made before ``before`` was stored (epoch seconds)."""
        union = " UNION ALL ".join(f"SELECT max(received_at) AS r FROM {table} WHERE {column} < to_timestamp(%(t)s)"
                                   for table, column in TABLES.values())
        row = self.conn.execute(f"SELECT extract(epoch FROM max(r)) FROM ({union}) x", {"t": before}).fetchone()  # type: ignore[call-overload]
        assert row is not None
        return float(row[0])

    def first_stored(self, before: float, since: float) -> float:
        """When the first item made before ``before`` and stored from ``since`` on was stored (epoch seconds)."""
        union = " UNION ALL ".join(
            f"SELECT min(received_at) AS r FROM {table} WHERE {column} < to_timestamp(%(t)s) "
            f"AND received_at >= to_timestamp(%(s)s)" for table, column in TABLES.values())
        row = self.conn.execute(f"SELECT extract(epoch FROM min(r)) FROM ({union}) x",  # type: ignore[call-overload]
                                {"t": before, "s": since}).fetchone()
        assert row is not None
        return float(row[0])

    def backends(self) -> list[int]:
        """The ingest workers' PostgreSQL backends: every other session of this database. Not the
        server's shared processes, nor other databases' sessions (other work on a shared machine)."""
        return [pid for (pid,) in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]

    def scalar(self, sql: str) -> int:
        row = self.conn.execute(sql).fetchone()  # type: ignore[arg-type]
        return int(row[0] or 0) if row else 0


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


HOLD_LIMIT = 30.0
"""Seconds a queued storm may hold the ingest workers, from their stop: within their MQTT keepalive."""


def halls_holding(halls: HallProcesses, before: float) -> dict[str, int]:
    """How many halls still hold an item made before ``before``, and the sum of their first seqs,
    which moves as their receipts come (a stall is no receipt at all, not a long drain)."""
    seqs = [seq for answer in halls.ask("holding", before) for seq in answer]
    return {"halls holding": len(seqs), "first seqs": sum(seqs)}


def settle(stored: Callable[[], dict[str, int]], owed: dict[str, int], stall: float = 30.0,
           interval: float = 1.0) -> int:
    """Wait until ``stored()`` reaches ``owed`` or stops moving for ``stall`` seconds; items missing."""
    last, moved = stored(), time.monotonic()
    while last != owed and time.monotonic() - moved < stall:
        time.sleep(interval)
        now = stored()
        if now != last:
            last, moved = now, time.monotonic()
    return sum(owed.values()) - sum(last.values())


def broker_warnings(broker: Mosquitto) -> list[str]:
    """Mosquitto's own word on messages it dropped."""
    log = broker.folder / "mosquitto.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [line for line in lines if "dropp" in line.lower()]


def fmt_lag(lag: tuple[int, float, float, float]) -> str:
    n, p50, p99, worst = lag
    def ms(s: float) -> str:
        return f"{s * 1000:,.0f} ms" if s < 10 else f"{s:,.1f} s"
    return f"p50 {ms(p50)}, p99 {ms(p99)}, max {ms(worst)} over {n:,} items"


def fmt_cpu(shares: dict[str, float], cores: int) -> str:
    return (f"CPU (one core = 100%): Mosquitto {shares['mosquitto']:.0%}, ingest {shares['ingest']:.0%}, "
            f"its PostgreSQL backends {shares['postgres']:.0%}; machine {shares['machine']:.0%} of {cores} cores")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


# ---- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, folder: Path) -> bool:
    rates = Rates(args.ratings_per_hour, args.changes_per_hour, args.stats_minutes, args.devices)
    cores = os.cpu_count() or 1
    name = create_database("hallkit_bench")
    dsn = database_dsn(name)
    broker = county_broker(folder / "county-broker", args.queue_limits).start()
    assert broker.process is not None
    ingest: list[subprocess.Popen[bytes]] = []
    halls: HallProcesses | None = None
    ok = True
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            migrate(conn)
        county = County(dsn)
        ingest.append(start_ingest(broker, dsn, 1, folder))

        def meter() -> Meter:
            return Meter({"mosquitto": [broker.process.pid], "ingest": [p.pid for p in ingest],  # type: ignore[union-attr]
                          "postgres": county.backends(),
                          "halls": [p.pid for p in halls.processes if p.pid is not None] if halls is not None else []})

        per = -(-args.halls // args.processes)
        print(f"county scale on {cores} cores, all on this machine: Mosquitto 2.0, `hall county ingest`, PostgreSQL; "
              f"{args.halls} halls × {args.devices} devices in {len(range(0, args.halls, per))} processes "
              f"(real Outbox + Forwarder per hall, one MQTT connection each)")
        print(f"busy day per hall: {args.ratings_per_hour:g} ratings/h (1 in 50 bad, each opening a case), "
              f"{args.devices} devices × {args.changes_per_hour:g} state changes/h, statistics every "
              f"{args.stats_minutes:g} min; county total {args.halls * (args.ratings_per_hour * 1.02 + args.devices * args.changes_per_hour + 60 / args.stats_minutes) / 3600:,.1f} items/s")

        # 1. every hall connects at once
        halls = HallProcesses(args.processes, args.halls, broker, folder, rates)
        halls.ask("counts")  # every process has built its halls
        started = time.time()
        halls.ask("connect")
        wait_for(lambda: halls.connected()[0] == args.halls, 120, "halls connecting", 0.1)  # type: ignore[union-attr]
        _, last = halls.connected()
        rss, _ = memory_mib(broker.process.pid)
        print(f"connect: {args.halls} halls all connected {last - started:.1f} s after "
              f"start; Mosquitto holds {connections_held(broker.port)} connections "
              f"({args.halls} halls + {len(ingest)} ingest), RSS {rss:.1f} MiB")

        # 2. a busy day
        time.sleep(1.0)
        steady_start = round(time.time(), 3)
        m = meter()
        halls.ask("produce", True)
        time.sleep(args.steady)
        steady_end = round(time.time(), 3)
        shares = m.read()
        sent_by_end, _ = halls.counts(steady_end)
        wait_for(lambda: county.counts(steady_end) == sent_by_end, 60, "busy day items stored")
        made = sum(sent_by_end.values())
        rss, peak = memory_mib(broker.process.pid)
        print(f"busy day, {args.steady:.0f} s, 1 ingest worker: {made:,} items ({made / args.steady:,.1f}/s); "
              f"hall → PostgreSQL lag {fmt_lag(county.lag(steady_start, steady_end))}")
        # Ratings and case updates wake the forwarder inside the hub's transaction, before their
        # commit: the forwarder may read too early and then sleep out its 1 s poll.
        print(f"    ratings and cases: {fmt_lag(county.lag(steady_start, steady_end, ('rating', 'case')))}; "
              f"telemetry and statistics: {fmt_lag(county.lag(steady_start, steady_end, ('telemetry', 'stats')))}")
        print(f"    {connections_held(broker.port)} connections held; Mosquitto RSS {rss:.1f} MiB; {fmt_cpu(shares, cores)}")

        # 3. outages: every link drops, the halls keep working, then all come back in the same second.
        # Each twice: with the ingest running as the halls come back ("live": the simulated halls'
        # sending shares these cores with the county), and with the ingest held (SIGSTOP) until every
        # hall's backlog is at the broker ("queued": the county alone, as on a county machine whose
        # halls are elsewhere; the halls still take in the receipts and delete their rows).
        def storm(workers: int, queued: bool) -> tuple[float, float]:
            assert halls is not None and broker.process is not None
            # The backlog is stamped in the hours before the bench started: apart from live items.
            halls.ask("outage", (args.outage_hours, started))
            stored_before = sum(county.counts().values())
            back = round(time.time() + 1.0, 3)
            whole = m = meter()
            held = time.monotonic()
            try:
                for process in ingest if queued else ():
                    process.send_signal(signal.SIGSTOP)
                skew = max(halls.ask("return", back))
                owed, _ = halls.counts(back)
                items = sum(owed.values()) - stored_before
                wait_for(lambda: halls.connected()[0] == args.halls, 300, "halls reconnecting", 0.1)  # type: ignore[union-attr]
                _, last = halls.connected()
                start = back
                if queued:
                    # Within the workers' keepalive (30 s, 45 before the broker drops them), the halls'
                    # return included; a hall holds at most its receipt_window (10,000 items)
                    # unacknowledged by the county.
                    wait_for(lambda: sum(halls.ask("acknowledged")) >= items,  # type: ignore[union-attr]
                             max(0.0, HOLD_LIMIT - (time.monotonic() - held)), "every backlog at the broker", 0.1)
                    start = time.time()
                    m = meter()
            finally:
                for process in ingest if queued else ():
                    process.send_signal(signal.SIGCONT)
            # The halls are asked, not PostgreSQL: a count over the growing tables is work of its own on
            # the cores the county is measured on. A hall deletes an item only on the county's receipt.
            settle(lambda back=back: halls_holding(halls, back), {"halls holding": 0, "first seqs": 0}, interval=0.1)  # type: ignore[arg-type]
            missing = settle(lambda back=back: county.counts(back), owed)
            shares = m.read()
            ingest_cpu, backends_cpu = m.used("ingest"), m.used("postgres")
            # The halls and Mosquitto over the whole storm (their sending and the receipts), and, queued,
            # while the county stored (the receipts alone): what shared the cores with the workers.
            halls_cpu, broker_cpu = whole.used("halls"), whole.used("mosquitto")
            halls_drain, broker_drain = m.used("halls"), m.used("mosquitto")
            drained = county.last_stored(back) - start
            # The county's own rate: from its first to its last stored item, without the halls' return.
            storing = county.last_stored(back) - county.first_stored(back, back - 1.0)
            _, peak = memory_mib(broker.process.pid)
            made_during, _ = halls.counts(start + drained)
            missing += settle(lambda until=start + drained: county.counts(until), made_during) if not missing else 0
            if missing:
                print(f"    MISSING: {missing:,} items made before the return never reached PostgreSQL "
                      f"(owed {owed}, stored {county.counts(back)}); Mosquitto log: "
                      + "; ".join(broker_warnings(broker)[-3:]))
            how = (f"the ingest held until every hall's backlog was at the broker ({start - back:.1f} s after the "
                   f"return), then county has everything {drained:.1f} s after it resumed" if queued else
                   f"county has everything in {drained:.1f} s")
            print(f"outage of {args.outage_hours:g} h, all {args.halls} halls back at once, {workers} ingest "
                  f"worker{'s' if workers > 1 else ''}{', queued' if queued else ', live'}: {items:,} items waiting; "
                  f"all halls connected in {last - back:.1f} s (start skew {skew:.2f} s); {how} "
                  f"({items / drained:,.0f} items/s); it stored them in {storing:.1f} s from the first to the last "
                  f"({items / storing:,.0f} items/s: the ingest's own rate)")
            print(f"    items made during the storm{' (the hold included)' if queued else ''}: "
                  f"lag {fmt_lag(county.lag(back, start + drained))}")
            print(f"    Mosquitto peak RSS {peak:.1f} MiB; {fmt_cpu(shares, cores)}")
            # What the load of other work on the machine moves least: CPU per item of the county's side.
            print(f"    CPU per item: ingest worker{'s' if workers > 1 else ''} {ingest_cpu / items * 1e6:.1f} µs, "
                  f"their PostgreSQL backends {backends_cpu / items * 1e6:.1f} µs; on the same cores, the halls' "
                  f"uplink {halls_cpu / items * 1e6:.1f} µs, Mosquitto {broker_cpu / items * 1e6:.1f} µs"
                  + (f" (while the county stored: {halls_drain / items * 1e6:.1f} and {broker_drain / items * 1e6:.1f} µs)"
                     if queued else "") + f"; {load()}")
            return (0.0, 0.0) if missing else (items / drained, items / storing)

        storm_rates: dict[tuple[int, bool], tuple[float, float]] = {}
        for workers in (1, 2):
            while len(ingest) < workers:
                ingest.append(start_ingest(broker, dsn, len(ingest) + 1, folder))
                time.sleep(1.0)
            for queued in (False, True):
                storm_rates[workers, queued] = storm(workers, queued)
        ok = ok and all(rate > 0 for rate, _ in storm_rates.values())
        for queued, what in ((False, "the halls sending on the same cores"), (True, "the storm queued at the broker first")):
            one, two = storm_rates[1, queued], storm_rates[2, queued]
            print(f"2 ingest workers ÷ 1, {what}: {two[0] / max(one[0], 1e-9):.2f}× until the county has everything, "
                  f"{two[1] / max(one[1], 1e-9):.2f}× in the ingest's own rate (goal ≥ 1.6×)")

        # 4. exactly once
        halls.ask("produce", False)
        time.sleep(0.5)
        sent, failures = halls.counts()
        settle(county.counts, sent)
        stored = county.counts()
        quarantined = county.scalar("SELECT count(*) FROM quarantine")
        in_batches = county.scalar("SELECT sum(items) FROM messages")
        devices = county.scalar("SELECT count(*) FROM devices")
        halls_seen = county.scalar("SELECT count(*) FROM halls")
        dropped = broker_warnings(broker)
        ok = ok and (stored == sent and quarantined == 0 and failures == 0 and devices == args.halls * args.devices
              and not dropped)
        print(f"exactly once: {'yes' if ok else 'NO'}: sent " + ", ".join(f"{sent[k]:,} {k}" for k in KINDS)
              + "; stored " + ", ".join(f"{stored[k]:,}" for k in KINDS)
              + f"; quarantine {quarantined}; {halls_seen} halls and {devices:,} devices known; "
              f"{in_batches - sum(stored.values()):,} items delivered again in a later batch and absorbed"
              + (f"; {failures} hall-side write failures" if failures else "")
              + f"; Mosquitto dropped-message warnings: {len(dropped)}")
    finally:
        if halls is not None:
            halls.close()
        for process in ingest:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        broker.stop()
        drop_database(name)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--halls", type=int, default=500)
    parser.add_argument("--devices", type=int, default=10, help="devices per hall")
    parser.add_argument("--processes", type=int, default=10, help="worker processes simulating the halls")
    parser.add_argument("--steady", type=float, default=60, help="seconds of the busy day")
    parser.add_argument("--ratings-per-hour", type=float, default=60, help="per hall")
    parser.add_argument("--changes-per-hour", type=float, default=6, help="state changes per device")
    parser.add_argument("--stats-minutes", type=float, default=15, help="the hall's statistics interval")
    parser.add_argument("--outage-hours", type=float, default=8, help="busy-day hours piled up in each outage")
    parser.add_argument("--queue-limits", choices=("county", "hall"), default="county",
                        help="county: per-client queues unbounded (docs/deployment.md); hall: the hall's caps "
                             "(100,000 messages, 256 MiB per client), which drop acknowledged items in a long storm")
    args = parser.parse_args()
    raise_nofile()
    with tempfile.TemporaryDirectory() as tmp:
        ok = run(args, Path(tmp))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
