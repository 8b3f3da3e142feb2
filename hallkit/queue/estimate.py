"""Estimated waiting time.

For a ticket with ``ahead`` people before it in its service's queue, and
``k`` windows open for that service that are not paused:

    wait = ahead × mean_service / k  (+ half a mean service when every window is busy)

``mean_service`` is the mean of the service's most recent completed service
times (the last N, configurable), or the service's configured default until
the hall has served any today. ``bench/queue_engine.py`` replays a day and
prints the estimate's error against the wait residents then really had.
"""

from __future__ import annotations

from collections import deque


class ServiceTimes:
    """The last N service durations of one service, in seconds."""

    def __init__(self, default_seconds: float, samples: int) -> None:
        self.default_seconds = default_seconds
        self._recent: deque[float] = deque(maxlen=samples)
        self._sum = 0.0

    def add(self, seconds: float) -> None:
        if len(self._recent) == self._recent.maxlen:
            self._sum -= self._recent[0]
        self._recent.append(seconds)
        self._sum += seconds

    def clear(self) -> None:
        self._recent.clear()
        self._sum = 0.0

    @property
    def samples(self) -> list[float]:
        return list(self._recent)

    @property
    def mean(self) -> float:
        return self._sum / len(self._recent) if self._recent else self.default_seconds


def estimated_wait_seconds(ahead: int, mean_service: float, windows: int, all_busy: bool) -> float:
    k = max(1, windows)
    residual = mean_service / 2 if all_busy else 0.0
    return ahead * mean_service / k + residual
