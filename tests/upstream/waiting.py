"""Waiting on progress: a long transfer is judged by whether it moves, not by a deadline sized for a quiet machine."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_progress(read: Callable[[], int], target: int, stall: float = 90.0, what: str = "count") -> None:
    """Poll ``read`` until it equals ``target``; fail only when it has not changed for ``stall`` seconds."""
    last = read()
    changed = time.monotonic()
    while last != target:
        time.sleep(0.1)
        value = read()
        if value != last:
            last, changed = value, time.monotonic()
        elif time.monotonic() - changed > stall:
            raise AssertionError(f"{what} stuck at {last} of {target} for {stall:.0f} s")
