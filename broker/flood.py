"""Which devices flood their status, and when each may be heard again.

A device sends its status when something changes: a few a minute. One that sends dozens a second
(a loose contact, a bug, a hostile device) costs the broker a forward and the hub a read for each,
and the newest is all that counts. The hub's status watch asks the broker to stop sending such a
device's statuses for a while (it unsubscribes) and then to send them again (it subscribes, and
the broker hands it the device's retained, newest status). Pure logic: the caller holds the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

FLOOD_LIMIT = 20
"""Statuses of one device within ``FLOOD_WINDOW`` that make it a flood."""
FLOOD_WINDOW = 1.0
MUTE_SECONDS = 2.0
"""How long a flooding device is not heard: the hub's per-device status interval."""
LOCKOUT_SECONDS = 30.0
"""Seconds the broker keeps a device that flooded it out (on a broker with the dynamic-security
plugin): long enough that a device logging in again at once does not flood it every mute."""


class Deadlines:
    """Keys each due at a time of its own (a mute's end, a lock-out's end), taken when due."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def set(self, key: str, until: float) -> None:
        self._until[key] = until

    def __contains__(self, key: object) -> bool:
        return key in self._until

    def due(self, now: float | None) -> list[str]:
        """The keys due by ``now`` (every key with None), taken."""
        ready = [key for key, until in self._until.items() if now is None or until <= now]
        for key in ready:
            del self._until[key]
        return ready

    def wait(self, now: float) -> float | None:
        """Seconds until the next key is due; None when there is none."""
        return max(0.0, min(self._until.values()) - now) if self._until else None

    @property
    def keys(self) -> list[str]:
        return sorted(self._until)


@dataclass
class _Count:
    since: float
    count: int


class FloodGate:
    def __init__(self, limit: int = FLOOD_LIMIT, window: float = FLOOD_WINDOW, mute_for: float = MUTE_SECONDS) -> None:
        self.limit, self.window, self.mute_for = limit, window, mute_for
        self._counts: dict[str, _Count] = {}
        self._muted = Deadlines()
        """When each muted key may be heard again."""

    def heard(self, key: str, count: int, now: float) -> bool:
        """``count`` statuses of ``key`` arrived; True when that makes it a flood (mute it now).
        Statuses still on their way from a muted key are not counted again."""
        if key in self._muted:
            return False
        seen = self._counts.get(key)
        if seen is None or now - seen.since > self.window:
            seen = self._counts[key] = _Count(now, 0)
        seen.count += count
        if seen.count <= self.limit:
            return False
        del self._counts[key]
        self._muted.set(key, now + self.mute_for)
        return True

    def due(self, now: float) -> list[str]:
        """The keys whose mute is over: taken, to be heard again."""
        return self._muted.due(now)

    def wait(self, now: float) -> float | None:
        """Seconds until the next mute ends; None when no key is muted."""
        return self._muted.wait(now)

    @property
    def muted(self) -> list[str]:
        return self._muted.keys
