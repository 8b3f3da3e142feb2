"""Support for the tests and the benches (not used by the county itself): PostgreSQL databases of
their own, and a small county stored through the ingest's own write path.

A database per test or bench run (tests run in parallel): :func:`fresh_database` makes one and
drops it afterwards, through :data:`ADMIN_DSN`, a login that may create databases
(``HALLKIT_TEST_PG``; scripts/bootstrap.sh makes it).

The small county (:func:`seed`) has three halls in two townships; a few days of last month and
today: statistics (today's as interval snapshots), ratings with bad ones, their cases (one
overdue), devices. Everything goes through :func:`hallkit.county.store.parse` and
:func:`hallkit.county.store.write`, as the ingest stores it, so the summary triggers see exactly
what they see in production.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from itertools import count
from typing import Literal
from uuid import uuid4

import psycopg
from hallkit.contracts.uplink import (
    DeviceTelemetry,
    QueueFigures,
    QueueStats,
    ServiceStats,
    UpKind,
    UplinkStatus,
    UpTopics,
    encode_batch,
)
from hallkit.county.console import ZONE, county_today
from hallkit.county.store import parse, write

from hallkit.queue.numbering import ticket_id_prefix
from hallkit.rating.models import CaseStep, CaseUpdate, Level, Rating, RatingChannel

ADMIN_DSN = os.environ.get("HALLKIT_TEST_PG", "postgresql://hallkit:hallkit@127.0.0.1:5432/postgres")
"""A login that may create databases; scripts/bootstrap.sh makes it."""


def database_dsn(name: str) -> str:
    """The address of database ``name`` on :data:`ADMIN_DSN`'s server, with its login."""
    return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


def create_database(prefix: str = "hallkit_test") -> str:
    """A new, empty database named ``prefix`` and a random suffix; returns its name."""
    name = f"{prefix}_{uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # a name we made, not input
    return name


def drop_database(name: str) -> None:
    """Drop database ``name``, closing whatever is still connected to it."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def fresh_database(prefix: str = "hallkit_test") -> Iterator[str]:
    """A new, empty database for the ``with`` block (its DSN), dropped afterwards."""
    name = create_database(prefix)
    try:
        yield database_dsn(name)
    finally:
        drop_database(name)


Presence = Literal["online", "offline"]
"""A hall's link or a device, as the uplink reports it."""

COUNTY = "test-county"
HALLS = {  # hall: (name, township)
    "xinghua": ("兴华镇便民服务中心", "兴华镇"),
    "xinghua-shimen": ("石门村便民服务站", "兴华镇"),
    "dafeng": ("大丰镇便民服务中心", "大丰镇"),
}
SERVICES = (("sb-01", "城乡居民养老保险参保登记", "人社"), ("mz-02", "最低生活保障申请", "民政"),
            ("ws-03", "生育登记", "卫健"))
STAFF = (("a1", "张三"), ("b2", "李四"))
_ids = count(1)


def last_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def store(conn: psycopg.Connection, kind: UpKind, hall: str, bodies: list[str]) -> None:
    """One batch through the ingest's parse and write, in its own transaction."""
    first = next(_ids) * 1000
    payload = encode_batch(kind, f"{hall}-{kind.value}-{first}", hall, COUNTY, "epoch-1", False,
                           [(first + i, body) for i, body in enumerate(bodies)])
    parsed = parse(UpTopics(COUNTY, hall).up(kind), payload)
    with conn.transaction():
        write(conn, [parsed])


def link(conn: psycopg.Connection, hall: str, state: Presence = "online", backlog: int = 0) -> None:
    status = UplinkStatus(hall=hall, county=COUNTY, state=state, session=1, backlog=backlog)
    with conn.transaction():
        write(conn, [parse(UpTopics(COUNTY, hall).status, status.model_dump_json().encode())])


def rating(hall: str, served: datetime, n: int, level: Level, channel: RatingChannel = RatingChannel.PAD) -> Rating:
    code, name, department = SERVICES[n % len(SERVICES)]
    staff_id, staff_name = STAFF[n % len(STAFF)]
    day = served.astimezone(ZONE).date()  # the ticket's day is the hall's business day
    return Rating(rating_id=f"{hall}-{day:%Y%m%d}-r{n:04d}", hall_id=hall, region_code="652323100201",
                  service_event_id=f"ev-{hall}-{day:%Y%m%d}-{n}", ticket_id=f"{ticket_id_prefix(day)}A{n:03d}",
                  ticket_number=f"A{n:03d}", service_code=code, service_name=name, department=department,
                  window=1 + n % 3, staff_id=staff_id, staff_name=staff_name, channel=channel, level=level,
                  score=int(level), tags=["等候时间长"] if level.bad else [],
                  text="电话13912345678联系我" if level.bad else "", served_at=served,
                  rated_at=served + timedelta(minutes=1))


