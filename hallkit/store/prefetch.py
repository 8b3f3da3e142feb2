"""Read a file into the page cache in the background, front to back, before SQLite needs it.

SQLite reads its file a page (4 KB) at a time in the order of its b-trees; from a cold cache
(the PC just booted, or the hub restarted after a power cut) that is one small read after the
other, while one pass over the file reads it in large sequential requests: on the bench's VM a
day's log of 73 MB scanned by SQLite took 0.32-0.38 s cold, and 0.03 s to read front to back,
after which the same scan took 0.01 s. ``posix_fadvise(WILLNEED)`` made no difference there.

Light on purpose (no hallkit imports): the hub starts it before importing the rest of itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

CHUNK = 1 << 20
LIMIT = 512 << 20
"""Bytes read at most per file, from its end: a log grows at its end, where the current day is."""


def prefetch(paths: Sequence[Path]) -> threading.Thread:
    """Start reading ``paths`` (those that exist) into the page cache; ``join()`` waits for it."""
    reader = threading.Thread(target=_read_all, args=(list(paths),), name="prefetch", daemon=True)
    reader.start()
    return reader


def _read_all(paths: list[Path]) -> None:
    buffer = bytearray(CHUNK)  # one buffer for all: the pages stay in the kernel's cache, not here
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # not there (a first start) or not readable: SQLite will say so itself
            continue
        try:
            os.lseek(fd, max(0, os.fstat(fd).st_size - LIMIT), os.SEEK_SET)
            while os.readv(fd, [buffer]) == CHUNK:
                pass
        except OSError:  # only a head start: whatever it could not read, SQLite reads itself
            pass
        finally:
            os.close(fd)
