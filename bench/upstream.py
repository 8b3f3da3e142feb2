"""Uplink benchmark: outbox drain to the county broker, county ingest with one and two workers.

Prints, in one run, each figure beside the raw QoS 1 publish rate of paho → Mosquitto measured
in the same run on the same machine:

- drain: a hall outbox holding 1,000,000 ratings (``--backlog``) forwarded to a county Mosquitto
  by the real :class:`~broker.forwarder.Forwarder`, rows deleted on PUBACK;
- ingest: ``--ingest`` ratings queued at the county broker for the shared-subscription group,
  then stored in PostgreSQL by one worker process, and again by two (items per second between
  the first and the last commit);
- county: ``--halls`` halls, each a real forwarder with its own outbox of ``--hall-backlog``
  ratings and ``--devices`` device states, all coming back at once to one county broker with one
  ingest worker: seconds until the database has everything.

Needs mosquitto and a PostgreSQL login that may create databases (``HALLKIT_TEST_PG``, default
the one scripts/bootstrap.sh makes). Run: ``.venv/bin/python bench/upstream.py``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from broker.forwarder import Forwarder  # noqa: E402
from broker.mqtt import make_client  # noqa: E402
from broker.outbox import SCHEMA  # noqa: E402
from county.contract import INGEST_FILTERS, DeviceTelemetry, UpKind, UpTopics, encode_batch, shared  # noqa: E402
from county.schema import migrate  # noqa: E402
from tests.brokers import Mosquitto  # noqa: E402
from tests.upstream.records import hall_config, rating  # noqa: E402

ADMIN_DSN = os.environ.get("HALLKIT_TEST_PG", "postgresql://hallkit:hallkit@127.0.0.1:5432/postgres")
HALLS = 50


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


def drain_rate(broker: Mosquitto, folder: Path, items: int) -> tuple[float, float]:
    """Items per second from a full outbox to the county broker; and the seconds it took."""
    path = folder / "hall.sqlite3"
    fill_outbox(path, ratings_of("test-hall", items))
    config = hall_config(broker.url, batch_size=500, max_inflight=20)
    assert config.upstream is not None
    forwarder = Forwarder(path, config.upstream, config.hall, "bench", synchronous=1)
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    forwarder.start()
    while conn.execute("SELECT items FROM outbox_size").fetchone()[0] > 0:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    forwarder.stop()
    conn.close()
    return items / elapsed, elapsed


# ---- ingest ------------------------------------------------------------------------------------


def worker(broker_url: str, dsn: str, worker_id: str) -> None:
    """Child process: one ingest worker until killed."""
    from broker.mqtt import parse_broker_url
    from county.ingest import Ingest

    Ingest(parse_broker_url(broker_url), dsn, worker_id=worker_id).start()
    threading.Event().wait()


def spawn(broker: Mosquitto, dsn: str, worker_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--worker", worker_id, "--broker", broker.url, "--db", dsn],
                            cwd=ROOT, stderr=subprocess.DEVNULL)


def register_group(broker: Mosquitto, workers: int) -> None:
    """Persistent sessions for the group's members, so the broker queues their shares while they are away."""
    for n in range(1, workers + 1):
        client = make_client(broker.address, f"county-ingest-{n}", clean_session=False)
        client.connect(broker.address.host, broker.port)
        client.loop_start()
        client.subscribe([(shared(f), 1) for f in INGEST_FILTERS])
        time.sleep(0.3)
        client.disconnect()
        client.loop_stop()


def queue_ratings(broker: Mosquitto, items: int, per_batch: int) -> None:
    client = make_client(broker.address, f"bench-halls-{uuid4().hex[:6]}")
    client.connect(broker.address.host, broker.port)
    client.loop_start()
    window = threading.Semaphore(50)
    client.on_publish = lambda *_: window.release()
    body = rating(0).model_copy(update={"resident_hash": None}).model_dump_json()
    for start in range(0, items, per_batch):
        hall = f"hall-{start // per_batch % HALLS:03d}"
        rows = [(i + 1, body.replace('"test-hall"', f'"{hall}"').replace("test-hall-r000000", f"r{i:08d}"))
                for i in range(start, min(items, start + per_batch))]
        window.acquire()
        client.publish(UpTopics("bench", hall).up(UpKind.RATING),
                       encode_batch(UpKind.RATING, f"m{start}", hall, "bench", "e", True, rows), qos=1)
    for _ in range(50):
        window.acquire()
    client.disconnect()
    client.loop_stop()


