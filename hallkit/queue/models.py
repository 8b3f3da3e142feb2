"""Tickets, commands and events of the hall's queue, as pydantic models.

Commands are what staff, kiosks and pads ask for; events are what happened.
The engine turns a command into events; the event log is the source of
truth from which state, statistics, the uplink and the dashboard are built.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from hallkit.randomness import random_bytes


def new_id() -> str:
    """A random (version 4) UUID as 32 hex digits, as ``uuid4().hex`` gives it.

    Built from the bytes directly: every event, reply and notice draws one, several per ticket,
    and the UUID object costs more than the randomness.
    """
    raw = bytearray(random_bytes(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return raw.hex()


class Channel(StrEnum):
    """How a ticket was taken."""

    KIOSK = "kiosk"
    COUNTER = "counter"
    APPOINTMENT = "appointment"
    AGENT = "agent"  # 代办: staff take it for a resident


class Priority(StrEnum):
    """Queue class. Both non-normal classes are served ahead of normal tickets."""

    NORMAL = "normal"
    PRIORITY = "priority"  # 老弱病残孕: elderly, sick, disabled, pregnant
    APPOINTMENT = "appointment"  # a booked visit checking in


class TicketState(StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    DONE = "done"
    NO_SHOW = "no_show"
    ABANDONED = "abandoned"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Ticket(_Frozen):
    """A ticket as issued: never changes after issue."""

    id: str = Field(description="unique forever: business day and number, e.g. 20261122-A001")
    public_id: str = Field(description="random token for the QR link; reveals nothing")
    number: str = Field(description="what the resident reads, e.g. A001")
    prefix: str
    seq: int = Field(ge=1, description="position in the prefix's daily sequence")
    day: date
    service_id: str
    channel: Channel
    priority: Priority
    taken_at: datetime
    id_hash: str | None = Field(None, description="keyed hash of the resident's ID, when a card was read")


# ---- commands ---------------------------------------------------------------------------------


class _Command(_Frozen):
    request_id: str = Field(default_factory=new_id, min_length=1, max_length=64,
                            description="the same id asked again returns the same result")


class TakeTicket(_Command):
    action: Literal["take"] = "take"
    service_id: str
    channel: Channel = Channel.KIOSK
    priority: Priority = Priority.NORMAL
    id_hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


class _WindowCommand(_Command):
    window: int = Field(ge=1)


class CallNext(_WindowCommand):
    action: Literal["call"] = "call"


class Recall(_WindowCommand):
    action: Literal["recall"] = "recall"


class Skip(_WindowCommand):
    action: Literal["skip"] = "skip"


class Complete(_WindowCommand):
    action: Literal["done"] = "done"


class Pause(_WindowCommand):
    action: Literal["pause"] = "pause"


class Resume(_WindowCommand):
    action: Literal["resume"] = "resume"


class Transfer(_WindowCommand):
    """Send the ticket at this window to another service's queue or to another window."""

    action: Literal["transfer"] = "transfer"
    to_service: str | None = None
    to_window: int | None = None


class SwitchStaff(_WindowCommand):
    """Hand the window to the other post (AB岗) or to a named staff member."""

    action: Literal["staff"] = "staff"
    staff_id: str


Command = Annotated[
    TakeTicket | CallNext | Recall | Skip | Complete | Pause | Resume | Transfer | SwitchStaff,
    Field(discriminator="action"),
]
COMMAND = TypeAdapter(Command)


# ---- events -----------------------------------------------------------------------------------


class _Event(_Frozen):
    id: str = Field(default_factory=new_id)
    at: datetime
    request_id: str | None = None


class DayOpened(_Event):
    """Numbers start again; whatever was left of the previous day is abandoned."""

    type: Literal["day_opened"] = "day_opened"
    day: date
    abandoned: list[str] = []


class TicketIssued(_Event):
    type: Literal["ticket_issued"] = "ticket_issued"
    ticket: Ticket


class TicketCalled(_Event):
    type: Literal["ticket_called"] = "ticket_called"
    ticket_id: str
    window: int
    staff_id: str | None


class TicketRecalled(_Event):
    type: Literal["ticket_recalled"] = "ticket_recalled"
    ticket_id: str
    window: int


class TicketSkipped(_Event):
    type: Literal["ticket_skipped"] = "ticket_skipped"
    ticket_id: str
    window: int
    requeued: bool


class TicketTransferred(_Event):
    type: Literal["ticket_transferred"] = "ticket_transferred"
    ticket_id: str
    window: int
    to_service: str
    to_window: int | None


class TicketCompleted(_Event):
    """A service event: the unit that gets rated once (一次一评)."""

    type: Literal["ticket_completed"] = "ticket_completed"
    ticket_id: str
    window: int
    staff_id: str | None
    service_id: str
    called_at: datetime


class WindowPaused(_Event):
    type: Literal["window_paused"] = "window_paused"
    window: int


class WindowResumed(_Event):
    type: Literal["window_resumed"] = "window_resumed"
    window: int


class StaffChanged(_Event):
    type: Literal["staff_changed"] = "staff_changed"
    window: int
    staff_id: str


Event = Annotated[
    DayOpened
    | TicketIssued
    | TicketCalled
    | TicketRecalled
    | TicketSkipped
    | TicketTransferred
    | TicketCompleted
    | WindowPaused
    | WindowResumed
    | StaffChanged,
    Field(discriminator="type"),
]
EVENT = TypeAdapter(Event)


# Which events name a ticket or a window. Tested by class, not with getattr(event, name, None):
# on a pydantic model that lacks the field that raises and catches an AttributeError built with
# its message, several microseconds, on the path of every ticket.
_TICKET_EVENTS = (TicketCalled, TicketRecalled, TicketSkipped, TicketTransferred, TicketCompleted)
_WINDOW_EVENTS = (*_TICKET_EVENTS, WindowPaused, WindowResumed, StaffChanged)


def ticket_of(event: Event) -> str | None:
    """The id of the ticket ``event`` concerns, if any."""
    if isinstance(event, TicketIssued):
        return event.ticket.id
    if isinstance(event, _TICKET_EVENTS):
        return event.ticket_id
    return None


def window_of(event: Event) -> int | None:
    """The window ``event`` happened at, if any."""
    return event.window if isinstance(event, _WINDOW_EVENTS) else None


def command_window(command: Command) -> int | None:
    """The window ``command`` is for (every command but taking a ticket)."""
    return None if isinstance(command, TakeTicket) else command.window
EVENTS = TypeAdapter(list[Event])


# ---- views: what a command answers with ---------------------------------------------------------


class TicketView(_Frozen):
    """A ticket as a resident or a counter sees it right now."""

    ticket_id: str
    public_id: str
    number: str
    service_id: str
    service_name: str
    state: TicketState
    priority: Priority
    channel: Channel
    taken_at: datetime
    ahead: int = Field(description="waiting tickets of the same service that will be called first")
    estimated_wait_minutes: float
    windows: list[int] = Field(description="windows that serve this ticket's service")
    window: int | None = Field(None, description="the window it is called to, when called")


class WindowView(_Frozen):
    number: int
    name: str
    open: bool
    paused: bool
    staff_id: str | None
    ticket: TicketView | None
    served_today: int
    mean_service_seconds: float | None


class ServiceQueueView(_Frozen):
    service_id: str
    name: str
    prefix: str
    waiting: int
    longest_wait_seconds: float
    estimated_wait_minutes: float


class Outcome(_Frozen):
    """What a command did: its events and the ticket or window it concerns."""

    action: str
    events: list[Event]
    ticket: TicketView | None = None
    window: WindowView | None = None
