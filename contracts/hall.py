"""The MQTT contract of the hall: topics and payload models, defined once, imported everywhere.

Every payload is JSON made from a model below, inside an envelope with a
schema version (``v``), a message id (``msg_id``), the sender's device id and
a time. The contract works on MQTT 3.1.1 (the embedded broker) as well as 5,
so request/reply matching travels in the payload: a request names its
``reply_to`` topic and carries the command's ``request_id``; the reply
repeats that ``request_id``.

``docs/contract.md`` documents every topic; ``tests/broker/test_contract.py``
keeps that document and :data:`TOPICS` in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from hallkit.i18n import Message
from hallkit.queue.models import Command, Event, Outcome, ServiceQueueView, WindowView, new_id
from hallkit.rating.models import CaseStepCommand, CaseUpdate, RatingReceipt, RatingSubmission

SCHEMA_VERSION: Final = 1
ROOT = "hall/v1"


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = SCHEMA_VERSION
    msg_id: str = Field(default_factory=new_id, min_length=1, max_length=64)
    device: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$",
                        description="the sender's device id")
    ts: datetime = Field(default_factory=utcnow)


# ---- requests and replies -------------------------------------------------------------------------


class CommandRequest(_Payload):
    """A kiosk, pad or counter asks the hub to do something to the queue."""

    reply_to: str = Field(min_length=1, max_length=200, description="topic the hub answers on")
    command: Command


def scoped_request_id(device: str, request_id: str) -> str:
    """The hub's key for a device's request id: the same id from two devices names two requests.

    Device ids never hold a ``/``, so the key is unambiguous. It may be longer than a request id
    on the wire: the hub stores it (and its events carry it), and only the device itself sees it
    again, in the events of its own replies.
    """
    return f"{device}/{request_id}"


class Refusal(BaseModel):
    """Why a request was not carried out: a message key, its parameters, and both texts."""

    model_config = ConfigDict(frozen=True)

    reason: str = Field(description="message key, e.g. queue.nothing_waiting")
    params: dict[str, str | int | float] = {}
    zh: str
    en: str

    @classmethod
    def of(cls, message: Message) -> Refusal:
        return cls(reason=message.key, params=message.params, zh=message.render("zh"),
                   en=message.render("en"))


class CommandReply(_Payload):
    request_id: str
    ok: bool
    outcome: Outcome | None = None
    refusal: Refusal | None = None


# ---- state and events ----------------------------------------------------------------------------


class QueueSnapshot(_Payload):
    """Retained: the queue as the hall sees it now (lengths per service, windows now calling)."""

    hall: str
    hall_name: str = Field("", description="the hall's name, for boards and status lines")
    day: str | None
    services: list[ServiceQueueView]
    windows: list[WindowView]
    waiting_total: int


class QueueEventNotice(_Payload):
    """One queue event as it happened (a call, a recall, a new ticket), for displays and voice."""

    event: Event
    number: str | None = Field(None, description="the ticket number the event concerns, for announcements")


class DeviceState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class DeviceStatus(_Payload):
    """Retained per device, with a Last Will so a dead device reads offline.

    ``session`` grows with every connection, so a stale Will from an old
    connection can be told apart from the current state.
    """

    state: DeviceState
    session: int = 0
    kind: str = ""
    version: str = ""
    detail: dict[str, str | int | float | bool | None] = Field(
        {}, description="kind-specific health: paper state, backlog, counters"
    )
    problems: list[Refusal] = Field([], description="what is wrong now, in words a manager reads")


FLOODING_DETAIL = "statuses.flooding"
"""The hub's ``detail`` key naming (comma-separated) the devices it held back for flooding their
status within the last minute; empty when none."""


class ErrorNotice(_Payload):
    """A message the hub refused (not JSON, invalid, unknown device, not allowed)."""

    topic: str
    reason: str
    detail: str
    zh: str
    en: str


# ---- ratings (好差评) ------------------------------------------------------------------------------


class RatingRequest(_Payload):
    """A pad, kiosk or the QR page hands in a resident's rating of one service event."""

    reply_to: str = Field(min_length=1, max_length=200, description="the sender's rating reply topic")
    submission: RatingSubmission


class CaseStepRequest(_Payload):
    """A counter (a manager's console) records one step of a bad-rating case."""

    reply_to: str = Field(min_length=1, max_length=200, description="the sender's rating reply topic")
    step: CaseStepCommand


