"""The serial rating-pad protocol: frames in and out, pure (no I/O, no threads, no clock).

No common serial protocol for rating pads exists, so hallkit defines one
(docs/pad-protocol.md)::

    +------+------+---------+--------+---------+-------------------+--------+--------+
    | 0xAA | 0x55 | address | length | command | payload           | CRC lo | CRC hi |
    +------+------+---------+--------+---------+-------------------+--------+--------+
      preamble      1..247    payload   1 byte    ``length`` bytes    CRC-16/MODBUS over
                              bytes                                  address … payload

The host (the pad bridge) polls one address at a time, as on an RS-485 bus; a
pad speaks only when polled. A pad repeats its key press or rating, under the
same sequence number, until the host acknowledges it. :class:`PadDecoder`
finds frames in any byte stream (the shape of every device decoder,
:mod:`devices.framing`): it skips bytes that cannot start a frame, a length
over :data:`MAX_PAYLOAD`, an unknown command or a bad checksum (and counts
them), and keeps an incomplete frame until the rest arrives or the line goes
quiet (:meth:`PadDecoder.flush`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from hallkit.devices.framing import BufferedDecoder, Scan

from hallkit.i18n import Message

PREAMBLE = b"\xaa\x55"
HEADER = 5  # preamble, address, length, command
MAX_PAYLOAD = 240
MIN_ADDRESS, MAX_ADDRESS = 1, 247
TEXT_ENCODING = "gb18030"  # what Chinese LCD modules take


class PadCommand(IntEnum):
    # host → pad
    POLL = 0x01  # anything to report?
    ACK = 0x02  # payload: the sequence number taken
    SHOW = 0x03  # payload: text lines (GB18030, "\n" between lines); ends any prompt
    ASK = 0x04  # payload: seconds to wait (u16, big-endian) + reasons (GB18030, "\n" between)
    # pad → host
    NOTHING = 0x81  # answer to a poll: nothing pressed
    KEY = 0x82  # payload: sequence, key code
    RATING = 0x83  # payload: sequence, level 1..5, then the 1-based numbers of the chosen reasons


class KeyCode(IntEnum):
    CALL = 0x10
    RECALL = 0x11
    SKIP = 0x12
    PAUSE = 0x13
    DONE = 0x14


@dataclass(frozen=True, slots=True)
class PadFrame:
    address: int
    command: PadCommand
    payload: bytes = b""


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF): what RS-485 devices usually carry."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def encode(frame: PadFrame) -> bytes:
    if not MIN_ADDRESS <= frame.address <= MAX_ADDRESS:
        raise ValueError(f"pad address {frame.address} outside {MIN_ADDRESS}..{MAX_ADDRESS}")
    if len(frame.payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(frame.payload)} bytes; at most {MAX_PAYLOAD}")
    body = bytes((frame.address, len(frame.payload), frame.command)) + frame.payload
    return PREAMBLE + body + struct.pack("<H", crc16(body))


class PadDecoder(BufferedDecoder[PadFrame]):
    """Pad frames out of a byte stream, either end of the line; see :mod:`devices.framing`.

    It skips, one byte at a time and counted, whatever cannot start a frame: bytes
    before a preamble, a length over :data:`MAX_PAYLOAD`, an unknown command, a bad
    address or checksum. A frame still incomplete when the line goes quiet
    (:meth:`flush`, after the polled pad had its time) is a false preamble or a
    corrupted length: it is dropped a byte at a time and the rest looked at again,
    as Modbus RTU does after a silence.
    """

    def scan(self, buffer: bytes, final: bool) -> Scan[PadFrame]:
        frames: list[PadFrame] = []
        pos = 0
        discarded = 0
        while True:
            start = buffer.find(PREAMBLE, pos)
            if start < 0:
                # Keep a last 0xAA: it may be the first half of a preamble.
                keep = 1 if not final and buffer.endswith(PREAMBLE[:1]) and len(buffer) > pos else 0
                return Scan(frames, len(buffer) - keep, discarded + len(buffer) - keep - pos)
            discarded += start - pos
            end = _frame_end(buffer, start)
            if end is None:
                if not final:
                    return Scan(frames, start, discarded)
                end = -1  # it never came whole: not a frame
            if end < 0:
                pos = start + 1
                discarded += 1
                continue
            body = buffer[start + 2 : end - 2]
            frames.append(PadFrame(body[0], PadCommand(body[2]), body[3:]))
            pos = end


def _frame_end(buffer: bytes, start: int) -> int | None:
    """Where the valid frame at ``start`` ends; None while it is incomplete, -1 when it is no frame."""
    if len(buffer) - start < HEADER:
        return None
    length = buffer[start + 3]
    if length > MAX_PAYLOAD or buffer[start + 4] not in PadCommand._value2member_map_:
        return -1
    end = start + HEADER + length + 2
    if len(buffer) < end:
        return None
    body = buffer[start + 2 : start + HEADER + length]
    (crc,) = struct.unpack_from("<H", buffer, start + HEADER + length)
    if crc != crc16(body) or not MIN_ADDRESS <= body[0] <= MAX_ADDRESS:
        return -1
    return end


# ---- frames of each command --------------------------------------------------------------------------


def poll(address: int) -> PadFrame:
    return PadFrame(address, PadCommand.POLL)


def ack(address: int, seq: int) -> PadFrame:
    return PadFrame(address, PadCommand.ACK, bytes((seq,)))


def show(address: int, lines: list[str]) -> PadFrame:
    return PadFrame(address, PadCommand.SHOW, _text("\n".join(lines)))


def ask(address: int, seconds: int, reasons: list[str]) -> PadFrame:
    return PadFrame(address, PadCommand.ASK, struct.pack(">H", max(0, min(seconds, 0xFFFF)))
                    + _text("\n".join(reasons)))


def nothing(address: int) -> PadFrame:
    return PadFrame(address, PadCommand.NOTHING)


def key(address: int, seq: int, code: KeyCode) -> PadFrame:
    return PadFrame(address, PadCommand.KEY, bytes((seq, code)))


def rating(address: int, seq: int, level: int, reasons: list[int]) -> PadFrame:
    return PadFrame(address, PadCommand.RATING, bytes((seq, level, *reasons)))


def _text(value: str) -> bytes:
    """Encoded text cut to fit one frame, never in the middle of a character."""
    data = value.encode(TEXT_ENCODING, "replace")
    while len(data) > MAX_PAYLOAD - 2:
        value = value[:-1]
        data = value.encode(TEXT_ENCODING, "replace")
    return data


def text_of(payload: bytes) -> list[str]:
    return payload.decode(TEXT_ENCODING, "replace").split("\n") if payload else []


def asked(frame: PadFrame) -> tuple[int, list[str]]:
    """Seconds and reasons of an ASK frame."""
    if len(frame.payload) < 2:
        return 0, []
    (seconds,) = struct.unpack_from(">H", frame.payload)
    return seconds, text_of(frame.payload[2:])


# ---- in words, for `hall pad listen` ------------------------------------------------------------------


def describe(frame: PadFrame) -> Message:
    """One frame as a message an installer reads."""
    params: dict[str, str | int | float] = {"address": frame.address}
    payload = frame.payload
    if frame.command is PadCommand.KEY and len(payload) == 2:
        name = KeyCode(payload[1]).name.lower() if payload[1] in KeyCode._value2member_map_ else f"0x{payload[1]:02x}"
        return Message(key="pad.frame.key", params=params | {"seq": payload[0], "button": name})
    if frame.command is PadCommand.RATING and len(payload) >= 2:
        return Message(key="pad.frame.rating", params=params | {
            "seq": payload[0], "level": payload[1], "reasons": ",".join(str(b) for b in payload[2:]) or "-"})
    if frame.command is PadCommand.ACK and payload:
        return Message(key="pad.frame.ack", params=params | {"seq": payload[0]})
    if frame.command is PadCommand.SHOW:
        return Message(key="pad.frame.show", params=params | {"text": " | ".join(text_of(payload))})
    if frame.command is PadCommand.ASK:
        seconds, reasons = asked(frame)
        return Message(key="pad.frame.ask", params=params | {"seconds": seconds, "reasons": "、".join(reasons)})
    return Message(key=f"pad.frame.{frame.command.name.lower()}", params=params)
