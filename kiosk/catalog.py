"""How the kiosk groups the hall's services, and how it splits long lists into pages.

Residents look for the window they were told to go to, or for the department
(民政, 社保 …), so the home screen shows one group per specialised window, in window
order. Services that only a comprehensive window (综合窗口) serves form that window's
group; a hall with only comprehensive windows gets a single group of everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from hallkit.contracts.hall import QueueSnapshot

from hallkit.config import HallConfig, Service

T = TypeVar("T")
WindowOpen = Literal["open", "paused", "closed"]


@dataclass(frozen=True, slots=True)
class ServiceGroup:
    window: int
    name: str
    services: tuple[Service, ...]


def group_services(config: HallConfig) -> list[ServiceGroup]:
    groups: list[ServiceGroup] = []
    placed: set[str] = set()
    for window in config.windows:
        if window.comprehensive:
            continue
        served = tuple(s for s in config.services if s.id in config.served_by(window))
        if served:
            groups.append(ServiceGroup(window.number, window.name, served))
            placed.update(s.id for s in served)
    rest = tuple(s for s in config.services if s.id not in placed)
    if rest:
        comprehensive = next(w for w in config.windows if w.comprehensive)
        groups.insert(0, ServiceGroup(comprehensive.number, comprehensive.name, rest))
    return groups


def window_state(snapshot: QueueSnapshot | None, number: int) -> WindowOpen:
    """Whether the window takes residents now, from the hub's snapshot (none yet: as configured, open)."""
    live = next((w for w in snapshot.windows if w.number == number), None) if snapshot is not None else None
    if live is None:
        return "open"
    if not live.open:
        return "closed"
    return "paused" if live.paused else "open"


def service_open(config: HallConfig, snapshot: QueueSnapshot | None, service_id: str) -> bool:
    """A window that serves it is open and not paused: the hub's own rule for issuing a ticket."""
    return any(window_state(snapshot, w.number) == "open" for w in config.windows_serving(service_id))


def page_count(items: Sequence[object], per_page: int) -> int:
    return max(1, -(-len(items) // per_page))


def page_of(items: Sequence[T], page: int, per_page: int) -> list[T]:
    """Items on page ``page`` (0-based), clamped to the pages there are."""
    page = min(max(page, 0), page_count(items, per_page) - 1)
    return list(items[page * per_page:(page + 1) * per_page])
