"""Frames of the ID card reader's SAM serial protocol (GA/T 467): bytes in, frames out, and back.

Every frame, in either direction, has the same envelope::

    +----------------+---------+---------+---------------------------+-----+
    | AA AA AA 96 69 | Len1    | Len2    | payload                   | CHK |
    | preamble (5)   | length, big-endian  | Len1·256+Len2 − 1 bytes   | (1) |
    +----------------+---------+---------+---------------------------+-----+
                     |<-------- CHK = XOR of these bytes -------->|

    command payload:  CMD · Para · Data…          (host → reader)
    reply payload:    SW1 · SW2 · SW3 · Data…     (reader → host)

The length counts the payload and the checksum byte. SW1 SW2 pass the card's
APDU status through; SW3 is the reader module's own status (see
:class:`Status`).

The codec is pure: no I/O, threads or clock. :class:`IdCardDecoder` finds the
frames in a byte stream fed to it read by read (the shape of every device
decoder, :mod:`devices.framing`). It resynchronises on the next preamble after
noise, a bad length, a bad checksum, or a frame cut short by a lost read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from hallkit.devices.framing import BufferedDecoder, Scan

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
HEADER_SIZE = len(PREAMBLE) + 2
MIN_LENGTH = 3
"""The smallest length field: a command's CMD and Para plus the checksum."""
MAX_LENGTH = 0x1000
"""Larger than any reply (base text, photo and two fingerprints make 0x0A0A); a larger field is noise."""


class Cmd(IntEnum):
    """(CMD, Para) pairs, packed as CMD·256 + Para."""

    RESET_SAM = 0x10FF
    SAM_STATUS = 0x11FF
    READ_SAM_ID = 0x12FF
    FIND_CARD = 0x2001
    SELECT_CARD = 0x2002
    READ_BASE = 0x3001
    READ_APPENDED_ADDRESS = 0x3003
    READ_BASE_AND_FINGERPRINT = 0x3010


class Status(IntEnum):
    """SW3, the reader module's status byte."""

    OK = 0x90
    CARD_FOUND = 0x9F
    HOST_CHECKSUM_ERROR = 0x10
    HOST_LENGTH_ERROR = 0x11
    BAD_COMMAND = 0x21
    UNAUTHORISED = 0x23
    UNRECOGNISED = 0x24
    CARD_REJECTED_READER = 0x31
    READER_REJECTED_CARD = 0x32
    VERIFICATION_ERROR = 0x33
    WRONG_CARD_TYPE = 0x40
    READ_FAILED = 0x41
    RANDOM_FAILED = 0x47
    SELF_TEST_FAILED = 0x60
    NOT_AUTHORISED = 0x66
    NO_CARD = 0x80
    SELECT_FAILED = 0x81
    NOT_ON_CARD = 0x91


@dataclass(frozen=True, slots=True)
class Command:
    """A host-to-reader frame's payload."""

    cmd: int
    para: int
    data: bytes = b""

    @classmethod
    def of(cls, which: Cmd, data: bytes = b"") -> Command:
        return cls(which >> 8, which & 0xFF, data)

    @classmethod
    def parse(cls, payload: bytes) -> Command | None:
        """The command in ``payload``, or None when it is too short to be one."""
        if len(payload) < 2:
            return None
        return cls(payload[0], payload[1], bytes(payload[2:]))

    @property
    def code(self) -> int:
        """CMD·256 + Para, comparable with :class:`Cmd`."""
        return self.cmd << 8 | self.para

    def payload(self) -> bytes:
        return bytes((self.cmd, self.para)) + self.data


@dataclass(frozen=True, slots=True)
class Reply:
    """A reader-to-host frame's payload."""

    sw1: int
    sw2: int
    sw3: int
    data: bytes = b""

    @classmethod
    def of(cls, status: Status | int, data: bytes = b"") -> Reply:
        return cls(0, 0, int(status), data)

    @classmethod
    def parse(cls, payload: bytes) -> Reply | None:
        """The reply in ``payload``, or None when it is too short to be one."""
        if len(payload) < 3:
            return None
        return cls(payload[0], payload[1], payload[2], bytes(payload[3:]))

    def payload(self) -> bytes:
        return bytes((self.sw1, self.sw2, self.sw3)) + self.data


