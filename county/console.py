"""What the county console shows, read from the summaries of migration 4 (county/schema.py).

The summaries are kept by triggers in the transaction that stores the rows, so these queries
never scan the raw tables for a county-wide figure: a day or a month of 500 halls is a few
thousand summary rows. Raw tables are read only for one hall's day (its statistics snapshots,
its ratings by hour) and for bounded lists (the newest bad ratings, overdue cases), each through
an index. Figures follow county/report.py (its definitions are :data:`county.report.DEFINITIONS`);
a month adds up the days (tests/county_web compares the two).

Every query takes a :class:`Scope`: the whole county, or the halls a township leader may see.
No resident data is read: ratings carry none but their comment, in which long digit runs (a phone
or ID number a resident typed) are masked before they are shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from hallkit.county.schema import SUMMARY_ZONE
from hallkit.devices.printer.status import PaperLevel
from pydantic import BaseModel, ConfigDict

from hallkit.queue.numbering import ticket_id_prefix

ZONE = ZoneInfo(SUMMARY_ZONE)
VISIT_OFFLINE_MINUTES = 30
"""A device offline longer than this needs someone to go and look; a restart takes less."""
MIN_RANKED = 20
"""Fewer ratings than this in the period: shown, but not ranked (too few to compare)."""
BAD_LIST_LIMIT = 200
DEVICE_LIST_LIMIT = 1000
MONTH_DEFINITIONS = tuple(f"county.definition.{name}" for name in ("month", "bad_rate", "ranking", "privacy"))
"""What the console adds to the daily report's definitions (:data:`county.report.DEFINITIONS`)."""
OVERDUE_LIST_LIMIT = 500
OVERDUE_SHOWN = 50
"""The 督办 list shows the longest overdue first, this many unless asked for all (up to the limit)."""


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class Scope(_View):
    """The halls a login may see; ``None``: the whole county."""

    halls: tuple[str, ...] | None

    def allows(self, hall: str) -> bool:
        return self.halls is None or hall in self.halls

    @property
    def param(self) -> list[str] | None:
        return list(self.halls) if self.halls is not None else None


WHOLE_COUNTY = Scope(halls=None)


def _scoped(column: str = "hall") -> str:
    return f"(%(halls)s::text[] IS NULL OR {column} = ANY(%(halls)s::text[]))"


def share(part: int | None, whole: int | None) -> float | None:
    return round(part / whole, 4) if part is not None and whole else None


def county_today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(ZONE).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), ZONE)


# ---- halls -----------------------------------------------------------------------------------


class HallRow(_View):
    hall: str
    name: str
    township: str
    link_state: str | None
    last_seen: datetime | None
    silent: bool
    backlog: int | None
    unsent: int | None
    awaiting_receipt: int | None
    taken: int | None
    served: int | None
    waiting: int | None
    longest_wait_minutes: float | None
    """最长等候 when the hall's latest statistics of the day were made; None: not sent (an older hall)."""
    mean_wait_minutes: float | None
    p90_wait_minutes: float | None
    ratings: int
    bad: int
    satisfaction: float | None
    cases_open: int
    cases_overdue: int
    devices_offline: int
    devices_attention: int


_OPEN_CASES = f"""SELECT hall, count(*) AS open, count(*) FILTER (WHERE deadline < %(today)s) AS overdue
    FROM case_latest WHERE NOT finished AND {_scoped()} GROUP BY hall"""


def open_cases(conn: psycopg.Connection, scope: Scope, today: date) -> dict[str, tuple[int, int]]:
    """Every open case per hall and those overdue, now, whatever day their rating was (a partial index)."""
    rows = conn.execute(_OPEN_CASES, {"today": today, "halls": scope.param})
    return {hall: (open_count, overdue) for hall, open_count, overdue in rows}


