"""A device's retained status on the hall broker, with a Last Will so a dead device reads offline.

For devices that have no MQTT client of their own (a printer or card reader on a kiosk's
USB or serial port), the process that drives them publishes for them, one connection per
device, so each has its own Will: a kiosk that dies takes its printer's and reader's status
to "offline" with it, which is the truth for the hall (nobody can print or read there).
"""

from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as mqtt

from broker.contract import DeviceState, DeviceStatus, Refusal, Topics
from broker.mqtt import BrokerAddress, make_client, say_offline
from hallkit import __version__

log = logging.getLogger(__name__)

Detail = dict[str, str | int | float | bool | None]


class DevicePresence:
    """Publishes ``DeviceStatus`` for one device: online on every connection, offline as its Will."""

    def __init__(self, broker: BrokerAddress, hall_id: str, device_id: str, kind: str) -> None:
        self.topic = Topics(hall_id).device_status(device_id)
        self.device_id = device_id
        self.kind = kind
        self.session = int(time.time())  # grows with every start: a stale Will reads as older
        self._lock = threading.Lock()
        self._detail: Detail = {}
        self._problems: list[Refusal] = []
        offline = self._status(DeviceState.OFFLINE)
        self.client = make_client(broker, client_id=f"{device_id}-status-{self.session}",
                                  will=(self.topic, offline.model_dump_json().encode()))
        self.client.on_connect = self._on_connect
        self.broker = broker

    def start(self) -> DevicePresence:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=15)
        self.client.loop_start()
        return self

    def update(self, detail: Detail, problems: list[Refusal]) -> None:
        """New health figures; published now if connected, or on the next connection."""
        with self._lock:
            self._detail = dict(detail)
            self._problems = list(problems)
        self._publish(DeviceState.ONLINE)

    def stop(self) -> None:
        say_offline(self.client, self.topic, self._status(DeviceState.OFFLINE).model_dump_json())
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object) -> None:
        if not reason.is_failure:
            self._publish(DeviceState.ONLINE)

    def _status(self, state: DeviceState) -> DeviceStatus:
        with self._lock:
            return DeviceStatus(device=self.device_id, state=state, session=self.session, kind=self.kind,
                                version=__version__, detail=self._detail if state is DeviceState.ONLINE else {},
                                problems=self._problems if state is DeviceState.ONLINE else [])

    def _publish(self, state: DeviceState) -> None:
        if self.client.is_connected():  # else _on_connect publishes the latest figures when the link is back
            self.client.publish(self.topic, self._status(state).model_dump_json(), qos=1, retain=True)
