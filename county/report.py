"""What the county reads: per hall and day, and the device fleet. Queries and their plain-text form.

Definitions (also in docs/upstream.md):

- tickets and waits: the hall's latest statistics of that day (the final ones once the next day
  opened); a wait runs from taking a ticket to its first call;
- satisfaction (满意率): ratings at 基本满意 or better, over all ratings of services done that day;
- coverage (应评尽评): ratings residents gave (not the province's default for a missing one) over
  tickets served that day;
- a case is open until its latest step is closed or an appeal decision; overdue when open past
  its deadline;
- a hall is silent when nothing arrived from it for more than ``silent_hours``.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
from pydantic import BaseModel

from county.contract import QueueStats
from devices.printer.status import PaperLevel
from hallkit.i18n import bilingual, text

CLOSED_STEPS = ("closed", "appeal_upheld", "appeal_rejected")
DEFINITIONS = tuple(f"county.definition.{name}" for name in ("tickets", "satisfaction", "coverage", "cases", "silent"))
"""The definitions above as message keys: the console prints them on its reports, in both languages."""


class HallDay(BaseModel):
    hall: str
    county: str
    day: date
    taken: int | None
    served: int | None
    abandoned: int | None
    waiting: int | None
    mean_wait_minutes: float | None
    p90_wait_minutes: float | None
    stats_final: bool | None
    ratings: int
    bad_ratings: int
    satisfaction: float | None
    mean_score: float | None
    coverage: float | None
    cases_open: int
    cases_overdue: int
    last_seen: datetime | None
    silent: bool
    link_state: str | None
    backlog: int | None


class CountyReport(BaseModel):
    day: date
    generated_at: datetime
    silent_hours: float
    halls: list[HallDay]
    silent_halls: list[str]
    quarantined: int


class DeviceRow(BaseModel):
    hall: str
    device: str
    kind: str
    state: str
    state_since: datetime
    offline_hours: float | None
    version: str
    paper: str | None
    faults: list[str]
    observed_at: datetime


class Fleet(BaseModel):
    generated_at: datetime
    devices: list[DeviceRow]
    offline: int
    paper_low: int
    paper_out: int
    faulty: int
    versions: dict[str, dict[str, int]]


def county_report(conn: psycopg.Connection, day: date, zone: ZoneInfo, silent_hours: float,
                  now: datetime | None = None) -> CountyReport:
    now = now or datetime.now(UTC)
    start = datetime.combine(day, time(0), zone)
    end = start + timedelta(days=1)
    today = now.astimezone(zone).date()
    stats = {hall: QueueStats.model_validate(body) for hall, body in conn.execute(
        "SELECT DISTINCT ON (hall) hall, body FROM queue_stats WHERE day = %s ORDER BY hall, final DESC, as_of DESC",
        (day,))}
    ratings = {row[0]: row[1:] for row in conn.execute(
        """SELECT hall, count(*), count(*) FILTER (WHERE level <= 2), count(*) FILTER (WHERE level >= 3), avg(score),
                  count(*) FILTER (WHERE channel <> 'default')
           FROM ratings WHERE served_at >= %s AND served_at < %s GROUP BY hall""", (start, end))}
    cases = {row[0]: row[1:] for row in conn.execute(
        """SELECT hall, count(*) FILTER (WHERE step <> ALL(%s)),
                  count(*) FILTER (WHERE step <> ALL(%s) AND deadline < %s)
           FROM (SELECT DISTINCT ON (hall, case_id) hall, step, deadline FROM case_updates
                 ORDER BY hall, case_id, at DESC, seq DESC) latest GROUP BY hall""",
        (list(CLOSED_STEPS), list(CLOSED_STEPS), today))}
    halls = {row[0]: row[1:] for row in conn.execute(
        "SELECT hall, county, last_seen, link_state, backlog FROM halls")}
    quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    rows: list[HallDay] = []
    for hall in sorted(set(halls) | set(stats) | set(ratings)):
        county, last_seen, link_state, backlog = halls.get(hall, ("", None, None, None))
        day_stats = stats.get(hall)
        total = day_stats.total if day_stats else None
        count, bad, good, mean_score, given = ratings.get(hall, (0, 0, 0, None, 0))
        open_cases, overdue = cases.get(hall, (0, 0))
        silent = last_seen is None or now - last_seen > timedelta(hours=silent_hours)
        rows.append(HallDay(
            hall=hall, county=county, day=day,
            taken=total.taken if total else None, served=total.served if total else None,
            abandoned=total.abandoned if total else None, waiting=total.waiting if total else None,
            mean_wait_minutes=_minutes(total.mean_wait_seconds) if total else None,
            p90_wait_minutes=_minutes(total.p90_wait_seconds) if total else None,
            stats_final=day_stats.final if day_stats else None,
            ratings=count, bad_ratings=bad, satisfaction=round(good / count, 4) if count else None,
            mean_score=round(float(mean_score), 2) if mean_score is not None else None,
            coverage=round(given / total.served, 4) if total and total.served else None,
            cases_open=open_cases, cases_overdue=overdue, last_seen=last_seen, silent=silent,
            link_state=link_state, backlog=backlog))
    return CountyReport(day=day, generated_at=now, silent_hours=silent_hours, halls=rows,
                        silent_halls=[r.hall for r in rows if r.silent],
                        quarantined=int(quarantined[0]) if quarantined else 0)


def fleet(conn: psycopg.Connection, now: datetime | None = None) -> Fleet:
    now = now or datetime.now(UTC)
    devices = [DeviceRow(hall=hall, device=device, kind=kind, state=state, state_since=since,
                         offline_hours=round((now - since).total_seconds() / 3600, 1) if state == "offline" else None,
                         version=version, paper=paper, faults=faults, observed_at=observed)
               for hall, device, kind, state, since, version, paper, faults, observed in conn.execute(
                   """SELECT hall, device, kind, state, state_since, version, paper, faults, observed_at
                      FROM devices ORDER BY hall, device""")]
    versions: dict[str, dict[str, int]] = {}
    for row in devices:
        by_version = versions.setdefault(row.kind, {})
        by_version[row.version] = by_version.get(row.version, 0) + 1
    return Fleet(generated_at=now, devices=devices, offline=sum(d.state == "offline" for d in devices),
                 paper_low=sum(d.paper == PaperLevel.NEAR_END for d in devices), paper_out=sum(d.paper == PaperLevel.OUT for d in devices),
                 faulty=sum(bool(d.faults) for d in devices), versions=versions)


def _minutes(seconds: float | None) -> float | None:
    return round(seconds / 60, 1) if seconds is not None else None


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


REPORT_COLUMNS = ("hall", "taken", "served", "abandoned", "waiting", "mean_wait", "p90_wait", "ratings", "bad",
                  "satisfaction", "coverage", "cases_open", "overdue")
FLEET_COLUMNS = ("hall", "device", "kind", "state", "version", "problems")


def _table(columns: tuple[str, ...], rows: list[list[str]], prefix: str) -> list[str]:
    """Headers in Chinese and English, then the rows; the first column left-aligned, the rest right."""
    headers = [[text(f"{prefix}.{c}", lang) for c in columns] for lang in ("zh", "en")]
    widths = [max(_width(r[i]) for r in [*headers, *rows]) + 2 for i in range(len(columns))]
    lines = []
    for row in [*headers, *rows]:
        cells = [row[0] + " " * (widths[0] - _width(row[0]))]
        cells += [" " * (width - _width(cell)) + cell for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("".join(cells).rstrip())
    return lines


def _width(cell: str) -> int:
    """Columns a string takes on a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in cell)


