"""Uplink benchmark: outbox drain to the county with receipts, county ingest with one and two workers.

Prints, in one run, each figure beside the raw QoS 1 publish rate of paho → Mosquitto measured
in the same run on the same machine, and the machine's load average (other work on the same
cores moves every figure):

- drain: a hall outbox holding 1,000,000 ratings (``--backlog``) forwarded to a county Mosquitto
  by the real :class:`~broker.forwarder.Forwarder`, with ``--drain-workers`` real ingest worker
  processes storing into PostgreSQL: rows are deleted only on the county's receipts, so the
  figure is items from the hall's outbox into the county's database (items per second, counted
  in items, never in messages), checked exactly once at the end;
- ingest: ``--ingest`` ratings published to the county broker while one worker process runs,
  then again with two (items per second between the first and the last commit), and the CPU per
  item of the workers and of their PostgreSQL backends; ``--repeat N`` runs both N times,
  alternately, and prints min / median / max (the load of other work moves every run);
- county: ``--halls`` halls, each a real forwarder with its own outbox of ``--hall-backlog``
  ratings and ``--devices`` device states, all coming back at once to one county broker with one
  ingest worker: seconds until every hall's outbox is empty (every item receipted).

Needs mosquitto and a PostgreSQL login that may create databases (``HALLKIT_TEST_PG``, default
the one scripts/bootstrap.sh makes). Run: ``.venv/bin/python bench/upstream.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from uuid import uuid4

import psycopg
from hallkit.broker.testing import Mosquitto
from hallkit.contracts.mqtt import make_client
from hallkit.contracts.uplink import DeviceTelemetry, UpKind, UpTopics, encode_batch
from hallkit.county.schema import migrate
from hallkit.county.testing import fresh_database
from hallkit.uplink.forwarder import Forwarder
from hallkit.uplink.table import SCHEMA
from hallkit.uplink.testing import hall_config, rating

ROOT = Path(__file__).resolve().parents[1]


HALLS = 50
DEADLINE = 900.0
"""Seconds any phase may take before the bench gives up (a machine busy with something else)."""


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def raw_qos1_rate(broker: Mosquitto, count: int = 50_000) -> float:
    """paho → Mosquitto, one 210-byte message per publish, QoS 1, until the last PUBACK."""
    client = make_client(broker.address, f"raw-{uuid4().hex[:6]}")
    client.connect(broker.address.host, broker.port)
    client.loop_start()
    payload = b"x" * 210
    finished = threading.Event()
    window = threading.Semaphore(100)  # paho's in-flight limit as make_client sets it
    acked = 0

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1
        window.release()
        if acked == count:
            finished.set()

    client.on_publish = on_publish
    started = time.perf_counter()
    for _ in range(count):
        window.acquire()
        client.publish("bench/raw", payload, qos=1)
    finished.wait(timeout=300)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return count / elapsed


# ---- the county: a broker, a database, ingest worker processes ---------------------------------


def worker(broker_url: str, dsn: str, worker_id: str) -> None:
    """Child process: one ingest worker until killed; says ``ready`` once subscribed."""
    from hallkit.contracts.mqtt import parse_broker_url
    from hallkit.county.ingest import Ingest

    Ingest(parse_broker_url(broker_url), dsn, worker_id=worker_id).start(wait=60)
    print("ready", flush=True)
    threading.Event().wait()


@contextlib.contextmanager
def county(folder: Path, name: str) -> Iterator[tuple[Mosquitto, str]]:
    """A county Mosquitto and a fresh, migrated database; dropped afterwards."""
    with fresh_database("hallkit_bench") as dsn:
        broker = Mosquitto(folder / name).start()
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                migrate(conn)
            yield broker, dsn
        finally:
            broker.stop()


@contextlib.contextmanager
def workers(broker: Mosquitto, dsn: str, count: int) -> Iterator[list[int]]:
    """``count`` ingest worker processes, each subscribed (in the shared group) before this yields."""
    processes = [subprocess.Popen([sys.executable, __file__, "--worker", str(n), "--broker", broker.url, "--db", dsn],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                 for n in range(1, count + 1)]
    try:
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("an ingest worker did not start")
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            process.kill()
            process.wait()


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not finish in {DEADLINE:.0f} s")
        time.sleep(0.1)  # a count(*) of a growing table costs PostgreSQL time the ingest would use


def cpu_seconds(pids: Iterable[int]) -> float:
    """User and system CPU the processes have used (Linux /proc): what a figure cost, whatever the load."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def count_rows(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type]  # our constants
    return int(row[0]) if row else 0


