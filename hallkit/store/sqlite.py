"""The event log in SQLite (WAL): append-only events plus the reply to each request.

Tables:

- ``events``: every queue event in order (``seq``), its id unique forever.
- ``requests``: the reply given to each request id, written in the same
  transaction as the events it caused, so a repeated request gets the same
  answer and never a second ticket, even across a crash.
- ``meta``: the schema version.

Other parts (ratings, the uplink outbox) add their own tables and write them
inside the same transaction through :meth:`EventStore.transaction`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Literal

from hallkit.queue.engine import LASTING_EVENTS, WINDOW_STATE_EVENTS, PastDays
from hallkit.queue.models import EVENT, Event
from hallkit.store.lock import FolderLock

SCHEMA_VERSION = 1

SQLITE_IOERR = 10
SQLITE_FULL = 13
LOW_SPACE = 1 << 20
"""Free bytes under which a "disk I/O error" is taken for what it then is: a full disk."""

Synchronous = Literal["full", "normal"]

CHECKPOINT_SECONDS = 1.0
RESTART_FRAMES = 4096
"""WAL frames (pages) past which the background checkpoint also makes the log start over.

A passive checkpoint copies the frames that were there when it began; under a steady stream of
commits new ones are always there by the time it ends, and SQLite starts the log over only
when none are. So under sustained load (a morning rush, a bench) the log grew without end: 290 MB
during bench/hub.py's fill, and each commit cost 50 µs more CPU and 0.1 ms more time, the file
growing at each (docs/queue.md). Past this many frames (16 MiB of 4 KiB pages), and when the
passive checkpoint left at most RESTART_LEFT of them, the checkpoint takes the write lock, copies
the rest and lets the next commit start over."""
RESTART_LEFT = 512
"""Frames a restart may still have to copy while it holds the write lock (the hub's commits wait
for it). More are left when a reader held the passive checkpoint back: then the next round."""
RESTART_WAIT = 0.1
"""Seconds the restart waits for the write lock, and for readers, before it gives up until the next round."""


class EventStore:
    def __init__(self, path: Path | str, synchronous: Synchronous = "full") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One writer per log: a second process on it would interleave its own events.
        self._lock = FolderLock(self.path.parent, f"{self.path.name}.lock").acquire()
        try:
            # Created for its owner only; SQLite gives the -wal and -shm files the same mode.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            self.path.chmod(0o600)
            self._open(synchronous)
        except BaseException:
            self._lock.release()
            raise

    def _open(self, synchronous: Synchronous) -> None:
        # One connection, used under the owner's lock; check_same_thread off because the hub
        # hands commands from the MQTT thread.
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()
        # Checkpoints move the WAL into the database file. Run inline (SQLite's default, every
        # 1000 pages) they land on whichever command happens to cross the threshold and make
        # its reply slow; a background connection does them instead.
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        self._closing = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="sqlite-checkpoint",
                                              daemon=True)
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=RESTART_WAIT)
        try:
            while not self._closing.wait(CHECKPOINT_SECONDS):
                try:
                    _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames > RESTART_FRAMES and frames - copied <= RESTART_LEFT:
                        conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                except sqlite3.Error:  # busy or closing: the next round catches up
                    continue
        finally:
            conn.close()

    def _migrate(self) -> None:
        with self.transaction() as c:
            c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = c.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} was written by a newer hallkit (schema {version}); upgrade hallkit"
                )
            if version < 1:
                # executescript() would commit on its own; these run inside the transaction.
                c.execute(
                    """CREATE TABLE events (
                        seq INTEGER PRIMARY KEY,
                        id TEXT NOT NULL UNIQUE,
                        type TEXT NOT NULL,
                        at TEXT NOT NULL,
                        request_id TEXT,
                        body TEXT NOT NULL
                    )"""
                )
                c.execute(
                    """CREATE TABLE requests (
                        request_id TEXT PRIMARY KEY,
                        action TEXT NOT NULL,
                        reply TEXT NOT NULL
                    )"""
                )
                # Written only when it changes: a hub on a full disk still opens its log.
                c.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            # Also when COMMIT itself fails (disk full, busy): SQLite may leave the transaction
            # open, and the next BEGIN would then fail for good.
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    @staticmethod
    def append(conn: sqlite3.Connection, events: list[tuple[Event, str]]) -> None:
        """Store each event with its JSON (the caller encoded it once, for the reply too)."""
        conn.executemany(
            "INSERT INTO events (id, type, at, request_id, body) VALUES (?, ?, ?, ?, ?)",
            [(e.id, e.type, e.at.isoformat(), e.request_id, body) for e, body in events],
        )

    @staticmethod
    def remember(conn: sqlite3.Connection, replies: list[tuple[str, str, str]]) -> None:
        """Store (request id, action, reply JSON) of each request answered, in one statement."""
        conn.executemany("INSERT INTO requests VALUES (?, ?, ?)", replies)

    def replies_for(self, request_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(action, reply JSON) of each of ``request_ids`` already answered.

        One statement for a whole burst: the ids go in as one JSON array, so the statement is
        the same (and prepared once) whatever the burst's size.
        """
        rows = self.conn.execute(
            "SELECT request_id, action, reply FROM requests WHERE request_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(request_ids)),),
        )
        return {request_id: (action, reply) for request_id, action, reply in rows}

    def reply_for(self, request_id: str) -> tuple[str, str] | None:
        """(action, reply JSON) of a request already answered, if any."""
        return self.replies_for([request_id]).get(request_id)

    def events(self, after_seq: int = 0) -> Iterator[tuple[int, Event]]:
        """The log from ``after_seq`` on, streamed: one row in memory at a time."""
        cursor = self.conn.execute("SELECT seq, body FROM events WHERE seq > ? ORDER BY seq", (after_seq,))
        # pydantic-core's validator itself, without the TypeAdapter's wrapper in Python around each
        # call: a fifth of parsing an event, and a restart parses the whole log.
        validate = EVENT.validator.validate_json
        for seq, body in cursor:
            yield seq, validate(body)

    def current_day_seq(self) -> int:
        """``seq`` of the last ``day_opened``: where the current business day begins (0: no day yet)."""
        row = self.conn.execute("SELECT max(seq) FROM events WHERE type = 'day_opened'").fetchone()
        return int(row[0]) if row[0] is not None else 0

    def past_days(self, before_seq: int) -> PastDays:
        """What the events before ``before_seq`` leave a later business day (see :class:`PastDays`)."""
        conn = self.conn
        events = conn.execute("SELECT count(*) FROM events WHERE seq < ?", (before_seq,)).fetchone()[0]
        enqueued = conn.execute(
            "SELECT count(*) FROM events WHERE seq < ? AND (type = 'ticket_issued' "
            "OR (type = 'ticket_skipped' AND json_extract(body, '$.requeued')))", (before_seq,)).fetchone()[0]
        marks = ",".join("?" * len(WINDOW_STATE_EVENTS))
        windows = [number for (number,) in conn.execute(
            f"SELECT DISTINCT json_extract(body, '$.window') FROM events WHERE seq < ? AND type IN ({marks})",
            (before_seq, *WINDOW_STATE_EVENTS))]
        marks = ",".join("?" * len(LASTING_EVENTS))
        lasting = [EVENT.validate_json(body) for (body,) in conn.execute(
            f"SELECT body FROM events WHERE seq < ? AND type IN ({marks}) ORDER BY seq", (before_seq, *LASTING_EVENTS))]
        return PastDays(events=events, enqueued=enqueued, windows=windows, window_events=lasting)

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        self._closing.set()
        self._checkpointer.join(timeout=5)
        self.conn.close()
        self._lock.release()


