"""MQTT 3.1.1 packets, as bytes, for the hub's own connections (:mod:`broker.connection`).

What a client at QoS 0 and 1 needs: CONNECT (with a Will, a kept session), PUBLISH, PUBACK,
SUBSCRIBE, UNSUBSCRIBE, PINGREQ and DISCONNECT out; CONNACK, PUBLISH, PUBACK, SUBACK, UNSUBACK
and PINGRESP in. Pure logic: :class:`PacketSplitter` takes bytes as they come off a socket, in
any pieces, and hands back whole packets; nothing here touches a socket.

Why not paho: paho reads a packet's header a byte at a time (three system calls or more per
packet), builds a message object and a ``threading.Condition`` per publish, and wakes its
network thread with a byte through a socket pair for every one; that was a third of the hub's CPU
per ticket. Splitting a whole read's worth of packets here costs a few µs each.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import IntEnum
from typing import NamedTuple

PROTOCOL_LEVEL = 4  # MQTT 3.1.1
MAX_REMAINING_LENGTH = 268_435_455
"""The largest remaining length four bytes can say (MQTT 3.1.1 §2.2.3)."""


class PacketType(IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14


class ConnackCode(IntEnum):
    """CONNACK return codes (§3.2.2.3), the reasons a broker refuses a login."""

    ACCEPTED = 0
    BAD_PROTOCOL = 1
    IDENTIFIER_REJECTED = 2
    SERVER_UNAVAILABLE = 3
    BAD_USERNAME_OR_PASSWORD = 4
    NOT_AUTHORISED = 5


SUBACK_FAILURE = 0x80
ID_SIZE = 2
"""Bytes of a packet id, and of the length before a string."""
FIXED_HEADER_MIN = 2
"""A packet's type byte and at least one byte of its length."""
CONNACK_SIZE = 2


class WireError(ValueError):
    """Bytes that are not MQTT 3.1.1 from a broker: the connection is to be dropped."""


class Packet(NamedTuple):
    kind: PacketType | int
    flags: int
    body: bytes
    oversized: int = 0
    """The packet's length when it was over the splitter's limit: ``body`` then holds only a
    PUBLISH's topic and packet id (empty for other kinds), the rest was dropped unread."""


class Publish(NamedTuple):
    topic: str
    payload: bytes
    packet_id: int | None = None
    """Set at QoS 1: the id the PUBACK names."""


def remaining_length(n: int) -> bytes:
    if not 0 <= n <= MAX_REMAINING_LENGTH:
        raise WireError(f"a packet of {n} bytes cannot be framed")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(data)) + data


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + remaining_length(len(body)) + body


def connect(client_id: str, keepalive: int, username: str | None = None, password: str | None = None, *,
            clean_session: bool = True, will: tuple[str, bytes] | None = None) -> bytes:
    """CONNECT; a Will is sent at QoS 1, retained (a status that says the client is gone)."""
    # A password only with a user name (MQTT-3.1.2-22).
    flags = ((0x02 if clean_session else 0) | (0x80 if username is not None else 0)
             | (0x40 if password is not None and username is not None else 0)
             | (0x04 | 0x08 | 0x20 if will is not None else 0))
    body = _string("MQTT") + bytes((PROTOCOL_LEVEL, flags)) + struct.pack("!H", keepalive) + _string(client_id)
    if will is not None:
        body += _string(will[0]) + _string(will[1])
    if username is not None:
        body += _string(username)
        if password is not None:
            body += _string(password)
    return _packet(PacketType.CONNECT << 4, body)


def subscribe(packet_id: int, topic_filters: Sequence[tuple[str, int]]) -> bytes:
    """SUBSCRIBE to each (filter, maximum QoS)."""
    filters = b"".join(_string(f) + bytes((qos,)) for f, qos in topic_filters)
    return _packet(PacketType.SUBSCRIBE << 4 | 0x02, struct.pack("!H", packet_id) + filters)


def unsubscribe(packet_id: int, topic_filters: Sequence[str]) -> bytes:
    return _packet(PacketType.UNSUBSCRIBE << 4 | 0x02,
                   struct.pack("!H", packet_id) + b"".join(_string(f) for f in topic_filters))


def publish(topic: str, payload: bytes, packet_id: int | None = None, *, retain: bool = False) -> bytes:
    """PUBLISH at QoS 1 when given a packet id, else QoS 0."""
    flags = (0x02 if packet_id is not None else 0) | (0x01 if retain else 0)
    ident = struct.pack("!H", packet_id) if packet_id is not None else b""
    return _packet(PacketType.PUBLISH << 4 | flags, _string(topic) + ident + payload)


def puback(packet_id: int) -> bytes:
    return struct.pack("!BBH", PacketType.PUBACK << 4, ID_SIZE, packet_id)


