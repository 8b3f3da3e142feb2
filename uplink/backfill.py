"""Backfill: what the hall already holds goes up once its uplink starts, or points at a new county.

The outbox takes items from the moment it is attached (record sinks, the day-close projector),
so ratings, case steps and closed business days from before ``[upstream]`` was set would never
reach the county. When the outbox attaches, it calls :func:`backfill`, which queues them when:

- the outbox has never backfilled (a new uplink, or a hall upgraded from a hallkit without
  backfill: the county absorbs what it already had);
- the county id or the broker changed since the last backfill (a new county holds nothing);
- a hub ran without the outbox since it was last attached (``[upstream]`` was removed for a while:
  the hub's session counter skipped), so records made then never entered it.

What goes up: every rating (``resident_hash`` cleared, as the record sink does), every case step,
and the final statistics of every closed business day. Each keeps the id the live path gives it,
so the outbox (``item_id`` is unique) and the county (``ON CONFLICT DO NOTHING``) take it once.

It runs in one transaction before the hub connects and before the forwarder starts: rows are read
by cursor and the event log one day at a time, so a year of data takes seconds, not memory
(``tests/upstream/test_backfill.py`` measures it). The county and broker it backfilled for, and
the hub session, are remembered in ``outbox_meta`` in the same transaction: a hub killed halfway
backfills again from the start, which the unique ids make harmless.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from enum import StrEnum

from hallkit.contracts.uplink import UpKind
from hallkit.uplink.queue_stats import DaySlice, final_stats
from hallkit.uplink.table import add_item
from pydantic import BaseModel, ConfigDict, ValidationError

from hallkit.config import HallConfig, Upstream
from hallkit.i18n import bilingual
from hallkit.queue.models import EVENT, DayOpened
from hallkit.rating import store as rating_store
from hallkit.store.sqlite import EventStore

log = logging.getLogger("hallkit.outbox")

MARK_KEY = "backfill"
"""The ``outbox_meta`` row that remembers the last backfill's county, broker and hub session."""


class BackfillReason(StrEnum):
    """Why the outbox sends what the hall already holds; the value names the log message."""

    FIRST = "first"
    NEW_COUNTY = "new_county"
    GAP = "gap"


class Target(BaseModel):
    """Where the uplink goes: a different county or broker may hold nothing of this hall."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    county: str
    broker: str


class Mark(BaseModel):
    """What ``outbox_meta`` remembers: the target of the last backfill and the last hub session attached."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: Target
    session: int


class BackfillReport(BaseModel):
    """What one backfill queued (items already waiting in the outbox are counted, and kept once)."""

    model_config = ConfigDict(frozen=True)

    reason: BackfillReason
    target: Target
    ratings: int = 0
    cases: int = 0
    days: int = 0
    failed_days: int = 0
    seconds: float = 0.0


def reason_for(previous: Mark | None, target: Target, session: int) -> BackfillReason | None:
    """Whether (and why) to backfill, given the last mark, where the uplink goes now and this hub session."""
    if previous is None:
        return BackfillReason.FIRST
    if previous.target != target:
        return BackfillReason.NEW_COUNTY
    if previous.session != session - 1:
        # Sessions count every hub start; one not followed by an attach ran without the outbox.
        return BackfillReason.GAP
    return None


def backfill(store: EventStore, config: HallConfig, upstream: Upstream, session: int) -> BackfillReport | None:
    """Queue what the hall holds when :func:`reason_for` says so; always remember this attach.

    Runs while the outbox attaches (before the hub serves anyone), in one transaction of its own
    after the outbox's tables exist.
    """
    target = Target(county=config.hall.county_id, broker=upstream.broker)
    started = time.monotonic()
    with store.transaction() as conn:
        reason = reason_for(_read_mark(conn), target, session)
        report = _queue_everything(conn, config.hall.id, reason, target) if reason is not None else None
        conn.execute("INSERT OR REPLACE INTO outbox_meta VALUES (?, ?)",
                     (MARK_KEY, Mark(target=target, session=session).model_dump_json()))
    if report is None:
        return None
    report = report.model_copy(update={"seconds": round(time.monotonic() - started, 2)})
    log.info(bilingual(f"upstream.backfill.{report.reason.value}", county=target.county, broker=target.broker,
                       ratings=report.ratings, cases=report.cases, days=report.days))
    if report.failed_days:
        log.warning(bilingual("upstream.backfill_failed_days", days=report.failed_days))
    return report


def _read_mark(conn: sqlite3.Connection) -> Mark | None:
    row = conn.execute("SELECT value FROM outbox_meta WHERE key = ?", (MARK_KEY,)).fetchone()
    if row is None:
        return None
    try:
        return Mark.model_validate_json(row[0])
    except ValidationError:
        # Unreadable (written by hand, or by a future format): sending again is the safe side.
        return None


def _queue_everything(conn: sqlite3.Connection, hall_id: str, reason: BackfillReason,
                      target: Target) -> BackfillReport:
    ratings = cases = days = failed = 0
    if _has_table(conn, "ratings"):
        for rating in rating_store.ratings(conn):
            # The keyed hash links one resident's visits: it stays in the hall (docs/upstream.md).
            add_item(conn, UpKind.RATING, rating.rating_id, rating.model_copy(update={"resident_hash": None}))
            ratings += 1
        for update in rating_store.every_step(conn):
            add_item(conn, UpKind.CASE, update.update_id, update)
            cases += 1
    for day, closing in closed_days(conn):
        try:
            stats = final_stats(hall_id, day, closing)
        except (ValueError, ArithmeticError):
            # As at day close: one day's faulty figures must not keep the others (or the hub) down.
            log.exception("final statistics of %s failed", day.opened.day)
            failed += 1
            continue
        add_item(conn, UpKind.STATS, stats.stats_id, stats)
        days += 1
    return BackfillReport(reason=reason, target=target, ratings=ratings, cases=cases, days=days, failed_days=failed)


def closed_days(conn: sqlite3.Connection) -> Iterator[tuple[DaySlice, DayOpened]]:
    """Every business day the log closed, with the ``day_opened`` that closed it, one day in memory at a time.

    Events before the first ``day_opened`` belong to no day (as for the live statistics); the day
    still running has no closing event and is left to the interval statistics.
    """
    day: DaySlice | None = None
    for seq, body in conn.execute("SELECT seq, body FROM events ORDER BY seq"):
        event = EVENT.validate_json(body)
        if isinstance(event, DayOpened):
            if day is not None:
                yield day, event
            day = DaySlice(opened=event, events=[], last_seq=seq)
        elif day is not None:
            day.events.append(event)
            day.last_seq = seq


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    """The rating tables exist once the ratings part has attached; a hub may run the outbox without it."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None
