"""The newest value per key, each key let through at most once per interval.

What the hub does with device statuses: a status is a state, not an event, so of a burst only
the newest one matters, and a device that flaps a thousand times a second costs the hub (and
the county's telemetry) one status per interval. Pure logic: the caller holds the lock and the
clock.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class LatestPerKey(Generic[T]):
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._pending: dict[str, T] = {}
        self._last: dict[str, float] = {}
        self.superseded = 0
        """Values replaced by a newer one of the same key before they were taken."""

    def put(self, key: str, value: T) -> bool:
        """Keep ``value`` as the newest of ``key``; True when the key had none waiting (only then
        can the next value be due sooner than :meth:`wait` said before)."""
        fresh = key not in self._pending
        if not fresh:
            self.superseded += 1
        self._pending[key] = value
        return fresh

    def due(self, now: float) -> list[tuple[str, T]]:
        """The pending values whose key was last let through at least ``interval`` ago; taken."""
        ready = [key for key in self._pending if now - self._last.get(key, -self.interval) >= self.interval]
        for key in ready:
            self._last[key] = now
        return [(key, self._pending.pop(key)) for key in ready]

    def wait(self, now: float) -> float | None:
        """Seconds until the next pending value is due (0 when one is), None when nothing waits."""
        if not self._pending:
            return None
        return max(0.0, min(self._last.get(key, -self.interval) + self.interval - now for key in self._pending))