def stats(hall: str, day: date, as_of: datetime, final: bool, taken: int, waiting: int) -> QueueStats:
    """Made-up figures; the longest wait 90 s per person waiting in a line (svc-1's line the longer)."""
    served = taken - waiting - 1 if taken > waiting else 0
    total = QueueFigures(taken=taken, served=served, abandoned=min(1, taken), waiting=waiting,
                         longest_wait_seconds=90.0 * waiting, mean_wait_seconds=240.0 + taken, p90_wait_seconds=600.0)
    lines = (waiting // 2, waiting - waiting // 2)
    services = [ServiceStats(service_id=f"svc-{i}", taken=taken // 2, served=served // 2, abandoned=0,
                             waiting=lines[i], longest_wait_seconds=90.0 * lines[i], mean_wait_seconds=200.0 + i,
                             p90_wait_seconds=500.0)
                for i in range(2)]
    return QueueStats(stats_id=f"{hall}-{day}-{as_of:%H%M}-{final}", hall_id=hall, day=day, as_of=as_of, final=final,
                      total=total, services=services, windows=[])


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ZONE).astimezone(UTC)


def seed(conn: psycopg.Connection, now: datetime | None = None) -> date:
    """The county above; returns the month it filled (last month)."""
    today = county_today(now)
    month = last_month(today)
    conn.cursor().executemany("INSERT INTO hall_register (hall, name, township) VALUES (%s, %s, %s)",
                     [(hall, name, township) for hall, (name, township) in HALLS.items()])
    days = [month + timedelta(days=d) for d in (0, 1, 4, 9)]
    for index, hall in enumerate(HALLS):
        link(conn, hall, "online" if hall != "dafeng" else "offline", backlog=3 * index)
        for day in days:
            store(conn, UpKind.STATS, hall, [
                stats(hall, day, at(day, 12), False, 10, 4).model_dump_json(),
                stats(hall, day, at(day, 18), True, 20 + index, 0).model_dump_json()])
            ratings = [rating(hall, at(day, 9 + n % 8, n % 60), n,
                              Level.VERY_DISSATISFIED if n % 7 == index else Level.SATISFIED,
                              RatingChannel.DEFAULT if n % 5 == 4 else RatingChannel.PAD) for n in range(18 + index)]
            store(conn, UpKind.RATING, hall, [r.model_dump_json() for r in ratings])
            bad = [r for r in ratings if r.level.bad]
            store(conn, UpKind.CASE, hall, [case(r, CaseStep.OPENED, r.served_at, day + timedelta(days=5)).model_dump_json()
                                            for r in bad])
            store(conn, UpKind.CASE, hall, [case(r, CaseStep.CLOSED, r.served_at + timedelta(days=1),
                                                 day + timedelta(days=5)).model_dump_json()
                                            for r in bad[1:]])  # the first bad rating of each day stays open
            if day == days[1]:  # appeals: one upheld (the rating is voided), one rejected (handling goes on)
                store(conn, UpKind.CASE, hall, [
                    *(case(bad[1], step, bad[1].served_at + timedelta(hours=h), day + timedelta(days=5))
                      .model_dump_json() for step, h in ((CaseStep.APPEALED, 2), (CaseStep.APPEAL_UPHELD, 3))),
                    *(case(bad[0], step, bad[0].served_at + timedelta(hours=h), day + timedelta(days=5))
                      .model_dump_json() for step, h in ((CaseStep.APPEALED, 2), (CaseStep.APPEAL_REJECTED, 3)))])
        for hour, taken, waiting in ((9, 4, 2), (10, 9, 3), (11, 15, 5)):
            store(conn, UpKind.STATS, hall, [stats(hall, today, at(today, hour, 30), False, taken, waiting)
                                             .model_dump_json()])
        store(conn, UpKind.RATING, hall, [rating(hall, at(today, 9, n), n, Level.VERY_SATISFIED).model_dump_json()
                                          for n in range(1, 5 + index)])
        store(conn, UpKind.TELEMETRY, hall, [telemetry(hall, f"{kind}-1", kind, "online").model_dump_json()
                                             for kind in ("kiosk", "printer", "pad")])
    return month


def case(rating: Rating, step: CaseStep, when: datetime, deadline: date) -> CaseUpdate:
    return CaseUpdate(update_id=f"u-{rating.rating_id}-{step.value}", case_id=f"c-{rating.rating_id}",
                      rating_id=rating.rating_id, hall_id=rating.hall_id, step=step, by="manager", at=when,
                      deadline=deadline)


def telemetry(hall: str, device: str, kind: str, state: Presence, paper: str | None = None,
              observed: datetime | None = None, faults: list[str] | None = None) -> DeviceTelemetry:
    return DeviceTelemetry(telemetry_id=f"t-{next(_ids)}", hall_id=hall, device=device, kind=kind, state=state,
                           session=1, version="1.4.2", observed_at=observed or datetime.now(UTC),
                           paper=paper if paper is not None else ("ok" if kind == "printer" else None),
                           faults=faults or [])
