"""The hub's watch on device statuses: a broker connection of its own, next to the request one.

A device that floods its status (a loose cable, a bug, a hostile device) would otherwise put
thousands of messages in the hub's one connection ahead of the next ticket request, each parsed
by paho in the hub's process. Here statuses arrive on their own connection, under their own
login (read-only, on device statuses: see ``hub_status_login``), at QoS 0 on a
:class:`broker.connection.Connection` that splits a whole socket read at a time, and only each
device's newest status of a read is handed on. The request connection never waits behind them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from hallkit.broker.connection import Connection, Incoming
from hallkit.broker.flood import FLOOD_LIMIT, MUTE_SECONDS, FloodGate
from hallkit.broker.wire import SUBACK_FAILURE
from hallkit.contracts.hall import Topics
from hallkit.contracts.mqtt import BrokerAddress

log = logging.getLogger("hallkit.hub.statuses")

FLOODING_FOR = 60.0
"""Seconds a device counts as flooding after it was last muted: what the hall's status shows, so
that a device that keeps flooding reads as one condition, not one every mute."""
KEEPALIVE = 30
"""Seconds. The broker drops a client it has heard nothing from in 1.5 times this, however much it
sends the client: a ping goes out after half of it without a packet sent; the link is dropped
after all of it without a packet heard (a live broker answers the ping)."""


class StatusWatch:
    """Keeps a connection to ``address`` subscribed to ``topics`` at QoS 0 and hands
    ``on_statuses`` the newest payload per topic of each read, on its own thread.

    When the broker refuses the login or the subscription, ``on_refused`` is told why once and the
    watch ends (the hub then reads statuses on its request connection, as before it had this).
    ``on_flood`` is told each device muted for flooding (the hub has the broker disconnect it).
    """

    def __init__(self, address: BrokerAddress, client_id: str, topics: Sequence[str],
                 on_statuses: Callable[[dict[str, bytes]], None], on_refused: Callable[[str], None],
                 ca_file: str | None = None, keepalive: int = KEEPALIVE,
                 on_flood: Callable[[str], None] | None = None) -> None:
        self.topics = list(topics)
        self.on_statuses, self.on_refused, self.on_flood = on_statuses, on_refused, on_flood
        self.subscribed = threading.Event()
        self.mutes = 0
        """Times a device was muted for flooding its status, since the start."""
        self._last_muted: dict[str, float] = {}
        """Device → when it was last muted (written by the watch's thread only)."""
        self._gate = FloodGate()
        self._subscribe_id: int | None = None
        self.connection = Connection(address, client_id, self._on_publishes, keepalive=keepalive,
                                     on_up=self._on_up, on_subscribed=self._on_subscribed,
                                     on_down=self.subscribed.clear,
                                     on_refused=self._on_login_refused, tick=self._unmute, ca_file=ca_file,
                                     name="device statuses", logger=log)

    def start(self) -> None:
        self.connection.start()

    def stop(self) -> None:
        """Ends the watch (one that never started too)."""
        self.connection.stop()
        self.subscribed.clear()

    def _on_up(self) -> None:
        # Clean session: what was missed while away the broker sends as retained statuses now.
        self._gate = FloodGate()  # a new session hears every device again
        self._subscribe_id = self.connection.subscribe([(topic, 0) for topic in self.topics])

    def _on_subscribed(self, ident: int, granted: bytes) -> None:
        if ident != self._subscribe_id:
            return  # a muted device subscribed to again
        if SUBACK_FAILURE in granted:
            self.on_refused(f"the broker refused {self.connection.client_id!r} the subscription to device statuses")
            self.connection.stop()
            return
        self.subscribed.set()

    def _on_login_refused(self, reason: str) -> bool:
        self.on_refused(reason)
        return False

    def _unmute(self, now: float) -> float | None:
        """Subscribe again to each device muted long enough (the broker sends its newest first)."""
        if back := self._gate.due(now):
            self.connection.subscribe([(topic, 0) for topic in back])
        return self._gate.wait(now)

    def _on_publishes(self, messages: list[Incoming]) -> None:
        newest: dict[str, bytes] = {}
        counts: Counter[str] = Counter()
        for message in messages:
            newest[message.topic] = message.payload
            counts[message.topic] += 1
        now = time.monotonic()
        flooding = [topic for topic, count in counts.items() if self._gate.heard(topic, count, now)]
        if flooding:
            self.connection.unsubscribe(flooding)
            self.mutes += len(flooding)
            for topic in flooding:
                device = Topics.device_of(topic)
                self._last_muted[device] = now
                log.warning("device statuses: %s sends more than %d a second; the broker holds them back "
                            "and the hub reads only its newest every %.0f s until it calms down",
                            topic, FLOOD_LIMIT, MUTE_SECONDS)
                if self.on_flood is not None:
                    self.on_flood(device)
        self.on_statuses(newest)

    def flooding(self, now: float) -> list[str]:
        """The devices muted for flooding their status within the last ``FLOODING_FOR`` seconds."""
        return sorted(device for device, when in list(self._last_muted.items()) if now - when < FLOODING_FOR)
