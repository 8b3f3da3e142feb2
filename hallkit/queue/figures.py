"""Every daily figure of the hall, defined once: one pure fold of the queue's event log.

The hall's reports (``hall figures``), the dashboard and the uplink statistics all fold the log
with :class:`DayFold`; the county stores the statistics the hall sends and computes the rating
figures from the same definitions in SQL (``county/report.py``). The rating and case figures are
defined in :mod:`hallkit.rating.report`; :func:`daily_figures` puts both side by side.
``docs/queue.md`` ("Daily figures") has these definitions as a table.

- **business day**: the events from the queue's ``day_opened`` that names the day up to the next
  ``day_opened``, in log order, not by the clock: a clock stepped back over the reset hour does
  not reopen a past day (the engine goes on numbering the current one). A ticket, the service
  that completed it and its rating belong to the day its id starts with (:func:`ticket_day`).
- **taken**: tickets issued that day, counted for the service they were taken for.
- **served**: tickets completed, counted for the service, window and staff member that completed
  them.
- **waiting**: tickets in a line when the figures are made (issued, put back after a skip, or
  transferred, and not called since), counted for the service whose line they are in.
- **longest wait** (最长等候): how long the longest-waiting of those tickets has waited at the
  moment the figures are made (``as_of``): from its taking (not from a skip or transfer that put it
  back), the earliest taking among them, so after a clock stepped back it is the ticket stamped
  earliest, not the one first in line. Never negative: a ticket stamped after ``as_of`` has waited
  0 s. 0 when nobody waits (a closed day's figures, so 0 there too), like the queue engine's
  :meth:`~hallkit.queue.engine.QueueEngine.service_queues` the hall's board shows: both call
  :func:`longest_wait`. Seconds, rounded to 0.1 s.
- **abandoned**: tickets not served: skipped as a no-show, or still waiting or called when the next
  ``day_opened`` closed the day (so only a closed day's figures count the latter).
- **wait**: from taking the ticket to its first call, wherever it is sent after; counted for the
  service it was taken for and the window and staff member that first called it. Never negative:
  a call whose clock reads earlier than the taking (the clock stepped back) waited 0 s.
- **mean wait**, **p90 wait**: over the waits of the tickets called at least once; p90 is the
  nearest rank (a wait that 90 % of them did not exceed). Seconds, rounded to 0.1 s here, once;
  ``None`` when nobody was called.
- **called** (window, staff member): tickets first called there.
- **service time**: from the call to the completion, never negative; **mean service** over the
  completions there.

Pure: events in, pydantic models out; no clock (the moment of the figures is the caller's), no storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypedDict

from pydantic import BaseModel, ConfigDict

from hallkit.queue.models import (
    DayOpened,
    Event,
    TicketCalled,
    TicketCompleted,
    TicketIssued,
    TicketSkipped,
    TicketState,
    TicketTransferred,
)
from hallkit.rating.report import Figures as RatingFigures
from hallkit.rating.report import RatingReport

LEFT_AT_CLOSE = (TicketState.WAITING, TicketState.CALLED)
"""States a ticket the next ``day_opened`` abandons can still be in; others were already settled."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QueueFigures(_Model):
    taken: int
    served: int
    abandoned: int
    waiting: int
    longest_wait_seconds: float
    mean_wait_seconds: float | None
    p90_wait_seconds: float | None


class ServiceFigures(QueueFigures):
    service_id: str


class DeskFigures(_Model):
    """A window's or a staff member's day."""

    called: int
    served: int
    mean_wait_seconds: float | None
    p90_wait_seconds: float | None
    mean_service_seconds: float | None


class WindowFigures(DeskFigures):
    window: int


class StaffFigures(DeskFigures):
    staff_id: str


class _QueueCounts(TypedDict):
    """:class:`QueueFigures`' fields, filled in before the service id is known."""

    taken: int
    served: int
    abandoned: int
    waiting: int
    longest_wait_seconds: float
    mean_wait_seconds: float | None
    p90_wait_seconds: float | None


