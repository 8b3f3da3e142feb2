"""A button pad with a text display on a serial or RS-485 line (docs/pad-protocol.md), host end.

Each :meth:`SerialPad.read` is one poll of the pad's address: send POLL, wait
for the answer, acknowledge a key press or rating. A pad that does not answer
three polls in a row is reported (``pad.no_answer``) and polled on; bytes that
are not frames are reported (``pad.garbage``) until the line has been clean for
:data:`GARBAGE_SECONDS`. A port that fails or disappears (USB-serial unplugged) raises
:class:`PadUnplugged`, and the bridge opens it again when it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from hallkit.devices.evaluator import codec
from hallkit.devices.evaluator.codec import KeyCode, PadCommand, PadDecoder, PadFrame
from hallkit.devices.evaluator.pad import KeyPress, PadInput, PadUnplugged, Rated, StaffKey, screen_lines
from hallkit.devices.evaluator.screen import PadDisplay
from hallkit.devices.transport import LinkSettings, Transport, TransportError, device_url, open_transport

from hallkit.i18n import Message
from hallkit.rating.models import Level

ANSWER_SECONDS = 0.15
"""How long a polled pad has to answer; at 9600 baud the longest frame takes about 0.26 s, but an
answer to a poll is a few bytes."""

MISSES_BEFORE_FAULT = 3
GARBAGE_SECONDS = 5.0
"""Garbage on the line is reported until the line has been clean this long."""

PadFrameListener = Callable[[PadFrame], None]
"""Told about every frame seen on the line (``hall pad listen``)."""

KEYS = {KeyCode.CALL: StaffKey.CALL, KeyCode.RECALL: StaffKey.RECALL, KeyCode.SKIP: StaffKey.SKIP,
        KeyCode.PAUSE: StaffKey.PAUSE, KeyCode.DONE: StaffKey.DONE}


class SerialPad:
    kind = "serial"

    def __init__(self, path: str, address: str = "1", baud: str = "9600") -> None:
        self.path = path
        self.address = int(address)
        if not codec.MIN_ADDRESS <= self.address <= codec.MAX_ADDRESS:
            raise ValueError(f"address {self.address} outside {codec.MIN_ADDRESS}..{codec.MAX_ADDRESS}")
        self.baud = int(baud)
        self.url = f"serial://{path}?address={self.address}&baud={self.baud}"
        self.port: Transport | None = None
        self.decoder = PadDecoder()
        self.misses = 0
        self.garbage_at = -GARBAGE_SECONDS
        self.garbage_seen = 0
        self.last_seq: int | None = None
        self.reasons: list[str] = []
        self.listeners: list[PadFrameListener] = []

    def open(self) -> None:
        try:
            self.port = open_transport(device_url(self.path), LinkSettings(baudrate=self.baud))
        except TransportError as exc:
            raise PadUnplugged(str(exc)) from None
        self.decoder = PadDecoder()
        self.misses = 0

    def close(self) -> None:
        if self.port is not None:
            self.port.close()
        self.port = None

    # ---- polling ------------------------------------------------------------------------------------

    def read(self, timeout: float) -> PadInput | None:
        """One poll; takes about ``timeout`` when nothing was pressed, so the line is not flooded."""
        started = time.monotonic()
        found = self._poll()
        if found is None:
            time.sleep(max(0.0, timeout - (time.monotonic() - started)))
        return found

    def _poll(self) -> PadInput | None:
        frame = self.exchange(codec.poll(self.address))
        if frame is None:
            self.misses += 1
            return None
        self.misses = 0
        if frame.command is PadCommand.NOTHING or len(frame.payload) < 2:
            return None
        seq = frame.payload[0]
        self._send(codec.ack(self.address, seq))
        if seq == self.last_seq:
            return None  # our ACK was lost and the pad sent the same press again
        self.last_seq = seq
        if frame.command is PadCommand.KEY:
            key = KEYS.get(KeyCode(frame.payload[1])) if frame.payload[1] in KeyCode._value2member_map_ else None
            return KeyPress(key=key) if key else None
        if frame.command is PadCommand.RATING and 1 <= frame.payload[1] <= 5:
            tags = [self.reasons[i - 1] for i in frame.payload[2:] if 1 <= i <= len(self.reasons)]
            return Rated(level=Level(frame.payload[1]), tags=tags)
        return None

    def exchange(self, request: PadFrame) -> PadFrame | None:
        """Send ``request`` and wait for the pad's answer (a frame from its address)."""
        self._send(request)
        deadline = time.monotonic() + ANSWER_SECONDS
        while time.monotonic() < deadline:
            data = self.receive()
            discarded = self.decoder.discarded
            frames = self.decoder.feed(data) if data else []
            if self.decoder.discarded != discarded:
                self.garbage_seen += self.decoder.discarded - discarded
                self.garbage_at = time.monotonic()
            for frame in frames:
                for listener in self.listeners:
                    listener(frame)
                if frame.address == self.address and frame.command >= PadCommand.NOTHING:
                    return frame
            if not data:
                time.sleep(0.005)
        for frame in self.decoder.flush():  # the pad had its time: what is pending is not its answer
            for listener in self.listeners:
                listener(frame)
        return None

    def _send(self, frame: PadFrame) -> None:
        if self.port is None:
            raise PadUnplugged("not open")
        try:
            self.port.write(codec.encode(frame))
        except TransportError as exc:
            raise PadUnplugged(str(exc)) from None

    def receive(self) -> bytes:
        if self.port is None:
            raise PadUnplugged("not open")
        try:
            return self.port.read(512, 0)
        except TransportError as exc:
            raise PadUnplugged(str(exc)) from None

    # ---- display -------------------------------------------------------------------------------------

    def show(self, screen: PadDisplay, now: datetime) -> None:
        self._send(codec.show(self.address, screen_lines(screen, now)))
        prompt = screen.prompt_at(now)
        if prompt is not None:
            self.reasons = list(prompt.reasons)
            self._send(codec.ask(self.address, int((prompt.until - now).total_seconds()), self.reasons))

    def problems(self) -> list[Message]:
        problems = []
        if self.misses >= MISSES_BEFORE_FAULT:
            problems.append(Message(key="pad.no_answer", params={"address": self.address, "misses": self.misses}))
        if time.monotonic() - self.garbage_at < GARBAGE_SECONDS:
            problems.append(Message(key="pad.garbage", params={"bytes": self.garbage_seen}))
        return problems

