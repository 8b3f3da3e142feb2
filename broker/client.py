"""A device's side of the contract: send a command to the hub, get exactly one reply or a timeout.

Used by the counter commands (``hall call`` …), the kiosk, pads and the demo's
traffic simulator. Replies are matched by the command's ``request_id``; a
reply for a request this client did not make (another process with the same
device id) is ignored.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from broker.contract import CommandReply, CommandRequest, DeviceStatus, QueueSnapshot, Topics
from broker.mqtt import BrokerAddress, make_client
from hallkit.i18n import Message
from hallkit.queue.models import Command, new_id


class HubError(Exception):
    """The hub could not be asked or did not answer; ``message`` says so in both languages."""

    def __init__(self, key: str, **params: str | int | float) -> None:
        self.message = Message(key=key, params=params)
        super().__init__(self.message.bilingual())


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    reply: CommandReply | None = None


class HallClient:
    def __init__(self, broker: BrokerAddress, hall_id: str, device_id: str) -> None:
        self.broker = broker
        self.topics = Topics(hall_id)
        self.device_id = device_id
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = make_client(broker, client_id=f"{device_id}-{new_id()[:8]}")
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self._ready.clear()
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.message_callback_add(self.topics.reply(device_id), self._on_reply)

    def connect(self, timeout: float = 5.0) -> HallClient:
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=15)
        except OSError as exc:
            raise HubError("hub.unreachable", broker=self.broker.url, detail=str(exc)) from None
        self.client.loop_start()
        if not self._ready.wait(timeout):
            self.close()
            raise HubError("hub.unreachable", broker=self.broker.url, detail="no answer from the broker")
        return self

    def __enter__(self) -> HallClient:
        return self.connect()

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode,
                    _p: object) -> None:
        if not reason.is_failure:
            client.subscribe(self.topics.reply(self.device_id), qos=1)

    def _on_reply(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            reply = CommandReply.model_validate_json(message.payload)
        except ValidationError:
            return
        with self._lock:
            pending = self._pending.get(reply.request_id)
        if pending is not None and not pending.done.is_set():
            pending.reply = reply
            pending.done.set()

    def request(self, command: Command, timeout: float = 5.0) -> CommandReply:
        """Send ``command``; its ``request_id`` makes a retry safe (the hub answers the same)."""
        request = CommandRequest(device=self.device_id, reply_to=self.topics.reply(self.device_id),
                                 command=command)
        pending = _Pending()
        with self._lock:
            self._pending[command.request_id] = pending
        try:
            self.client.publish(self.topics.command(self.device_id), request.model_dump_json(), qos=1)
            if not pending.done.wait(timeout):
                raise HubError("hub.timeout", seconds=timeout)
            assert pending.reply is not None
            return pending.reply
        finally:
            with self._lock:
                self._pending.pop(command.request_id, None)


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
    client = make_client(broker, client_id=f"look-{new_id()[:8]}")
    client.on_message = on_message
    client.on_connect = lambda c, *_: [c.subscribe(p, qos=1) for p in patterns]
    try:
        client.connect(broker.host, broker.port, keepalive=15)
    except OSError as exc:
        raise HubError("hub.unreachable", broker=broker.url, detail=str(exc)) from None
    client.loop_start()
    try:
        # Retained messages arrive right after SUBACK; after the first, give the rest a moment.
        if done.wait(timeout):
            time.sleep(0.3)
    finally:
        client.disconnect()
        client.loop_stop()