# ---- drain -------------------------------------------------------------------------------------


def fill_outbox(path: Path, rows: Iterable[tuple[str, str, str]]) -> None:
    """An outbox of ``(kind, item id, body JSON)`` rows, as the hub leaves it after a long outage."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("BEGIN")
    for statement in SCHEMA:
        conn.execute(statement)
    conn.execute("INSERT OR IGNORE INTO outbox_meta VALUES ('epoch', 'bench')")
    now = time.time()
    conn.executemany("INSERT INTO outbox (kind, item_id, created, body) VALUES (?, ?, ?, ?)",
                     ((kind, item_id, now, body) for kind, item_id, body in rows))
    conn.execute("COMMIT")
    conn.close()


def ratings_of(hall: str, count: int) -> Iterator[tuple[str, str, str]]:
    template = rating(0, hall=hall).model_copy(update={"resident_hash": None}).model_dump_json()
    for i in range(count):
        yield "rating", f"{hall}-r{i}", template.replace(f"{hall}-r000000", f"{hall}-r{i:07d}")


def outbox_items(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT items FROM outbox_size").fetchone()[0])


def drain_rate(folder: Path, items: int, worker_count: int, batch_size: int,
               window: int | None) -> tuple[float, float, Forwarder]:
    """Items per second from a full outbox into the county's database, rows deleted on receipts."""
    path = folder / "hall.sqlite3"
    fill_outbox(path, ratings_of("test-hall", items))
    with county(folder, "county-drain") as (broker, dsn), workers(broker, dsn, worker_count):
        config = hall_config(broker.url, batch_size=batch_size, max_inflight=20)
        assert config.upstream is not None
        upstream = config.upstream.model_copy(update={"receipt_window": window}) if window else config.upstream
        forwarder = Forwarder(path, upstream, config.hall, "bench", synchronous=1)
        started = time.perf_counter()
        forwarder.start()
        try:
            wait_until(lambda: outbox_items(path) == 0, "the drain")
            elapsed = time.perf_counter() - started
        finally:
            forwarder.stop()
        with psycopg.connect(dsn) as conn:
            stored = count_rows(conn, "ratings")
        if stored != items:
            raise RuntimeError(f"the outbox is empty but the county stored {stored:,} of {items:,}")
    return items / elapsed, elapsed, forwarder


# ---- ingest ------------------------------------------------------------------------------------


def rating_messages(items: int, per_batch: int) -> list[tuple[str, bytes]]:
    """``items`` ratings from ``HALLS`` halls, ``per_batch`` to a message: ``(topic, payload)``."""
    body = rating(0).model_copy(update={"resident_hash": None}).model_dump_json()
    messages = []
    for start in range(0, items, per_batch):
        hall = f"hall-{start // per_batch % HALLS:03d}"
        rows = [(i + 1, body.replace('"test-hall"', f'"{hall}"').replace("test-hall-r000000", f"r{i:08d}"))
                for i in range(start, min(items, start + per_batch))]
        messages.append((UpTopics("bench", hall).up(UpKind.RATING),
                         encode_batch(UpKind.RATING, f"m{start}", hall, "bench", "e", True, rows)))
    return messages


