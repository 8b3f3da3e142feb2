"""One MQTT 3.1.1 connection at QoS 0 and 1, spoken with :mod:`broker.wire`: the hub's own links.

The hub's request connection and its status watch use this instead of paho (why: see
:mod:`broker.wire`). One thread reads: a whole socket read is split into packets at once and its
PUBLISHes handed on together. Any thread writes, straight to the socket under a lock, so a reply
leaves from the thread that made it; :meth:`Connection.corked` gathers what a burst of requests
sends (replies, notices, acknowledgements) into one write.

QoS 1 both ways, as the hub needs it to lose nothing: a PUBLISH is kept until the broker's
PUBACK and sent again, marked DUP, on the next connection (also what was published while there
was none, up to a bound); an incoming one is acknowledged only when the receiver says it is done
(:meth:`Connection.ack`), and only on the connection it came on: after a reconnect the broker
sends it again, and the hub answers a repeated request from its log.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import NamedTuple

from hallkit.broker import wire
from hallkit.broker.wire import Packet, PacketSplitter, PacketType, WireError
from hallkit.contracts.mqtt import BrokerAddress

from hallkit.i18n import Message

log = logging.getLogger("hallkit.mqtt")

RECONNECT_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds before each next try while the broker stays away (the last one repeats)."""
READ_SIZE = 1 << 16
SOCKET_TIMEOUT = 10.0
"""Seconds a CONNECT waits for its answer, and a write for room in a broker that stopped reading."""
MAX_UNACKED = 10_000
"""QoS 1 messages kept for the broker at most: past it the oldest goes (the SQLite log is the
hub's durability, not this; it bounds the memory a long outage can take)."""
MAX_PACKET = 1 << 20
"""Bytes of a packet at most: a larger one (a device's absurd request) is acknowledged and dropped."""
CONFIRM_WAIT = 2.0
REFUSALS: dict[int, str] = {wire.ConnackCode.BAD_USERNAME_OR_PASSWORD: "login.refused_password",
            wire.ConnackCode.NOT_AUTHORISED: "login.refused_not_authorised"}
"""CONNACK refusals an installer can fix (the same words as :func:`broker.link.refusal`)."""


class Incoming(NamedTuple):
    topic: str
    payload: bytes
    packet_id: int | None
    """Set at QoS 1: hand the message back to :meth:`Connection.ack` once it is handled."""
    link: int
    """Which connection it came on (an acknowledgement is only good on that one)."""


class LoginRefused(Exception):
    """The broker answered CONNECT with a refusal (the message says which login, and why)."""


def _delay(failures: int) -> float:
    return RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]


def open_socket(address: BrokerAddress, ca_file: str | None = None) -> socket.socket:
    sock = socket.create_connection((address.host, address.port), timeout=SOCKET_TIMEOUT)
    # Nagle would hold a reply back for the broker's delayed ACK of the last one (about 40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if address.tls:
        context = ssl.create_default_context(cafile=ca_file)
        sock = context.wrap_socket(sock, server_hostname=address.host)
    return sock