class RatingReply(_Payload):
    """The hub's one answer to a rating or case-step request."""

    request_id: str
    ok: bool
    receipt: RatingReceipt | None = None
    update: CaseUpdate | None = None
    refusal: Refusal | None = None


class RatingPrompt(BaseModel):
    """Ask the resident at the window to rate one service event, until ``until``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_event_id: str
    ticket_number: str
    service_name: str
    staff_name: str | None
    until: datetime
    tags: list[str] = Field(description="the bad-rating reasons to offer (rating.bad_reason_tags)")


class PadScreen(_Payload):
    """Retained per pad: what the pad at a window shows now."""

    window: int
    window_name: str
    open: bool
    paused: bool
    staff_id: str | None
    staff_name: str | None
    staff_title: str = ""
    ticket_number: str | None = Field(None, description="the ticket being served at the window")
    service_name: str | None = None
    prompt: RatingPrompt | None = None


# ---- dashboard alerts --------------------------------------------------------------------------


class AppointmentQuery(_Payload):
    """A kiosk asks which of today's appointments a resident has, by the card's keyed hash."""

    reply_to: str = Field(min_length=1, max_length=200, description="the sender's appointment reply topic")
    request_id: str = Field(min_length=1, max_length=64)
    id_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="keyed hash of the ID number (never the number)")


class AppointmentView(BaseModel):
    """One booked visit, as the kiosk offers it for check-in."""

    model_config = ConfigDict(frozen=True)

    appointment_id: str
    service_id: str
    service_name: str
    starts: datetime
    ends: datetime


CHECK_IN_PREFIX = "appt-"


def check_in_request_id(appointment_id: str) -> str:
    """Request id of an appointment's check-in (a ``take`` command): a second check-in of the same
    appointment (another kiosk, a retry) gets the same ticket from the hub, never a second one."""
    return f"{CHECK_IN_PREFIX}{appointment_id}"


class AppointmentList(_Payload):
    """The hub's answer: the resident's appointments today not yet checked in (possibly none)."""

    request_id: str
    appointments: list[AppointmentView]


class AlertNotice(_Payload):
    """The manager's dashboard raised or cleared an alert (long queue, device offline, case due …)."""

    alert_id: str = Field(description="kind and subject: the same while the condition lasts")
    kind: str = Field(description="queue_long, wait_long, device_offline, paper_low, case_due, case_overdue, "
                                  "hub_offline")
    subject: str = Field(description="the service, device or case it concerns")
    severity: Literal["warning", "critical"]
    state: Literal["raised", "cleared"]
    since: datetime = Field(description="when the condition began")
    reason: str = Field(description="message key, e.g. dashboard.alert.queue_long")
    params: dict[str, str | int | float] = {}
    zh: str
    en: str


# ---- topics ------------------------------------------------------------------------------------


class Topics:
    """Topic names for one hall. Ids are lowercase ``[a-z0-9-]``; no personal data in topics."""

    def __init__(self, hall_id: str) -> None:
        self.hall = hall_id
        self.base = f"{ROOT}/{hall_id}"

    def command(self, device: str) -> str:
        return f"{self.base}/cmd/{device}"

    @property
    def commands(self) -> str:
        return f"{self.base}/cmd/+"

    def reply(self, device: str) -> str:
        return f"{self.base}/reply/{device}"

    @property
    def queue_state(self) -> str:
        return f"{self.base}/state/queue"

    def event(self, kind: str) -> str:
        return f"{self.base}/evt/{kind}"

    @property
    def events(self) -> str:
        return f"{self.base}/evt/+"

    def device_status(self, device: str) -> str:
        return f"{self.base}/dev/{device}/status"

    @property
    def device_statuses(self) -> str:
        return f"{self.base}/dev/+/status"

    @property
    def hub_status(self) -> str:
        return f"{self.base}/hub/status"

    @property
    def errors(self) -> str:
        return f"{self.base}/error"

    def rating_submit(self, device: str) -> str:
        return f"{self.base}/rating/submit/{device}"

    @property
    def rating_submits(self) -> str:
        return f"{self.base}/rating/submit/+"

    def case_step(self, device: str) -> str:
        return f"{self.base}/rating/case/{device}"

    @property
    def case_steps(self) -> str:
        return f"{self.base}/rating/case/+"

    def rating_reply(self, device: str) -> str:
        return f"{self.base}/rating/reply/{device}"

    def pad_screen(self, device: str) -> str:
        return f"{self.base}/pad/{device}/screen"

    def alert(self, device: str) -> str:
        return f"{self.base}/dev/{device}/alert"

    def appointment_query(self, device: str) -> str:
        return f"{self.base}/appt/{device}"

    @property
    def appointment_queries(self) -> str:
        return f"{self.base}/appt/+"

    def appointment_reply(self, device: str) -> str:
        return f"{self.base}/appt-reply/{device}"

    @staticmethod
    def device_of_appointment(topic: str) -> str:
        """The device id segment of an ``appt/<device>`` topic."""
        match topic.split("/"):
            case [_, _, _, "appt", device]:
                return device
            case _:
                return ""

    @staticmethod
    def device_of(topic: str) -> str:
        """The device id segment of a ``cmd/<device>`` or ``dev/<device>/…`` topic."""
        match topic.split("/"):
            case [_, _, _, "cmd" | "dev", device, *_]:
                return device
            case _:
                return ""


