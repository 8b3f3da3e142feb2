"""Rating tables in the hub's SQLite file, next to the queue's event log.

Tables (each row keeps its model as JSON in ``body`` plus the columns it is looked up by):

- ``rating_events``: every completed service, with its rating status (pending, rated, defaulted, lapsed).
- ``ratings``: at most one per service event (a UNIQUE constraint: 一次一评 holds even against a bug),
  with the request id that made it, so a request sent again gets the same answer.
- ``rating_cases``: one per bad rating, with its state and deadline.
- ``case_steps``: every step of every case, who and when, with the request id that recorded it.

Writers pass the connection of the transaction they are in (the hub's queue transaction, or
the one around a rating); readers (``hall cases``, ``hall ratings report``) open the file read-only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import date, datetime
from pathlib import Path

from hallkit.queue.numbering import ticket_id_prefix
from hallkit.rating.cases import Case
from hallkit.rating.models import CaseUpdate, Rating
from hallkit.rating.rules import EventStatus, ServiceEvent

SCHEMA_KEY = "rating_schema"
SCHEMA_VERSION = 1

_TABLES = (
    """CREATE TABLE IF NOT EXISTS rating_events (
        service_event_id TEXT PRIMARY KEY,
        ticket_public_id TEXT NOT NULL,
        served_at TEXT NOT NULL,
        status TEXT NOT NULL,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS rating_events_public ON rating_events (ticket_public_id)",
    "CREATE INDEX IF NOT EXISTS rating_events_pending ON rating_events (status, served_at)",
    """CREATE TABLE IF NOT EXISTS ratings (
        rating_id TEXT PRIMARY KEY,
        service_event_id TEXT NOT NULL UNIQUE REFERENCES rating_events (service_event_id),
        request_id TEXT UNIQUE,
        served_at TEXT NOT NULL,
        body TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS rating_cases (
        case_id TEXT PRIMARY KEY,
        rating_id TEXT NOT NULL UNIQUE REFERENCES ratings (rating_id),
        state TEXT NOT NULL,
        body TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS case_steps (
        update_id TEXT PRIMARY KEY,
        case_id TEXT NOT NULL REFERENCES rating_cases (case_id),
        request_id TEXT UNIQUE,
        at TEXT NOT NULL,
        body TEXT NOT NULL
    )""",
)


def migrate(conn: sqlite3.Connection) -> None:
    """Create the rating tables (inside the caller's transaction)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (SCHEMA_KEY,)).fetchone()
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise RuntimeError(f"rating tables written by a newer hallkit (schema {row[0]}); upgrade hallkit")
    for statement in _TABLES:
        conn.execute(statement)
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (SCHEMA_KEY, str(SCHEMA_VERSION)))


# ---- writing (inside a transaction) -----------------------------------------------------------------


def add_event(conn: sqlite3.Connection, event: ServiceEvent) -> None:
    conn.execute("INSERT OR IGNORE INTO rating_events VALUES (?, ?, ?, ?, ?)",
                 (event.service_event_id, event.ticket_public_id, event.served_at.isoformat(),
                  event.status.value, event.model_dump_json()))


def set_status(conn: sqlite3.Connection, event: ServiceEvent, status: EventStatus) -> None:
    updated = event.model_copy(update={"status": status})
    conn.execute("UPDATE rating_events SET status = ?, body = ? WHERE service_event_id = ?",
                  (status.value, updated.model_dump_json(), event.service_event_id))


def add_rating(conn: sqlite3.Connection, rating: Rating, request_id: str | None) -> None:
    conn.execute("INSERT INTO ratings VALUES (?, ?, ?, ?, ?)",
                 (rating.rating_id, rating.service_event_id, request_id, rating.served_at.isoformat(),
                  rating.model_dump_json()))


def save_case(conn: sqlite3.Connection, case: Case) -> None:
    conn.execute("INSERT OR REPLACE INTO rating_cases VALUES (?, ?, ?, ?)",
                 (case.case_id, case.rating_id, case.state.value, case.model_dump_json()))


def add_step(conn: sqlite3.Connection, update: CaseUpdate, request_id: str | None) -> None:
    conn.execute("INSERT INTO case_steps VALUES (?, ?, ?, ?, ?)",
                 (update.update_id, update.case_id, request_id, update.at.isoformat(), update.model_dump_json()))


# ---- reading --------------------------------------------------------------------------------------


def event_by_id(conn: sqlite3.Connection, service_event_id: str) -> ServiceEvent | None:
    row = conn.execute("SELECT body FROM rating_events WHERE service_event_id = ?", (service_event_id,)).fetchone()
    return ServiceEvent.model_validate_json(row[0]) if row else None


def event_by_ticket(conn: sqlite3.Connection, ticket_public_id: str) -> ServiceEvent | None:
    """The latest service event of the ticket whose QR token this is."""
    row = conn.execute("SELECT body FROM rating_events WHERE ticket_public_id = ? ORDER BY served_at DESC LIMIT 1",
                       (ticket_public_id,)).fetchone()
    return ServiceEvent.model_validate_json(row[0]) if row else None


def pending_served_before(conn: sqlite3.Connection, moment: datetime) -> list[ServiceEvent]:
    rows = conn.execute("SELECT body FROM rating_events WHERE status = ? AND served_at < ? ORDER BY served_at",
                        (EventStatus.PENDING.value, moment.isoformat()))
    return [ServiceEvent.model_validate_json(body) for (body,) in rows]


def rating_by_id(conn: sqlite3.Connection, rating_id: str) -> Rating | None:
    row = conn.execute("SELECT body FROM ratings WHERE rating_id = ?", (rating_id,)).fetchone()
    return Rating.model_validate_json(row[0]) if row else None


def rating_by_request(conn: sqlite3.Connection, request_id: str) -> Rating | None:
    row = conn.execute("SELECT body FROM ratings WHERE request_id = ?", (request_id,)).fetchone()
    return Rating.model_validate_json(row[0]) if row else None


def cases_by_prefix(conn: sqlite3.Connection, prefix: str) -> list[Case]:
    """Cases whose id starts with ``prefix`` (people type the first few characters); at most two."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute("SELECT body FROM rating_cases WHERE case_id LIKE ? ESCAPE '\\' LIMIT 2",
                        (escaped + "%",))
    return [Case.model_validate_json(body) for (body,) in rows]


