"""One interface for every rating pad (评价器), whatever its wire.

A :class:`RatingPad` is the device-facing half of a pad: it reads what the
resident and the staff press (:class:`KeyPress`, :class:`Rated`) and shows a
:class:`~devices.evaluator.screen.PadDisplay`. The hub-facing half, the same for every
kind, is :class:`devices.evaluator.bridge.PadBridge`. Kinds, chosen by URL:

- ``serial:///dev/ttyUSB0?address=3&baud=9600``: a button pad with a display on a serial or RS-485
  line, framed protocol of docs/pad-protocol.md (:mod:`devices.evaluator.serial_pad`);
- ``keypad:///dev/input/event5?display=/dev/tty2``: a USB keypad read as Linux input events, with an
  optional text display (:mod:`devices.evaluator.keypad`);
- a network pad (a tablet) runs the bridge itself, with its touch screen as the pad
  (:mod:`devices.evaluator.touch`), and is then an MQTT client of the hub.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import parse_qs, urlparse

from hallkit.devices.evaluator.screen import PadDisplay
from pydantic import BaseModel, ConfigDict

from hallkit.i18n import Lang, Message, text
from hallkit.rating.models import Level


class StaffKey(StrEnum):
    """The staff's keys on a pad (叫号, 重呼, 过号, 暂停/恢复, 办结 → ask for a rating)."""

    CALL = "call"
    RECALL = "recall"
    SKIP = "skip"
    PAUSE = "pause"  # toggles: pause an open window, resume a paused one
    DONE = "done"


class KeyPress(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: StaffKey


class Rated(BaseModel):
    """The resident chose a level (and, for a bad rating, reasons from the prompt's list)."""

    model_config = ConfigDict(frozen=True)

    level: Level
    tags: list[str] = []


PadInput = KeyPress | Rated


class PadUnplugged(Exception):
    """The pad's device file is gone, closed or failing: close it and try to open it again later."""


class RatingPad(Protocol):
    kind: str
    url: str

    def open(self) -> None:
        """Open the device; raises :class:`PadUnplugged` when it is not there."""

    def read(self, timeout: float) -> PadInput | None:
        """The next key press or rating, or None after ``timeout``; raises :class:`PadUnplugged`."""

    def show(self, screen: PadDisplay, now: datetime) -> None:
        """Show the window's staff, ticket and any rating prompt; raises :class:`PadUnplugged`."""

    def problems(self) -> list[Message]:
        """What is wrong now but does not stop the pad (garbage on the line, no answer)."""

    def close(self) -> None: ...


PAD_KINDS = {
    "serial": ("hallkit.devices.evaluator.serial_pad", "SerialPad"),
    "keypad": ("hallkit.devices.evaluator.keypad", "KeypadPad"),
}
"""URL scheme → (module, class), imported when used."""


class PadUrlError(ValueError):
    pass


def open_pad(url: str) -> RatingPad:
    """The pad driver a URL names (not yet opened)."""
    parsed = urlparse(url)
    entry = PAD_KINDS.get(parsed.scheme)
    if entry is None:
        raise PadUrlError(f"pad URL {url!r}: use one of " + ", ".join(f"{k}://PATH" for k in PAD_KINDS))
    if not parsed.path:
        raise PadUrlError(f"pad URL {url!r} names no device path")
    options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    module, name = entry
    pad_class = getattr(importlib.import_module(module), name)
    try:
        pad: RatingPad = pad_class(parsed.path, **options)
    except TypeError as exc:
        raise PadUrlError(f"pad URL {url!r}: {exc}") from None
    return pad


def screen_lines(screen: PadDisplay, now: datetime, lang: Lang = "zh") -> list[str]:
    """The screen as text lines: window and staff; ticket served; the rating prompt and its reasons.

    Every text display of a pad shows these lines, and the simulators read them back, so their
    layout is part of the pad's behaviour: line 1 the ticket (or the window's state), line 2 the prompt.
    """
    staff = screen.staff_name or text("pad.screen.no_staff", lang)
    lines = [text("pad.screen.window", lang, window=screen.window, name=screen.window_name, staff=staff)]
    if not screen.open:
        lines.append(text("pad.screen.closed", lang))
    elif screen.paused:
        lines.append(text("pad.screen.paused", lang))
    elif screen.ticket_number:
        lines.append(text("pad.screen.serving", lang, number=screen.ticket_number,
                          service=screen.service_name or ""))
    else:
        lines.append(text("pad.screen.idle", lang))
    prompt = screen.prompt_at(now)
    if prompt is not None:
        lines.append(text("pad.screen.prompt", lang, number=prompt.ticket_number))
        lines.append(" ".join(text(f"rating.level.{level}", lang) + f"={level}" for level in prompt.levels))
    return lines


def prompt_line(number: str, lang: Lang = "zh") -> str:
    """The line a pad shows while asking about ticket ``number`` (simulated residents look for it)."""
    return text("pad.screen.prompt", lang, number=number)
