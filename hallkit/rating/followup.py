"""Follow-up phone numbers (回访电话) a resident leaves with a bad rating on the phone page.

They are the one personal datum the page takes, so they are kept apart from everything that
travels: not in the rating (which goes to the county), not on MQTT, not in the hub's file. The page
process writes them to ``followup.sqlite3`` in the hub's data folder (mode 0600), keyed by the
case the rating opened; the dashboard reads them for managers. A number is deleted when its case
is finished (closed, or voided on appeal) or ``[web] followup_retention_days`` after it was left,
whichever comes first, with SQLite's ``secure_delete`` so the bytes do not linger in the file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from hallkit.config import PHONE_PATTERN

FOLLOWUP_FILE = "followup.sqlite3"

_SCHEMA = """CREATE TABLE IF NOT EXISTS followups (
    case_id TEXT PRIMARY KEY,
    rating_id TEXT NOT NULL,
    ticket_number TEXT NOT NULL,
    phone TEXT NOT NULL,
    stored_at TEXT NOT NULL
)"""


class FollowUp(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: str
    rating_id: str
    ticket_number: str
    phone: str = Field(pattern=PHONE_PATTERN)
    stored_at: datetime


class FollowUpBook:
    """The page's writable store of follow-up numbers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if fresh:
            os.chmod(path, 0o600)
        self._conn.execute("PRAGMA secure_delete = ON")
        self._conn.execute(_SCHEMA)
        self._lock = threading.Lock()

    def add(self, followup: FollowUp) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO followups VALUES (?, ?, ?, ?, ?)",
                               (followup.case_id, followup.rating_id, followup.ticket_number, followup.phone,
                                followup.stored_at.isoformat()))

    def case_ids(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._conn.execute("SELECT case_id FROM followups")}

    def purge(self, finished_cases: set[str], now: datetime, retention_days: int) -> int:
        """Delete the numbers of finished cases and those past the retention; returns how many."""
        cutoff = (now - timedelta(days=retention_days)).isoformat()
        with self._lock:
            gone = self._conn.execute("DELETE FROM followups WHERE stored_at < ?", (cutoff,)).rowcount
            for case_id in finished_cases:
                gone += self._conn.execute("DELETE FROM followups WHERE case_id = ?", (case_id,)).rowcount
            return gone

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def followup_numbers(data: Path, retention_days: int, now: datetime | None = None) -> dict[str, str]:
    """Case id → follow-up number, read-only (the dashboard's view; nothing past its retention)."""
    path = data / FOLLOWUP_FILE
    if not path.exists():
        return {}
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=retention_days)).isoformat()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA busy_timeout = 2000")
        rows = conn.execute("SELECT case_id, phone FROM followups WHERE stored_at >= ?", (cutoff,)).fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()
    return {case_id: phone for case_id, phone in rows}
