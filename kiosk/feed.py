"""What the hall's screens watch: the retained queue snapshot, the hub's status and the calls.

A :class:`HallFeed` listens on the device's connection (:mod:`broker.link`: one per
login per process, shared with the kiosk's hub requests and status), which subscribes and
reconnects by itself (starting it never blocks, even with the broker down). Its
callbacks run in paho's thread; screens hand them to the UI thread.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from hallkit.broker import link
from hallkit.broker.link import Tap
from hallkit.contracts.hall import DeviceState, DeviceStatus, QueueEventNotice, QueueSnapshot, Topics
from hallkit.contracts.mqtt import BrokerAddress
from pydantic import ValidationError

from hallkit.queue.models import TicketCalled, TicketRecalled

log = logging.getLogger(__name__)

CALL_EVENTS = ("ticket_called", "ticket_recalled")
SEEN_EVENTS = 500
"""Event ids remembered to drop duplicates (QoS 1 and reconnects deliver some twice)."""


@dataclass(frozen=True, slots=True)
class Call:
    """A ticket called (or called again) to a window: what the board shows and the voice says."""

    event_id: str
    number: str
    window: int
    recall: bool


class HallFeed:
    """Subscribes to a hall's state and calls; tells the callbacks, in paho's thread.

    Args:
        broker: the hall's broker.
        hall_id: the hall.
        name: the device id (the MQTT client id when the broker has no logins).
        on_snapshot: a new queue snapshot.
        on_call: a ticket called or recalled (each event once).
        on_hub: whether the hub is online (its retained status, or the broker link lost).
    """

    def __init__(self, broker: BrokerAddress, hall_id: str, name: str,
                 on_snapshot: Callable[[QueueSnapshot], None] | None = None,
                 on_call: Callable[[Call], None] | None = None,
                 on_hub: Callable[[bool], None] | None = None) -> None:
        self.broker = broker
        self.topics = Topics(hall_id)
        self._on_snapshot = on_snapshot
        self._on_call = on_call
        self._on_hub = on_hub
        self._seen: deque[str] = deque(maxlen=SEEN_EVENTS)
        self._call_topics = frozenset(self.topics.event(kind) for kind in CALL_EVENTS)
        self.name = name
        self._tap: Tap | None = None

    def start(self) -> HallFeed:
        topics = [self.topics.queue_state, self.topics.hub_status, *sorted(self._call_topics)]
        self._tap = link.join(self.broker, self.name, [(topic, self._message) for topic in topics],
                              on_down=self._disconnected)
        return self

    def stop(self) -> None:
        if self._tap is not None:
            self._tap.leave()

    def _disconnected(self, _client: mqtt.Client) -> None:
        if self._on_hub is not None:
            self._on_hub(False)

    def _message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            if message.topic == self.topics.queue_state:
                if self._on_snapshot is not None:
                    self._on_snapshot(QueueSnapshot.model_validate_json(message.payload))
            elif message.topic == self.topics.hub_status:
                if self._on_hub is not None:
                    status = DeviceStatus.model_validate_json(message.payload)
                    self._on_hub(status.state is DeviceState.ONLINE)
            elif message.topic in self._call_topics:
                self._call(QueueEventNotice.model_validate_json(message.payload))
        except ValidationError as exc:
            log.warning("ignored a malformed message on %s: %s", message.topic, exc.errors()[:1])

    def _call(self, notice: QueueEventNotice) -> None:
        event = notice.event
        if not isinstance(event, TicketCalled | TicketRecalled) or notice.number is None:
            return
        if event.id in self._seen:
            return
        self._seen.append(event.id)
        if self._on_call is not None:
            self._on_call(Call(event_id=event.id, number=notice.number, window=event.window,
                               recall=isinstance(event, TicketRecalled)))
