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

from hallkit.devices.evaluator.pad import PadInput, screen_lines
from hallkit.devices.evaluator.screen import PadDisplay

from hallkit.i18n import Message


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
