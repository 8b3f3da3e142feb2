"""Estimated waiting time.

For a ticket with ``ahead`` people before it in its service's queue:

- once the service has been called at least twice today, from the pace of its line:

      wait = ahead × call_interval  (+ half an interval when every window is busy)

  where ``call_interval`` is the mean time between the last N calls of the service
  (N = ``recent_service_samples``). The pace already holds what a formula cannot: windows
  shared with other services, the priority rule, pauses, no-shows;
- before that, from service times and the windows open for the service:

      wait = ahead × mean_service / k  (+ half a mean service when every window is busy)

  with ``k`` the windows serving the service that are open and not paused, and
  ``mean_service`` the mean of the last N completed services of the day, or the service's
  configured default until one is completed.

``bench/queue_engine.py`` replays a busy day and prints the estimate's error against the
wait residents then really had (docs/queue.md quotes the figures).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime


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


def estimated_wait_seconds(
    ahead: int, mean_service: float, windows: int, all_busy: bool, call_interval: float | None = None
) -> float:
    if call_interval is None:
        k = max(1, windows)
        residual = mean_service / 2 if all_busy else 0.0
        return ahead * mean_service / k + residual
    residual = call_interval / 2 if all_busy else 0.0
    return ahead * call_interval + residual


class CallPace:
    """When the last N tickets of one service were called: how fast its line really moves."""

    def __init__(self, samples: int) -> None:
        self._calls: deque[datetime] = deque(maxlen=samples)

    def add(self, at: datetime) -> None:
        self._calls.append(at)

    def clear(self) -> None:
        self._calls.clear()

    @property
    def samples(self) -> list[datetime]:
        return list(self._calls)

    @property
    def interval(self) -> float | None:
        """Mean seconds between two calls of the service, once it has been called twice."""
        if len(self._calls) < 2:  # noqa: PLR2004 - an interval needs two calls
            return None
        return max(0.0, (self._calls[-1] - self._calls[0]).total_seconds()) / (len(self._calls) - 1)
