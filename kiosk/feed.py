"""What the hall's screens watch: the retained queue snapshot, the hub's status and the calls.

A :class:`HallFeed` is one paho client that subscribes and reconnects by itself
(``connect_async``: starting it never blocks, even with the broker down). Its
callbacks run in paho's thread; screens hand them to the UI thread.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from broker.contract import DeviceState, DeviceStatus, QueueEventNotice, QueueSnapshot, Topics
from broker.mqtt import BrokerAddress, make_client
from hallkit.queue.models import TicketCalled, TicketRecalled, new_id

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
        name: prefix of the MQTT client id (the device id).
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
        self.client = make_client(broker, client_id=f"{name}-feed-{new_id()[:8]}")
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message

    def start(self) -> HallFeed:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=15)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _connected(self, client: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode,
                   _p: object) -> None:
        if reason.is_failure:
            return
        client.subscribe([(self.topics.queue_state, 1), (self.topics.hub_status, 1)]
                         + [(topic, 1) for topic in sorted(self._call_topics)])

    def _disconnected(self, *_: object) -> None:
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
            # Anything else is not ours: the embedded broker (amqtt) also hands new
            # subscribers retained messages of topics they did not subscribe to.
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
