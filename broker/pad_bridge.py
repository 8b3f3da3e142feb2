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
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from hallkit.broker.client import HallClient, HubError
from hallkit.contracts.hall import DeviceState, DeviceStatus, PadScreen, Refusal, Topics
from hallkit.contracts.mqtt import BrokerAddress, say_offline
from hallkit.devices.evaluator.pad import KeyPress, PadInput, PadUnplugged, Rated, RatingPad, StaffKey
from hallkit.devices.evaluator.screen import PadDisplay, PadPrompt
from pydantic import ValidationError

from hallkit import __version__
from hallkit.i18n import Message
from hallkit.queue.models import CallNext, Command, Complete, Pause, Recall, Resume, Skip
from hallkit.rating.models import RatingChannel, RatingSubmission

log = logging.getLogger("hallkit.pad")

REOPEN_SECONDS = 1.0
READ_SECONDS = 0.1


def pad_display(screen: PadScreen) -> PadDisplay:
    """What the driver shows, from the hub's message (which also carries what only the hub needs)."""
    prompt = screen.prompt
    return PadDisplay(
        window=screen.window, window_name=screen.window_name, open=screen.open, paused=screen.paused,
        staff_id=screen.staff_id, staff_name=screen.staff_name, staff_title=screen.staff_title, ticket_number=screen.ticket_number,
        service_name=screen.service_name,
        prompt=None if prompt is None else PadPrompt(
            ticket_number=prompt.ticket_number, service_name=prompt.service_name, staff_name=prompt.staff_name,
            until=prompt.until, reasons=tuple(prompt.tags)))


class PadLink:
    """The pad's MQTT connection: its screen in, commands and ratings out, its status with a Will."""

    def __init__(self, broker: BrokerAddress, hall_id: str, device_id: str) -> None:
        self.topics = Topics(hall_id)
        self.device_id = device_id
        self.session = int(time.time())  # grows with every start, so an old Will reads as stale
        self.screen: PadScreen | None = None
        self.hub_online: bool | None = None  # from the hub's retained status (its Last Will: offline)
        self.screen_changed = threading.Event()
        offline = DeviceStatus(device=device_id, state=DeviceState.OFFLINE, session=self.session, kind="pad",
                               version=__version__)
        self.hub = HallClient(broker, hall_id, device_id,
                                will=(self.topics.device_status(device_id), offline.model_dump_json().encode()),
                                extra=[(self.topics.pad_screen(device_id), self._on_screen),
                                       (self.topics.hub_status, self._on_hub_status)],
                                on_ready=lambda _client: self.screen_changed.set())  # the bridge republishes its status then

    def connect(self) -> None:
        self.hub.connect(must=False)
        if not self.hub.ready.is_set():
            log.warning("broker %s not reachable yet; the pad keeps trying", self.hub.broker.url)

    def close(self, status: DeviceStatus) -> None:
        say_offline(self.hub.client, self.topics.device_status(self.device_id), status.model_dump_json())
        self.hub.close()

    def _on_screen(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            self.screen = PadScreen.model_validate_json(message.payload)
        except ValidationError:
            log.warning("ignored a malformed screen on %s", message.topic)
            return
        self.screen_changed.set()

    def _on_hub_status(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            self.hub_online = DeviceStatus.model_validate_json(message.payload).state is DeviceState.ONLINE
        except ValidationError:
            log.warning("ignored a malformed hub status on %s", message.topic)

    @property
    def connected(self) -> bool:
        """Whether the pad is connected to the hall's broker now."""
        return self.hub.ready.is_set()

    def publish_status(self, status: DeviceStatus) -> None:
        self.hub.client.publish(self.topics.device_status(self.device_id), status.model_dump_json(), qos=1,
                                retain=True)


class PadBridge:
    def __init__(self, pad: RatingPad, broker: BrokerAddress, hall_id: str, device_id: str, window: int) -> None:
        self.pad = pad
        self.window = window
        self.link = PadLink(broker, hall_id, device_id)
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
                        self.pad.show(pad_display(self.link.screen), datetime.now(UTC))
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
            reply = self.link.hub.request(self.command(found.key))
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
        reply = self.link.hub.rate(submission)
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
