"""Time as the kiosk's flows see it: ``now()`` and one-shot timers, behind one small port.

The flows (:mod:`kiosk.screens`) never read the wall clock or Kivy's clock themselves:
the app hands them :class:`KivyTimers` (in :mod:`kiosk.app`), tests hand them a
:class:`ManualTimers` whose time moves only when the test says so. That keeps the
idle reset, the hub retries and the PIN lock testable without waiting for them.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class Timer(Protocol):
    """A scheduled call; cancelling it after it ran does nothing."""

    def cancel(self) -> None: ...


class Timers(Protocol):
    """Monotonic time in seconds, and calls scheduled on the UI thread."""

    def now(self) -> float: ...

    def after(self, seconds: float, call: Callable[[], None]) -> Timer: ...


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    call: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class ManualTimers:
    """A fake clock: time stands still until :meth:`advance`, which runs what fell due, in order.

    Runs the calls on the caller's thread (in a kiosk scenario, Kivy's UI thread), like
    Kivy's clock would.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._due: list[_Due] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def after(self, seconds: float, call: Callable[[], None]) -> Timer:
        due = _Due(self._now + max(seconds, 0.0), next(self._seq), call)
        heapq.heappush(self._due, due)
        return due

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, running every call due by then at its own time."""
        until = self._now + seconds
        while self._due and self._due[0].at <= until:
            due = heapq.heappop(self._due)
            if due.cancelled:
                continue
            self._now = max(self._now, due.at)
            due.call()
        self._now = until

    def pending(self) -> int:
        """Calls scheduled and not yet run or cancelled."""
        return sum(1 for due in self._due if not due.cancelled)