def halls_overview(conn: psycopg.Connection, scope: Scope, day: date, now: datetime,
                   silent_hours: float = 24.0) -> list[HallRow]:
    """Every hall the scope allows, with its link and ``day``'s figures (today: so far)."""
    params: dict[str, Any] = {"halls": scope.param, "day": day, "today": county_today(now),
                              "visit": now - timedelta(minutes=VISIT_OFFLINE_MINUTES),
                              "paper": [PaperLevel.NEAR_END.value, PaperLevel.OUT.value]}
    rows = conn.execute(f"""
        WITH known AS (SELECT hall FROM halls UNION SELECT hall FROM hall_register)
        SELECT k.hall, coalesce(g.name, ''), coalesce(g.township, ''), to_jsonb(h), s.body -> 'total',
               coalesce(r.ratings, 0), coalesce(r.bad, 0), coalesce(r.satisfied, 0),
               coalesce(c.open, 0), coalesce(c.overdue, 0), coalesce(d.offline, 0), coalesce(d.attention, 0)
        FROM known k
        LEFT JOIN hall_register g ON g.hall = k.hall
        LEFT JOIN halls h ON h.hall = k.hall
        LEFT JOIN stats_latest s ON s.hall = k.hall AND s.day = %(day)s
        LEFT JOIN (SELECT hall, sum(ratings) AS ratings, sum(bad) AS bad, sum(satisfied) AS satisfied
                   FROM rating_daily WHERE day = %(day)s AND {_scoped()} GROUP BY hall) r ON r.hall = k.hall
        LEFT JOIN ({_OPEN_CASES}) c ON c.hall = k.hall
        LEFT JOIN (SELECT hall, count(*) FILTER (WHERE state = 'offline') AS offline,
                          count(*) FILTER (WHERE (state = 'offline' AND state_since < %(visit)s)
                                           OR paper = ANY(%(paper)s) OR faults <> '[]'::jsonb) AS attention
                   FROM devices WHERE {_scoped()} GROUP BY hall) d ON d.hall = k.hall
        WHERE {_scoped('k.hall')}
        ORDER BY k.hall""", params).fetchall()
    result = []
    for hall, name, township, link_or_none, total_or_none, ratings, bad, satisfied, open_cases, overdue, offline, \
            attention in rows:
        link = link_or_none or {}
        last_seen = datetime.fromisoformat(link["last_seen"]) if link.get("last_seen") else None
        total = total_or_none or {}
        result.append(HallRow(
            hall=hall, name=name, township=township, link_state=link.get("link_state"), last_seen=last_seen,
            silent=last_seen is None or now - last_seen > timedelta(hours=silent_hours),
            # Columns a later migration adds (the receipts' split of the backlog) show once they exist.
            backlog=link.get("backlog"), unsent=link.get("unsent"), awaiting_receipt=link.get("awaiting_receipt"),
            taken=total.get("taken"), served=total.get("served"), waiting=total.get("waiting"),
            longest_wait_minutes=_minutes(total.get("longest_wait_seconds")),
            mean_wait_minutes=_minutes(total.get("mean_wait_seconds")),
            p90_wait_minutes=_minutes(total.get("p90_wait_seconds")),
            ratings=ratings, bad=bad, satisfaction=share(satisfied, ratings), cases_open=open_cases,
            cases_overdue=overdue, devices_offline=offline, devices_attention=attention))
    return result


class HourRow(_View):
    hour: int
    taken: int | None
    waiting: int | None
    ratings: int
    bad: int


class ServiceQueueRow(_View):
    service_id: str
    taken: int
    served: int
    abandoned: int
    waiting: int
    longest_wait_minutes: float | None
    mean_wait_minutes: float | None


class HallDetail(_View):
    row: HallRow
    day: date
    hours: list[HourRow]
    services: list[ServiceQueueRow]
    rated_services: list[RatingFigures]
    staff: list[RatingFigures]
    service_names: dict[str, str]