def checksum(data: bytes) -> int:
    """XOR of ``data``: the length bytes and payload of a frame.

    Folds the bytes as one big integer, halving it each round, because a
    byte-by-byte loop in Python would dominate the codec's time on 1295-byte reads.
    """
    size = len(data)
    value = int.from_bytes(data, "little")
    while size > 1:
        half = (size + 1) // 2
        value = (value >> (half * 8)) ^ (value & ((1 << (half * 8)) - 1))
        size = half
    return value


def encode_payload(payload: bytes) -> bytes:
    """One frame around ``payload``."""
    if len(payload) + 1 > MAX_LENGTH:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame (max {MAX_LENGTH - 1})")
    body = (len(payload) + 1).to_bytes(2, "big") + payload
    return PREAMBLE + body + bytes((checksum(body),))


def encode(message: Command | Reply) -> bytes:
    """The bytes on the wire for a command or a reply."""
    return encode_payload(message.payload())


class _At(IntEnum):
    VALID = 0
    INCOMPLETE = 1
    BROKEN = 2


def _frame_at(buffer: bytes, start: int) -> tuple[_At, int]:
    """Whether a valid frame starts at ``start`` (a preamble), and where it ends."""
    if len(buffer) - start < HEADER_SIZE:
        return _At.INCOMPLETE, 0
    length = buffer[start + 5] << 8 | buffer[start + 6]
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        return _At.BROKEN, 0
    end = start + HEADER_SIZE + length
    if end > len(buffer):
        return _At.INCOMPLETE, end
    if checksum(buffer[start + 5 : end - 1]) != buffer[end - 1]:
        return _At.BROKEN, end
    return _At.VALID, end


def _valid_frame_within(buffer: bytes, start: int, stop: int) -> int:
    """Where the first complete, valid frame starting in (start, stop) begins, or -1.

    A frame whose length runs over another complete, valid frame is almost
    always the head of a frame cut short (a lost read) followed by a good one:
    a real frame would need a whole valid frame hidden in its data.
    """
    limit = stop + len(PREAMBLE) - 1  # a preamble that starts inside may end past the span
    inner = buffer.find(PREAMBLE, start + 1, limit)
    while inner >= 0:
        if _frame_at(buffer, inner)[0] is _At.VALID:
            return inner
        inner = buffer.find(PREAMBLE, inner + 1, limit)
    return -1


def _kept_tail(buffer: bytes, pos: int) -> int:
    """Where a trailing partial preamble starts (kept for the next read), else the end."""
    for size in range(min(len(PREAMBLE) - 1, len(buffer) - pos), 0, -1):
        if buffer.endswith(PREAMBLE[:size]):
            return len(buffer) - size
    return len(buffer)


class IdCardDecoder(BufferedDecoder[bytes]):
    """Frame payloads out of the reader's byte stream, either direction; see :mod:`devices.framing`.

    It resynchronises on the next preamble after noise, a bad length, a bad
    checksum, or a frame cut short by a lost read, and counts what it skipped.
    :meth:`flush` (the reply's time ran out) gives up a frame still waiting for
    its rest, looking for a whole frame behind its start first.
    """

    def scan(self, buffer: bytes, final: bool) -> Scan[bytes]:
        payloads: list[bytes] = []
        pos = 0
        discarded = 0
        while True:
            start = buffer.find(PREAMBLE, pos)
            if start < 0:
                tail = len(buffer) if final else _kept_tail(buffer, pos)
                return Scan(payloads, tail, discarded + tail - pos)
            discarded += start - pos
            state, end = _frame_at(buffer, start)
            if state is _At.BROKEN:
                pos = start + 1
                discarded += 1
                continue
            inner = _valid_frame_within(buffer, start, end if state is _At.VALID else len(buffer))
            if inner >= 0:
                discarded += inner - start
                pos = inner
                continue
            if state is _At.INCOMPLETE:
                if not final:
                    return Scan(payloads, start, discarded)
                pos = start + 1  # never completed: look behind its first byte
                discarded += 1
                continue
            payloads.append(bytes(buffer[start + HEADER_SIZE : end - 1]))
            pos = end
