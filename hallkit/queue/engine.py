"""The queue engine: decides what a command does and applies events to the state.

``decide`` checks a command against the current state and returns the events
it causes, or raises :class:`Refused` with a message staff can read. It
changes nothing. ``apply`` folds one event into the state; replaying the
event log through ``apply`` rebuilds the same state, which is how the hub
restarts after a crash. The clock and randomness come in from outside
(``now`` and the ids inside events), so replay is deterministic.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import NamedTuple, assert_never

from hallkit.config import HallConfig
from hallkit.i18n import Message
from hallkit.queue import numbering
from hallkit.queue.estimate import CallPace, ServiceTimes, estimated_wait_seconds
from hallkit.queue.figures import longest_wait
from hallkit.queue.models import (
    CallNext,
    Command,
    Complete,
    DayOpened,
    Event,
    Outcome,
    Pause,
    Priority,
    Recall,
    Resume,
    ServiceQueueView,
    Skip,
    StaffChanged,
    SwitchStaff,
    TakeTicket,
    Ticket,
    TicketCalled,
    TicketCompleted,
    TicketIssued,
    TicketRecalled,
    TicketSkipped,
    TicketState,
    TicketTransferred,
    TicketView,
    Transfer,
    WindowPaused,
    WindowResumed,
    WindowView,
    command_window,
    ticket_of,
)
from hallkit.queue.priority import Candidate, choose, rank


class Refused(Exception):
    """A command that is not valid now; ``message`` says why in the hall's words."""

    def __init__(self, key: str, **params: str | int | float) -> None:
        self.message = Message(key=key, params=params)
        super().__init__(self.message.render("en"))


@dataclass(slots=True)
class TicketRecord:
    ticket: Ticket
    service_id: str
    state: TicketState = TicketState.WAITING
    order: int = 0
    queued_at: datetime | None = None
    directed_window: int | None = None
    window: int | None = None
    called_at: datetime | None = None
    skips: int = 0


@dataclass(slots=True)
class WindowState:
    number: int
    open: bool
    staff_id: str | None
    paused: bool = False
    current: str | None = None
    priority_streak: int = 0
    served: int = 0
    service_seconds: float = 0.0


@dataclass(slots=True)
class QueueState:
    day: date | None = None
    counters: dict[str, int] = field(default_factory=dict)
    tickets: dict[str, TicketRecord] = field(default_factory=dict)
    waiting: dict[str, TicketRecord] = field(default_factory=dict)
    # The waiting tickets again, as heaps of (order, ticket id) so a call looks at the head of
    # a few lines instead of scanning the hall: one line per service and class (priority or
    # normal), and one per window for tickets transferred to that window.
    lines: dict[tuple[str, int], list[tuple[int, str]]] = field(default_factory=dict)
    directed: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    # Per service, kept by the events so that the hall's snapshot never scans the waiting
    # tickets: how many wait (directed ones included), and a heap of (taken at, ticket id) whose
    # head, once entries of tickets no longer waiting there are dropped, is the longest wait.
    # Entries leave lazily: at the head only, so each event costs O(log n) amortised.
    waiting_by_service: dict[str, int] = field(default_factory=dict)
    oldest: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)
    windows: dict[int, WindowState] = field(default_factory=dict)
    next_order: int = 0
    events_applied: int = 0


class PastDays(NamedTuple):
    """What the events before the current business day leave it, without those events.

    A ``day_opened`` clears the day's tickets, lines, numbers and figures; what lasts is each
    window's pause and staff, every window the log names (one removed from the configuration
    since included), and two counters. A restart takes these from the log in a few queries and
    replays only the current day (see :meth:`QueueEngine.resume`).
    """

    events: int
    """Events before the current day."""
    enqueued: int
    """Tickets that joined a line before it: issued, or put back after a skip."""
    windows: list[int]
    """Every window those events name (the ones :meth:`QueueEngine.apply` looks up)."""
    window_events: list[Event]
    """Their pauses, resumptions and staff changes, in order."""