class TopicSpec(BaseModel):
    """One row of the contract: who publishes, who subscribes, how."""

    pattern: str
    payload: str
    publisher: str
    subscribers: str
    qos: int
    retained: bool


TOPICS: list[TopicSpec] = [
    TopicSpec(pattern="hall/v1/{hall}/cmd/{device}", payload="CommandRequest", publisher="kiosk, pad, counter",
              subscribers="hub", qos=1, retained=False),
    TopicSpec(pattern="hall/v1/{hall}/reply/{device}", payload="CommandReply", publisher="hub",
              subscribers="the requesting device", qos=1, retained=False),
    TopicSpec(pattern="hall/v1/{hall}/state/queue", payload="QueueSnapshot", publisher="hub",
              subscribers="kiosk, display, dashboard, hall status", qos=1, retained=True),
    TopicSpec(pattern="hall/v1/{hall}/evt/{event_type}", payload="QueueEventNotice", publisher="hub",
              subscribers="display (voice), pads, dashboard", qos=1, retained=False),
    TopicSpec(pattern="hall/v1/{hall}/dev/{device}/status", payload="DeviceStatus",
              publisher="each device (Last Will: offline)", subscribers="hub, dashboard, hall status",
              qos=1, retained=True),
    TopicSpec(pattern="hall/v1/{hall}/hub/status", payload="DeviceStatus", publisher="hub (Last Will: offline)",
              subscribers="devices, dashboard, hall status", qos=1, retained=True),
    TopicSpec(pattern="hall/v1/{hall}/error", payload="ErrorNotice", publisher="hub",
              subscribers="dashboard, installers (mosquitto_sub)", qos=1, retained=False),
    TopicSpec(pattern="hall/v1/{hall}/rating/submit/{device}", payload="RatingRequest",
              publisher="pad, kiosk, web (the phone page)", subscribers="hub", qos=1, retained=False),
    TopicSpec(pattern="hall/v1/{hall}/rating/case/{device}", payload="CaseStepRequest", publisher="counter",
              subscribers="hub", qos=1, retained=False),
    TopicSpec(pattern="hall/v1/{hall}/rating/reply/{device}", payload="RatingReply", publisher="hub",
              subscribers="the requesting device", qos=1, retained=False),
    TopicSpec(pattern="hall/v1/{hall}/pad/{device}/screen", payload="PadScreen", publisher="hub",
              subscribers="that pad", qos=1, retained=True),
    TopicSpec(pattern="hall/v1/{hall}/dev/{device}/alert", payload="AlertNotice", publisher="dashboard",
              subscribers="county uplink, installers (mosquitto_sub)", qos=1, retained=False),
    TopicSpec(pattern="hall/v1/{hall}/appt/{device}", payload="AppointmentQuery", publisher="kiosk, counter",
              subscribers="hub", qos=1, retained=False),
    TopicSpec(pattern="hall/v1/{hall}/appt-reply/{device}", payload="AppointmentList", publisher="hub",
              subscribers="the requesting device", qos=1, retained=False),
]

PAYLOADS: dict[str, type[BaseModel]] = {
    "CommandRequest": CommandRequest,
    "CommandReply": CommandReply,
    "QueueSnapshot": QueueSnapshot,
    "QueueEventNotice": QueueEventNotice,
    "DeviceStatus": DeviceStatus,
    "ErrorNotice": ErrorNotice,
    "RatingRequest": RatingRequest,
    "CaseStepRequest": CaseStepRequest,
    "RatingReply": RatingReply,
    "PadScreen": PadScreen,
    "AlertNotice": AlertNotice,
    "AppointmentQuery": AppointmentQuery,
    "AppointmentList": AppointmentList,
}
