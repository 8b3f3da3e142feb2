"""The idle reset: back to home, the visit's data dropped, after a while with no touch and no card.

Before the reset the kiosk asks "还在吗？" with a countdown, so a resident reading a guide or
looking for their papers keeps their visit with one touch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hallkit.kiosk.screens.ports import Visit
from hallkit.kiosk.timers import Timer, Timers

log = logging.getLogger(__name__)

WARNING_SECONDS = 15
"""The countdown's length: long enough to notice and touch, within the idle time (at most a third of it)."""


class IdleFlow:
    """Counts ``seconds`` from the resident's last touch or card; every one starts the count again.

    A request to the hub in flight is not cut off: the count starts again and the answer is shown.
    The last :data:`WARNING_SECONDS` are a countdown on screen (``warn(seconds_left)``, 0 when it
    ends), unless nothing would be lost (the home screen with no card read).

    Args:
        visit: the visit's state (is a ticket being asked for?).
        timers: the clock.
        seconds: idle time before the reset (``[kiosk] idle_seconds``).
        reset: drops the visit and goes home (the app's reset).
        warn: shows the seconds left before the reset (0: hide the warning).
        at_rest: true when a reset would lose nothing, so there is nothing to warn about.
    """

    def __init__(self, visit: Visit, timers: Timers, seconds: float, reset: Callable[[], None],
                 warn: Callable[[int], None] = lambda _left: None, at_rest: Callable[[], bool] = lambda: False) -> None:
        self.visit = visit
        self.timers = timers
        self.seconds = seconds
        self._reset = reset
        self._warn = warn
        self._at_rest = at_rest
        self._timer: Timer | None = None
        self.left = 0
        """Seconds shown in the countdown; 0 when no warning is up."""

    @property
    def warning_seconds(self) -> int:
        return int(min(WARNING_SECONDS, self.seconds // 3))

    def activity(self) -> None:
        """A touch or a card: the count starts again (a pending timer is cancelled, not left to run)."""
        self.stop()
        self._show(0)
        self._timer = self.timers.after(self.seconds - self.warning_seconds, self._idle)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _show(self, left: int) -> None:
        if left != self.left:
            self.left = left
            self._warn(left)

    def _idle(self) -> None:
        self._timer = None
        if self.visit.busy:
            self.activity()  # the hub is being asked for this resident's ticket: wait for the answer
            return
        if self._at_rest() or self.warning_seconds == 0:
            self._end()
            return
        self._count(self.warning_seconds)

    def _count(self, left: int) -> None:
        if left == 0:
            self._end()
            return
        self._show(left)
        self._timer = self.timers.after(1, lambda: self._count(left - 1))

    def _end(self) -> None:
        self._timer = None
        self._show(0)
        log.info("idle for %d s: back to home, visit data dropped", self.seconds)
        self._reset()
