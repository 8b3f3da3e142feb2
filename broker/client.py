"""A device's side of the contract: send a command to the hub, get exactly one reply or a timeout.

Used by the counter commands (``hall call`` …), the kiosk, pads (through their
bridge; a pad also hears its screen on the same connection and leaves a Last
Will), the QR page, ``hall cases`` and the demo's traffic simulator. Replies are matched by the command's ``request_id``; a
reply for a request this client did not make (another process with the same
device id) is ignored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from hallkit.broker import link
from hallkit.broker.link import Tap
from hallkit.contracts.hall import (
    AppointmentList,
    AppointmentQuery,
    CaseStepRequest,
    CommandReply,
    CommandRequest,
    DeviceStatus,
    QueueSnapshot,
    RatingReply,
    RatingRequest,
    Topics,
)
from hallkit.contracts.mqtt import BrokerAddress
from pydantic import BaseModel, ValidationError

from hallkit.i18n import Message
from hallkit.queue.models import Command, new_id
from hallkit.rating.models import CaseStepCommand, RatingSubmission


class HubError(Exception):
    """The hub could not be asked or did not answer; ``message`` says so in both languages."""

    def __init__(self, key: str, **params: str | int | float) -> None:
        self.message = Message(key=key, params=params)
        super().__init__(self.message.bilingual())


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    reply: CommandReply | RatingReply | AppointmentList | None = None


class HallClient:
    """One device's connection to the hub: counter commands, ratings and case steps.

    Args:
        broker: the hall broker.
        hall_id: the hall.
        device_id: this device (the hub checks what it may do).
        will: a Last Will (topic, payload), for devices whose status the hall watches.
        extra: more topics to hear on the same connection, with their callbacks (a pad's screen).
        on_ready: called whenever the connection is (back) up.
    """

    def __init__(self, broker: BrokerAddress, hall_id: str, device_id: str, *,
                 will: tuple[str, bytes] | None = None,
                 extra: Sequence[tuple[str, mqtt.CallbackOnMessage]] = (),
                 on_ready: Callable[[mqtt.Client], None] | None = None) -> None:
        self.broker = broker
        self.topics = Topics(hall_id)
        self.device_id = device_id
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._routes = [(self.topics.reply(device_id), self._on_reply(CommandReply)),
                        (self.topics.rating_reply(device_id), self._on_reply(RatingReply)),
                        (self.topics.appointment_reply(device_id), self._on_reply(AppointmentList)),
                        *extra]
        self._will = will
        self._on_ready = on_ready
        self._tap: Tap | None = None

    @property
    def client(self) -> mqtt.Client:
        """The device's connection (shared with the process's other parts under the same login)."""
        assert self._tap is not None, "connect() first"
        return self._tap.client

    @property
    def ready(self) -> threading.Event:
        """Set while the broker has this client's reply subscriptions."""
        assert self._tap is not None, "connect() first"
        return self._tap.ready

    def connect(self, timeout: float = 5.0, *, must: bool = True) -> HallClient:
        """Connect and wait for the subscriptions; with ``must=False`` keep trying in the background."""
        try:
            # One connection per login: the process's other parts as this device share it.
            self._tap = link.join(self.broker, self.device_id, self._routes, will=self._will, must=must,
                                  on_up=self._on_ready)
        except OSError as exc:
            raise unreachable(self.broker, exc) from None
        if must:
            deadline = time.monotonic() + timeout
            try:
                logged_in(self._tap, timeout)
            except HubError:
                self.close()
                raise
            if not self._tap.ready.wait(max(0.0, deadline - time.monotonic())):
                self.close()
                raise HubError("login.no_answer", broker=self.broker.url, login=self.broker.username or "-")
        return self

    def __enter__(self) -> HallClient:
        return self.connect()

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._tap is not None:
            self._tap.leave()

    def _on_reply(self, model: type[CommandReply] | type[RatingReply] | type[AppointmentList]) -> mqtt.CallbackOnMessage:
        def on_reply(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            try:
                reply = model.model_validate_json(message.payload)
            except ValidationError:
                return
            with self._lock:
                pending = self._pending.get(reply.request_id)
            if pending is not None and not pending.done.is_set():
                pending.reply = reply
                pending.done.set()
        return on_reply

    def _ask(self, topic: str, request: BaseModel, request_id: str,
             timeout: float) -> CommandReply | RatingReply | AppointmentList:
        """Publish ``request`` and wait for the reply naming ``request_id`` (a retry may reuse it)."""
        pending = _Pending()
        with self._lock:
            self._pending[request_id] = pending
        try:
            self.client.publish(topic, request.model_dump_json(), qos=1)
            if not pending.done.wait(timeout):
                raise HubError("hub.timeout", seconds=timeout)
            assert pending.reply is not None
            return pending.reply
        finally:
            with self._lock:
                self._pending.pop(request_id, None)

    def request(self, command: Command, timeout: float = 5.0) -> CommandReply:
        """A queue command; its ``request_id`` makes a retry safe (the hub answers the same)."""
        request = CommandRequest(device=self.device_id, reply_to=self.topics.reply(self.device_id), command=command)
        reply = self._ask(self.topics.command(self.device_id), request, command.request_id, timeout)
        assert isinstance(reply, CommandReply)
        return reply

    def rate(self, submission: RatingSubmission, timeout: float = 5.0) -> RatingReply:
        """A resident's rating of one service event."""
        request = RatingRequest(device=self.device_id, reply_to=self.topics.rating_reply(self.device_id),
                                submission=submission)
        reply = self._ask(self.topics.rating_submit(self.device_id), request, submission.request_id, timeout)
        assert isinstance(reply, RatingReply)
        return reply

    def appointments(self, id_hash: str, timeout: float = 5.0) -> AppointmentList:
        """Today's appointments of the resident whose card gave ``id_hash``, not yet checked in."""
        query = AppointmentQuery(device=self.device_id, reply_to=self.topics.appointment_reply(self.device_id),
                                 request_id=new_id(), id_hash=id_hash)
        reply = self._ask(self.topics.appointment_query(self.device_id), query, query.request_id, timeout)
        assert isinstance(reply, AppointmentList)
        return reply

    def record_step(self, step: CaseStepCommand, timeout: float = 5.0) -> RatingReply:
        """One step of a bad-rating case."""
        request = CaseStepRequest(device=self.device_id, reply_to=self.topics.rating_reply(self.device_id),
                                  step=step)
        reply = self._ask(self.topics.case_step(self.device_id), request, step.request_id, timeout)
        assert isinstance(reply, RatingReply)
        return reply


@dataclass
class HallView:
    """What the broker's retained topics say about a hall right now."""

    hub: DeviceStatus | None = None
    queue: QueueSnapshot | None = None
    devices: dict[str, DeviceStatus] = field(default_factory=dict)


def read_hall(broker: BrokerAddress, hall_id: str, timeout: float = 3.0) -> HallView:
    """Collect the retained hub status, queue snapshot and device statuses."""
    topics = Topics(hall_id)
    view = HallView()
    got_queue = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            if message.topic == topics.queue_state:
                view.queue = QueueSnapshot.model_validate_json(message.payload)
                got_queue.set()
            elif message.topic == topics.hub_status:
                view.hub = DeviceStatus.model_validate_json(message.payload)
            elif message.topic.endswith("/status"):
                status = DeviceStatus.model_validate_json(message.payload)
                view.devices[status.device] = status
        except ValidationError:
            return

    _collect(broker, [topics.queue_state, topics.hub_status, topics.device_statuses], on_message,
             got_queue, timeout)
    return view


def discover_halls(broker: BrokerAddress, timeout: float = 2.0) -> dict[str, DeviceStatus]:
    """Halls whose hub announced itself on this broker (retained hub status)."""
    halls: dict[str, DeviceStatus] = {}
    found = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            halls[message.topic.split("/")[2]] = DeviceStatus.model_validate_json(message.payload)
            found.set()
        except (ValidationError, IndexError):
            return

    _collect(broker, ["hall/v1/+/hub/status"], on_message, found, timeout)
    return halls


def _collect(broker: BrokerAddress, patterns: list[str], on_message: mqtt.CallbackOnMessage,
             done: threading.Event, timeout: float) -> None:
    try:
        tap = link.join(broker, f"look-{new_id()[:8]}", [(p, on_message) for p in patterns], must=True)
    except OSError as exc:
        raise unreachable(broker, exc) from None
    try:
        logged_in(tap, timeout)
        # Retained messages arrive right after SUBACK; after the first, give the rest a moment.
        if done.wait(timeout):
            time.sleep(0.3)
    finally:
        tap.leave()


def logged_in(tap: Tap, timeout: float) -> None:
    """Wait for the broker's answer to the login; a refusal says which login and why."""
    tap.link.answered.wait(timeout)
    reason = tap.link.refused
    if reason is not None:
        message = link.refusal(tap.link.address, reason)
        raise HubError(message.key, **message.params)


def unreachable(broker: BrokerAddress, exc: OSError) -> HubError:
    """Nothing listens there, the name does not resolve, or TLS failed (a wrong CA or host name)."""
    detail = exc.strerror or str(exc)
    return HubError("login.unreachable", broker=broker.url, login=broker.username or "-", detail=detail)
