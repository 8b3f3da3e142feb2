"""What the county reads: per hall and day, and the device fleet. Queries and their plain-text form.

The figures of a hall's day are the hall's own, defined once (docs/queue.md, "Daily figures"):

- tickets and waits: the hall's latest statistics of that day (the final ones once the next day
  opened), folded by the hall with ``hallkit.queue.figures``;
- ratings, cases and appeals: computed here in SQL from the records the hall sent, to the
  definitions of ``hallkit.rating.report`` exactly: a day's ratings are those whose ticket id
  starts with the day (the queue's business day, not ``served_at``); a rating is voided when its
  case has an ``appeal_upheld`` step and is then left out of every rate; a case is open until it
  has a ``closed`` or ``appeal_upheld`` step (``appeal_rejected`` does not close it); overdue when
  open and its deadline is before the day the report is made;
- a hall is silent when nothing arrived from it for more than ``silent_hours``.
- quarantine, per hall (the topic's, i.e. the sender's): messages kept, and those dropped over
  its limits (``county.quarantine``), since the database began.

Every figure is per hall: item ids are the sending hall's own, so joins between tables are on
(hall, id).
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from hallkit.contracts.uplink import QueueStats
from hallkit.devices.printer.status import PaperLevel
from pydantic import BaseModel, Field

from hallkit.i18n import Lang, bilingual, text
from hallkit.queue.numbering import ticket_id_prefix
from hallkit.rating.cases import FINISHING_STEPS
from hallkit.rating.models import CaseStep

DAY_CASES = """
    SELECT u.hall, u.rating_id, bool_or(u.step = ANY(%(finishing)s)) AS finished,
           bool_or(u.step = %(upheld)s) AS voided, max(u.deadline) AS deadline,
           count(*) FILTER (WHERE u.step = %(appealed)s) AS appeals,
           count(*) FILTER (WHERE u.step = %(upheld)s) AS upheld,
           count(*) FILTER (WHERE u.step = %(rejected)s) AS rejected
    FROM case_updates u JOIN ratings r ON r.hall = u.hall AND r.rating_id = u.rating_id
    WHERE r.ticket_id LIKE %(day)s
    GROUP BY u.hall, u.rating_id"""
"""Per rating of the day, its case's outcome from all its steps (``hallkit.rating.cases.case_outcomes``)."""
DEFINITIONS = tuple(f"county.definition.{name}" for name in ("tickets", "day", "satisfaction", "coverage", "cases",
                                                             "silent"))
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
    ratings: int = Field(description="counted: given or defaulted, less voided (hallkit.rating.report)")
    voided: int
    bad_ratings: int
    satisfaction: float | None
    bad_rate: float | None
    mean_score: float | None
    coverage: float | None
    cases_open: int
    cases_overdue: int
    appeals: int
    appeals_upheld: int
    appeals_rejected: int
    last_seen: datetime | None
    silent: bool
    link_state: str | None
    backlog: int | None
    unsent: int | None
    unsent_oldest_minutes: float | None
    awaiting_receipt: int | None
    awaiting_oldest_minutes: float | None
    link_at: datetime | None
    """When the hall last reported its link and backlog (in the county's time zone)."""


class HallQuarantine(BaseModel):
    hall: str
    kept: int
    kept_bytes: int
    dropped: int
    dropped_bytes: int
    truncated: int
    last_dropped_at: datetime | None


