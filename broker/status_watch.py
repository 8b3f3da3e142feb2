"""The hub's watch on device statuses: a broker connection of its own, next to the request one.

A device that floods its status (a loose cable, a bug, a hostile device) would otherwise put
thousands of messages in the hub's one connection ahead of the next ticket request, each parsed
by paho in the hub's process. Here statuses arrive on their own connection, under their own
login (read-only, on device statuses: see ``hub_status_login``), are split by the small
QoS 0 reader of :mod:`broker.wire`, a whole socket read at a time, and only each device's newest
status of a read is handed on. The request connection never waits behind them.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from hallkit.broker.flood import FLOOD_LIMIT, MUTE_SECONDS, FloodGate
from hallkit.broker.wire import (
    DISCONNECT,
    PINGREQ,
    SUBACK_FAILURE,
    ConnackCode,
    Packet,
    PacketSplitter,
    PacketType,
    WireError,
    connack_code,
    connack_reason,
    connect,
    read_publish,
    suback_codes,
    subscribe,
    unsubscribe,
)
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
RECONNECT_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
READ_SIZE = 1 << 16


class StatusesRefused(Exception):
    """The broker refused the watcher's login or subscription: no retry will change that."""


class StatusWatch:
    """Keeps a connection to ``address`` subscribed to ``topics`` at QoS 0 and hands
    ``on_statuses`` the newest payload per topic of each read, on its own thread.

    When the broker refuses the login or the subscription, ``on_refused`` is told why once and the
    watch ends (the hub then reads statuses on its request connection, as before it had this).
    """

    def __init__(self, address: BrokerAddress, client_id: str, topics: Sequence[str],
                 on_statuses: Callable[[dict[str, bytes]], None], on_refused: Callable[[str], None],
                 ca_file: str | None = None, keepalive: int = KEEPALIVE) -> None:
        self.address, self.client_id, self.topics = address, client_id, list(topics)
        self.keepalive = keepalive
        self.on_statuses, self.on_refused, self.ca_file = on_statuses, on_refused, ca_file
        self.subscribed = threading.Event()
        self.mutes = 0
        """Times a device was muted for flooding its status, since the start."""
        self._last_muted: dict[str, float] = {}
        """Device → when it was last muted (written by the watch's thread only)."""
        self._gate = FloodGate()
        self._packet_id = 0
        self._last_sent = 0.0
        self._stopping = threading.Event()
        self._socket: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="hub-statuses", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ends the watch (one that never started too)."""
        self._stopping.set()
        sock = self._socket
        if sock is not None:
            try:
                sock.sendall(DISCONNECT)
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread's read
            except OSError:
                pass  # already gone
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self._session()
                return  # only a stop ends a session without an error
            except StatusesRefused as refused:
                self.on_refused(str(refused))
                return
            except (OSError, WireError) as exc:
                if self._stopping.is_set():
                    return
                was_up = self.subscribed.is_set()
                failures = 0 if was_up else failures + 1
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                # Said when the link goes and when it does not come back at first; not every 30 s after.
                level = logging.WARNING if was_up or failures == 1 else logging.DEBUG
                log.log(level, "device statuses: no link to the broker %s (%s); trying again in %.0f s",
                        self.address.url, exc, delay)
            finally:
                self.subscribed.clear()
                self._socket = None
            self._stopping.wait(delay)

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self.address.host, self.address.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.address.tls:
            context = ssl.create_default_context(cafile=self.ca_file)
            sock = context.wrap_socket(sock, server_hostname=self.address.host)
        return sock

    def _session(self) -> None:
        login = self.address.username or self.client_id
        with self._open() as sock:
            self._socket = sock
            if self._stopping.is_set():
                return
            splitter = PacketSplitter()
            sock.sendall(connect(self.client_id, self.keepalive, self.address.username, self.address.password))
            code = connack_code(self._answer(sock, splitter)[0])
            if code != ConnackCode.ACCEPTED:
                raise StatusesRefused(f"the broker refused the login {login!r}: {connack_reason(code)}")
            self._gate = FloodGate()  # a new session hears every device again
            sock.sendall(subscribe(self._next_id(), self.topics))
            suback, *retained = self._answer(sock, splitter)  # retained statuses may share its read
            if SUBACK_FAILURE in suback_codes(suback):
                raise StatusesRefused(f"the broker refused {login!r} the subscription to device statuses")
            self.subscribed.set()
            self._hand_on(sock, retained)
            self._read(sock, splitter)

    @staticmethod
    def _answer(sock: socket.socket, splitter: PacketSplitter) -> list[Packet]:
        """The packets of the first read that completes one (the broker's answer comes first)."""
        while True:
            data = sock.recv(READ_SIZE)
            if not data:
                raise ConnectionError("the broker closed the connection")
            packets = splitter.feed(data)
            if packets:
                return packets

    def _read(self, sock: socket.socket, splitter: PacketSplitter) -> None:
        self._last_sent = last_heard = time.monotonic()
        ping_after = self.keepalive / 2
        while not self._stopping.is_set():
            now = time.monotonic()
            if back := self._gate.due(now):  # muted long enough: the broker sends each one's newest first
                self._send(sock, subscribe(self._next_id(), back))
            if now - last_heard > self.keepalive:
                raise ConnectionError(f"no answer from the broker in {self.keepalive} s")
            if now - self._last_sent >= ping_after:
                self._send(sock, PINGREQ)
            unmute = self._gate.wait(now)
            timeout = max(0.01, self._last_sent + ping_after - now)
            sock.settimeout(timeout if unmute is None else min(timeout, unmute))
            try:
                data = sock.recv(READ_SIZE)
            except TimeoutError:
                continue
            if not data:
                raise ConnectionError("the broker closed the connection")
            last_heard = time.monotonic()
            self._hand_on(sock, splitter.feed(data))

    def _send(self, sock: socket.socket, packet: bytes) -> None:
        sock.sendall(packet)
        self._last_sent = time.monotonic()

    def _hand_on(self, sock: socket.socket, packets: list[Packet]) -> None:
        newest: dict[str, bytes] = {}
        counts: Counter[str] = Counter()
        for packet in packets:
            if packet.kind == PacketType.PUBLISH:
                topic, payload = read_publish(packet)
                newest[topic] = payload
                counts[topic] += 1
        if not newest:
            return
        now = time.monotonic()
        flooding = [topic for topic, count in counts.items() if self._gate.heard(topic, count, now)]
        if flooding:
            self._send(sock, unsubscribe(self._next_id(), flooding))
            self.mutes += len(flooding)
            for topic in flooding:
                self._last_muted[Topics.device_of(topic)] = now
                log.warning("device statuses: %s sends more than %d a second; the broker holds them back "
                            "and the hub reads only its newest every %.0f s until it calms down",
                            topic, FLOOD_LIMIT, MUTE_SECONDS)
        self.on_statuses(newest)

    def flooding(self, now: float) -> list[str]:
        """The devices muted for flooding their status within the last ``FLOODING_FOR`` seconds."""
        return sorted(device for device, when in list(self._last_muted.items()) if now - when < FLOODING_FOR)

    def _next_id(self) -> int:
        self._packet_id = self._packet_id % 65535 + 1
        return self._packet_id
