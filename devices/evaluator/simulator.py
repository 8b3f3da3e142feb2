"""Simulated pad hardware, reachable the way the real thing is: for the demo, the tests and installers.

- :class:`SerialPadSimulator`: the pad end of docs/pad-protocol.md on a pseudo-terminal, under a
  fixed link name (as ``/dev/serial/by-id/…`` links are), answering polls at its RS-485 address
  with the codec the host uses. It can be unplugged (the link and the terminal go away), plugged
  back in (a new terminal under the same name), fall silent, or put garbage on the line.
- :class:`KeypadSimulator`: a USB keypad as a FIFO of Linux input events, with a display file.

Both offer the same :class:`SimulatedHardware` face to a scripted resident and staff member
(:mod:`devices.evaluator.script`): press a staff key, rate, read the display.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from collections import deque
from pathlib import Path
from typing import Protocol

from hallkit.devices.evaluator import codec
from hallkit.devices.evaluator.codec import KeyCode, PadCommand, PadDecoder, PadFrame
from hallkit.devices.evaluator.keypad import DIGITS, ENTER, STAFF_KEYS, key_events
from hallkit.devices.evaluator.pad import KeyPress, Rated, StaffKey
from hallkit.devices.evaluator.touch import TouchPad

from hallkit.rating.models import Level

KEY_CODES = {StaffKey.CALL: KeyCode.CALL, StaffKey.RECALL: KeyCode.RECALL, StaffKey.SKIP: KeyCode.SKIP,
             StaffKey.PAUSE: KeyCode.PAUSE, StaffKey.DONE: KeyCode.DONE}


class SimulatedHardware(Protocol):
    def press(self, key: StaffKey) -> None: ...

    def rate(self, level: Level, tags: list[str]) -> None: ...

    def display(self) -> list[str]: ...


ASK_WAIT_SECONDS = 30.0
"""How long a simulated resident waits for the pad to ask before giving reasons (a ceiling, not a pace)."""


class SerialPadSimulator:
    """A serial button pad at ``address`` behind the link ``link``."""

    def __init__(self, link: Path, address: int = 1) -> None:
        self.link = link
        self.address = address
        self.master: int | None = None
        self.decoder = PadDecoder()
        self.outbox: deque[PadFrame] = deque()  # presses not yet acknowledged, oldest first
        self.seq = 0
        self.lines: list[str] = []
        self.reasons: list[str] = []
        self.silent = False
        self.frames_seen = 0
        self._asked = threading.Event()
        """The driver's ASK (the prompt's reasons) came since the last rating."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"serial://{self.link}?address={self.address}"

    def start(self) -> SerialPadSimulator:
        self.plug()
        self._thread = threading.Thread(target=self._serve, name=f"sim-pad-{self.address}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.unplug()

    def plug(self) -> None:
        """A new terminal under the link name: like a USB-serial adapter plugged back in."""
        master, slave = os.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        os.close(slave)  # the host opens it by name; keeping it open would hide the host's hang-ups
        temp = self.link.with_name(self.link.name + ".new")
        temp.unlink(missing_ok=True)
        temp.symlink_to(name)
        temp.replace(self.link)
        with self._lock:
            self.master = master
            self.decoder = PadDecoder()

    def unplug(self) -> None:
        with self._lock:
            master, self.master = self.master, None
        self.link.unlink(missing_ok=True)
        if master is not None:
            os.close(master)

    def garbage(self, data: bytes) -> None:
        """Bytes that are no frame, as a bad cable or a second talker puts on the line."""
        with self._lock:
            if self.master is not None:
                os.write(self.master, data)

    # ---- the resident and the staff -----------------------------------------------------------------

    def press(self, key: StaffKey) -> None:
        with self._lock:
            self.outbox.append(codec.key(self.address, self._next_seq(), KEY_CODES[key]))

    def rate(self, level: Level, tags: list[str]) -> None:
        # The driver shows the prompt's text, then asks with the reasons in a frame of its own: a
        # resident answering between the two would find no reasons to choose (the reason was lost).
        if tags and not self._asked.wait(ASK_WAIT_SECONDS):
            raise TimeoutError(f"pad {self.address}: no rating prompt with reasons in {ASK_WAIT_SECONDS:.0f} s")
        with self._lock:
            numbers = [self.reasons.index(t) + 1 for t in tags if t in self.reasons]
            self.outbox.append(codec.rating(self.address, self._next_seq(), int(level), numbers))
            self._asked.clear()

    def display(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def _next_seq(self) -> int:
        self.seq = self.seq % 255 + 1
        return self.seq

    # ---- the line -----------------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            master = self.master
            if master is None:
                time.sleep(0.02)
                continue
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                data = os.read(master, 1024) if ready else b""
            except OSError:
                # No host has the terminal open (EIO), or we were unplugged meanwhile.
                time.sleep(0.02)
                continue
            for frame in self.decoder.feed(data):
                self.frames_seen += 1
                if frame.address == self.address:
                    self._answer(master, frame)

    def _answer(self, master: int, frame: PadFrame) -> None:
        with self._lock:
            if frame.command is PadCommand.SHOW:
                self.lines = codec.text_of(frame.payload)
            elif frame.command is PadCommand.ASK:
                _, self.reasons = codec.asked(frame)
                self._asked.set()
            elif frame.command is PadCommand.ACK and self.outbox and frame.payload[:1] == self.outbox[0].payload[:1]:
                self.outbox.popleft()
            if frame.command is not PadCommand.POLL or self.silent:
                return
            answer = self.outbox[0] if self.outbox else codec.nothing(self.address)
        with contextlib.suppress(OSError):  # unplugged while answering
            os.write(master, codec.encode(answer))


class KeypadSimulator:
    """A USB keypad: writes input events into a FIFO at ``path``; its screen is the file ``display_path``."""

    def __init__(self, path: Path, display_path: Path, reasons: list[str]) -> None:
        self.path = path
        self.display_path = display_path
        self.fd: int | None = None
        self.reasons = reasons  # the hall's bad-rating reasons, numbered as the prompt numbers them

    @property
    def url(self) -> str:
        return f"keypad://{self.path}?display={self.display_path}"

    def start(self) -> KeypadSimulator:
        self.plug()
        return self

    def stop(self) -> None:
        self.unplug()

    def plug(self) -> None:
        self.path.unlink(missing_ok=True)
        os.mkfifo(self.path)
        # Read-write so the open does not wait for a reader; the bridge is the only one that reads.
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)

    def unplug(self) -> None:
        """Pulled out: the device file goes and the reader gets an end of file."""
        fd, self.fd = self.fd, None
        self.path.unlink(missing_ok=True)
        if fd is not None:
            os.close(fd)

    def _key(self, code: int) -> None:
        if self.fd is not None:
            os.write(self.fd, key_events(code))

    def press(self, key: StaffKey) -> None:
        self._key(next(code for code, staff in STAFF_KEYS.items() if staff is key))

    def rate(self, level: Level, tags: list[str]) -> None:
        digit_codes = {digit: code for code, digit in DIGITS.items() if code < 11}  # the top row
        self._key(digit_codes[int(level)])
        if level.bad:
            for tag in tags:
                if tag in self.reasons:
                    self._key(digit_codes[self.reasons.index(tag) + 1])
            self._key(min(ENTER))

    def display(self) -> list[str]:
        try:
            return self.display_path.read_text("utf-8").splitlines()
        except FileNotFoundError:
            return []


class TouchHardware:
    """The network pad's screen, touched by a simulated resident (no wire in between)."""

    def __init__(self, screen: TouchPad) -> None:
        self.screen = screen

    def press(self, key: StaffKey) -> None:
        self.screen.touch(KeyPress(key=key))

    def rate(self, level: Level, tags: list[str]) -> None:
        self.screen.touch(Rated(level=level, tags=tags))

    def display(self) -> list[str]:
        with self.screen.changed:
            return list(self.screen.lines)
