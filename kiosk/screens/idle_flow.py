"""The idle reset: back to home, the visit's data dropped, after a while with no touch and no card."""

from __future__ import annotations

import logging
from collections.abc import Callable

from hallkit.kiosk.screens.ports import Visit
from hallkit.kiosk.timers import Timer, Timers

log = logging.getLogger(__name__)


class IdleFlow:
    """Counts ``seconds`` from the resident's last touch or card; every one starts the count again.

    A request to the hub in flight is not cut off: the count starts again and the answer is shown.

    Args:
        visit: the visit's state (is a ticket being asked for?).
        timers: the clock.
        seconds: idle time before the reset (``[kiosk] idle_seconds``).
        reset: drops the visit and goes home (the app's reset).
    """

    def __init__(self, visit: Visit, timers: Timers, seconds: float, reset: Callable[[], None]) -> None:
        self.visit = visit
        self.timers = timers
        self.seconds = seconds
        self._reset = reset
        self._timer: Timer | None = None

    def activity(self) -> None:
        """A touch or a card: the count starts again (a pending timer is cancelled, not left to run)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.timers.after(self.seconds, self._idle)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _idle(self) -> None:
        self._timer = None
        if self.visit.busy:
            self.activity()  # the hub is being asked for this resident's ticket: wait for the answer
            return
        log.info("idle for %d s: back to home, visit data dropped", self.seconds)
        self._reset()