def hall_detail(conn: psycopg.Connection, scope: Scope, hall: str, day: date, now: datetime) -> HallDetail | None:
    if not scope.allows(hall):
        return None
    rows = halls_overview(conn, Scope(halls=(hall,)), day, now)
    if not rows:
        return None
    start = day_start(day)
    snapshots = conn.execute(
        """SELECT as_of, (body -> 'total' ->> 'taken')::int, (body -> 'total' ->> 'waiting')::int
           FROM queue_stats WHERE hall = %s AND day = %s ORDER BY as_of""", (hall, day)).fetchall()
    # The day's ratings are its tickets' (as in the report); a day's service can run past midnight.
    rated = {int(h): (n, b) for h, n, b in conn.execute(
        """SELECT extract(hour FROM served_at AT TIME ZONE %s), count(*), count(*) FILTER (WHERE level <= 2)
           FROM ratings WHERE hall = %s AND served_at >= %s AND served_at < %s AND ticket_id LIKE %s GROUP BY 1""",
        (SUMMARY_ZONE, hall, start - timedelta(days=1), start + timedelta(days=2), ticket_id_prefix(day) + "%"))}
    services = [ServiceQueueRow(service_id=s, taken=t, served=v, abandoned=a, waiting=w,
                                longest_wait_minutes=_minutes(longest), mean_wait_minutes=_minutes(m))
                for s, t, v, a, w, longest, m in conn.execute(
                    """SELECT service_id, taken, served, abandoned, waiting, longest_wait_seconds, mean_wait_seconds
                       FROM stats_service_daily WHERE hall = %s AND day = %s ORDER BY taken DESC, service_id""",
                    (hall, day))]
    period = Period(start=day, end=day)
    scope_one = Scope(halls=(hall,))
    # Statistics name a service by the hall's id; a hall whose ids are its catalogue codes gets names.
    names: dict[str, str] = dict(conn.execute("SELECT DISTINCT ON (service_code) service_code, service_name FROM rating_monthly "
                              "WHERE hall = %s ORDER BY service_code, month DESC", (hall,)).fetchall())
    return HallDetail(row=rows[0], day=day, hours=hourly(snapshots, rated), services=services, service_names=names,
                      rated_services=satisfaction(conn, scope_one, period, Grouping.SERVICE),
                      staff=satisfaction(conn, scope_one, period, Grouping.STAFF))


def hourly(snapshots: Iterable[tuple[datetime, int, int]], rated: dict[int, tuple[int, int]]) -> list[HourRow]:
    """Tickets taken in each hour (the difference of the cumulative statistics at the hour's end)
    and the queue at the hour's end; ratings of services done in that hour."""
    at_end: dict[int, tuple[int | None, int | None]] = {}
    for as_of, taken_by_then, waiting_then in snapshots:
        at_end[as_of.astimezone(ZONE).hour] = (taken_by_then, waiting_then)  # ordered by time: the hour's last wins
    hours = sorted(set(at_end) | set(rated))
    if not hours:
        return []
    result = []
    previous = 0
    for hour in range(hours[0], hours[-1] + 1):
        taken, waiting = at_end.get(hour, (None, None))
        count, bad = rated.get(hour, (0, 0))
        # A cumulative count that went down (the hall started its day's figures again): that hour is unknown.
        per_hour = taken - previous if taken is not None and taken >= previous else None
        result.append(HourRow(hour=hour, taken=per_hour, waiting=waiting, ratings=count, bad=bad))
        if taken is not None:
            previous = taken
    return result


# ---- 好差评 -----------------------------------------------------------------------------------


class Grouping(StrEnum):
    HALL = "hall"
    SERVICE = "service"
    DEPARTMENT = "department"
    STAFF = "staff"


class Period(_View):
    """Whole days, ``start`` to ``end`` inclusive, in the county's zone."""

    start: date
    end: date

    def months(self) -> list[date]:
        """First days of the months wholly inside the period."""
        first = self.start if self.start.day == 1 else _next_month(self.start)
        months = []
        while _next_month(first) - timedelta(days=1) <= self.end:
            months.append(first)
            first = _next_month(first)
        return months

    def edges(self) -> list[tuple[date, date]]:
        """Day ranges of the period outside :meth:`months`."""
        months = self.months()
        if not months:
            return [(self.start, self.end)]
        edges = []
        if self.start < months[0]:
            edges.append((self.start, months[0] - timedelta(days=1)))
        after = _next_month(months[-1])
        if after <= self.end:
            edges.append((after, self.end))
        return edges


