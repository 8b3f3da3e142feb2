"""One MQTT connection per login per process, shared by every part that speaks as that login.

The project's brokers tie a client id to its login, and a second connection with the same
client id displaces the first (MQTT 3.1.1 §3.1.4). So a kiosk's hub requests, its screen
feed and its retained status all ride on the kiosk login's one connection: each part joins
the process's :class:`Link` for that login with the topics it listens to (each with its own
callback) and what it does when the link comes up or goes down, and leaves it when done.
The last part to leave closes the connection.

The Will is the connection's, so the part that owns the login's status (a device's
presence, the pad bridge, the dashboard) must join first: a Will given later only takes
effect on the next connection.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from hallkit.contracts.mqtt import BrokerAddress, make_client

from hallkit.i18n import Message

log = logging.getLogger(__name__)

Hook = Callable[[mqtt.Client], None]
"""Called with the shared client: a first connection may come up before :func:`join` returns."""
Route = tuple[str, mqtt.CallbackOnMessage]
"""A topic filter and the callback for messages matching it."""


@dataclass(eq=False)
class Tap:
    """One part's use of a :class:`Link`: its routes and hooks, and whether its subscriptions are in."""

    link: Link
    routes: tuple[Route, ...]
    on_up: Hook | None
    on_down: Hook | None
    ready: threading.Event = field(default_factory=threading.Event)
    """Set once the broker confirmed this part's subscriptions (at once for a part without any)."""

    @property
    def client(self) -> mqtt.Client:
        """The shared paho client, to publish with (never to set callbacks on)."""
        return self.link.client

    def leave(self) -> None:
        self.link.leave(self)


class Link:
    """A login's connection in this process; use :func:`join`."""

    def __init__(self, key: tuple[str, int, str], address: BrokerAddress, client_id: str,
                 will: tuple[str, bytes] | None) -> None:
        self.key = key
        self.address = address
        self.client = make_client(address, client_id, will=will)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._lock = threading.RLock()
        self._taps: list[Tap] = []
        self._filters: Counter[str] = Counter()
        self._unconfirmed: list[Tap] = []
        self._pending: dict[int, list[Tap]] = {}
        self._up = False
        self.answered = threading.Event()
        """Set once the broker answered a CONNECT, accepting or refusing it."""
        self.refused: mqtt.ReasonCode | None = None
        """Why the broker refused the last CONNECT (None once it accepts one)."""
        self.asked = False
        """Opened by a caller that waits for the broker's answer (``join(must=True)``)."""

    # ---- joining and leaving ----------------------------------------------------------------

    def _join(self, tap: Tap, will: tuple[str, bytes] | None) -> None:
        with self._lock:
            if will is not None:
                # Takes effect on the next connection; the owner of the status should join first.
                self.client.will_set(will[0], will[1], qos=1, retain=True)
            self._taps.append(tap)
            filters = [topic for topic, _ in tap.routes]
            self._filters.update(filters)
            if not filters:
                tap.ready.set()
            elif self._up:
                self._subscribe(filters, [tap])
            else:
                self._unconfirmed.append(tap)
            up = self._up
        if up and tap.on_up is not None:
            tap.on_up(self.client)

    def leave(self, tap: Tap) -> None:
        with _registry_lock, self._lock:
            if tap not in self._taps:
                return
            self._taps.remove(tap)
            if tap in self._unconfirmed:
                self._unconfirmed.remove(tap)
            self._filters.subtract(topic for topic, _ in tap.routes)
            gone = [topic for topic, count in self._filters.items() if count <= 0]
            for topic in gone:
                del self._filters[topic]
            last = not self._taps
            if last:
                _links.pop(self.key, None)
        if last:
            self.client.disconnect()
            self.client.loop_stop()
        elif gone and self.client.is_connected():
            self.client.unsubscribe(gone)

    def _subscribe(self, filters: Sequence[str], taps: list[Tap]) -> None:
        result, mid = self.client.subscribe([(topic, 1) for topic in dict.fromkeys(filters)])
        if result == mqtt.MQTT_ERR_SUCCESS and mid is not None:
            self._pending[mid] = taps
        else:  # the link went down meanwhile: _on_connect subscribes them again
            self._unconfirmed.extend(taps)

    # ---- paho callbacks (paho's thread) -----------------------------------------------------

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object) -> None:
        if reason.is_failure:
            if not self.asked:  # a command that waits for the answer says it itself (broker.client.logged_in)
                log.error("%s", refusal(self.address, reason).bilingual())
            self.refused = reason
            self.answered.set()
            return
        self.refused = None
        self.answered.set()
        with self._lock:
            self._up = True
            waiting = [tap for tap in self._taps if tap.routes]
            self._unconfirmed.clear()
            self._pending.clear()
            if self._filters:
                # One SUBSCRIBE for all: fewer subscription changes while amqtt replays retained messages.
                self._subscribe(list(self._filters), waiting)
            hooks = [tap.on_up for tap in self._taps if tap.on_up is not None]
        for hook in hooks:
            hook(self.client)

    def _on_subscribe(self, _c: mqtt.Client, _u: object, mid: int, _codes: object, _p: object) -> None:
        with self._lock:
            taps = self._pending.pop(mid, [])
        for tap in taps:
            tap.ready.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, _r: object, _p: object) -> None:
        with self._lock:
            self._up = False
            for tap in self._taps:
                if tap.routes:
                    tap.ready.clear()
            hooks = [tap.on_down for tap in self._taps if tap.on_down is not None]
        for hook in hooks:
            hook(self.client)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            callbacks = [callback for tap in self._taps for topic, callback in tap.routes
                         if mqtt.topic_matches_sub(topic, message.topic)]
        for callback in callbacks:
            try:
                callback(client, userdata, message)
            except Exception:  # one part's bug must not starve the others sharing the login
                log.exception("handling a message on %s failed", message.topic)


REFUSALS = {134: "login.refused_password", 135: "login.refused_not_authorised"}
"""CONNACK refusals an installer can fix, by reason code (MQTT 3.1.1 return codes 4 and 5)."""


def refusal(address: BrokerAddress, reason: mqtt.ReasonCode) -> Message:
    """Which login the broker refused, and why, in words an installer acts on."""
    return Message(key=REFUSALS.get(reason.value, "login.refused"),
                   params={"broker": address.url, "login": address.username or "-", "reason": str(reason)})


_links: dict[tuple[str, int, str], Link] = {}
_registry_lock = threading.Lock()


def join(address: BrokerAddress, client_id: str, routes: Sequence[Route] = (), *,
         on_up: Hook | None = None, on_down: Hook | None = None, will: tuple[str, bytes] | None = None,
         must: bool = False) -> Tap:
    """Join this process's connection for ``address``'s login (or, anonymous, for ``client_id``).

    The first part to join opens it: with ``must`` it connects at once and raises ``OSError``
    when nothing listens there, otherwise it keeps trying in the background.
    """
    key = (address.host, address.port, address.username or client_id)
    with _registry_lock:
        link = _links.get(key)
        new = link is None
        if link is None:
            link = _links[key] = Link(key, address, client_id, will)
            link.asked = must
        tap = Tap(link, tuple(routes), on_up, on_down)
        link._join(tap, None if new else will)
        if new:
            try:
                if must:
                    link.client.connect(address.host, address.port, keepalive=15)
                else:
                    link.client.connect_async(address.host, address.port, keepalive=15)
            except OSError:
                _links.pop(key, None)
                raise
            link.client.loop_start()
    return tap
