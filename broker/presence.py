"""A device's retained status on the hall broker, with a Last Will so a dead device reads offline.

For devices that have no MQTT client of their own (a printer or card reader on a kiosk's
USB or serial port), the process that drives them publishes for them under each device's
own login, one connection per device, so each has its own Will: a kiosk that dies takes its
printer's and reader's status to "offline" with it, which is the truth for the hall (nobody
can print or read there). The device's connection is its login's one connection in this
process (:mod:`broker.link`); the presence joins it first, since the Will is the connection's.
"""

from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as mqtt
from hallkit.broker import link
from hallkit.broker.link import Tap
from hallkit.contracts.hall import DeviceState, DeviceStatus, Refusal, Topics
from hallkit.contracts.mqtt import BrokerAddress, say_offline

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
        self.broker = broker
        self._tap: Tap | None = None

    @property
    def client(self) -> mqtt.Client:
        assert self._tap is not None, "start() first"
        return self._tap.client

    def start(self) -> DevicePresence:
        offline = self._status(DeviceState.OFFLINE)
        self._tap = link.join(self.broker, self.device_id, on_up=lambda client: self._publish_on(client, DeviceState.ONLINE),
                              will=(self.topic, offline.model_dump_json().encode()))
        return self

    def update(self, detail: Detail, problems: list[Refusal]) -> None:
        """New health figures; published now if connected, or on the next connection."""
        with self._lock:
            self._detail = dict(detail)
            self._problems = list(problems)
        self._publish(DeviceState.ONLINE)

    def stop(self) -> None:
        if self._tap is None:
            return
        say_offline(self.client, self.topic, self._status(DeviceState.OFFLINE).model_dump_json())
        self._tap.leave()

    def _status(self, state: DeviceState) -> DeviceStatus:
        with self._lock:
            return DeviceStatus(device=self.device_id, state=state, session=self.session, kind=self.kind,
                                version=__version__, detail=self._detail if state is DeviceState.ONLINE else {},
                                problems=self._problems if state is DeviceState.ONLINE else [])

    def _publish(self, state: DeviceState) -> None:
        if self._tap is not None:  # else on_up publishes them when the link comes up
            self._publish_on(self._tap.client, state)

    def _publish_on(self, client: mqtt.Client, state: DeviceState) -> None:
        if client.is_connected():  # else on_up publishes them when the link is back
            client.publish(self.topic, self._status(state).model_dump_json(), qos=1, retain=True)