def month_period(month: date) -> Period:
    first = month.replace(day=1)
    return Period(start=first, end=_next_month(first) - timedelta(days=1))


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


class RatingFigures(_View):
    key: str
    hall: str
    name: str
    ratings: int
    bad: int
    satisfied: int
    given: int
    satisfaction: float | None
    bad_rate: float | None
    mean_score: float | None
    rank: int | None


_GROUP_COLUMNS = {  # key, hall, name, GROUP BY: staff ids are a hall's own, services and departments county-wide
    Grouping.HALL: ("x.hall", "x.hall", "coalesce(max(g.name), x.hall)", "x.hall"),
    Grouping.SERVICE: ("x.service_code", "''", "max(x.service_name)", "x.service_code"),
    Grouping.DEPARTMENT: ("x.department", "''", "x.department", "x.department"),
    Grouping.STAFF: ("x.staff", "x.hall", "max(x.staff_name)", "x.hall, x.staff"),
}


def _summary_source(period: Period) -> tuple[str, dict[str, Any]]:
    """Rating summary rows of ``period``: whole months from the monthly table, the rest by day."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    for index, (first, last) in enumerate(period.edges()):
        parts.append(f"SELECT * FROM rating_daily WHERE day BETWEEN %(e{index}a)s AND %(e{index}b)s")
        params |= {f"e{index}a": first, f"e{index}b": last}
    if months := period.months():
        parts.append("SELECT * FROM rating_monthly WHERE month = ANY(%(months)s)")
        params["months"] = months
    return " UNION ALL ".join(parts), params


def satisfaction(conn: psycopg.Connection, scope: Scope, period: Period, by: Grouping) -> list[RatingFigures]:
    """满意率 and 差评率 per hall, service, department or staff member, ranked (排名) by 满意率."""
    key, hall, name, groups = _GROUP_COLUMNS[by]
    source, params = _summary_source(period)
    rows = conn.execute(f"""
        SELECT {key}, {hall}, {name}, sum(x.ratings), sum(x.bad), sum(x.satisfied), sum(x.given), sum(x.score_sum)
        FROM ({source}) x LEFT JOIN hall_register g ON g.hall = x.hall
        WHERE {_scoped('x.hall')}
        GROUP BY {groups}""", params | {"halls": scope.param}).fetchall()
    figures = [RatingFigures(key=k, hall=h, name=n or k, ratings=int(r), bad=int(b), satisfied=int(s), given=int(g),
                             satisfaction=share(int(s), int(r)), bad_rate=share(int(b), int(r)),
                             mean_score=round(int(total) / int(r), 2) if r else None, rank=None)
               for k, h, n, r, b, s, g, total in rows]
    return ranked(figures)


def ranked(figures: list[RatingFigures]) -> list[RatingFigures]:
    """Best 满意率 first (then fewer 差评, then more ratings); equal figures share a rank; too few
    ratings: listed last, unranked."""
    order = sorted(figures, key=lambda f: (f.ratings < MIN_RANKED, -(f.satisfaction or 0), f.bad_rate or 0,
                                           -f.ratings, f.name))
    result: list[RatingFigures] = []
    for position, row in enumerate(order, 1):
        if row.ratings < MIN_RANKED:
            result.append(row)
            continue
        previous = result[-1] if result else None
        tie = previous is not None and previous.rank is not None and (previous.satisfaction, previous.bad_rate) == (
            row.satisfaction, row.bad_rate)
        result.append(row.model_copy(update={"rank": previous.rank if tie and previous else position}))
    return result


class BadRating(_View):
    hall: str
    hall_name: str
    served_at: datetime
    rated_at: datetime
    ticket_number: str
    service: str
    department: str
    window: int
    staff: str | None
    level: int
    channel: str
    tags: list[str]
    comment: str
    case_id: str | None
    case_step: str | None
    deadline: date | None


_LONG_NUMBER = re.compile(r"\d{6,}")


def mask_numbers(comment: str) -> str:
    """A run of six or more digits (a phone or ID number typed into a comment) shows as stars."""
    return _LONG_NUMBER.sub(lambda m: m.group()[:2] + "*" * (len(m.group()) - 2), comment)


def bad_ratings(conn: psycopg.Connection, scope: Scope, period: Period, limit: int = BAD_LIST_LIMIT) -> list[BadRating]:
    """The newest bad ratings of the period, with the state of their case."""
    rows = conn.execute(f"""
        SELECT r.hall, coalesce(g.name, r.hall), r.served_at, r.rated_at, r.ticket_number, r.service_name,
               r.department, r.window_no, r.staff_name, r.level, r.channel, r.tags, r.comment,
               c.case_id, c.step, c.deadline
        FROM ratings r
        LEFT JOIN case_latest c ON c.hall = r.hall AND c.rating_id = r.rating_id
        LEFT JOIN hall_register g ON g.hall = r.hall
        WHERE r.level <= 2 AND r.served_at >= %(start)s AND r.served_at < %(end)s AND {_scoped('r.hall')}
        ORDER BY r.served_at DESC LIMIT %(limit)s""",
        {"start": day_start(period.start), "end": day_start(period.end + timedelta(days=1)),
         "halls": scope.param, "limit": limit}).fetchall()
    return [BadRating(hall=hall, hall_name=name, served_at=served, rated_at=rated, ticket_number=ticket,
                      service=service, department=department, window=window, staff=staff, level=level,
                      channel=channel, tags=list(tags), comment=mask_numbers(comment), case_id=case_id,
                      case_step=step, deadline=deadline)
            for (hall, name, served, rated, ticket, service, department, window, staff, level, channel, tags,
                 comment, case_id, step, deadline) in rows]


class OverdueCase(_View):
    hall: str
    hall_name: str
    township: str
    case_id: str
    step: str
    deadline: date
    days_over: int
    opened_at: datetime
    service: str | None
    staff: str | None
    level: int | None
    tags: list[str]


def overdue_cases(conn: psycopg.Connection, scope: Scope, today: date,
                  limit: int = OVERDUE_LIST_LIMIT) -> list[OverdueCase]:
    """Open cases past their deadline (督办), the longest overdue first."""
    rows = conn.execute(f"""
        SELECT c.hall, coalesce(g.name, c.hall), coalesce(g.township, ''), c.case_id, c.step, c.deadline,
               c.opened_at, r.service_name, r.staff_name, r.level, r.tags
        FROM case_latest c
        LEFT JOIN ratings r ON r.hall = c.hall AND r.rating_id = c.rating_id
        LEFT JOIN hall_register g ON g.hall = c.hall
        WHERE NOT c.finished AND c.deadline < %(today)s AND {_scoped('c.hall')}
        ORDER BY c.deadline, c.hall, c.case_id LIMIT %(limit)s""",
        {"today": today, "halls": scope.param, "limit": limit}).fetchall()
    return [OverdueCase(hall=hall, hall_name=name, township=township, case_id=case_id, step=step, deadline=deadline,
                        days_over=(today - deadline).days, opened_at=opened, service=service, staff=staff,
                        level=level, tags=list(tags or []))
            for hall, name, township, case_id, step, deadline, opened, service, staff, level, tags in rows]


# ---- devices ---------------------------------------------------------------------------------


class DeviceLine(_View):
    hall: str
    hall_name: str
    device: str
    kind: str
    state: str
    state_since: datetime
    offline_minutes: int | None
    version: str
    paper: str | None
    faults: list[str]
    needs_visit: bool


class HallDevices(_View):
    """One line per hall: what its devices need, counted."""

    hall: str
    hall_name: str
    township: str
    devices: int
    offline: int
    longest_offline_minutes: int | None
    paper_low: int
    paper_out: int
    faulty: int
    needs_visit: int


class FleetView(_View):
    devices: list[DeviceLine]
    halls: list[HallDevices]
    kinds: dict[str, dict[str, int]]
    versions: dict[str, dict[str, int]]


def needs_visit(state: str, offline_minutes: int | None, paper: str | None, faults: list[str]) -> bool:
    return (state == "offline" and (offline_minutes or 0) >= VISIT_OFFLINE_MINUTES) or \
        paper in (PaperLevel.NEAR_END, PaperLevel.OUT) or bool(faults)


def fleet_view(conn: psycopg.Connection, scope: Scope, now: datetime) -> FleetView:
    lines = []
    for hall, name, device, kind, state, since, version, paper, faults in conn.execute(f"""
            SELECT d.hall, coalesce(g.name, d.hall), d.device, d.kind, d.state, d.state_since, d.version, d.paper,
                   d.faults
            FROM devices d LEFT JOIN hall_register g ON g.hall = d.hall
            WHERE {_scoped('d.hall')} ORDER BY d.hall, d.device""", {"halls": scope.param}):
        offline = int((now - since).total_seconds() // 60) if state == "offline" else None
        lines.append(DeviceLine(hall=hall, hall_name=name, device=device, kind=kind, state=state, state_since=since,
                                offline_minutes=offline, version=version, paper=paper, faults=list(faults),
                                needs_visit=needs_visit(state, offline, paper, list(faults))))
    townships = {hall: township for hall, township in conn.execute(
        f"SELECT hall, township FROM hall_register WHERE {_scoped()}", {"halls": scope.param})}
    return FleetView(devices=lines, halls=per_hall(lines, townships), kinds=_count_by(lines, "state"),
                     versions=_count_by(lines, "version"))


def fleet_stamp(conn: psycopg.Connection, scope: Scope) -> str:
    """Changes whenever a device the scope allows changes: an open devices page polls it to reload."""
    row = conn.execute(f"""
        SELECT count(*), md5(coalesce(string_agg(concat_ws('|', hall, device, state, state_since, paper, faults, version),
                                                 ',' ORDER BY hall, device), ''))
        FROM devices WHERE {_scoped()}""", {"halls": scope.param}).fetchone()
    return f"{row[0]}-{row[1]}" if row else ""


def per_hall(lines: list[DeviceLine], townships: dict[str, str]) -> list[HallDevices]:
    by_hall: dict[str, list[DeviceLine]] = {}
    for line in lines:
        by_hall.setdefault(line.hall, []).append(line)
    result = []
    for hall, devices in by_hall.items():
        offline = [d.offline_minutes for d in devices if d.offline_minutes is not None]
        result.append(HallDevices(
            hall=hall, hall_name=devices[0].hall_name, township=townships.get(hall, ""), devices=len(devices),
            offline=len(offline), longest_offline_minutes=max(offline) if offline else None,
            paper_low=sum(d.paper == PaperLevel.NEAR_END for d in devices),
            paper_out=sum(d.paper == PaperLevel.OUT for d in devices), faulty=sum(bool(d.faults) for d in devices),
            needs_visit=sum(d.needs_visit for d in devices)))
    return sorted(result, key=lambda h: (-h.needs_visit, -(h.longest_offline_minutes or 0), h.hall))


def _count_by(lines: list[DeviceLine], field: str) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for line in lines:
        by_value = counts.setdefault(line.kind, {})
        value = getattr(line, field) or "-"
        by_value[value] = by_value.get(value, 0) + 1
    return counts


# ---- the monthly report ----------------------------------------------------------------------


class HallMonth(_View):
    hall: str
    name: str
    township: str
    days: int
    taken: int | None
    served: int | None
    abandoned: int | None
    mean_wait_minutes: float | None
    ratings: int
    voided: int
    bad: int
    satisfaction: float | None
    bad_rate: float | None
    mean_score: float | None
    coverage: float | None
    cases_opened: int
    cases_open: int
    cases_overdue: int
    appeals: int
    appeals_upheld: int
    appeals_rejected: int


class MonthReport(_View):
    month: date
    generated_at: datetime
    halls: list[HallMonth]
    total: HallMonth
    services: list[RatingFigures]


def month_report(conn: psycopg.Connection, scope: Scope, month: date, now: datetime) -> MonthReport:
    """Per hall and per service, the days of ``month`` added up under the daily report's definitions."""
    period = month_period(month)
    params: dict[str, Any] = {"halls": scope.param, "start": period.start, "end": period.end,
                              "today": county_today(now), "month": period.start}
    queue = {row[0]: row[1:] for row in conn.execute(f"""
        SELECT hall, count(*), sum((body -> 'total' ->> 'taken')::int), sum((body -> 'total' ->> 'served')::int),
               sum((body -> 'total' ->> 'abandoned')::int),
               sum((body -> 'total' ->> 'mean_wait_seconds')::float8 * (body -> 'total' ->> 'served')::int),
               sum((body -> 'total' ->> 'served')::int) FILTER (WHERE body -> 'total' ->> 'mean_wait_seconds' IS NOT NULL)
        FROM stats_latest WHERE day BETWEEN %(start)s AND %(end)s AND {_scoped()} GROUP BY hall""", params)}
    rated = {row[0]: row[1:] for row in conn.execute(f"""
        SELECT hall, sum(ratings), sum(bad), sum(satisfied), sum(given), sum(score_sum), sum(voided)
        FROM rating_monthly WHERE month = %(month)s AND {_scoped()} GROUP BY hall""", params)}
    # The cases of the month's ratings, as the daily report counts the cases of a day's ratings.
    cases = {row[0]: row[1:] for row in conn.execute(f"""
        SELECT hall, count(*), count(*) FILTER (WHERE NOT finished),
               count(*) FILTER (WHERE NOT finished AND deadline < %(today)s), sum(appeals), sum(upheld), sum(rejected)
        FROM case_latest WHERE ticket_day BETWEEN %(start)s AND %(end)s AND {_scoped()} GROUP BY hall""", params)}
    names: dict[str, tuple[str, str]] = {hall: (name, township) for hall, name, township in conn.execute(
        f"SELECT hall, name, township FROM hall_register WHERE {_scoped()}", params)}
    halls = []
    for hall in sorted(set(queue) | set(rated) | set(names) | set(cases)):
        name, township = names.get(hall, (hall, ""))
        halls.append(_hall_month(hall, name, township, queue.get(hall, (0, None, None, None, None, None)),
                                 rated.get(hall, (0, 0, 0, 0, 0, 0)), cases.get(hall, (0, 0, 0, 0, 0, 0))))
    total = _hall_month("", "", "", _add(queue.values(), 6), _add(rated.values(), 6), _add(cases.values(), 6))
    return MonthReport(month=period.start, generated_at=now, halls=halls, total=total,
                       services=satisfaction(conn, scope, period, Grouping.SERVICE))


