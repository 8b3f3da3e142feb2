"""Figures of one business day, folded from the hub's event log.

The hub writes the log (``<data>/hall.sqlite3``); the dashboard only reads it, from another
process, through a read-only connection (WAL lets it read while the hub writes). Today's
figures are folded incrementally from the last ``seq`` seen, so a refresh reads only the new
events; a past day is folded once from the events in its time range.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from hallkit.config import HallConfig
from hallkit.queue.models import (
    EVENT,
    DayOpened,
    Event,
    TicketCalled,
    TicketCompleted,
    TicketIssued,
    TicketSkipped,
    TicketTransferred,
)
from hallkit.queue.numbering import business_day

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

    def between(self, start: datetime, end: datetime) -> list[Event]:
        """Events with ``start <= at < end``; ``at`` is stored as ISO text in UTC, so text order is time order."""
        conn = self.connection()
        if conn is None:
            return []
        rows = conn.execute("SELECT body FROM events WHERE at >= ? AND at < ? ORDER BY seq",
                            (start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat())).fetchall()
        return [EVENT.validate_json(body) for (body,) in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(slots=True)
class _Track:
    """One ticket through the day: where it waits and when it was first called."""

    service_id: str
    taken_at: datetime
    waiting: bool = True
    called_at: datetime | None = None


@dataclass(slots=True)
class Tally:
    """Served count, service seconds and waits of a window, a staff member or a service."""

    served: int = 0
    service_seconds: float = 0.0
    waits: list[float] = field(default_factory=list)

    @property
    def mean_service_seconds(self) -> float | None:
        return self.service_seconds / self.served if self.served else None

    @property
    def mean_wait_seconds(self) -> float | None:
        return sum(self.waits) / len(self.waits) if self.waits else None


@dataclass(slots=True)
class Bucket:
    """A ten-minute step of one service: the longest line seen and the waits of those called."""

    max_waiting: int = 0
    end_waiting: int = 0
    waits: list[float] = field(default_factory=list)


class DayStats:
    """Fold of one business day's events into the figures the board, charts and report show."""

    def __init__(self, config: HallConfig, day: date) -> None:
        self.config = config
        self.day = day
        self.zone = config.hall.zone
        self.start = datetime.combine(day, time(config.queue.reset_hour), self.zone)
        self.tickets: dict[str, _Track] = {}
        self.waiting: dict[str, int] = {}
        self.issued: dict[str, int] = {}
        self.by_service: dict[str, Tally] = {}
        self.by_window: dict[int, Tally] = {}
        self.by_staff: dict[str, Tally] = {}
        self.hourly: dict[int, int] = {}
        self.buckets: dict[str, dict[int, Bucket]] = {}
        self.last_seq = 0

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=1)

    def owns(self, event: Event) -> bool:
        return business_day(event.at, self.zone, self.config.queue.reset_hour) == self.day

    def apply(self, event: Event) -> None:
        match event:
            case TicketIssued(ticket=ticket):
                self.tickets[ticket.id] = _Track(service_id=ticket.service_id, taken_at=ticket.taken_at)
                self.issued[ticket.service_id] = self.issued.get(ticket.service_id, 0) + 1
                hour = ticket.taken_at.astimezone(self.zone).hour
                self.hourly[hour] = self.hourly.get(hour, 0) + 1
                self._line(ticket.service_id, event.at, +1)
            case TicketCalled(ticket_id=tid, window=window):
                track = self.tickets.get(tid)
                if track is None:
                    return
                if track.waiting:
                    track.waiting = False
                    self._line(track.service_id, event.at, -1)
                if track.called_at is None:
                    # The wait a resident feels ends at the first call, wherever they are sent after.
                    track.called_at = event.at
                    wait = (event.at - track.taken_at).total_seconds()
                    self._tally_service(track.service_id).waits.append(wait)
                    self._tally_window(window).waits.append(wait)
                    if event.staff_id:
                        self._tally_staff(event.staff_id).waits.append(wait)
                    self._bucket(track.service_id, event.at).waits.append(wait)
            case TicketSkipped(ticket_id=tid, requeued=True) | TicketTransferred(ticket_id=tid):
                track = self.tickets.get(tid)
                if track is None:
                    return
                if isinstance(event, TicketTransferred):
                    track.service_id = event.to_service
                track.waiting = True
                self._line(track.service_id, event.at, +1)
            case TicketCompleted(window=window, staff_id=staff, service_id=service, called_at=called_at):
                seconds = max(0.0, (event.at - called_at).total_seconds())
                tallies = [self._tally_window(window), self._tally_service(service)]
                if staff:
                    tallies.append(self._tally_staff(staff))
                for tally in tallies:
                    tally.served += 1
                    tally.service_seconds += seconds
            case DayOpened():
                # Leftovers of the day before are not in this day's lines.
                for tid in event.abandoned:
                    self.tickets.pop(tid, None)
            case _:
                return

    def _line(self, service_id: str, at: datetime, change: int) -> None:
        now = max(0, self.waiting.get(service_id, 0) + change)
        self.waiting[service_id] = now
        bucket = self._bucket(service_id, at)
        bucket.max_waiting = max(bucket.max_waiting, now)
        bucket.end_waiting = now

    def _bucket(self, service_id: str, at: datetime) -> Bucket:
        index = int((at - self.start).total_seconds() // (BUCKET_MINUTES * 60))
        return self.buckets.setdefault(service_id, {}).setdefault(index, Bucket())

    def _tally_service(self, service_id: str) -> Tally:
        return self.by_service.setdefault(service_id, Tally())

    def _tally_window(self, window: int) -> Tally:
        return self.by_window.setdefault(window, Tally())

    def _tally_staff(self, staff_id: str) -> Tally:
        return self.by_staff.setdefault(staff_id, Tally())

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
    for event in log.between(stats.start, stats.end):
        if stats.owns(event):
            stats.apply(event)
    return stats


def current_day(config: HallConfig, now: datetime) -> date:
    return business_day(now, config.hall.zone, config.queue.reset_hour)
