"""Figures of one business day, folded from the hub's event log by the core's fold.

The hub writes the log (``<data>/hall.sqlite3``); the dashboard only reads it, from another
process, through a read-only connection (WAL lets it read while the hub writes). Today's
figures are folded incrementally from the last ``seq`` seen, so a refresh reads only the new
events; a past day is folded once from its ``day_opened`` to the next. What each figure counts
is defined in ``hallkit/queue/figures.py``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from hallkit.config import HallConfig
from hallkit.queue.figures import DayFold, QueueDay, ServiceFigures, StaffFigures, WindowFigures
from hallkit.queue.models import EVENT, Event, TicketIssued
from hallkit.queue.numbering import business_day
from hallkit.store.sqlite import day_events, day_opened_seq

BUCKET_MINUTES = 10
"""Charts show the day in ten-minute steps: fine enough to see the morning rush, few enough points."""


class EventLog:
    """The hub's event log, read-only. Opens lazily: the hub may not have created it yet."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def connection(self) -> sqlite3.Connection | None:
        if self._conn is None and self.path.exists():
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout=2000")
        return self._conn

    def since(self, seq: int) -> list[tuple[int, Event]]:
        conn = self.connection()
        if conn is None:
            return []
        rows = conn.execute("SELECT seq, body FROM events WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
        return [(s, EVENT.validate_json(body)) for s, body in rows]

    def of_day(self, day: date) -> list[Event]:
        """Business day ``day`` from its ``day_opened`` through the next one (log order, not the clock)."""
        conn = self.connection()
        return [] if conn is None else day_events(conn, day)

    def before_day(self, day: date) -> int:
        """The ``seq`` to fold ``day`` after: just before its ``day_opened``, or the log's end if it has none yet."""
        conn = self.connection()
        if conn is None:
            return 0
        opened = day_opened_seq(conn, day)
        if opened is not None:
            return opened - 1
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        return int(row[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(slots=True)
class Bucket:
    """A ten-minute step of one service: the longest line seen and the waits of those called."""

    max_waiting: int = 0
    end_waiting: int = 0
    waits: list[float] = field(default_factory=list)


class DayStats:
    """One business day for the board, charts and report.

    Every figure comes from the core's fold (:class:`hallkit.queue.figures.DayFold`, where each is
    defined); this adds only what the charts draw: tickets per hour and ten-minute steps of each line.
    """

    def __init__(self, config: HallConfig, day: date) -> None:
        self.config = config
        self.day = day
        self.zone = config.hall.zone
        self.start = datetime.combine(day, time(config.queue.reset_hour), self.zone)
        self.fold = DayFold(day)
        self.hourly: dict[int, int] = {}
        self.buckets: dict[str, dict[int, Bucket]] = {}
        self.last_seq = 0
        self.last_at = self.start
        self._figures: QueueDay | None = None

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=1)

    def apply(self, event: Event) -> None:
        ticket_id: str | None = getattr(event, "ticket_id", None)
        waited = self.fold.wait_of(ticket_id) if ticket_id else None
        self.fold.apply(event)
        self._figures = None
        if not self.fold.inside:
            return
        self.last_at = event.at
        if isinstance(event, TicketIssued):
            hour = event.ticket.taken_at.astimezone(self.zone).hour
            self.hourly[hour] = self.hourly.get(hour, 0) + 1
            self._line(event.ticket.service_id, event.at)
            return
        service = self.fold.service_of(ticket_id) if ticket_id else None
        if service is None:
            return
        self._line(service, event.at)
        wait = self.fold.wait_of(ticket_id) if ticket_id else None
        if waited is None and wait is not None:
            # The wait a resident feels ends at the first call: drawn at that moment, once.
            self._bucket(service, event.at).waits.append(wait)

    def figures(self, as_of: datetime) -> QueueDay:
        """The fold's figures at ``as_of`` (the longest wait's moment), made once per change and moment."""
        if self._figures is None or self._figures.as_of != as_of:
            self._figures = self.fold.figures(as_of)
        return self._figures

    @property
    def counts(self) -> QueueDay:
        """The figures as of the last event: what the board's and report's tallies read (counts and
        waits to a call); the longest wait, which grows between events, the board takes from the hub."""
        return self.figures(self.last_at)

    @property
    def issued(self) -> dict[str, int]:
        return {s.service_id: s.taken for s in self.counts.services if s.taken}

    @property
    def by_service(self) -> dict[str, ServiceFigures]:
        return {s.service_id: s for s in self.counts.services}

    @property
    def by_window(self) -> dict[int, WindowFigures]:
        return {w.window: w for w in self.counts.windows}

    @property
    def by_staff(self) -> dict[str, StaffFigures]:
        return {s.staff_id: s for s in self.counts.staff}

    def _line(self, service_id: str, at: datetime) -> None:
        now = self.fold.waiting.get(service_id, 0)
        bucket = self._bucket(service_id, at)
        bucket.max_waiting = max(bucket.max_waiting, now)
        bucket.end_waiting = now

    def _bucket(self, service_id: str, at: datetime) -> Bucket:
        index = int((at - self.start).total_seconds() // (BUCKET_MINUTES * 60))
        return self.buckets.setdefault(service_id, {}).setdefault(index, Bucket())

    def bucket_time(self, index: int) -> datetime:
        return (self.start + timedelta(minutes=BUCKET_MINUTES * index)).astimezone(self.zone)

    def waiting_series(self, service_id: str, upto: int) -> list[int]:
        """Longest line per ten-minute step up to ``upto``; a quiet step keeps the line it had."""
        steps = self.buckets.get(service_id, {})
        series: list[int] = []
        carried = 0
        for index in range(upto + 1):
            bucket = steps.get(index)
            if bucket is None:
                series.append(carried)
            else:
                # A step where only calls happened still had the line it started with.
                series.append(max(bucket.max_waiting, carried))
                carried = bucket.end_waiting
        return series


def load_day(config: HallConfig, log: EventLog, day: date) -> DayStats:
    """Fold every event of ``day`` (a past day for the report, or today from scratch)."""
    stats = DayStats(config, day)
    for event in log.of_day(day):
        stats.apply(event)
    return stats


def current_day(config: HallConfig, now: datetime) -> date:
    return business_day(now, config.hall.zone, config.queue.reset_hour)
