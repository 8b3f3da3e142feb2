"""Queue statistics for the county: the figures of :mod:`hallkit.queue.figures`, as the uplink sends them.

Cumulative for one business day (from its ``day_opened`` event) up to a moment. The event log is
the source of truth, so statistics need no tables of their own and a restarted hub computes the
same figures; what each figure counts is defined once, in ``hallkit/queue/figures.py``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime

from hallkit.contracts.uplink import QueueFigures, QueueStats, ServiceStats, WindowStats

from hallkit.queue.figures import DayFold
from hallkit.queue.models import EVENT, DayOpened, Event


def day_stats(hall_id: str, day: date, events: list[Event], as_of: datetime, final: bool,
              left_at_close: list[str], stats_id: str) -> QueueStats:
    """Statistics of ``day`` from its events after its ``day_opened``; ``left_at_close`` are the
    tickets the next day abandoned."""
    fold = DayFold(day, opened=True)
    for event in events:
        fold.apply(event)
    if final:
        fold.close(left_at_close)
    figures = fold.figures(as_of)
    return QueueStats(
        stats_id=stats_id, hall_id=hall_id, day=day, as_of=as_of, final=final,
        total=QueueFigures.model_validate(figures.total.model_dump()),
        services=[ServiceStats.model_validate(s.model_dump()) for s in figures.services],
        windows=[WindowStats.model_validate(w.model_dump()) for w in figures.windows])


def final_stats(hall_id: str, day: DaySlice, closing: DayOpened) -> QueueStats:
    """The final statistics of a closed day: as of the ``day_opened`` that closed it, with what it abandoned."""
    return day_stats(hall_id, day.opened.day, day.events, closing.at, True, closing.abandoned,
                     f"{hall_id}-{day.opened.day.isoformat()}-final")


# ---- reading the log ---------------------------------------------------------------------------


@dataclass
class DaySlice:
    """The events of one business day, with where they stop in the log."""

    opened: DayOpened
    events: list[Event]
    last_seq: int


def current_day(conn: sqlite3.Connection) -> DaySlice | None:
    """The business day now running: from the latest ``day_opened`` to the end of the log."""
    rows = conn.execute("SELECT seq FROM events WHERE type = 'day_opened' ORDER BY seq DESC LIMIT 1").fetchall()
    if not rows:
        return None
    return _slice(conn, rows[0][0], None)


def closed_day(conn: sqlite3.Connection) -> tuple[DaySlice, DayOpened] | None:
    """The day the latest ``day_opened`` closed, and that event (it names the tickets left over)."""
    rows = conn.execute("SELECT seq FROM events WHERE type = 'day_opened' ORDER BY seq DESC LIMIT 2").fetchall()
    match rows:
        case [(latest,), (previous,)]:
            pass
        case _:
            return None  # no day has closed yet
    closing = EVENT.validate_json(conn.execute("SELECT body FROM events WHERE seq = ?", (latest,)).fetchone()[0])
    day = _slice(conn, previous, latest)
    if day is None or not isinstance(closing, DayOpened):
        return None
    return day, closing


def _slice(conn: sqlite3.Connection, first: int, stop: int | None) -> DaySlice | None:
    rows = conn.execute("SELECT seq, body FROM events WHERE seq >= ? AND seq < ? ORDER BY seq",
                        (first, stop if stop is not None else 2**62)).fetchall()
    events = [EVENT.validate_json(body) for _, body in rows]
    if not events or not isinstance(events[0], DayOpened):
        return None
    return DaySlice(opened=events[0], events=events[1:], last_seq=rows[-1][0])