class _DeskCounts(TypedDict):
    """:class:`DeskFigures`' fields, for a window or a staff member."""

    called: int
    served: int
    mean_wait_seconds: float | None
    p90_wait_seconds: float | None
    mean_service_seconds: float | None


class QueueDay(_Model):
    """The queue figures of one business day, cumulative up to the last event folded; the longest
    wait is measured at ``as_of``."""

    day: date
    as_of: datetime
    final: bool
    total: QueueFigures
    services: list[ServiceFigures]
    windows: list[WindowFigures]
    staff: list[StaffFigures]


class DailyFigures(_Model):
    """Every figure of one business day at the hall: queue, ratings, cases and appeals."""

    hall: str
    day: date
    as_of: date
    queue: QueueDay
    ratings: RatingFigures


@dataclass(slots=True)
class _Ticket:
    taken_service: str
    service: str
    taken_at: datetime
    state: TicketState = TicketState.WAITING
    wait_seconds: float | None = None


@dataclass(slots=True)
class _Desk:
    waits: list[float] = field(default_factory=list)
    served: int = 0
    service_seconds: list[float] = field(default_factory=list)

    def figures(self) -> _DeskCounts:
        return {"called": len(self.waits), "served": self.served, "mean_wait_seconds": mean(self.waits),
                "p90_wait_seconds": p90(self.waits), "mean_service_seconds": mean(self.service_seconds)}