def case_of_rating(conn: sqlite3.Connection, rating_id: str) -> Case | None:
    row = conn.execute("SELECT body FROM rating_cases WHERE rating_id = ?", (rating_id,)).fetchone()
    return Case.model_validate_json(row[0]) if row else None


def step_by_request(conn: sqlite3.Connection, request_id: str) -> CaseUpdate | None:
    row = conn.execute("SELECT body FROM case_steps WHERE request_id = ?", (request_id,)).fetchone()
    return CaseUpdate.model_validate_json(row[0]) if row else None


def events(conn: sqlite3.Connection) -> Iterator[ServiceEvent]:
    for (body,) in conn.execute("SELECT body FROM rating_events ORDER BY served_at"):
        yield ServiceEvent.model_validate_json(body)


def ratings(conn: sqlite3.Connection) -> Iterator[Rating]:
    for (body,) in conn.execute("SELECT body FROM ratings ORDER BY served_at"):
        yield Rating.model_validate_json(body)


def cases(conn: sqlite3.Connection) -> list[Case]:
    return [Case.model_validate_json(body) for (body,) in conn.execute("SELECT body FROM rating_cases")]


def steps(conn: sqlite3.Connection, case_id: str) -> list[CaseUpdate]:
    """The steps of one case in the order they were taken (the dashboard shows who did what, when)."""
    rows = conn.execute("SELECT body FROM case_steps WHERE case_id = ? ORDER BY at, rowid", (case_id,))
    return [CaseUpdate.model_validate_json(body) for (body,) in rows]


def events_of_day(conn: sqlite3.Connection, day: date) -> list[ServiceEvent]:
    """Service events of business day ``day``: those whose ticket id starts with the day."""
    rows = conn.execute("SELECT body FROM rating_events WHERE json_extract(body, '$.ticket_id') LIKE ? "
                        "ORDER BY served_at", (_day_pattern(day),))
    return [ServiceEvent.model_validate_json(body) for (body,) in rows]


def ratings_of_day(conn: sqlite3.Connection, day: date) -> list[Rating]:
    """Ratings of the service events of business day ``day``."""
    rows = conn.execute("SELECT body FROM ratings WHERE json_extract(body, '$.ticket_id') LIKE ? ORDER BY served_at",
                        (_day_pattern(day),))
    return [Rating.model_validate_json(body) for (body,) in rows]


def _day_pattern(day: date) -> str:
    return ticket_id_prefix(day) + "%"


def every_step(conn: sqlite3.Connection) -> list[CaseUpdate]:
    """Every step of every case, oldest first: what the figures' case outcomes are made of, and what
    the uplink's backfill sends."""
    rows = conn.execute("SELECT body FROM case_steps ORDER BY at, rowid")
    return [CaseUpdate.model_validate_json(body) for (body,) in rows]


def open_read_only(path: Path) -> sqlite3.Connection:
    """The hub's file for reading while the hub runs (WAL lets readers and the one writer coexist)."""
    if not path.exists():
        raise FileNotFoundError(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with closing(conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'rating_events'")) as probe:
        if probe.fetchone() is None:
            conn.close()
            raise FileNotFoundError(f"{path} has no rating tables yet (the hub has not run with ratings)")
    return conn