WINDOW_STATE_EVENTS = ("ticket_called", "ticket_skipped", "ticket_transferred", "ticket_completed",
                       "window_paused", "window_resumed", "staff_changed")
"""Event types whose ``window`` the engine looks up (and so makes up, for a removed window)."""
LASTING_EVENTS = ("window_paused", "window_resumed", "staff_changed")
"""Event types whose effect outlasts the day: a window's pause and staff."""


class QueueEngine:
    """The hall's queue rules over one :class:`QueueState`."""

    def __init__(self, config: HallConfig) -> None:
        self.config = config
        self.rules = config.queue
        self.zone = config.hall.zone
        self._services = {s.id: s for s in config.services}
        self._windows_cfg = {w.number: w for w in config.windows}
        self._serves = {w.number: config.served_by(w) for w in config.windows}
        self._windows_for = {
            s.id: sorted(n for n, serves in self._serves.items() if s.id in serves) for s in config.services
        }
        self.state = QueueState()
        self._times: dict[str, ServiceTimes] = {}
        self._pace: dict[str, CallPace] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the state before any event, in place: holders of this engine keep a live one."""
        self.state = QueueState(
            windows={
                w.number: WindowState(number=w.number, open=w.open, staff_id=w.staff_a or w.staff_b)
                for w in self.config.windows
            }
        )
        self._pace = {s.id: CallPace(self.rules.recent_service_samples) for s in self.config.services}
        self._times = {
            s.id: ServiceTimes(s.default_service_minutes * 60, self.rules.recent_service_samples)
            for s in self.config.services
        }

    # ---- deciding ---------------------------------------------------------------------------

    def opens_day(self, now: datetime) -> bool:
        """Whether a command at ``now`` would open a new business day (numbers start again)."""
        day = numbering.business_day(now, self.zone, self.rules.reset_hour)
        return self.state.day is None or day > self.state.day

    def decide(self, command: Command, now: datetime) -> list[Event]:
        """The events ``command`` causes at ``now``; raises :class:`Refused` when invalid."""
        events: list[Event] = []
        day = numbering.business_day(now, self.zone, self.rules.reset_hour)
        if self.state.day is not None and day < self.state.day:
            # A clock stepped back over the reset hour must not reopen a past day: its numbers
            # were already given out, and ticket ids must stay unique forever.
            day = self.state.day
        if day != self.state.day:
            abandoned = [t.ticket.id for t in self.state.tickets.values()
                         if t.state in (TicketState.WAITING, TicketState.CALLED)]
            events.append(DayOpened(at=now, day=day, abandoned=abandoned))
        rid = command.request_id
        match command:
            case TakeTicket():
                events.append(self._take(command, now, day, fresh_day=bool(events)))
            case CallNext():
                events += self._call(command.window, now, rid, fresh_day=bool(events))
            case Recall():
                current = self._current(command.window, fresh_day=bool(events))
                events.append(TicketRecalled(at=now, request_id=rid, ticket_id=current.ticket.id,
                                             window=command.window))
            case Skip():
                current = self._current(command.window, fresh_day=bool(events))
                requeue = current.skips < self.rules.no_show_requeue
                events.append(TicketSkipped(at=now, request_id=rid, ticket_id=current.ticket.id,
                                            window=command.window, requeued=requeue))
            case Complete():
                current = self._current(command.window, fresh_day=bool(events))
                events.append(self._completed(current, command.window, now, rid))
            case Transfer():
                events.append(self._transfer(command, now, fresh_day=bool(events)))
            case Pause():
                window = self._window(command.window)
                if window.paused:
                    raise Refused("queue.window_already_paused", window=command.window)
                events.append(WindowPaused(at=now, request_id=rid, window=command.window))
            case Resume():
                window = self._window(command.window)
                if not window.paused:
                    raise Refused("queue.window_not_paused", window=command.window)
                events.append(WindowResumed(at=now, request_id=rid, window=command.window))
            case SwitchStaff():
                self._window(command.window)
                cfg = self._windows_cfg[command.window]
                if command.staff_id not in (cfg.staff_a, cfg.staff_b):
                    raise Refused("queue.staff_not_on_window", window=command.window, staff=command.staff_id)
                events.append(StaffChanged(at=now, request_id=rid, window=command.window,
                                           staff_id=command.staff_id))
            case _:
                assert_never(command)
        return events

    def _take(self, command: TakeTicket, now: datetime, day: date, fresh_day: bool) -> TicketIssued:
        service = self._services.get(command.service_id)
        if service is None:
            raise Refused("queue.unknown_service", service=command.service_id)
        self._require_usable_window(service.id)
        local = now.astimezone(self.zone)
        if not self.rules.accept_outside_hours and not self.config.hours.is_open(local):
            opening = self.config.hours.next_opening(local)
            raise Refused("queue.hall_closed", next=f"{opening:%m-%d %H:%M}" if opening else "-")
        seq = (0 if fresh_day else self.state.counters.get(service.prefix, 0)) + 1
        number = numbering.ticket_number(service.prefix, seq)
        ticket = Ticket(
            id=numbering.ticket_id(day, number),
            public_id=numbering.public_id(),
            number=number,
            prefix=service.prefix,
            seq=seq,
            day=day,
            service_id=service.id,
            channel=command.channel,
            priority=command.priority,
            taken_at=now,
            id_hash=command.id_hash,
        )
        return TicketIssued(at=now, request_id=command.request_id, ticket=ticket)

    def _call(self, number: int, now: datetime, rid: str, fresh_day: bool) -> list[Event]:
        window = self._window(number)
        if not window.open:
            raise Refused("queue.window_closed", window=number)
        if window.paused:
            raise Refused("queue.window_paused", window=number)
        events: list[Event] = []
        if window.current is not None and not fresh_day:
            events.append(self._completed(self.state.tickets[window.current], number, now, rid))
        picked = None if fresh_day else choose(
            self._heads(number), window.priority_streak, self.rules.max_priority_in_a_row
        )
        if picked is None:
            if events:
                return events
            raise Refused("queue.nothing_waiting", window=number)
        events.append(TicketCalled(at=now, request_id=rid, ticket_id=picked.ticket_id, window=number,
                                   staff_id=window.staff_id))
        return events

    def _heads(self, number: int) -> Iterator[Candidate]:
        """The first ticket of every line window ``number`` may call."""
        state = self.state
        heads = [state.directed.get(number)]
        heads += [state.lines.get((service, cls)) for service in self._serves[number] for cls in (0, 1)]
        for line in heads:
            if line:
                record = state.tickets[line[0][1]]
                yield Candidate(record.ticket.id, record.ticket.priority, record.order,
                                record.directed_window == number)

    def _transfer(self, command: Transfer, now: datetime, fresh_day: bool) -> TicketTransferred:
        current = self._current(command.window, fresh_day)
        if command.to_service is None and command.to_window is None:
            raise Refused("queue.transfer_needs_target")
        to_service = command.to_service or current.service_id
        if to_service not in self._services:
            raise Refused("queue.unknown_service", service=to_service)
        # A transferred ticket must stay callable: its target window, or one window of its
        # target service, has to be open and not paused, as for a newly taken ticket.
        if command.to_window is not None:
            target = self._window(command.to_window)
            if command.to_window == command.window:
                raise Refused("queue.transfer_same_window", window=command.window)
            if to_service not in self._serves[command.to_window]:
                raise Refused("queue.window_does_not_serve", window=command.to_window,
                              service=self._services[to_service].name)
            if not target.open:
                raise Refused("queue.window_closed", window=command.to_window)
            if target.paused:
                raise Refused("queue.window_paused", window=command.to_window)
        elif to_service == current.service_id:
            raise Refused("queue.transfer_same_service", service=self._services[to_service].name)
        else:
            self._require_usable_window(to_service)
        return TicketTransferred(at=now, request_id=command.request_id, ticket_id=current.ticket.id,
                                 window=command.window, to_service=to_service, to_window=command.to_window)

    def _completed(self, record: TicketRecord, window: int, now: datetime, rid: str | None) -> TicketCompleted:
        assert record.called_at is not None
        return TicketCompleted(at=now, request_id=rid, ticket_id=record.ticket.id, window=window,
                               staff_id=self.state.windows[window].staff_id, service_id=record.service_id,
                               called_at=record.called_at)

    def _window(self, number: int) -> WindowState:
        window = self.state.windows.get(number)
        if window is None or number not in self._windows_cfg:  # also one removed from the configuration
            raise Refused("queue.unknown_window", window=number)
        return window

    def _require_usable_window(self, service_id: str) -> None:
        if not any(self._window_usable(n) for n in self.windows_for(service_id)):
            raise Refused("queue.no_window_open", service=self._services[service_id].name)

    def _window_usable(self, number: int) -> bool:
        window = self.state.windows[number]
        return window.open and not window.paused

    def _current(self, number: int, fresh_day: bool) -> TicketRecord:
        window = self._window(number)
        if window.current is None or fresh_day:
            raise Refused("queue.no_current_ticket", window=number)
        return self.state.tickets[window.current]

    # ---- applying ---------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event into the state. Events come from ``decide`` or from the log."""
        state = self.state
        state.events_applied += 1
        match event:
            case DayOpened():
                state.day = event.day
                state.counters.clear()
                state.tickets.clear()
                state.waiting.clear()
                state.lines.clear()
                state.directed.clear()
                state.waiting_by_service.clear()
                state.oldest.clear()
                for window in state.windows.values():
                    window.current = None
                    window.priority_streak = 0
                    window.served = 0
                    window.service_seconds = 0.0
                for times in self._times.values():
                    times.clear()
                for pace in self._pace.values():
                    pace.clear()
            case TicketIssued():
                t = event.ticket
                state.counters[t.prefix] = t.seq
                record = TicketRecord(ticket=t, service_id=t.service_id)
                state.tickets[t.id] = record
                self._enqueue(record, event.at)
            case TicketCalled():
                record = state.tickets[event.ticket_id]
                self._dequeue(record)
                record.state = TicketState.CALLED
                record.window = event.window
                record.called_at = event.at
                record.directed_window = None
                if (called_pace := self._pace.get(record.service_id)) is not None:
                    called_pace.add(event.at)
                window = self._window_state(event.window)
                window.current = record.ticket.id
                if record.ticket.priority is Priority.NORMAL:
                    window.priority_streak = 0
                else:
                    window.priority_streak += 1
            case TicketRecalled():
                pass
            case TicketSkipped():
                record = state.tickets[event.ticket_id]
                self._window_state(event.window).current = None
                record.skips += 1
                record.window = None
                if event.requeued:
                    self._enqueue(record, event.at)
                else:
                    record.state = TicketState.NO_SHOW
            case TicketTransferred():
                record = state.tickets[event.ticket_id]
                self._window_state(event.window).current = None
                record.service_id = event.to_service
                record.directed_window = event.to_window
                record.window = None
                record.state = TicketState.WAITING
                record.queued_at = event.at
                # It keeps its order: the resident had already waited their turn once.
                self._line_up(record)
            case TicketCompleted():
                record = state.tickets[event.ticket_id]
                record.state = TicketState.DONE
                window = self._window_state(event.window)
                window.current = None
                # A clock stepped back must not feed a negative duration into the estimate.
                seconds = max(0.0, (event.at - event.called_at).total_seconds())
                window.served += 1
                window.service_seconds += seconds
                if (service_times := self._times.get(event.service_id)) is not None:
                    service_times.add(seconds)
            case WindowPaused():
                self._window_state(event.window).paused = True
            case WindowResumed():
                self._window_state(event.window).paused = False
            case StaffChanged():
                self._window_state(event.window).staff_id = event.staff_id
            case _:
                assert_never(event)

    def resume(self, past: PastDays) -> None:
        """After :meth:`reset`, the state the days before the current one leave: then applying
        the current day's events from its ``day_opened`` on gives the state a replay of the whole
        log gives (``tests/core`` compares the two)."""
        for number in past.windows:
            self._window_state(number)
        for event in past.window_events:
            self.apply(event)
        self.state.next_order = past.enqueued
        self.state.events_applied = past.events

    def _window_state(self, number: int) -> WindowState:
        """A window's state, made up for a window the log names but the configuration no longer
        has (it was removed since): replaying an old log must not stop the hub from starting."""
        window = self.state.windows.get(number)
        if window is None:
            window = self.state.windows[number] = WindowState(number=number, open=False, staff_id=None)
        return window

    def _enqueue(self, record: TicketRecord, at: datetime) -> None:
        record.state = TicketState.WAITING
        record.order = self.state.next_order
        record.queued_at = at
        self.state.next_order += 1
        self._line_up(record)

    def _line(self, record: TicketRecord) -> list[tuple[int, str]]:
        if record.directed_window is not None:
            return self.state.directed.setdefault(record.directed_window, [])
        return self.state.lines.setdefault((record.service_id, rank(record.ticket.priority)), [])

    def _line_up(self, record: TicketRecord) -> None:
        state = self.state
        state.waiting[record.ticket.id] = record
        heapq.heappush(self._line(record), (record.order, record.ticket.id))
        service = record.service_id
        state.waiting_by_service[service] = state.waiting_by_service.get(service, 0) + 1
        heapq.heappush(state.oldest.setdefault(service, []), (record.ticket.taken_at, record.ticket.id))

    def _dequeue(self, record: TicketRecord) -> None:
        state = self.state
        if state.waiting.pop(record.ticket.id, None) is None:
            return
        state.waiting_by_service[record.service_id] -= 1
        self._oldest_waiting(record.service_id)
        line = self._line(record)
        entry = (record.order, record.ticket.id)
        if line[0] == entry:  # always so for calls this engine decided: it calls a line's head
            heapq.heappop(line)
        else:  # a log written under other rules may call from the middle of a line
            line.remove(entry)
            heapq.heapify(line)

    def _oldest_waiting(self, service_id: str) -> datetime | None:
        """When the longest-waiting ticket of a service was taken; drops stale heads on the way."""
        heap = self.state.oldest.get(service_id)
        waiting = self.state.waiting
        while heap:
            taken_at, ticket_id = heap[0]
            record = waiting.get(ticket_id)
            if record is not None and record.service_id == service_id:
                return taken_at
            heapq.heappop(heap)
        return None

    def execute(self, command: Command, now: datetime) -> list[Event]:
        """Decide and apply in one step (for callers that persist nothing)."""
        events = self.decide(command, now)
        for event in events:
            self.apply(event)
        return events

    # ---- figures and views ------------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        """The whole state as plain data: two engines with equal snapshots hold the same queue.

        Restart and replay checks compare these; the waiting list is in call order.
        """
        state = self.state
        return {
            "day": state.day,
            "counters": dict(sorted(state.counters.items())),
            "tickets": {tid: {**asdict(r), "ticket": r.ticket.model_dump()}
                        for tid, r in sorted(state.tickets.items())},
            "waiting": [r.ticket.id for r in sorted(state.waiting.values(), key=lambda r: r.order)],
            "lines": {f"{service}/{cls}": sorted(line)
                      for (service, cls), line in sorted(state.lines.items()) if line},
            "directed": {n: sorted(line) for n, line in sorted(state.directed.items()) if line},
            "waiting_by_service": {s: n for s, n in sorted(state.waiting_by_service.items()) if n},
            "windows": {n: asdict(w) for n, w in sorted(state.windows.items())},
            "next_order": state.next_order,
            "events_applied": state.events_applied,
            "service_times": {sid: t.samples for sid, t in sorted(self._times.items())},
            "call_pace": {sid: p.samples for sid, p in sorted(self._pace.items())},
        }

    def ahead_of(self, record: TicketRecord) -> int:
        """Waiting tickets of the same service ahead by class, then order (directed ones too)."""
        if record.state is not TicketState.WAITING:
            return 0
        state = self.state
        key = (rank(record.ticket.priority), record.order)
        # The line of the class ranked before this one: a normal ticket (rank 1) has the
        # priority line (rank 0) ahead of it, a priority ticket none.
        ahead = len(state.lines.get((record.service_id, 0), ())) if key[0] else 0
        line = state.lines.get((record.service_id, key[0]), ())
        if record.order == state.next_order - 1 and record.directed_window is None:
            # The ticket that joined last (the reply to every take): everyone in its line is ahead.
            ahead += len(line) - 1
        else:
            ahead += sum(1 for order, _ in line if order < key[1])
        for line in state.directed.values():
            for order, tid in line:
                other = state.tickets[tid]
                if other.service_id == record.service_id and (rank(other.ticket.priority), order) < key:
                    ahead += 1
        return ahead

    def windows_for(self, service_id: str) -> list[int]:
        return self._windows_for.get(service_id, [])

    def estimated_wait_seconds(self, service_id: str, ahead: int) -> float:
        times, pace = self._times.get(service_id), self._pace.get(service_id)
        if times is None or pace is None:  # a service removed from the configuration since
            return 0.0
        # One pass over the service's windows (this runs for every ticket answered).
        usable, idle = 0, False
        for number in self.windows_for(service_id):
            window = self.state.windows[number]
            if window.open and not window.paused:
                usable += 1
                idle = idle or window.current is None
        return estimated_wait_seconds(ahead, times.mean, usable, usable > 0 and not idle, pace.interval)

    def ticket_view(self, ticket_id: str) -> TicketView:
        record = self.state.tickets[ticket_id]
        ahead = self.ahead_of(record)
        return TicketView(
            ticket_id=record.ticket.id,
            public_id=record.ticket.public_id,
            number=record.ticket.number,
            service_id=record.service_id,
            service_name=self._services[record.service_id].name if record.service_id in self._services
            else record.service_id,
            state=record.state,
            priority=record.ticket.priority,
            channel=record.ticket.channel,
            taken_at=record.ticket.taken_at,
            ahead=ahead,
            estimated_wait_minutes=round(self.estimated_wait_seconds(record.service_id, ahead) / 60, 1)
            if record.state is TicketState.WAITING else 0.0,
            windows=[record.directed_window] if record.directed_window else self.windows_for(record.service_id),
            window=record.window,
        )

    def window_view(self, number: int) -> WindowView:
        window = self._window(number)
        return WindowView(
            number=number,
            name=self._windows_cfg[number].name,
            open=window.open,
            paused=window.paused,
            staff_id=window.staff_id,
            ticket=self.ticket_view(window.current) if window.current else None,
            served_today=window.served,
            mean_service_seconds=round(window.service_seconds / window.served, 1) if window.served else None,
        )

    def service_queues(self, now: datetime) -> list[ServiceQueueView]:
        """Each configured service's queue now: O(services), from the views the events keep."""
        views = []
        for service in self.config.services:
            waiting = self.state.waiting_by_service.get(service.id, 0)
            oldest = self._oldest_waiting(service.id)
            views.append(ServiceQueueView(
                service_id=service.id,
                name=service.name,
                prefix=service.prefix,
                waiting=waiting,
                longest_wait_seconds=longest_wait(oldest, now),
                estimated_wait_minutes=round(self.estimated_wait_seconds(service.id, waiting) / 60, 1),
            ))
        return views

    def outcome(self, command: Command, events: list[Event]) -> Outcome:
        """The reply to ``command`` once its events are applied."""
        ticket_id = next((tid for e in reversed(events) if (tid := ticket_of(e)) is not None), None)
        window = command_window(command)
        return Outcome(
            action=command.action,
            events=events,
            ticket=self.ticket_view(ticket_id) if ticket_id and ticket_id in self.state.tickets else None,
            window=self.window_view(window) if window is not None else None,
        )