def _add(rows: Iterable[tuple[Any, ...]], width: int) -> list[Any]:
    """Column sums; a column with no figure at all stays None."""
    sums: list[Any] = [None] * width
    for row in rows:
        sums = [s if v is None else (v if s is None else s + v) for s, v in zip(sums, row, strict=True)]
    return sums


def _hall_month(hall: str, name: str, township: str, queue: Iterable[Any], rated: Iterable[Any],
                cases: Iterable[Any]) -> HallMonth:
    days, taken, served, abandoned, wait_weighted, wait_served = queue
    count, bad, satisfied, given, score, voided = (int(v or 0) for v in rated)
    opened, open_count, overdue, appeals, upheld, rejected = (int(v or 0) for v in cases)
    return HallMonth(
        hall=hall, name=name, township=township, days=days or 0, taken=taken, served=served, abandoned=abandoned,
        mean_wait_minutes=_minutes(wait_weighted / wait_served) if wait_served else None,
        ratings=count, voided=voided, bad=bad, satisfaction=share(satisfied, count), bad_rate=share(bad, count),
        mean_score=round(score / count, 2) if count else None, coverage=share(given, served),
        cases_opened=opened, cases_open=open_count, cases_overdue=overdue, appeals=appeals, appeals_upheld=upheld,
        appeals_rejected=rejected)


def _minutes(seconds: float | None) -> float | None:
    return round(seconds / 60, 1) if seconds is not None else None


HallDetail.model_rebuild()