def redelivery(packet: bytes) -> bytes:
    """A PUBLISH sent again after a reconnect: the same bytes with the DUP flag (§3.3.1.1)."""
    return bytes((packet[0] | 0x08,)) + packet[1:]


PINGREQ = bytes((PacketType.PINGREQ << 4, 0))
DISCONNECT = bytes((PacketType.DISCONNECT << 4, 0))


def connack_code(packet: Packet) -> int:
    if packet.kind != PacketType.CONNACK or len(packet.body) != CONNACK_SIZE:
        raise WireError(f"expected CONNACK, got packet type {packet.kind}")
    return packet.body[1]


def packet_id(packet: Packet) -> int:
    """The id a PUBACK, SUBACK or UNSUBACK answers."""
    if len(packet.body) < ID_SIZE:
        raise WireError(f"packet type {packet.kind} too short for its id")
    return int.from_bytes(packet.body[:ID_SIZE], "big")


def connack_reason(code: int) -> str:
    try:
        return ConnackCode(code).name.lower().replace("_", " ")
    except ValueError:
        return f"code {code}"


def suback_codes(packet: Packet) -> bytes:
    """The granted QoS per filter (0x80: refused), after the packet id."""
    if packet.kind != PacketType.SUBACK or len(packet.body) <= ID_SIZE:
        raise WireError(f"expected SUBACK, got packet type {packet.kind}")
    return packet.body[ID_SIZE:]


def read_publish(packet: Packet) -> Publish:
    body = packet.body
    if len(body) < ID_SIZE:
        raise WireError("PUBLISH too short for its topic")
    (size,) = struct.unpack_from("!H", body)
    start = ID_SIZE + size
    qos = (packet.flags >> 1) & 0x03
    if qos > 1:
        raise WireError(f"PUBLISH at QoS {qos}: this client subscribes at QoS 1 at most")
    ident = None
    if qos:
        if start + ID_SIZE > len(body):
            raise WireError("PUBLISH too short for its packet id")
        ident = int.from_bytes(body[start:start + ID_SIZE], "big")
        start += ID_SIZE
    if start > len(body):
        raise WireError("PUBLISH too short for its topic")
    try:
        topic = body[ID_SIZE:ID_SIZE + size].decode()
    except UnicodeDecodeError:
        raise WireError("PUBLISH topic is not UTF-8") from None
    return Publish(topic, body[start:], ident)


class PacketSplitter:
    """Whole packets out of a byte stream fed in arbitrary pieces.

    A packet over ``max_packet`` bytes is not buffered: it comes out marked ``oversized`` with
    only what names it (a PUBLISH's topic and packet id, so that it can be acknowledged and the
    broker does not send it again at every reconnect), and its remaining bytes are dropped.
    """

    def __init__(self, max_packet: int = 1 << 20) -> None:
        self.max_packet = max_packet
        self._buffer = bytearray()
        self._skip = 0
        """Bytes of an oversized packet still to drop as they come."""

    def feed(self, data: bytes) -> list[Packet]:
        buffer = self._buffer
        buffer += data
        packets: list[Packet] = []
        at, end = min(self._skip, len(buffer)), len(buffer)
        self._skip -= at
        while end - at >= FIXED_HEADER_MIN:
            framed = _length_at(buffer, at + 1, end)
            if framed is None:
                break  # the length itself is cut short
            length, start = framed
            first = buffer[at]
            if length > self.max_packet:
                head = _publish_head(buffer, first, start, end)
                if head is None:
                    break  # its topic and packet id are still to come
                packets.append(Packet(first >> 4, first & 0x0F, head, oversized=length))
                at = min(start + length, end)
                self._skip = start + length - at
                continue
            if start + length > end:
                break
            packets.append(Packet(first >> 4, first & 0x0F, bytes(buffer[start:start + length])))
            at = start + length
        del buffer[:at]
        return packets


def _publish_head(buffer: bytearray, first: int, start: int, end: int) -> bytes | None:
    """A PUBLISH's topic and packet id, from the body that starts at ``start`` (empty for other
    kinds); None while those bytes have not all come."""
    if first >> 4 != PacketType.PUBLISH:
        return b""
    if end - start < ID_SIZE:
        return None
    size = ID_SIZE + int.from_bytes(buffer[start:start + ID_SIZE], "big") + (ID_SIZE if first & 0x06 else 0)
    return bytes(buffer[start:start + size]) if end - start >= size else None


def _length_at(buffer: bytearray, cursor: int, end: int) -> tuple[int, int] | None:
    """The remaining length that starts at ``cursor`` and where the packet's body starts; None
    when the bytes so far end inside it."""
    length = 0
    for shift in (0, 7, 14, 21):
        if cursor >= end:
            return None
        digit = buffer[cursor]
        cursor += 1
        length |= (digit & 0x7F) << shift
        if not digit & 0x80:
            return length, cursor
    raise WireError("remaining length longer than four bytes")