def ingest_rate(folder: Path, items: int, workers: int, per_batch: int) -> float:
    name = f"hallkit_bench_{uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]  # a name we made
    dsn = f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    broker = Mosquitto(folder / f"county-{workers}").start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            migrate(conn)
            register_group(broker, workers)
            queue_ratings(broker, items, per_batch)
            processes = [spawn(broker, dsn, str(n)) for n in range(1, workers + 1)]
            deadline = time.monotonic() + 600
            while conn.execute("SELECT count(*) FROM ratings").fetchone()[0] < items:
                if time.monotonic() > deadline:
                    raise RuntimeError("ingest did not finish in 10 minutes")
                time.sleep(0.2)
            first, last, txs = conn.execute(
                "SELECT min(received_at), max(received_at), count(DISTINCT received_at) FROM ratings").fetchone()
        # received_at is each transaction's start: add one transaction's share to the span.
        span = (last - first).total_seconds() * txs / max(1, txs - 1)
        return items / span
    finally:
        for process in processes:
            process.kill()
            process.wait()
        broker.stop()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def county_scale(folder: Path, halls: int, devices: int, ratings: int) -> tuple[float, float, int]:
    """Every hall of a county back at once after an outage, each with a backlog of ratings and its
    devices' states: seconds until the county database has it all, broker RSS, connections."""
    name = f"hallkit_bench_{uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]  # a name we made
    dsn = f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    broker = Mosquitto(folder / "county-scale").start()
    forwarders: list[Forwarder] = []
    process = None
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            migrate(conn)
            # The group's session must exist before halls send: a broker without a subscriber
            # acknowledges and drops (docs/deployment.md).
            register_group(broker, 1)
            process = spawn(broker, dsn, "1")
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
            started = time.perf_counter()
            for forwarder in forwarders:
                forwarder.start()
            deadline = time.monotonic() + 600
            while (conn.execute("SELECT count(*) FROM ratings").fetchone()[0] < halls * ratings
                   or conn.execute("SELECT count(*) FROM devices").fetchone()[0] < halls * devices):
                if time.monotonic() > deadline:
                    raise RuntimeError("the county did not catch up in 10 minutes")
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
        assert broker.process is not None
        status = Path(f"/proc/{broker.process.pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024
        return elapsed, rss, sum(f.connected for f in forwarders)
    finally:
        for forwarder in forwarders:
            forwarder.stop()
        if process is not None:
            process.kill()
            process.wait()
        broker.stop()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=1_000_000, help="outbox items to drain")
    parser.add_argument("--ingest", type=int, default=300_000, help="items for each ingest run")
    parser.add_argument("--per-batch", type=int, default=500, help="items per message")
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
    print(f"uplink bench on {os.cpu_count()} cores: mosquitto, paho-mqtt, PostgreSQL all on this machine")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder / "county").start()
        try:
            raw = raw_qos1_rate(broker)
            print(f"raw QoS 1 publish, paho → Mosquitto, 210 B each:   {raw:>10,.0f} msg/s")
            rate, seconds = drain_rate(broker, folder, args.backlog)
            print(f"drain of a {args.backlog:,}-item outbox backlog:      {rate:>10,.0f} items/s "
                  f"({seconds:.1f} s; {rate / raw:.1f}× the raw rate; batches of 500, 20 in flight)")
        finally:
            broker.stop()
        one = ingest_rate(folder, args.ingest, 1, args.per_batch)
        print(f"county ingest, 1 worker, {args.ingest:,} ratings:        {one:>10,.0f} items/s ({one / raw:.1f}× raw)")
        two = ingest_rate(folder, args.ingest, 2, args.per_batch)
        print(f"county ingest, 2 workers, {args.ingest:,} ratings:       {two:>10,.0f} items/s ({two / raw:.1f}× raw; "
              f"{two / one:.2f}× one worker)")
        if args.halls:
            seconds, rss, connected = county_scale(folder, args.halls, args.devices, args.hall_backlog)
            items = args.halls * (args.devices + args.hall_backlog)
            print(f"county of {args.halls} halls × {args.devices} devices, all back at once with "
                  f"{args.hall_backlog} ratings each: {items:,} items stored in {seconds:.1f} s "
                  f"({connected} hall links up; county Mosquitto RSS {rss:.1f} MiB; 1 ingest worker)")


if __name__ == "__main__":
    main()