class DayFold:
    """The figures of one business day, folded event by event in log order.

    Feed it the log from anywhere before the day's ``day_opened``: it counts only what lies between
    that and the next ``day_opened`` (which it reads for the tickets it abandons). A caller that has
    cut the log at the day's ``day_opened`` itself passes ``opened=True`` and the events after it.
    """

    def __init__(self, day: date, opened: bool = False) -> None:
        self.day = day
        self.inside = opened
        self.closed = False
        self.tickets: dict[str, _Ticket] = {}
        self.waiting: dict[str, int] = {}
        self.windows: dict[int, _Desk] = {}
        self.staff: dict[str, _Desk] = {}

    def apply(self, event: Event) -> None:
        if isinstance(event, DayOpened):
            if event.day == self.day and not self.closed:
                self.inside = True
            elif self.inside:
                self.close(event.abandoned)
            return
        if not self.inside:
            return
        if isinstance(event, TicketIssued):
            ticket = event.ticket
            self.tickets[ticket.id] = _Ticket(ticket.service_id, ticket.service_id, ticket.taken_at)
            self.waiting[ticket.service_id] = self.waiting.get(ticket.service_id, 0) + 1
            return
        found = self.tickets.get(getattr(event, "ticket_id", ""))
        if found is None:
            return  # not a ticket event, or a ticket of another day
        match event:
            case TicketCalled(window=window, staff_id=staff_id):
                if found.wait_seconds is None:
                    found.wait_seconds = max(0.0, (event.at - found.taken_at).total_seconds())
                    for desk in self._desks(window, staff_id):
                        desk.waits.append(found.wait_seconds)
                self._move(found, TicketState.CALLED)
            case TicketSkipped(requeued=requeued):
                self._move(found, TicketState.WAITING if requeued else TicketState.NO_SHOW)
            case TicketTransferred(to_service=to_service):
                self._move(found, TicketState.WAITING, to_service)
            case TicketCompleted(window=window, staff_id=staff_id, service_id=service_id, called_at=called_at):
                self._move(found, TicketState.DONE, service_id)
                seconds = max(0.0, (event.at - called_at).total_seconds())
                for desk in self._desks(window, staff_id):
                    desk.served += 1
                    desk.service_seconds.append(seconds)
            case _:
                return

    def close(self, abandoned: list[str]) -> None:
        """The next day opened: the tickets it names, still in a line or at a window, were abandoned."""
        for ticket_id in abandoned:
            found = self.tickets.get(ticket_id)
            if found is not None and found.state in LEFT_AT_CLOSE:
                self._move(found, TicketState.ABANDONED)
        self.inside = False
        self.closed = True

    def wait_of(self, ticket_id: str) -> float | None:
        """The ticket's wait to its first call (the dashboard's charts draw them by time)."""
        found = self.tickets.get(ticket_id)
        return None if found is None else found.wait_seconds

    def service_of(self, ticket_id: str) -> str | None:
        found = self.tickets.get(ticket_id)
        return None if found is None else found.service

    def _move(self, ticket: _Ticket, state: TicketState, service: str | None = None) -> None:
        if ticket.state is TicketState.WAITING:
            self.waiting[ticket.service] -= 1
        ticket.service = service or ticket.service
        ticket.state = state
        if state is TicketState.WAITING:
            self.waiting[ticket.service] = self.waiting.get(ticket.service, 0) + 1

    def _desks(self, window: int, staff_id: str | None) -> list[_Desk]:
        desks = [self.windows.setdefault(window, _Desk())]
        if staff_id:
            desks.append(self.staff.setdefault(staff_id, _Desk()))
        return desks

    def figures(self, as_of: datetime) -> QueueDay:
        """The figures so far, with the longest wait as it is at ``as_of``."""
        taken: dict[str, list[_Ticket]] = {}
        current: dict[str, list[_Ticket]] = {}
        for ticket in self.tickets.values():
            taken.setdefault(ticket.taken_service, []).append(ticket)
            current.setdefault(ticket.service, []).append(ticket)
        everyone = list(self.tickets.values())
        return QueueDay(
            day=self.day, as_of=as_of, final=self.closed,
            total=QueueFigures(**self._queue(everyone, everyone, sum(self.waiting.values()), as_of)),
            services=[ServiceFigures(service_id=s, **self._queue(taken.get(s, []), current.get(s, []),
                                                                 self.waiting.get(s, 0), as_of))
                      for s in sorted(taken.keys() | current.keys())],
            windows=[WindowFigures(window=n, **desk.figures()) for n, desk in sorted(self.windows.items())],
            staff=[StaffFigures(staff_id=s, **desk.figures()) for s, desk in sorted(self.staff.items())])

    @staticmethod
    def _queue(taken: list[_Ticket], current: list[_Ticket], waiting: int, as_of: datetime) -> _QueueCounts:
        """Taken and waits count for the service a ticket was taken for; the rest where it ended up."""
        waits = [t.wait_seconds for t in taken if t.wait_seconds is not None]
        oldest = min((t.taken_at for t in current if t.state is TicketState.WAITING), default=None)
        return {"taken": len(taken), "served": sum(t.state is TicketState.DONE for t in current),
                "abandoned": sum(t.state in (TicketState.NO_SHOW, TicketState.ABANDONED) for t in current),
                "waiting": waiting, "longest_wait_seconds": longest_wait(oldest, as_of),
                "mean_wait_seconds": mean(waits), "p90_wait_seconds": p90(waits)}


def fold_day(day: date, events: list[Event]) -> DayFold:
    """The fold of ``day`` over ``events`` (log order, from before its ``day_opened``)."""
    fold = DayFold(day)
    for event in events:
        fold.apply(event)
    return fold


def daily_figures(hall: str, queue: QueueDay, ratings: RatingReport) -> DailyFigures:
    """The queue figures of a day beside the rating figures of the same day (``ratings.period``)."""
    if not ratings.period.start == ratings.period.end == queue.day:
        raise ValueError(f"the rating report covers {ratings.period.start}..{ratings.period.end}, not {queue.day}")
    return DailyFigures(hall=hall, day=queue.day, as_of=ratings.as_of, queue=queue, ratings=ratings.total.figures)


def longest_wait(oldest_taken_at: datetime | None, as_of: datetime) -> float:
    """最长等候 at ``as_of``, of a line whose longest-waiting ticket was taken at ``oldest_taken_at``
    (``None``: nobody waits, 0). Never negative: a clock stepped back reads a wait of 0 s."""
    if oldest_taken_at is None:
        return 0.0
    return round(max(0.0, (as_of - oldest_taken_at).total_seconds()), 1)


def mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile: a value that 90 % of them did not exceed."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[math.ceil(0.9 * len(ordered)) - 1], 1)