class Connection:
    """Keeps one connection to ``address`` up, in a thread of its own, until :meth:`stop`.

    Callbacks run on that thread: ``on_publishes`` with each read's messages in order,
    ``on_up()`` once a CONNECT is accepted (subscribe there),
    ``on_subscribed(packet_id, granted)`` per SUBACK, ``on_down()`` when a link is lost,
    ``on_refused(reason)`` when the broker refuses the login (return False to give up), and
    ``tick(now)`` every turn of the read loop (it returns the seconds until it wants the next).
    """

    def __init__(self, address: BrokerAddress, client_id: str,
                 on_publishes: Callable[[list[Incoming]], None], *,
                 clean_session: bool = True, will: tuple[str, bytes] | None = None, keepalive: int = 15,
                 on_up: Callable[[], None] | None = None,
                 on_subscribed: Callable[[int, bytes], None] | None = None,
                 on_down: Callable[[], None] | None = None,
                 on_refused: Callable[[str], bool] | None = None,
                 tick: Callable[[float], float | None] | None = None,
                 ca_file: str | None = None, name: str = "mqtt", max_unacked: int = MAX_UNACKED,
                 max_packet: int = MAX_PACKET, logger: logging.Logger = log) -> None:
        self.address, self.client_id, self.name, self.log = address, address.username or client_id, name, logger
        self.clean_session, self.will, self.keepalive, self.ca_file = clean_session, will, keepalive, ca_file
        self.on_publishes, self.on_up, self.on_subscribed = on_publishes, on_up, on_subscribed
        self.on_down, self.on_refused, self.tick = on_down, on_refused, tick
        self.max_unacked, self.max_packet = max_unacked, max_packet
        self.connected = threading.Event()
        self.drops = 0
        """Links lost since the start (a refused CONNECT is not one)."""
        self.dropped = 0
        """QoS 1 messages given up past ``max_unacked`` during an outage."""
        self._lock = threading.RLock()
        self._acked = threading.Condition(self._lock)
        self._waiting_for_acks = 0
        self._sock: socket.socket | None = None
        """The link, once the broker accepted it; None before and after."""
        self._opening: socket.socket | None = None
        self._link = 0
        self._unacked: dict[int, tuple[bytes, bool]] = {}
        """Packet id → the PUBLISH and whether it went out on some connection; in publishing order."""
        self._next = 0
        self._corked = 0
        self._out: list[bytes] = []
        self._last_sent = 0.0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # ---- what the owner calls (any thread) --------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Close the connection for good. A clean disconnect does not fire the Will: an owner whose
        Will is its status says it first (:meth:`publish_confirmed`)."""
        self._stopping.set()
        with self._lock:
            if self._sock is not None:
                self._send(wire.DISCONNECT)
            self._drop_socket()
        if (opening := self._opening) is not None:
            with suppress(OSError):  # connected and closed above, or already gone
                opening.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def is_connected(self) -> bool:
        return self.connected.is_set()

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> int | None:
        """Send (or, with no link, keep for the next one at QoS 1); the packet id at QoS 1."""
        data = payload.encode() if isinstance(payload, str) else payload
        with self._lock:
            if not qos:
                self._write(wire.publish(topic, data, retain=retain))
                return None
            ident = self._next_id()
            packet = wire.publish(topic, data, ident, retain=retain)
            self._unacked[ident] = (packet, self._write(packet))
            if len(self._unacked) > self.max_unacked:
                del self._unacked[next(iter(self._unacked))]
                self.dropped += 1
                if self.dropped == 1 or not self.dropped % 1000:
                    self.log.warning("%s: %d messages waiting for the broker %s; the oldest are given up "
                                "(%d so far)", self.name, self.max_unacked, self.address.url, self.dropped)
            return ident

    def publish_confirmed(self, topic: str, payload: str | bytes, *, retain: bool = False,
                          timeout: float = CONFIRM_WAIT) -> bool:
        """Publish at QoS 1 and wait until the broker took it; False on no link or no answer in time."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._sock is None:
                return False
            ident = self.publish(topic, payload, retain=retain)
            self._waiting_for_acks += 1
            try:
                while ident in self._unacked and self._sock is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._acked.wait(left)
                return ident not in self._unacked
            finally:
                self._waiting_for_acks -= 1

    def ack(self, message: Incoming) -> None:
        """Acknowledge a QoS 1 message once handled; on a newer link than its own there is nothing to
        acknowledge (the broker sends it again, and the repeat is handled as one)."""
        if message.packet_id is None:
            return
        with self._lock:
            if message.link == self._link:
                self._write(wire.puback(message.packet_id))

    def subscribe(self, filters: Sequence[tuple[str, int]]) -> int | None:
        """SUBSCRIBE; its packet id (``on_subscribed`` gets it back), or None with no link."""
        with self._lock:
            if self._sock is None:
                return None
            ident = self._next_id()
            self._write(wire.subscribe(ident, filters))
            return ident

    def unsubscribe(self, filters: Sequence[str]) -> None:
        with self._lock:
            if self._sock is not None:
                self._write(wire.unsubscribe(self._next_id(), filters))

    @contextmanager
    def corked(self) -> Iterator[None]:
        """Gather everything sent inside into one write at the end (one system call, one TCP segment)."""
        with self._lock:
            self._corked += 1
        try:
            yield
        finally:
            with self._lock:
                self._corked -= 1
                if not self._corked and self._out:
                    data = b"".join(self._out)
                    self._out.clear()
                    self._send(data)

    # ---- writing (under the lock) -----------------------------------------------------------

    def _write(self, packet: bytes) -> bool:
        """Send now, or at the end of the cork; False with no link."""
        if self._sock is None:
            return False
        if self._corked:
            self._out.append(packet)
        else:
            self._send(packet)
        return True

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.sendall(data)
            self._last_sent = time.monotonic()
        except OSError as exc:
            # The reading thread sees the link end and connects again; what was unacknowledged goes again.
            self.log.debug("%s: writing to the broker failed: %s", self.name, exc)
            self._drop_socket()

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        self._out.clear()
        if sock is not None:
            with suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread
        self._acked.notify_all()

    def _next_id(self) -> int:
        ident = self._next
        while True:
            ident = ident % 65535 + 1
            if ident not in self._unacked:
                self._next = ident
                return ident

    # ---- the reading thread -----------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self._session()
            except LoginRefused as refused:
                if self.on_refused is None:
                    self.log.error("%s: %s", self.name, refused)
                elif not self.on_refused(str(refused)):
                    return
                failures += 1
            except (OSError, WireError) as exc:
                if self._stopping.is_set():
                    return
                was_up = self.connected.is_set()
                failures = 0 if was_up else failures + 1
                # Said when the link goes and when it does not come back at first; not every 30 s after.
                level = logging.WARNING if was_up or failures == 1 else logging.DEBUG
                self.log.log(level, "%s: no link to the broker %s (%s); trying again in %.0f s",
                        self.name, self.address.url, exc, _delay(failures))
            except Exception:  # a handler's bug: the thread must go on, or the owner goes deaf for good
                if self._stopping.is_set():
                    return
                failures = 0
                self.log.exception("%s: handling what the broker sent failed; connecting again (what was not "
                                   "acknowledged comes again)", self.name)
            finally:
                self._down()
            self._stopping.wait(_delay(failures))

    def _down(self) -> None:
        with self._lock:
            self._drop_socket()
        if self.connected.is_set():
            self.connected.clear()
            self.drops += 1
            if self.on_down is not None and not self._stopping.is_set():
                self.on_down()

    def _session(self) -> None:
        sock = open_socket(self.address, self.ca_file)
        with sock:
            self._opening = sock  # for stop() to end a CONNECT the broker does not answer
            if self._stopping.is_set():
                return
            splitter = PacketSplitter(self.max_packet)
            sock.sendall(wire.connect(self.client_id, self.keepalive, self.address.username, self.address.password,
                                      clean_session=self.clean_session, will=self.will))
            connack, *early = self._first_answer(sock, splitter)
            code = wire.connack_code(connack)
            if code != wire.ConnackCode.ACCEPTED:
                message = Message(key=REFUSALS.get(code, "login.refused"), params={
                    "broker": self.address.url, "login": self.address.username or "-",
                    "reason": wire.connack_reason(code)})
                raise LoginRefused(message.bilingual())
            with self._lock:
                self._sock, self._link = sock, self._link + 1
                # What the last connection left unacknowledged, and what was published with none, in order.
                again = [wire.redelivery(p) if sent else p for p, sent in self._unacked.values()]
                self._unacked = {i: (p, True) for i, (p, _) in self._unacked.items()}
                self._last_sent = time.monotonic()
                if again:
                    self._send(b"".join(again))
            self.connected.set()
            if self.on_up is not None:
                self.on_up()
            self._dispatch(early)
            self._read(sock, splitter)

    @staticmethod
    def _first_answer(sock: socket.socket, splitter: PacketSplitter) -> list[Packet]:
        while True:
            data = sock.recv(READ_SIZE)
            if not data:
                raise ConnectionError("the broker closed the connection")
            if packets := splitter.feed(data):
                return packets

    def _read(self, sock: socket.socket, splitter: PacketSplitter) -> None:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        last_heard = time.monotonic()
        ping_after = self.keepalive / 2
        tls = sock if isinstance(sock, ssl.SSLSocket) else None
        while not self._stopping.is_set():
            now = time.monotonic()
            with self._lock:
                if now - self._last_sent >= ping_after:
                    self._send(wire.PINGREQ)
                wait = max(0.01, self._last_sent + ping_after - now)
            if self.tick is not None and (due := self.tick(now)) is not None:
                wait = min(wait, max(0.01, due))
            # What TLS has already decrypted, poll cannot see.
            if not (tls is not None and tls.pending()) and not poller.poll(wait * 1000):
                # Judged only when nothing is there to read: a long burst handled between two reads
                # is not the broker's silence.
                if time.monotonic() - last_heard > self.keepalive:
                    raise ConnectionError(f"no answer from the broker in {self.keepalive} s")
                continue
            if tls is not None:  # one SSL object is not to be read and written at once from two threads
                with self._lock:
                    data = sock.recv(READ_SIZE)
            else:
                data = sock.recv(READ_SIZE)
            if not data:
                raise ConnectionError("the broker closed the connection")
            last_heard = time.monotonic()
            self._dispatch(splitter.feed(data))

    def _dispatch(self, packets: list[Packet]) -> None:
        incoming: list[Incoming] = []
        link = self._link
        for packet in packets:
            kind = packet.kind
            if kind == PacketType.PUBLISH:
                topic, payload, ident = wire.read_publish(packet)
                if packet.oversized:
                    # Acknowledged, so that the broker does not send it again at every connection.
                    self.log.warning("%s: a message of %d bytes on %s is over the %d-byte limit: dropped",
                                     self.name, packet.oversized, topic, self.max_packet)
                    if ident is not None:
                        with self._lock:
                            self._send(wire.puback(ident))
                    continue
                incoming.append(Incoming(topic, payload, ident, link))
            elif kind == PacketType.PUBACK:
                with self._lock:
                    self._unacked.pop(wire.packet_id(packet), None)
                    if self._waiting_for_acks:
                        self._acked.notify_all()
            elif kind == PacketType.SUBACK:
                if self.on_subscribed is not None:
                    self.on_subscribed(wire.packet_id(packet), wire.suback_codes(packet))
            elif kind not in (PacketType.UNSUBACK, PacketType.PINGRESP):
                raise WireError(f"packet type {kind} is not one a broker sends a client")
        if incoming:
            self.on_publishes(incoming)
