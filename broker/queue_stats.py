"""Queue statistics for the county, computed from the hub's event log.

Cumulative for one business day (from its ``day_opened`` event) up to a
moment: tickets taken, served, abandoned and waiting, mean and p90 wait
(taking a ticket to its first call), per service, per window and for the
hall. The event log is the source of truth, so statistics need no tables of
their own and a restarted hub computes the same figures.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime

from county.contract import QueueFigures, QueueStats, ServiceStats, WindowStats
from hallkit.queue.models import (
    EVENT,
    DayOpened,
    Event,
    TicketCalled,
    TicketCompleted,
    TicketIssued,
    TicketSkipped,
    TicketState,
    TicketTransferred,
)


@dataclass
class _Ticket:
    taken_service: str
    service: str
    taken_at: datetime
    state: TicketState = TicketState.WAITING
    first_window: int | None = None
    wait_seconds: float | None = None


@dataclass
class _Window:
    waits: list[float] = field(default_factory=list)
    served: int = 0
    service_seconds: list[float] = field(default_factory=list)


def day_stats(hall_id: str, day: date, events: list[Event], as_of: datetime, final: bool,
              left_at_close: list[str], stats_id: str) -> QueueStats:
    """Statistics of ``day`` from its events; ``left_at_close`` are the tickets the next day abandoned."""
    tickets: dict[str, _Ticket] = {}
    windows: dict[int, _Window] = {}
    for event in events:
        if isinstance(event, TicketIssued):
            ticket = event.ticket
            tickets[ticket.id] = _Ticket(ticket.service_id, ticket.service_id, ticket.taken_at)
            continue
        found = tickets.get(getattr(event, "ticket_id", ""))
        if found is None:
            continue
        if isinstance(event, TicketCalled):
            found.state = TicketState.CALLED
            if found.first_window is None:
                found.first_window = event.window
                found.wait_seconds = max(0.0, (event.at - found.taken_at).total_seconds())
                windows.setdefault(event.window, _Window()).waits.append(found.wait_seconds)
        elif isinstance(event, TicketSkipped):
            found.state = TicketState.WAITING if event.requeued else TicketState.NO_SHOW
        elif isinstance(event, TicketTransferred):
            found.state = TicketState.WAITING
            found.service = event.to_service
        elif isinstance(event, TicketCompleted):
            found.state = TicketState.DONE
            found.service = event.service_id
            window = windows.setdefault(event.window, _Window())
            window.served += 1
            window.service_seconds.append(max(0.0, (event.at - event.called_at).total_seconds()))
    for ticket_id in left_at_close:
        if ticket_id in tickets and tickets[ticket_id].state in (TicketState.WAITING, TicketState.CALLED):
            tickets[ticket_id].state = TicketState.ABANDONED
    services = sorted({t.taken_service for t in tickets.values()} | {t.service for t in tickets.values()})
    return QueueStats(
        stats_id=stats_id, hall_id=hall_id, day=day, as_of=as_of, final=final,
        total=_figures(list(tickets.values()), list(tickets.values())),
        services=[ServiceStats(service_id=s, **_figures(
            [t for t in tickets.values() if t.taken_service == s],
            [t for t in tickets.values() if t.service == s]).model_dump()) for s in services],
        windows=[WindowStats(window=number, called=len(w.waits), served=w.served, mean_wait_seconds=_mean(w.waits),
                             p90_wait_seconds=_p90(w.waits), mean_service_seconds=_mean(w.service_seconds))
                 for number, w in sorted(windows.items())],
    )


def final_stats(hall_id: str, day: DaySlice, closing: DayOpened) -> QueueStats:
    """The final statistics of a closed day: as of the ``day_opened`` that closed it, with what it abandoned."""
    return day_stats(hall_id, day.opened.day, day.events, closing.at, True, closing.abandoned,
                     f"{hall_id}-{day.opened.day.isoformat()}-final")


def _figures(taken: list[_Ticket], current: list[_Ticket]) -> QueueFigures:
    """Taken and waits count by the service a ticket was taken for; the rest by where it ended up."""
    waits = [t.wait_seconds for t in taken if t.wait_seconds is not None]
    return QueueFigures(
        taken=len(taken),
        served=sum(t.state == TicketState.DONE for t in current),
        abandoned=sum(t.state in (TicketState.NO_SHOW, TicketState.ABANDONED) for t in current),
        waiting=sum(t.state == TicketState.WAITING for t in current),
        mean_wait_seconds=_mean(waits), p90_wait_seconds=_p90(waits),
    )


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile: a wait that 90% of residents did not exceed."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[math.ceil(0.9 * len(ordered)) - 1], 1)


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
    if len(rows) < 2:
        return None
    (latest,), (previous,) = rows
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
