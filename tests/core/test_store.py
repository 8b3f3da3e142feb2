"""Durable state on real SQLite files: restart, idempotent requests, failed writes, kill -9."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from hallkit.config import HallConfig
from hallkit.queue.engine import Refused
from hallkit.queue.models import (
    CallNext,
    Command,
    Complete,
    Event,
    Outcome,
    Pause,
    Priority,
    Skip,
    TakeTicket,
    TicketCalled,
    TicketIssued,
    Transfer,
)
from hallkit.store import sqlite as sqlite_store
from hallkit.store.durable import DurableQueue
from hallkit.store.sqlite import SCHEMA_VERSION, EventStore
from hallkit.testing import MONDAY

REPO = Path(__file__).resolve().parents[2]


class Clock:
    """A hand-moved clock: restarts and replays must not depend on the wall clock."""

    def __init__(self, now: datetime = MONDAY) -> None:
        self.now = now

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=30)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "hall.db"


@pytest.fixture
def queue(small_config: HallConfig, db: Path, clock: Clock) -> Iterator[DurableQueue]:
    q = DurableQueue(small_config, db, clock=clock)
    yield q
    q.close()


def busy_morning(queue: DurableQueue, clock: Clock) -> None:
    """Every kind of action, over two business days."""
    run = queue.execute
    for service in ["social", "pension", "social", "permit", "pension"]:
        run(TakeTicket(service_id=service))
    run(TakeTicket(service_id="social", priority=Priority.PRIORITY))
    run(CallNext(window=1))
    run(Skip(window=1))
    run(CallNext(window=1))
    run(Transfer(window=1, to_service="pension", to_window=2))
    run(CallNext(window=2))
    run(CallNext(window=2))
    run(Complete(window=2))
    run(Pause(window=3))
    clock.now += timedelta(days=1)
    run(TakeTicket(service_id="social"))
    run(TakeTicket(service_id="pension"))
    run(CallNext(window=1))


def logged(db: Path) -> list[Event]:
    store = EventStore(db)
    try:
        return [event for _, event in store.events()]
    finally:
        store.close()


# ---- the file ---------------------------------------------------------------------------------


def test_store_uses_wal_and_the_requested_durability(db: Path):
    for level, value in (("full", 2), ("normal", 1)):
        store = EventStore(db, level)  # type: ignore[arg-type]
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == value
        store.close()


def test_event_log_tables_carry_what_downstream_needs(queue: DurableQueue, db: Path):
    queue.execute(TakeTicket(request_id="kiosk-1", service_id="social"))
    rows = sqlite3.connect(db).execute("SELECT seq, id, type, at, request_id, body FROM events").fetchall()
    assert [r[2] for r in rows] == ["day_opened", "ticket_issued"]
    assert [r[0] for r in rows] == [1, 2]
    assert rows[1][4] == "kiosk-1"
    assert json.loads(rows[1][5])["ticket"]["number"] == "A001"
    assert datetime.fromisoformat(rows[1][3]).tzinfo is not None
    (action,) = sqlite3.connect(db).execute("SELECT action FROM requests").fetchone()
    assert action == "take"


def test_a_newer_schema_is_refused(db: Path):
    EventStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="newer hallkit"):
        EventStore(db)


# ---- restart ----------------------------------------------------------------------------------


def test_restart_rebuilds_exactly_the_same_queue(small_config: HallConfig, db: Path, clock: Clock):
    first = DurableQueue(small_config, db, clock=clock)
    busy_morning(first, clock)
    before = first.engine.snapshot()
    first.close()
    second = DurableQueue(small_config, db, clock=clock)
    assert second.engine.snapshot() == before
    # ... and goes on numbering where it stopped.
    outcome = second.execute(TakeTicket(service_id="social"))
    assert outcome.ticket is not None and outcome.ticket.number == "A002"
    second.close()


# ---- idempotent requests ----------------------------------------------------------------------


def test_repeated_request_returns_the_same_reply_and_no_second_ticket(
    small_config: HallConfig, queue: DurableQueue, db: Path, clock: Clock
):
    take = TakeTicket(request_id="kiosk-1-0042", service_id="social")
    first = queue.execute(take)
    count = queue.store.count()
    again = queue.execute(take)
    assert again == first
    assert queue.store.count() == count
    assert len(queue.engine.state.tickets) == 1
    # A repeated call does not call a second ticket either.
    queue.execute(TakeTicket(service_id="social"))
    call = CallNext(request_id="counter-1-7", window=1)
    called = queue.execute(call)
    assert queue.execute(call) == called
    assert len(queue.engine.state.waiting) == 1
    # ... and after a restart.
    queue.close()
    reopened = DurableQueue(small_config, db, clock=clock)
    assert reopened.execute(take) == first
    assert reopened.execute(call) == called
    assert len(reopened.engine.state.tickets) == 2
    assert reopened.store.count() == count + 2
    reopened.close()


def test_request_id_reused_for_another_action_is_refused(queue: DurableQueue):
    queue.execute(TakeTicket(request_id="dup", service_id="social"))
    with pytest.raises(Refused) as info:
        queue.execute(CallNext(request_id="dup", window=1))
    assert info.value.message.key == "queue.request_id_reused"
    assert "dup" in info.value.message.render("zh")
    assert queue.engine.state.windows[1].current is None


def test_a_refused_request_is_not_remembered(queue: DurableQueue):
    call = CallNext(request_id="early", window=1)
    with pytest.raises(Refused):
        queue.execute(call)
    assert queue.store.reply_for("early") is None
    assert queue.store.count() == 0
    queue.execute(TakeTicket(service_id="social"))
    outcome = queue.execute(call)  # the same request, now valid
    assert outcome.window is not None and outcome.window.ticket is not None


# ---- failed writes ----------------------------------------------------------------------------


def test_failed_transaction_leaves_engine_and_log_consistent(queue: DurableQueue, db: Path):
    rows: list[str] = []

    def outbox(conn: sqlite3.Connection, events: list[Event]) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS outbox (event_id TEXT)")
        conn.executemany("INSERT INTO outbox VALUES (?)", [(e.id,) for e in events])
        rows.extend(e.id for e in events)

    def broken(conn: sqlite3.Connection, events: list[Event]) -> None:
        if any(isinstance(e, TicketIssued) and e.ticket.service_id == "permit" for e in events):
            raise OSError("disk full")

    queue.projectors += [outbox, broken]
    engine = queue.engine
    queue.execute(TakeTicket(service_id="social"))
    before, count = queue.engine.snapshot(), queue.store.count()
    with pytest.raises(OSError):
        queue.execute(TakeTicket(request_id="lost", service_id="permit"))
    assert queue.engine is engine  # the hub's reference stays live
    assert queue.engine.snapshot() == before
    assert queue.store.count() == count
    assert queue.store.reply_for("lost") is None
    outbox_rows = sqlite3.connect(db).execute("SELECT count(*) FROM outbox").fetchone()[0]
    assert outbox_rows == count  # the projector's rows rolled back with the events
    # The store is usable afterwards and the failed number is given again: no gap.
    outcome = queue.execute(TakeTicket(service_id="pension"))
    assert outcome.ticket is not None and outcome.ticket.number == "B001"
    queue.projectors.remove(broken)
    outcome = queue.execute(TakeTicket(request_id="lost", service_id="permit"))
    assert outcome.ticket is not None and outcome.ticket.number == "C001"


def test_listeners_hear_committed_events_and_cannot_break_a_command(queue: DurableQueue):
    heard: list[list[Event]] = []

    def faulty(events: list[Event]) -> None:
        raise RuntimeError("display offline")

    queue.listeners += [faulty, heard.append]
    outcome = queue.execute(TakeTicket(service_id="social"))
    assert heard == [outcome.events]
    assert queue.store.count() == 2


# ---- kill -9 ----------------------------------------------------------------------------------


def read_acknowledged(child: subprocess.Popen[str], lines: int) -> list[dict[str, str | None]]:
    """The next ``lines`` acknowledgements the child printed (fewer if it died): every one is kept,
    so the check covers all of them however far the child got before the kill."""
    assert child.stdout is not None
    read: list[dict[str, str | None]] = []
    for _ in range(lines):
        line = child.stdout.readline()
        if not line.endswith("\n"):
            break
        read.append(json.loads(line))
    return read


def test_killed_process_loses_nothing_acknowledged(small_config: HallConfig, db: Path):
    rng = random.Random(20261123)
    acknowledged: list[dict[str, str | None]] = []
    for run in range(6):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.core.crash_child", str(db), str(run),
             "full" if run % 2 == 0 else "normal"],
            cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert child.stdout is not None
        assert json.loads(child.stdout.readline()) == {"ready": True}, "child did not start"
        # Let it run for a random while, then kill it wherever it is.
        planned = rng.randint(5, 300)
        read = read_acknowledged(child, planned)
        assert len(read) == planned, f"the child stopped after {len(read)} of {planned} actions"
        acknowledged += read
        time.sleep(rng.uniform(0, 0.05))
        os.kill(child.pid, signal.SIGKILL)
        # Through the same text reader as above: communicate(timeout=…) reads the pipe's descriptor
        # directly and would skip what this reader had already buffered, starting mid-line.
        rest = child.stdout.read()
        assert child.wait(timeout=10) == -signal.SIGKILL
        # Lines read here were printed before the kill; a torn last line was never acknowledged.
        acknowledged += [json.loads(line) for line in rest.splitlines() if line.endswith("}")]
        check_after_crash(small_config, db, run, acknowledged)
    print(f"{len(acknowledged)} acknowledged actions over 6 kills")
    assert sum(1 for a in acknowledged if a["action"] == "take") > 50


def check_after_crash(config: HallConfig, db: Path, run: int, acknowledged: list[dict[str, str | None]]) -> None:
    queue = DurableQueue(config, db, clock=lambda: MONDAY + timedelta(minutes=20 * run + 19))
    try:
        events = [event for _, event in queue.store.events()]
        issued: dict[str, list[str]] = defaultdict(list)
        called: dict[str, list[str]] = defaultdict(list)
        seqs: dict[tuple[date, str], list[int]] = defaultdict(list)
        for event in events:
            if isinstance(event, TicketIssued):
                issued[event.request_id or ""].append(event.ticket.id)
                seqs[event.ticket.day, event.ticket.prefix].append(event.ticket.seq)
            elif isinstance(event, TicketCalled):
                called[event.request_id or ""].append(event.ticket_id)
        for ack in acknowledged:
            request, ticket = str(ack["request"]), ack["ticket"]
            if ack["action"] == "take":
                assert issued[request] == [ticket], f"acknowledged ticket {ticket} lost or doubled"
                assert queue.engine.state.tickets[ticket].ticket.id == ticket
            else:
                assert called[request] == ([ticket] if ticket else [])
        all_ids = [t for ids in issued.values() for t in ids]
        assert len(all_ids) == len(set(all_ids))
        for numbers in seqs.values():
            assert numbers == list(range(1, len(numbers) + 1))
        # A kiosk that missed the answer asks again after the restart: same ticket, none new.
        if acknowledged:
            last = acknowledged[-1]
            command: Command = (
                TakeTicket(request_id=str(last["request"]), service_id="social")
                if last["action"] == "take" else CallNext(request_id=str(last["request"]), window=1)
            )
            count = queue.store.count()
            stored = queue.store.reply_for(command.request_id)
            assert stored is not None
            replied = queue.execute(command)
            assert replied == Outcome.model_validate_json(stored[1])
            if last["ticket"] is not None:
                assert replied.ticket is not None and replied.ticket.ticket_id == last["ticket"]
            assert queue.store.count() == count
    finally:
        queue.close()


def _frames_in_log(path: Path) -> int:
    """The log's frame count as SQLite's shared index holds it (mxFrame, offset 16 of the -shm
    file: sqlite.org/walformat.html), read without a connection of its own, which would take part."""
    return struct.unpack_from("=I", Path(f"{path}-shm").read_bytes(), 16)[0]


def test_the_log_starts_over_under_a_steady_stream_of_commits(tmp_path, monkeypatch):
    """A passive checkpoint never catches up with commits that never stop: the log grew without
    end (290 MB in bench/hub.py's fill). Past RESTART_FRAMES the checkpoint makes it start over."""
    monkeypatch.setattr(sqlite_store, "RESTART_FRAMES", 256)  # 1 MiB of log, not 16
    store = EventStore(tmp_path / "hall.sqlite3", synchronous="normal")
    try:
        with store.transaction() as conn:
            conn.execute("CREATE TABLE filler (x BLOB)")
        grown = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with store.transaction() as conn:
                conn.execute("INSERT INTO filler VALUES (?)", (b"x" * 3000,))
            frames = _frames_in_log(store.path)
            grown = grown or frames > 256
            if grown and frames < 64:
                break
            time.sleep(0.0002)  # the writer lets go now and then, as the hub does between commands
        assert grown and frames < 64, f"the log holds {frames} frames"
    finally:
        store.close()
