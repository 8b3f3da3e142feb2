"""The touch screen of a network pad (a tablet), as a :class:`~devices.evaluator.pad.RatingPad`.

A network pad is an MQTT client of the hub: it runs the pad bridge itself,
with this class between the bridge and its screen. Touches come in through
:meth:`TouchPad.touch` (from the tablet's UI thread, or a simulated resident),
and :meth:`TouchPad.show` keeps the latest screen for the UI to draw.
"""

from __future__ import annotations

import queue
import threading
from datetime import datetime
from enum import StrEnum

from hallkit.devices.evaluator.pad import PadInput, screen_lines
from hallkit.devices.evaluator.screen import PadDisplay

from hallkit.i18n import Message
from hallkit.rating.models import Level


class TouchPad:
    kind = "network"

    def __init__(self, name: str = "touch") -> None:
        self.url = f"network://{name}"
        self.touches: queue.Queue[PadInput] = queue.Queue()
        self.screen: PadDisplay | None = None
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def open(self) -> None:
        """Nothing to open: the screen is part of the tablet."""

    def close(self) -> None:
        """Nothing to close: the screen is part of the tablet."""

    def touch(self, what: PadInput) -> None:
        self.touches.put(what)

    def read(self, timeout: float) -> PadInput | None:
        try:
            return self.touches.get(timeout=timeout)
        except queue.Empty:
            return None

    def show(self, screen: PadDisplay, now: datetime) -> None:
        with self.changed:
            self.screen = screen
            self.lines = screen_lines(screen, now)
            self.changed.notify_all()

    def problems(self) -> list[Message]:
        return []


# ---- what the tablet shows (pure: the Kivy app in kiosk/touch_pad.py draws it) ----------------------------


class Face(StrEnum):
    IDLE = "idle"
    SERVING = "serving"
    CLOSED = "closed"
    PAUSED = "paused"
    RATE = "rate"
    REASONS = "reasons"
    SENDING = "sending"
    THANKS = "thanks"


class LinkState(StrEnum):
    OK = "ok"
    OFFLINE = "offline"  # the broker is out of reach
    HUB_DOWN = "hub_down"  # the broker answers, the hub's status says offline


def face(display: PadDisplay | None, now: datetime, picked: Level | None, sending: bool, thanking: bool) -> Face:
    """What the tablet shows, from the hub's display of the window and what the resident tapped."""
    if thanking:
        return Face.THANKS
    if sending:
        return Face.SENDING
    if display is None:
        return Face.IDLE
    if display.prompt_at(now) is not None:
        return Face.REASONS if picked is not None else Face.RATE
    if not display.open:
        return Face.CLOSED
    if display.paused:
        return Face.PAUSED
    return Face.SERVING if display.ticket_number else Face.IDLE


def link_state(connected: bool, hub_online: bool | None) -> LinkState:
    if not connected:
        return LinkState.OFFLINE
    return LinkState.HUB_DOWN if hub_online is False else LinkState.OK