def day_opened_seq(conn: sqlite3.Connection, day: date) -> int | None:
    """``seq`` of the ``day_opened`` event that opened business day ``day``, if the log has it."""
    row = conn.execute("SELECT seq FROM events WHERE type = 'day_opened' AND json_extract(body, '$.day') = ? "
                       "ORDER BY seq LIMIT 1", (day.isoformat(),)).fetchone()
    return int(row[0]) if row else None


def day_events(conn: sqlite3.Connection, day: date) -> list[Event]:
    """Business day ``day`` as the figures fold it: from its ``day_opened`` through the next one.

    The next ``day_opened`` is included because it names the tickets the day left behind.
    """
    first = day_opened_seq(conn, day)
    if first is None:
        return []
    row = conn.execute("SELECT min(seq) FROM events WHERE type = 'day_opened' AND seq > ?", (first,)).fetchone()
    last = row[0] if row and row[0] is not None else 2**62
    rows = conn.execute("SELECT body FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq", (first, last))
    return [EVENT.validate_json(body) for (body,) in rows]


def disk_full(exc: BaseException, folder: Path) -> bool:
    """Whether ``exc`` means the disk under ``folder`` has no room left.

    SQLite says "database or disk is full" on most writes but only "disk I/O error" on some
    (a WAL or shared-memory file it cannot grow); the free space tells those apart.
    """
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code == SQLITE_FULL:
            return True
        if code != SQLITE_IOERR:
            return False
    elif isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
    else:
        return False
    try:
        return shutil.disk_usage(folder).free < LOW_SPACE
    except OSError:
        return False
