"""Where a ticket stands, found by its QR token: the hub's own queue engine, replayed read-only.

The hub never says a ticket's QR token on MQTT except to the kiosk that printed it, so the page
cannot follow a ticket on the event topics alone. It reads the hub's event log instead (the same
read-only connection the dashboard uses), folds it into its own :class:`QueueEngine` (so "people
ahead" and the wait estimate are the hub's own rules, not a copy), and keeps an index from token
to ticket. Event notices on MQTT only tell it when to read on. A served ticket's rating status
comes from the hub's rating tables in the same file.

:func:`phone_view` is the pure part: a ticket's live state and its service event in, the page out.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from datetime import datetime

from hallkit.dashboard.stats import EventLog
from hallkit.web.views import PhoneView, Stage, WindowLabel

from hallkit.config import HallConfig
from hallkit.queue.engine import QueueEngine
from hallkit.queue.models import DayOpened, TicketIssued, TicketState, TicketView
from hallkit.rating import store
from hallkit.rating.rules import EventStatus, ServiceEvent, rating_period_end


def phone_view(config: HallConfig, ticket: TicketView | None, event: ServiceEvent | None,
               now: datetime) -> PhoneView | None:
    """The page of a ticket, or None when its token no longer opens anything (unknown or expired).

    A token lives while its ticket is in today's line, and after the service until the rating
    period ends (``[rating] late_rating_hours``): then it opens nothing at all.
    """
    def label(number: int) -> WindowLabel:
        return WindowLabel(number=number, name=_window_name(config, number))

    if ticket is not None and ticket.state in (TicketState.WAITING, TicketState.CALLED, TicketState.NO_SHOW):
        stage = {TicketState.WAITING: Stage.WAITING, TicketState.CALLED: Stage.CALLED,
                 TicketState.NO_SHOW: Stage.MISSED}[ticket.state]
        return PhoneView(
            stage=stage, hall_name=config.hall.name, number=ticket.number, service_name=ticket.service_name,
            windows=[label(n) for n in ticket.windows], ahead=ticket.ahead,
            wait_minutes=math.ceil(ticket.estimated_wait_minutes) if stage is Stage.WAITING else 0,
            window=label(ticket.window) if ticket.window is not None and stage is Stage.CALLED else None)
    if event is None:
        return None
    end = rating_period_end(event, config.rating)
    if now > end or event.status in (EventStatus.DEFAULTED, EventStatus.LAPSED):
        return None
    rated = event.status is EventStatus.RATED
    return PhoneView(
        stage=Stage.RATED if rated else Stage.RATE, hall_name=config.hall.name, number=event.ticket_number,
        service_name=event.service_name, windows=[], window=WindowLabel(number=event.window, name=event.window_name),
        rate_until=None if rated else end, reasons=[] if rated else list(config.rating.bad_reason_tags))


def _window_name(config: HallConfig, number: int) -> str:
    found = [w.name for w in config.windows if w.number == number]
    return found[0] if found else ""


class TicketFollower:
    """The hub's queue, replayed from its log, with tickets found by token. Safe from any thread."""

    def __init__(self, config: HallConfig, log: EventLog) -> None:
        self.config = config
        self.log = log
        self.engine = QueueEngine(config)
        self.tokens: dict[str, str] = {}  # QR token → ticket id, for today's tickets
        self.last_seq = 0
        self.lock = threading.Lock()

    def catch_up(self) -> int:
        """Fold the events the hub logged since the last call; returns how many."""
        with self.lock:
            found = self.log.since(self.last_seq)
            for seq, event in found:
                if isinstance(event, DayOpened):
                    self.tokens.clear()  # yesterday's tickets leave the line; their tokens rate on by the log
                elif isinstance(event, TicketIssued):
                    self.tokens[event.ticket.public_id] = event.ticket.id
                self.engine.apply(event)
                self.last_seq = seq
            return len(found)

    def view(self, token: str, now: datetime) -> PhoneView | None:
        with self.lock:
            ticket_id = self.tokens.get(token)
            ticket = self.engine.ticket_view(ticket_id) if ticket_id is not None else None
            event = None
            if ticket is None or ticket.state in (TicketState.DONE, TicketState.ABANDONED):
                event = self._service_event(token)
        return phone_view(self.config, ticket, event, now)

    def _service_event(self, token: str) -> ServiceEvent | None:
        conn = self.log.connection()
        if conn is None:
            return None
        try:
            return store.event_by_ticket(conn, token)
        except sqlite3.OperationalError:  # the hub has not made its rating tables yet
            return None
