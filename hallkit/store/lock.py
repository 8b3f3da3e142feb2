"""One process per data folder: an exclusive lock the kernel drops when its holder dies.

Two hubs on one folder would both write the queue's log and knock each other off the broker
(they share a client id); the event log takes this lock before it opens anything, so the second
is stopped there and told which process holds the folder.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class FolderInUse(Exception):
    """The folder is locked by another process (``pid``, when it could say)."""

    def __init__(self, folder: Path, pid: int | None) -> None:
        self.folder = folder
        self.pid = pid
        super().__init__(f"{folder} is in use by process {pid if pid is not None else '?'}")


class FolderLock:
    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / name
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        """Take the lock or raise :class:`FolderInUse`; the holder's pid goes into the file."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise FolderInUse(self.path.parent, int(holder) if holder.isdigit() else None) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:  # a full disk: the lock holds all the same, only the pid goes unsaid
            pass
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None
