"""A USB keypad pad read as Linux input events (``/dev/input/eventN``), with an optional text display.

The kernel hands a keyboard's presses to readers of its event device as
``struct input_event`` records (``linux/input.h``): a ``timeval`` (two longs),
then ``__u16 type``, ``__u16 code``, ``__s32 value``; 24 bytes on 64-bit Linux.
We read that file directly, so no dependency is needed, and a test can write
the same records into a FIFO.

Keys (docs/ratings.md): digits 1..5 on the top row or the number pad rate
(5 非常满意 … 1 非常不满意); F1 call, F2 recall, F3 skip, F4 pause/resume, F5 complete.
After a bad level the digits pick reasons from the prompt's list (each press
toggles one) and Enter sends; without Enter the rating goes after
:data:`REASON_SECONDS` with the reasons picked so far.

A keypad has no screen of its own; ``display=PATH`` names a text console or a
file (an attached screen's feed) that gets the pad's lines. Unplugging gives an
end of file or ``ENODEV``: :class:`PadUnplugged`, and the bridge opens it again
when it comes back.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import struct
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hallkit.devices.evaluator.pad import KeyPress, PadInput, PadUnplugged, Rated, StaffKey, screen_lines
from hallkit.devices.evaluator.screen import PadDisplay

from hallkit.i18n import Message, text
from hallkit.rating.models import Level

INPUT_EVENT = struct.Struct("llHHi")
EV_KEY = 1
PRESS = 1

REASON_SECONDS = 10.0

DIGITS = {2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6, 8: 7, 9: 8, 10: 9,  # KEY_1 … KEY_9
          79: 1, 80: 2, 81: 3, 75: 4, 76: 5, 77: 6, 71: 7, 72: 8, 73: 9}  # KP1 … KP9
ENTER = {28, 96}  # KEY_ENTER, KEY_KPENTER
STAFF_KEYS = {59: StaffKey.CALL, 60: StaffKey.RECALL, 61: StaffKey.SKIP, 62: StaffKey.PAUSE, 63: StaffKey.DONE}
KEY_NAMES = {**{code: str(d) for code, d in DIGITS.items()}, 28: "Enter", 96: "KPEnter",
             59: "F1", 60: "F2", 61: "F3", 62: "F4", 63: "F5"}


@dataclass(frozen=True, slots=True)
class InputEvent:
    seconds: int
    microseconds: int
    type: int
    code: int
    value: int


def encode_event(event: InputEvent) -> bytes:
    return INPUT_EVENT.pack(event.seconds, event.microseconds, event.type, event.code, event.value)


def key_events(code: int, at: float | None = None) -> bytes:
    """A key press and release, as the kernel writes them (used by the simulator and tests)."""
    now = time.time() if at is None else at
    seconds, micros = int(now), int((now % 1) * 1_000_000)
    return b"".join(encode_event(InputEvent(seconds, micros, EV_KEY, code, value)) for value in (1, 0))


def decode_events(buffer: bytearray) -> list[InputEvent]:
    """Whole records out of ``buffer``; a partial record stays for the next read."""
    count = len(buffer) // INPUT_EVENT.size
    events = [InputEvent(*INPUT_EVENT.unpack_from(buffer, i * INPUT_EVENT.size)) for i in range(count)]
    del buffer[:count * INPUT_EVENT.size]
    return events


def describe_event(event: InputEvent) -> Message | None:
    """A key press in words (``hall pad listen``); other records (sync, repeat, release) are not shown."""
    if event.type != EV_KEY or event.value != PRESS:
        return None
    params: dict[str, str | int | float] = {"button": KEY_NAMES.get(event.code, f"code {event.code}")}
    if event.code in STAFF_KEYS:
        return Message(key=f"pad.input.{STAFF_KEYS[event.code].value}", params=params)
    if event.code in DIGITS:
        return Message(key="pad.input.digit", params=params | {"digit": DIGITS[event.code]})
    return Message(key="pad.input.enter" if event.code in ENTER else "pad.input.unknown", params=params)


class KeypadPad:
    kind = "keypad"

    def __init__(self, path: str, display: str = "") -> None:
        self.path = path
        self.display = Path(display) if display else None
        self.url = f"keypad://{path}" + (f"?display={display}" if display else "")
        self.fd: int | None = None
        self.buffer = bytearray()
        self.pending: deque[InputEvent] = deque()
        self.reasons: list[str] = []
        self.level: Level | None = None  # a bad level waiting for its reasons
        self.picked: list[str] = []
        self.reasons_until = 0.0
        self.lines: list[str] = []

    def open(self) -> None:
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise PadUnplugged(str(exc)) from None
        self.buffer.clear()
        self.pending.clear()
        self.level = None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd = None

    def read(self, timeout: float) -> PadInput | None:
        if self.fd is None:
            raise PadUnplugged("not open")
        if self.pending:
            return self._next()
        if self.level is not None and time.monotonic() >= self.reasons_until:
            return self._send_bad()
        wait = timeout if self.level is None else min(timeout, max(0.0, self.reasons_until - time.monotonic()))
        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return None
        try:
            data = os.read(self.fd, INPUT_EVENT.size * 64)
        except BlockingIOError:
            return None
        except OSError as exc:  # ENODEV: the keypad was pulled out
            raise PadUnplugged(errno.errorcode.get(exc.errno or 0, str(exc))) from None
        if not data:
            raise PadUnplugged("end of file")
        self.buffer += data
        self.pending.extend(decode_events(self.buffer))
        return self._next()

    def _next(self) -> PadInput | None:
        while self.pending:
            found = self._on_event(self.pending.popleft())
            if found is not None:
                return found  # the rest of this read waits for the next call
        return None

    def _on_event(self, event: InputEvent) -> PadInput | None:
        if event.type != EV_KEY or event.value != PRESS:
            return None
        if event.code in STAFF_KEYS:
            self.level = None
            return KeyPress(key=STAFF_KEYS[event.code])
        if self.level is not None:
            if event.code in ENTER:
                return self._send_bad()
            number = DIGITS.get(event.code)
            if number is not None and number <= len(self.reasons):
                reason = self.reasons[number - 1]
                self.picked = [r for r in self.picked if r != reason] if reason in self.picked \
                    else [*self.picked, reason]
                self._write_display()
            return None
        digit = DIGITS.get(event.code)
        if digit is None or digit > 5:
            return None
        level = Level(digit)
        if level.bad and self.reasons:
            self.level, self.picked = level, []
            self.reasons_until = time.monotonic() + REASON_SECONDS
            self._write_display()
            return None
        return Rated(level=level)

    def _send_bad(self) -> Rated:
        assert self.level is not None
        rated = Rated(level=self.level, tags=self.picked)
        self.level, self.picked = None, []
        return rated

    def show(self, screen: PadDisplay, now: datetime) -> None:
        prompt = screen.prompt_at(now)
        self.reasons = list(prompt.reasons) if prompt is not None else []
        self.lines = screen_lines(screen, now)
        self._write_display()

    def _write_display(self) -> None:
        if self.display is None:
            return
        lines = list(self.lines)
        if self.level is not None:
            lines.append(text("pad.screen.reasons", reasons=" ".join(
                f"{i}{'*' if r in self.picked else ''}={r}" for i, r in enumerate(self.reasons, 1))))
        content = "\n".join(lines) + "\n"
        try:
            if self.display.exists() and stat.S_ISCHR(self.display.stat().st_mode):
                with open(self.display, "w", encoding="utf-8") as console:
                    console.write("\x1b[2J\x1b[H" + content)  # clear the console, then the lines
            else:
                temp = self.display.with_name(self.display.name + ".tmp")
                temp.write_text(content, "utf-8")
                temp.replace(self.display)  # readers never see half a screen
        except OSError as exc:
            raise PadUnplugged(f"display {self.display}: {exc}") from None

    def problems(self) -> list[Message]:
        return []
