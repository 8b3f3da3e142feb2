"""The pad bridge: one per pad, between its driver and the hub.

It turns the staff's keys into counter commands and the resident's choice into
a rating of the service event the hub asked about, shows the screen the hub
publishes for the pad, and publishes the pad's device status (retained, with a
Last Will, so a dead bridge reads offline): the driver's problems, and
``pad.unplugged`` while the device is gone. It opens the device again every
:data:`REOPEN_SECONDS` until it is back, then shows the current screen again.

Only the bridge's own thread touches the device; the MQTT thread just hands
over the latest screen.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ValidationError

from broker.client import HubError
from broker.contract import (
    CommandReply,
    CommandRequest,
    DeviceState,
    DeviceStatus,
    PadScreen,
    RatingReply,
    RatingRequest,
    Refusal,
    Topics,
)
from broker.mqtt import BrokerAddress, make_client
from devices.evaluator.pad import KeyPress, PadInput, PadUnplugged, Rated, RatingPad, StaffKey
from hallkit import __version__
from hallkit.i18n import Message
from hallkit.queue.models import CallNext, Command, Complete, Pause, Recall, Resume, Skip, new_id
from hallkit.rating.models import RatingChannel, RatingSubmission

log = logging.getLogger("hallkit.pad")

REOPEN_SECONDS = 1.0
READ_SECONDS = 0.1


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    reply: BaseModel | None = None


class PadLink:
    """The pad's MQTT connection: its screen in, commands and ratings out, its status with a Will."""

    def __init__(self, broker: BrokerAddress, hall_id: str, device_id: str, kind: str) -> None:
        self.broker = broker
        self.topics = Topics(hall_id)
        self.device_id = device_id
        self.kind = kind
        self.session = int(time.time())
        self.screen: PadScreen | None = None
        self.screen_changed = threading.Event()
        self.ready = threading.Event()
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        offline = DeviceStatus(device=device_id, state=DeviceState.OFFLINE, session=self.session, kind="pad",
                               version=__version__)
        self.client = make_client(broker, client_id=f"{device_id}-{new_id()[:8]}",
                                  will=(self.topics.device_status(device_id), offline.model_dump_json().encode()))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.ready.clear()
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.message_callback_add(self.topics.pad_screen(device_id), self._on_screen)
        self.client.message_callback_add(self.topics.reply(device_id), self._on_reply(CommandReply))
        self.client.message_callback_add(self.topics.rating_reply(device_id), self._on_reply(RatingReply))

    def connect(self, timeout: float = 10.0) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=15)
        self.client.loop_start()
        if not self.ready.wait(timeout):
            log.warning("broker %s not reachable yet; the pad keeps trying", self.broker.url)

    def close(self, status: DeviceStatus) -> None:
        # A clean disconnect does not fire the Will: say offline ourselves.
        info = self.client.publish(self.topics.device_status(self.device_id),
                                   status.model_dump_json(), qos=1, retain=True)
        if self.ready.is_set():
            try:
                info.wait_for_publish(2)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object) -> None:
        if reason.is_failure:
            return
        client.subscribe([(self.topics.pad_screen(self.device_id), 1), (self.topics.reply(self.device_id), 1),
                          (self.topics.rating_reply(self.device_id), 1)])
        self.screen_changed.set()  # the bridge republishes its status on (re)connection

    def _on_screen(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            self.screen = PadScreen.model_validate_json(message.payload)
        except ValidationError:
            log.warning("ignored a malformed screen on %s", message.topic)
            return
        self.screen_changed.set()

    def _on_reply(self, model: type[CommandReply] | type[RatingReply]) -> mqtt.CallbackOnMessage:
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

    def _ask(self, topic: str, request: BaseModel, request_id: str, timeout: float) -> BaseModel:
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
        request = CommandRequest(device=self.device_id, reply_to=self.topics.reply(self.device_id), command=command)
        reply = self._ask(self.topics.command(self.device_id), request, command.request_id, timeout)
        assert isinstance(reply, CommandReply)
        return reply

    def rate(self, submission: RatingSubmission, timeout: float = 5.0) -> RatingReply:
        request = RatingRequest(device=self.device_id, reply_to=self.topics.rating_reply(self.device_id),
                                submission=submission)
        reply = self._ask(self.topics.rating_submit(self.device_id), request, submission.request_id, timeout)
        assert isinstance(reply, RatingReply)
        return reply

    def publish_status(self, status: DeviceStatus) -> None:
        self.client.publish(self.topics.device_status(self.device_id), status.model_dump_json(), qos=1, retain=True)


class PadBridge:
    def __init__(self, pad: RatingPad, broker: BrokerAddress, hall_id: str, device_id: str, window: int) -> None:
        self.pad = pad
        self.window = window
        self.link = PadLink(broker, hall_id, device_id, pad.kind)
        self.stop_requested = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"pad-{device_id}", daemon=True)
        self.opened = False
        self.unplugged: Message | None = None
        self.sent = 0
        self.ratings = 0
        self.refused: list[Refusal] = []
        self._status_said: tuple[str, ...] | None = None

    def start(self) -> None:
        self.link.connect()
        self.thread.start()

    def stop(self) -> None:
        self.stop_requested.set()
        self.thread.join(timeout=10)
        self.pad.close()
        self.link.close(self.status(DeviceState.OFFLINE))

    # ---- the loop -------------------------------------------------------------------------------------

    def run(self) -> None:
        while not self.stop_requested.is_set():
            if not self.opened and not self._open():
                self.stop_requested.wait(REOPEN_SECONDS)
                continue
            try:
                if self.link.screen_changed.is_set():
                    self.link.screen_changed.clear()
                    self._publish_status(force=True)
                    if self.link.screen is not None:
                        self.pad.show(self.link.screen, datetime.now(UTC))
                found = self.pad.read(READ_SECONDS)
                self._publish_status()
                if found is not None:
                    self.act(found)
            except PadUnplugged as exc:
                self._lost(str(exc))
            except HubError as exc:
                log.warning("pad %s: %s", self.link.device_id, exc)

    def _open(self) -> bool:
        try:
            self.pad.open()
        except PadUnplugged as exc:
            self._lost(str(exc))
            return False
        self.opened = True
        if self.unplugged is not None:
            log.info("pad %s is back on %s", self.link.device_id, self.pad.url)
        self.unplugged = None
        self.link.screen_changed.set()  # show the current screen again
        return True

    def _lost(self, detail: str) -> None:
        if self.opened:
            log.warning("pad %s lost (%s): %s; trying again every %.0f s", self.link.device_id, self.pad.url,
                        detail, REOPEN_SECONDS)
        self.pad.close()
        self.opened = False
        self.unplugged = Message(key="pad.unplugged", params={"url": self.pad.url, "detail": detail[:200]})
        self._publish_status()

    # ---- what a press does ------------------------------------------------------------------------------

    def act(self, found: PadInput) -> None:
        if isinstance(found, KeyPress):
            reply = self.link.request(self.command(found.key))
            self.sent += 1
            if not reply.ok and reply.refusal is not None:
                self.refused.append(reply.refusal)
                log.info("pad %s %s: %s / %s", self.link.device_id, found.key.value, reply.refusal.zh,
                         reply.refusal.en)
            return
        self._rate(found)

    def command(self, key: StaffKey) -> Command:
        window = self.window
        if key is StaffKey.PAUSE:
            paused = self.link.screen is not None and self.link.screen.paused
            return Resume(window=window) if paused else Pause(window=window)
        commands: dict[StaffKey, type[CallNext | Recall | Skip | Complete]] = {
            StaffKey.CALL: CallNext, StaffKey.RECALL: Recall, StaffKey.SKIP: Skip, StaffKey.DONE: Complete}
        return commands[key](window=window)

    def _rate(self, rated: Rated) -> None:
        screen = self.link.screen
        prompt = screen.prompt if screen is not None else None
        if prompt is None or prompt.until <= datetime.now(UTC):
            log.info("pad %s: a rating key with nothing to rate", self.link.device_id)
            return
        submission = RatingSubmission(service_event_id=prompt.service_event_id, channel=RatingChannel.PAD,
                                      level=rated.level, tags=rated.tags)
        reply = self.link.rate(submission)
        if reply.ok:
            self.ratings += 1
        elif reply.refusal is not None:
            self.refused.append(reply.refusal)
            log.info("pad %s rating refused: %s / %s", self.link.device_id, reply.refusal.zh, reply.refusal.en)

    # ---- status ---------------------------------------------------------------------------------------

    def problems(self) -> list[Message]:
        if self.unplugged is not None:
            return [self.unplugged]
        return self.pad.problems()

    def status(self, state: DeviceState = DeviceState.ONLINE) -> DeviceStatus:
        problems = self.problems() if state is DeviceState.ONLINE else []
        return DeviceStatus(
            device=self.link.device_id, state=state, session=self.link.session, kind="pad", version=__version__,
            detail={"pad": self.pad.kind, "url": self.pad.url, "window": self.window, "connected": self.opened,
                    "keys": self.sent, "ratings": self.ratings, "refused": len(self.refused)},
            problems=[Refusal.of(p) for p in problems])

    def _publish_status(self, force: bool = False) -> None:
        """Publish when the problems change (not on every poll), or when asked to."""
        said = tuple(sorted(p.key for p in self.problems()))
        if force or said != self._status_said:
            self._status_said = said
            self.link.publish_status(self.status())
