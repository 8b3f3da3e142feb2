"""Random bytes from the operating system, drawn in blocks.

Every event, reply and notice carries a random id, and every ticket a random QR token: several
draws per ticket. One ``os.urandom`` call per draw costs a system call each (tens of µs on a
busy VM); drawing a block and handing out slices costs one per few hundred draws. The bytes are
the operating system's all the same, so they are as unpredictable as one call each.
"""

from __future__ import annotations

import os
import threading

BLOCK = 4096


class _Pool(threading.local):
    """One block per thread (no lock on the hot path); a child process after fork starts afresh."""

    def __init__(self) -> None:
        self.block = b""
        self.at = 0


_pool = _Pool()


def _forget() -> None:
    # After fork the child holds a copy of the parent's unused bytes: they must never be used twice.
    # A fresh thread-local replaces every thread's block at once; rebinding the module's name
    # is the one way to do that.
    global _pool  # noqa: PLW0603
    _pool = _Pool()


os.register_at_fork(after_in_child=_forget)


def random_bytes(n: int) -> bytes:
    """``n`` (at most :data:`BLOCK`) bytes from the OS, each handed out once."""
    pool = _pool
    if pool.at + n > len(pool.block):
        pool.block = os.urandom(BLOCK)
        pool.at = 0
    start = pool.at
    pool.at = start + n
    return pool.block[start:start + n]


def random_below(limit: int) -> int:
    """A uniform random integer in [0, ``limit``), by rejection (no modulo bias)."""
    bits = (limit - 1).bit_length()
    size = (bits + 7) // 8
    mask = (1 << bits) - 1
    while True:
        value = int.from_bytes(random_bytes(size), "big") & mask
        if value < limit:
            return value
