"""The log read ahead into the page cache: harmless whatever it finds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hallkit.store import prefetch


def test_it_reads_what_is_there_and_skips_what_is_not(tmp_path: Path) -> None:
    log = tmp_path / "hall.sqlite3"
    content = os.urandom(3 * prefetch.CHUNK + 5)
    log.write_bytes(content)
    reader = prefetch.prefetch([tmp_path / "hall.sqlite3-wal", log, tmp_path])  # missing, a file, a folder
    reader.join(10)
    assert not reader.is_alive()
    assert log.read_bytes() == content


def test_a_file_over_the_limit_is_read_from_its_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefetch, "LIMIT", prefetch.CHUNK)
    offsets: list[int] = []
    real_lseek = os.lseek

    def lseek(fd: int, position: int, how: int) -> int:
        offsets.append(position)
        return real_lseek(fd, position, how)

    monkeypatch.setattr(prefetch.os, "lseek", lseek)
    log = tmp_path / "hall.sqlite3"
    log.write_bytes(bytes(3 * prefetch.CHUNK))
    prefetch.prefetch([log]).join(10)
    assert offsets == [2 * prefetch.CHUNK]