def render_report(report: CountyReport) -> str:
    lines = [bilingual("county.report.title", day=report.day.isoformat(), halls=len(report.halls))]
    rows = [[row.hall, _cell(row.taken), _cell(row.served), _cell(row.abandoned), _cell(row.waiting),
             _cell(row.mean_wait_minutes), _cell(row.p90_wait_minutes), str(row.ratings), str(row.bad_ratings),
             _percent(row.satisfaction), _percent(row.coverage), str(row.cases_open), str(row.cases_overdue)]
            for row in report.halls]
    lines += _table(REPORT_COLUMNS, rows, "county.report.col")
    if report.silent_halls:
        lines.append(bilingual("county.report.silent", hours=report.silent_hours,
                               halls=", ".join(report.silent_halls)))
    if report.quarantined:
        lines.append(bilingual("county.report.quarantined", count=report.quarantined))
    return "\n".join(lines)


def render_fleet(result: Fleet) -> str:
    lines = [bilingual("county.devices.title", devices=len(result.devices), offline=result.offline,
                       low=result.paper_low, out=result.paper_out, faulty=result.faulty)]
    rows = []
    for row in result.devices:
        problems = []
        if row.state == "offline":
            problems.append(bilingual("county.devices.offline_for", hours=_cell(row.offline_hours)))
        if row.paper == PaperLevel.NEAR_END:
            problems.append(bilingual("county.devices.paper_low"))
        elif row.paper == PaperLevel.OUT:
            problems.append(bilingual("county.devices.paper_out"))
        problems += [bilingual(fault) for fault in row.faults]
        rows.append([row.hall, row.device, row.kind, row.state, row.version or "-", "; ".join(problems) or "-"])
    lines += _table(FLEET_COLUMNS, rows, "county.devices.col")
    for kind, versions in sorted(result.versions.items()):
        lines.append(bilingual("county.devices.versions", kind=kind,
                               versions=", ".join(f"{v or '-'} ×{n}" for v, n in sorted(versions.items()))))
    return "\n".join(lines)


def _percent(share: float | None) -> str:
    return f"{share * 100:.1f}%" if share is not None else "-"
