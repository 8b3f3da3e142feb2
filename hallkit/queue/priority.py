"""Which waiting ticket a window calls next.

Order: tickets transferred to this very window first (the resident was already
being served); then priority tickets (老弱病残孕 and appointment check-ins)
ahead of normal ones, but never more than ``max_in_a_row`` priority calls in a
row while a normal ticket waits, so the normal queue cannot starve; within a
class, the order in which tickets joined the queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hallkit.queue.models import Priority


@dataclass(frozen=True, slots=True)
class Candidate:
    ticket_id: str
    priority: Priority
    order: int
    directed: bool


def choose(candidates: Iterable[Candidate], priority_streak: int, max_in_a_row: int) -> Candidate | None:
    best_directed: Candidate | None = None
    best_priority: Candidate | None = None
    best_normal: Candidate | None = None
    for c in candidates:
        if c.directed:
            if best_directed is None or c.order < best_directed.order:
                best_directed = c
        elif c.priority is Priority.NORMAL:
            if best_normal is None or c.order < best_normal.order:
                best_normal = c
        elif best_priority is None or c.order < best_priority.order:
            best_priority = c
    if best_directed is not None:
        return best_directed
    if best_priority is not None and (best_normal is None or priority_streak < max_in_a_row):
        return best_priority
    return best_normal


def rank(priority: Priority) -> int:
    """Sort key for 'who is ahead of whom' in one service's queue."""
    return 1 if priority is Priority.NORMAL else 0
