"""The uplink outbox: everything the county needs, kept in the hub's SQLite until the county has it.

A hub part. Each item enters the ``outbox`` table in the same transaction as
the change that caused it: ratings and case updates through the hub's record
sinks (in the rating part's transaction), final statistics of a day through a
queue projector (in the transaction of the event that opens the next day).
Interval statistics and device telemetry are changes of their own and get
their own transactions. The :class:`~broker.forwarder.Forwarder` sends the
table to the county in ``seq`` order and deletes rows only once the county's
receipt says they are stored (a broker's acknowledgement is not enough), so
nothing is lost to a dead link, a killed hub or a power cut (SQLite WAL; the
hub's synchronous setting), nor to a county broker that loses what it
acknowledged.

Disk cap: the outbox keeps its own size (items and bytes, in the same
transactions: uplink/table.py). From ``alarm_at`` of the cap it raises the alarm and thins
what later items replace: telemetry down to each device's newest state, then
interval statistics down to each day's newest (they are cumulative). At the
cap, new telemetry and interval statistics are not stored (counted as
dropped). Ratings and cases are always stored.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from hallkit.contracts.hall import DeviceStatus, Topics
from hallkit.contracts.uplink import DeviceTelemetry, UpKind
from hallkit.uplink.backfill import backfill
from hallkit.uplink.forwarder import Backlog, Forwarder
from hallkit.uplink.queue_stats import closed_day, current_day, day_stats
from hallkit.uplink.table import SCHEMA, add_item, delete_rows, read_size
from pydantic import BaseModel, ValidationError

from hallkit.config import HallConfig, Upstream
from hallkit.i18n import bilingual
from hallkit.queue.models import DayOpened, Event, new_id
from hallkit.rating.models import CaseUpdate, Rating
from hallkit.store.durable import DurableQueue

log = logging.getLogger("hallkit.outbox")


class HubServices(Protocol):
    """What the outbox uses of the hub it is attached to (``hallkit.broker.hub.Hub``).

    Named here, not imported, so the uplink sits below the hub that runs it.
    """

    queue: DurableQueue
    session: int
    record_sinks: list[Callable[[sqlite3.Connection, BaseModel], None]]

    def refuse(self, topic: str, reply_to: str | None, reason: str, detail: str,
               request_id: str | None = None) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """The hub part; ``upstream`` comes from the hall configuration's ``[upstream]``."""

    def __init__(self, config: HallConfig, upstream: Upstream) -> None:
        self.config = config
        self.upstream = upstream
        self.hall = config.hall.id
        self.topics = Topics(self.hall)
        self.cap_bytes = int(upstream.disk_cap_mb * 1024 * 1024)
        self.alarm_bytes = int(self.cap_bytes * upstream.alarm_at)
        self.dropped = 0
        self.thinned = 0
        self.alarm = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ticker = threading.Thread(target=self._stats_loop, name="outbox-stats", daemon=True)
        self._conn: sqlite3.Connection | None = None
        self.forwarder: Forwarder | None = None
        self.hub: HubServices | None = None

    # ---- HubPart ---------------------------------------------------------------------------

    def attach(self, hub: HubServices) -> None:
        self.hub = hub
        store = hub.queue.store
        with store.transaction() as conn:
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO outbox_meta VALUES ('epoch', ?)", (new_id(),))
            epoch = conn.execute("SELECT value FROM outbox_meta WHERE key = 'epoch'").fetchone()[0]
        # What the hall held before this uplink (or this county) goes up once: broker/backfill.py.
        backfill(store, self.config, self.upstream, hub.session)
        synchronous = int(store.conn.execute("PRAGMA synchronous").fetchone()[0])
        # Interval statistics and telemetry have a connection of their own: they are written from
        # the MQTT thread and a timer, and must not wait for (or hold) the queue's lock.
        self._conn = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        hub.record_sinks.append(self.record)
        hub.queue.projectors.append(self._close_day)
        self.forwarder = Forwarder(store.path, self.upstream, self.config.hall, epoch, synchronous)
        self.forwarder.start()
        self._ticker.start()

    def subscriptions(self) -> list[str]:
        return [self.topics.device_statuses]

    def handle(self, topic: str, payload: bytes) -> None:
        """A device's retained status: telemetry for the county when something changed."""
        assert self.hub is not None
        try:
            status = DeviceStatus.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            self.hub.refuse(topic, None, "hub.invalid", f"{'.'.join(map(str, first['loc']))}: {first['msg']}"[:300])
            return
        device = Topics.device_of(topic)
        if status.device != device:
            self.hub.refuse(topic, None, "hub.device_mismatch", f"{status.device} on {topic}")
            return
        paper = status.detail.get("paper")
        telemetry = DeviceTelemetry(
            telemetry_id=new_id(), hall_id=self.hall, device=device, kind=status.kind[:32] or "unknown",
            state=status.state.value, session=status.session, version=status.version[:64],
            observed_at=status.ts, paper=str(paper)[:16] if paper is not None else None,
            faults=[p.reason for p in status.problems])
        fingerprint = telemetry.model_dump_json(include={"kind", "state", "session", "version", "paper", "faults"})
        with self._transaction() as conn:
            row = conn.execute("SELECT fingerprint FROM outbox_devices WHERE device = ?", (device,)).fetchone()
            if row is not None and row[0] == fingerprint:
                return  # the same state again (the retained status re-read after a reconnect)
            if not self._room_for(conn, len(fingerprint) + 300):
                return  # dropped at the cap: the next change of this device goes up instead
            conn.execute("INSERT OR REPLACE INTO outbox_devices VALUES (?, ?)", (device, fingerprint))
            add_item(conn, UpKind.TELEMETRY, telemetry.telemetry_id, telemetry, thin_key=f"dev:{device}")
        self._wake()

    def status(self) -> dict[str, str | int | float | bool | None]:
        backlog = self.backlog()
        return {"uplink.connected": backlog.connected, "uplink.backlog": backlog.items,
                "uplink.oldest_seconds": round(backlog.oldest_seconds, 1), "uplink.bytes": backlog.bytes,
                "uplink.unsent": backlog.unsent, "uplink.oldest_unsent_seconds": round(backlog.oldest_unsent_seconds, 1),
                "uplink.awaiting_receipt": backlog.awaiting,
                "uplink.oldest_awaiting_seconds": round(backlog.oldest_awaiting_seconds, 1),
                "uplink.alarm": self.alarm, "uplink.dropped": self.dropped}

    def close(self) -> None:
        self._stopping.set()
        if self.forwarder is not None:
            self.forwarder.stop()
        self._ticker.join(timeout=5)
        if self._conn is not None:
            with self._lock:
                self._conn.close()

    # ---- records and statistics ------------------------------------------------------------

    def record(self, conn: sqlite3.Connection, record: BaseModel) -> None:
        """Record sink: a rating or a case update, in the transaction that made it; never dropped."""
        if isinstance(record, Rating):
            # The keyed hash links one resident's visits: it stays in the hall (docs/upstream.md).
            add_item(conn, UpKind.RATING, record.rating_id, record.model_copy(update={"resident_hash": None}))
        elif isinstance(record, CaseUpdate):
            add_item(conn, UpKind.CASE, record.update_id, record)
        else:
            # A record the county contract does not know would be lost silently: fail the transaction.
            raise TypeError(f"the uplink outbox cannot send {type(record).__name__} records")
        self._check_alarm(conn)
        self._wake(after_commit=True)

    def _close_day(self, conn: sqlite3.Connection, events: list[Event]) -> None:
        """Projector: when a new business day opens, the final statistics of the one it closed."""
        if not any(isinstance(e, DayOpened) for e in events):
            return
        closed = closed_day(conn)
        if closed is None:
            return
        day, closing = closed
        try:
            stats = day_stats(self.hall, day.opened.day, day.events, closing.at, True, closing.abandoned,
                              f"{self.hall}-{day.opened.day.isoformat()}-final")
        except (ValueError, ArithmeticError):
            # This runs inside the queue's transaction: a fault in the figures must not stop the
            # hall issuing tickets. The interval statistics of that day are already up.
            log.exception("final statistics of %s failed", day.opened.day)
            return
        add_item(conn, UpKind.STATS, stats.stats_id, stats)
        self._wake()

    def write_stats(self) -> bool:
        """Interval statistics of the running day, when the log moved since the last ones or someone
        waits (the longest wait grows without any event)."""
        with self._transaction() as conn:
            day = current_day(conn)
            if day is None:
                return False
            last = conn.execute("SELECT value FROM outbox_meta WHERE key = 'stats_seq'").fetchone()
            moved = last is None or int(last[0]) != day.last_seq
            # The queue's clock, which stamped the tickets: the longest wait is read on the same one.
            as_of = self.hub.queue.clock() if self.hub is not None else utcnow()
            stats_id = f"{self.hall}-{day.opened.day.isoformat()}-{day.last_seq}"
            stats = day_stats(self.hall, day.opened.day, day.events, as_of, False, [],
                              stats_id if moved else f"{stats_id}-{int(as_of.timestamp())}")
            if not moved and not stats.total.waiting:
                return False
            conn.execute("INSERT OR REPLACE INTO outbox_meta VALUES ('stats_seq', ?)", (str(day.last_seq),))
            if not self._room_for(conn, 2000):
                return False
            add_item(conn, UpKind.STATS, stats.stats_id, stats, thin_key=f"day:{day.opened.day.isoformat()}")
        self._wake()
        return True

    def _stats_loop(self) -> None:
        interval = self.upstream.stats_interval_minutes * 60
        while not self._stopping.wait(interval):
            try:
                self.write_stats()
            except sqlite3.Error:
                log.exception("could not write queue statistics; trying again next interval")

    # ---- the disk cap ----------------------------------------------------------------------

    def _room_for(self, conn: sqlite3.Connection, size: int) -> bool:
        """Whether a replaceable item (telemetry, interval statistics) may be stored, thinning first."""
        _, used = read_size(conn)
        if used + size <= self.alarm_bytes:
            return True
        for kind in ("dev:", "day:"):
            # Keep the newest row of each device (each day); older ones are replaced by it anyway.
            self.thinned += delete_rows(
                conn, "thin_key LIKE ? AND seq NOT IN (SELECT max(seq) FROM outbox WHERE thin_key LIKE ? GROUP BY thin_key)",
                (f"{kind}%", f"{kind}%"))
            _, used = read_size(conn)
            if used + size <= self.alarm_bytes:
                break
        self._check_alarm(conn)
        if used + size > self.cap_bytes:
            self.dropped += 1
            return False
        return True

    def _check_alarm(self, conn: sqlite3.Connection) -> None:
        _, used = read_size(conn)
        alarm = used >= self.alarm_bytes
        if alarm and not self.alarm:
            log.warning(bilingual("upstream.alarm", used=round(used / 2**20, 1),
                                  cap=round(self.cap_bytes / 2**20, 1)))
        self.alarm = alarm

    # ---- helpers ---------------------------------------------------------------------------

    def backlog(self) -> Backlog:
        if self.forwarder is None:
            return Backlog()
        return self.forwarder.backlog()

    def _wake(self, after_commit: bool = False) -> None:
        if self.forwarder is not None:
            self.forwarder.wake(after_commit)

    def _transaction(self) -> _Transaction:
        assert self._conn is not None
        return _Transaction(self._conn, self._lock)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT on the outbox's own connection, under its lock."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock) -> None:
        self.conn = conn
        self.lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.conn

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                self.conn.execute("COMMIT")
            elif self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        finally:
            if self.conn.in_transaction:  # COMMIT failed (disk full): do not leave it open
                self.conn.execute("ROLLBACK")
            self.lock.release()