class CountyReport(BaseModel):
    day: date
    generated_at: datetime
    silent_hours: float
    halls: list[HallDay]
    silent_halls: list[str]
    quarantined: int
    quarantine: list[HallQuarantine]


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
    today = now.astimezone(zone).date()
    stats = {hall: QueueStats.model_validate(body) for hall, body in conn.execute(
        "SELECT DISTINCT ON (hall) hall, body FROM queue_stats WHERE day = %s ORDER BY hall, final DESC, as_of DESC",
        (day,))}
    day_params = {"day": ticket_id_prefix(day) + "%", "finishing": [str(s) for s in FINISHING_STEPS],
                  "appealed": CaseStep.APPEALED.value, "upheld": CaseStep.APPEAL_UPHELD.value,
                  "rejected": CaseStep.APPEAL_REJECTED.value, "today": today}
    # Ratings and cases of the day by its ticket ids (the queue's business day), as the hall counts them.
    ratings = {row[0]: row[1:] for row in conn.execute(
        f"""SELECT r.hall, count(*) FILTER (WHERE NOT coalesce(c.voided, false)),
                  count(*) FILTER (WHERE NOT coalesce(c.voided, false) AND r.level <= 2),
                  count(*) FILTER (WHERE NOT coalesce(c.voided, false) AND r.level >= 3),
                  avg(r.score) FILTER (WHERE NOT coalesce(c.voided, false)),
                  count(*) FILTER (WHERE r.channel <> 'default'), count(*) FILTER (WHERE c.voided)
           FROM ratings r LEFT JOIN ({DAY_CASES}) c ON c.hall = r.hall AND c.rating_id = r.rating_id
           WHERE r.ticket_id LIKE %(day)s GROUP BY r.hall""", day_params)}
    cases = {row[0]: row[1:] for row in conn.execute(
        f"""SELECT hall, count(*) FILTER (WHERE NOT finished), count(*) FILTER (WHERE NOT finished AND deadline < %(today)s),
                  sum(appeals), sum(upheld), sum(rejected)
           FROM ({DAY_CASES}) c GROUP BY hall""", day_params)}
    halls = {row[0]: row[1:] for row in conn.execute(
        """SELECT hall, county, last_seen, link_state, backlog, unsent, unsent_oldest_seconds, awaiting_receipt,
                  awaiting_oldest_seconds, link_at FROM halls""")}
    quarantine = [HallQuarantine(hall=hall, kept=kept, kept_bytes=kept_bytes, dropped=dropped,
                                 dropped_bytes=dropped_bytes, truncated=truncated, last_dropped_at=last_dropped)
                  for hall, kept, kept_bytes, dropped, dropped_bytes, truncated, last_dropped in conn.execute(
        """SELECT hall, coalesce(k.kept, 0), coalesce(k.kept_bytes, 0), coalesce(d.dropped_messages, 0),
                  coalesce(d.dropped_bytes, 0), coalesce(d.truncated_messages, 0), d.last_dropped_at
           FROM (SELECT hall, count(*) AS kept, sum(octet_length(payload)) AS kept_bytes FROM quarantine
                 GROUP BY hall) AS k
               FULL JOIN quarantine_halls AS d USING (hall)
           WHERE k.kept > 0 OR d.dropped_messages > 0
           ORDER BY hall""")]
    rows: list[HallDay] = []
    for hall in sorted(set(halls) | set(stats) | set(ratings)):
        county, last_seen, link_state, backlog, unsent, unsent_oldest, awaiting, awaiting_oldest, link_at = \
            halls.get(hall, ("", None, None, None, None, None, None, None, None))
        day_stats = stats.get(hall)
        total = day_stats.total if day_stats else None
        count, bad, good, mean_score, given, voided = ratings.get(hall, (0, 0, 0, None, 0, 0))
        open_cases, overdue, appeals, upheld, rejected = cases.get(hall, (0, 0, 0, 0, 0))
        silent = last_seen is None or now - last_seen > timedelta(hours=silent_hours)
        rows.append(HallDay(
            hall=hall, county=county, day=day,
            taken=total.taken if total else None, served=total.served if total else None,
            abandoned=total.abandoned if total else None, waiting=total.waiting if total else None,
            mean_wait_minutes=_minutes(total.mean_wait_seconds) if total else None,
            p90_wait_minutes=_minutes(total.p90_wait_seconds) if total else None,
            stats_final=day_stats.final if day_stats else None,
            ratings=count, voided=voided, bad_ratings=bad, satisfaction=round(good / count, 4) if count else None,
            bad_rate=round(bad / count, 4) if count else None,
            mean_score=round(float(mean_score), 2) if mean_score is not None else None,
            coverage=round(given / total.served, 4) if total and total.served else None,
            cases_open=open_cases, cases_overdue=overdue, appeals=int(appeals), appeals_upheld=int(upheld),
            appeals_rejected=int(rejected), last_seen=last_seen, silent=silent,
            link_state=link_state, backlog=backlog, unsent=unsent, unsent_oldest_minutes=_minutes(unsent_oldest),
            awaiting_receipt=awaiting, awaiting_oldest_minutes=_minutes(awaiting_oldest),
            link_at=link_at.astimezone(zone) if link_at is not None else None))
    return CountyReport(day=day, generated_at=now, silent_hours=silent_hours, halls=rows,
                        silent_halls=[r.hall for r in rows if r.silent],
                        quarantined=sum(q.kept for q in quarantine), quarantine=quarantine)


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
KIB = 1024
MIB = 1024 * KIB
QUARANTINE_COLUMNS = ("hall", "kept", "kept_size", "dropped", "dropped_size", "truncated")


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
    lines += [_held(row) for row in report.halls if row.unsent or row.awaiting_receipt]
    if report.silent_halls:
        lines.append(bilingual("county.report.silent", hours=report.silent_hours,
                               halls=", ".join(report.silent_halls)))
    if report.quarantined:
        lines.append(bilingual("county.report.quarantined", count=report.quarantined))
    if report.quarantine:
        lines.append(bilingual("county.report.quarantine.title"))
        lines += _table(QUARANTINE_COLUMNS, [[q.hall, str(q.kept), _size(q.kept_bytes), str(q.dropped),
                                              _size(q.dropped_bytes), str(q.truncated)] for q in report.quarantine],
                        "county.report.quarantine.col")
    return "\n".join(lines)


def _held(row: HallDay) -> str:
    """What a hall still holds: not yet sent apart from sent and awaiting the county's receipt."""

    def line(lang: Lang) -> str:
        unsent = text("county.report.unsent_oldest", lang, minutes=_cell(row.unsent_oldest_minutes)) \
            if row.unsent else ""
        awaiting = text("county.report.awaiting_oldest", lang, minutes=_cell(row.awaiting_oldest_minutes)) \
            if row.awaiting_receipt else ""
        return text("county.report.held", lang, hall=row.hall, at=f"{row.link_at:%m-%d %H:%M}" if row.link_at else "-",
                    unsent=row.unsent or 0, unsent_oldest=unsent, awaiting=row.awaiting_receipt or 0,
                    awaiting_oldest=awaiting)

    return f"{line('zh')} / {line('en')}"


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


def _size(size: int) -> str:
    if size < KIB:
        return f"{size} B"
    return f"{size / MIB:.1f} MiB" if size >= MIB else f"{size / KIB:.1f} KiB"


def _percent(share: float | None) -> str:
    return f"{share * 100:.1f}%" if share is not None else "-"