def publish(broker: Mosquitto, messages: list[tuple[str, bytes]]) -> None:
    """As fast as the broker takes them. Made beforehand: the publisher shares the cores with the
    workers, and building the payloads here cost more CPU than the two workers' ingest was to show."""
    client = make_client(broker.address, f"bench-halls-{uuid4().hex[:6]}")
    client.connect(broker.address.host, broker.port)
    client.loop_start()
    window = threading.Semaphore(50)
    client.on_publish = lambda *_: window.release()
    for topic, payload in messages:
        window.acquire()
        client.publish(topic, payload, qos=1)
    for _ in range(50):
        window.acquire()
    client.disconnect()
    client.loop_stop()


def ingest_rate(folder: Path, items: int, worker_count: int, per_batch: int) -> tuple[float, float, float]:
    """Items per second stored by ``worker_count`` workers (each a clean session: they run first), and
    the CPU µs per item of the worker processes and of their PostgreSQL backends (PostgreSQL on this
    machine, readable in /proc)."""
    with county(folder, f"county-{worker_count}") as (broker, dsn), workers(broker, dsn, worker_count) as pids, \
            psycopg.connect(dsn, autocommit=True) as conn:
        backends = [pid for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
        messages = rating_messages(items, per_batch)
        cpu_before = cpu_seconds(pids), cpu_seconds(backends)
        publish(broker, messages)
        wait_until(lambda: count_rows(conn, "ratings") >= items, "the ingest")
        cpu = cpu_seconds(pids) - cpu_before[0], cpu_seconds(backends) - cpu_before[1]
        row = conn.execute(
            "SELECT min(received_at), max(received_at), count(DISTINCT received_at) FROM ratings").fetchone()
        assert row is not None  # an aggregate always has a row
        first, last, txs = row
    # received_at is each transaction's start: add one transaction's share to the span.
    span = (last - first).total_seconds() * txs / max(1, txs - 1)
    return items / span, cpu[0] / items * 1e6, cpu[1] / items * 1e6


def county_scale(folder: Path, halls: int, devices: int, ratings: int) -> tuple[float, float, int]:
    """Every hall of a county back at once after an outage, each with a backlog of ratings and its
    devices' states: seconds until every hall's outbox is empty, broker RSS, connections."""
    forwarders: list[Forwarder] = []
    paths: list[Path] = []
    with county(folder, "county-scale") as (broker, dsn), workers(broker, dsn, 1), \
            psycopg.connect(dsn, autocommit=True) as conn:
        try:
            for h in range(halls):
                config = hall_config(broker.url, hall_id=f"hall-{h:03d}")
                assert config.upstream is not None
                path = folder / f"{config.hall.id}.sqlite3"
                telemetry = [("telemetry", f"{config.hall.id}-t{d}", DeviceTelemetry(
                    telemetry_id=f"{config.hall.id}-t{d}", hall_id=config.hall.id, device=f"dev-{d}", kind="printer",
                    state="online", session=1, version="1.0", observed_at=datetime.now(UTC), paper="ok")
                    .model_dump_json()) for d in range(devices)]
                fill_outbox(path, [*telemetry, *ratings_of(config.hall.id, ratings)])
                forwarders.append(Forwarder(path, config.upstream, config.hall, "bench", synchronous=1))
                paths.append(path)
            started = time.perf_counter()
            for forwarder in forwarders:
                forwarder.start()
            wait_until(lambda: all(outbox_items(p) == 0 for p in paths), "the county")
            elapsed = time.perf_counter() - started
            if (count_rows(conn, "ratings"), count_rows(conn, "devices")) != (halls * ratings, halls * devices):
                raise RuntimeError("every outbox is empty but the county does not have everything")
            assert broker.process is not None
            status = Path(f"/proc/{broker.process.pid}/status").read_text()
            rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024
            return elapsed, rss, sum(f.connected for f in forwarders)
        finally:
            for forwarder in forwarders:
                forwarder.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=1_000_000, help="outbox items to drain")
    parser.add_argument("--drain-workers", type=int, default=2, help="ingest workers running during the drain")
    parser.add_argument("--receipt-window", type=int, help="the hall's receipt_window (default: the configuration's)")
    parser.add_argument("--ingest", type=int, default=300_000, help="items for each ingest run")
    parser.add_argument("--per-batch", type=int, default=200, help="items per message (the hall's default batch_size)")
    parser.add_argument("--repeat", type=int, default=1, help="ingest runs of 1 and 2 workers, alternately")
    # 500 forwarders in one Python process (1,000 threads on 2 cores) do not all get their CONNECT
    # out: the harness, not the county, is then the limit. Real halls are separate machines.
    parser.add_argument("--halls", type=int, default=50, help="halls of the county run (0: skip it)")
    parser.add_argument("--devices", type=int, default=10, help="devices per hall")
    parser.add_argument("--hall-backlog", type=int, default=100, help="ratings waiting in each hall's outbox")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.broker, args.db, args.worker)
        return
    print(f"uplink bench on {os.cpu_count()} cores: mosquitto, paho-mqtt, PostgreSQL all on this machine; {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder / "county").start()
        try:
            raw = raw_qos1_rate(broker)
        finally:
            broker.stop()
        print(f"raw QoS 1 publish, paho → Mosquitto, 210 B each:   {raw:>10,.0f} msg/s")
        rate, seconds, forwarder = drain_rate(folder, args.backlog, args.drain_workers, args.per_batch,
                                               args.receipt_window)
        upstream = forwarder.upstream
        print(f"drain of a {args.backlog:,}-item outbox into PostgreSQL, with receipts, {args.drain_workers} ingest "
              f"worker(s): {rate:>10,.0f} items/s ({seconds:.1f} s; goal ≥ 20,000; batches of {upstream.batch_size}, "
              f"{upstream.max_inflight} unacknowledged, {upstream.receipt_window:,} items awaiting receipts at most; "
              f"{forwarder.receipts:,} receipts, {forwarder.resent:,} items sent again); {load()}")
        ones, ratios, costs = [], [], []
        for _ in range(args.repeat):  # 1 and 2 workers side by side, again and again: the load moves
            one, worker_cpu, pg_cpu = ingest_rate(folder, args.ingest, 1, args.per_batch)
            print(f"county ingest, 1 worker, {args.ingest:,} ratings, {args.per_batch} a message: {one:>10,.0f} "
                  f"items/s (goal ≥ 20,000; CPU per item: worker {worker_cpu:.1f} µs, PostgreSQL {pg_cpu:.1f} µs); "
                  f"{load()}")
            two, workers_cpu, pgs_cpu = ingest_rate(folder, args.ingest, 2, args.per_batch)
            print(f"county ingest, 2 workers, {args.ingest:,} ratings, {args.per_batch} a message: {two:>10,.0f} "
                  f"items/s ({two / one:.2f}× one worker; goal ≥ 1.6×; CPU per item: workers {workers_cpu:.1f} µs, "
                  f"PostgreSQL {pgs_cpu:.1f} µs); {load()}")
            ones.append(one)
            ratios.append(two / one)
            costs.append(worker_cpu + pg_cpu)
        if args.repeat > 1:
            print(f"over {args.repeat} runs (min / median / max): 1 worker {min(ones):,.0f} / {median(ones):,.0f} / "
                  f"{max(ones):,.0f} items/s; 2 workers ÷ 1 worker {min(ratios):.2f} / {median(ratios):.2f} / "
                  f"{max(ratios):.2f}×; CPU per item of one worker and its backend {min(costs):.1f} / "
                  f"{median(costs):.1f} / {max(costs):.1f} µs (one core's worth: "
                  f"{1e6 / median(costs):,.0f} items/s)")
        if args.halls:
            seconds, rss, connected = county_scale(folder, args.halls, args.devices, args.hall_backlog)
            items = args.halls * (args.devices + args.hall_backlog)
            print(f"county of {args.halls} halls × {args.devices} devices, all back at once with "
                  f"{args.hall_backlog} ratings each: {items:,} items stored and receipted in {seconds:.1f} s "
                  f"({connected} hall links up; county Mosquitto RSS {rss:.1f} MiB; 1 ingest worker); {load()}")


if __name__ == "__main__":
    main()
