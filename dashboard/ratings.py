"""Ratings and bad-rating cases as the hub's rating part stores them, read for the pages.

The rating part (``hallkit/rating``, issue 6) keeps its tables in the hub's SQLite file; the
dashboard reads them through the same read-only connection as the event log and works a case
by sending a ``CaseStepRequest`` to the hub over MQTT (see :mod:`dashboard.live`): the hub
checks the step and records who and when, so the dashboard never writes the hub's file.
Until the hub has run with ratings the tables do not exist and the pages say so.
"""

from __future__ import annotations

import sqlite3
from datetime import date

from hallkit.dashboard.alerts import CaseDue
from hallkit.dashboard.stats import DayStats, EventLog
from hallkit.dashboard.views import CaseStepView, CaseView, RatingLine, RatingSlice

from hallkit.config import HallConfig
from hallkit.rating import store
from hallkit.rating.cases import OPENED_BY, Case, CaseState, next_steps
from hallkit.rating.models import Level, Rating
from hallkit.rating.report import Period, RatingReport, build_report
from hallkit.rating.rules import ServiceEvent

FINISHED = (CaseState.CLOSED.value, CaseState.VOIDED.value)
FINISHED_SHOWN_DAYS = 30
"""A finished case stays on the list this many days after its last step."""


class RatingBook:
    """Read-only access to the rating tables of the hub's file."""

    def __init__(self, config: HallConfig, log: EventLog) -> None:
        self.config = config
        self.log = log

    def _conn(self) -> sqlite3.Connection | None:
        conn = self.log.connection()
        if conn is None:
            return None
        has = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='rating_cases'").fetchone()
        return conn if has else None

    @property
    def available(self) -> bool:
        return self._conn() is not None

    def events_of(self, day: DayStats) -> list[ServiceEvent]:
        conn = self._conn()
        return [] if conn is None else store.events_of_day(conn, day.day)

    def ratings_of(self, day: DayStats) -> list[Rating]:
        conn = self._conn()
        return [] if conn is None else store.ratings_of_day(conn, day.day)

    def cases(self) -> list[Case]:
        conn = self._conn()
        return [] if conn is None else store.cases(conn)

    def open_cases(self) -> list[CaseDue]:
        conn = self._conn()
        if conn is None:
            return []
        rows = conn.execute(f"SELECT body FROM rating_cases WHERE state NOT IN ({','.join('?' * len(FINISHED))})",
                            FINISHED).fetchall()
        found = [Case.model_validate_json(body) for (body,) in rows]
        return [CaseDue(case_id=c.case_id, ticket_number=c.ticket_number, window=c.window, deadline=c.deadline)
                for c in found]

    def report(self, day: DayStats, today: date) -> RatingReport:
        """The rating figures of one day per window, staff and service (hallkit.rating.report)."""
        conn = self._conn()
        steps = [] if conn is None else store.every_step(conn)
        return build_report(self.config.hall.id, Period(start=day.day, end=day.day), today,
                            self.events_of(day), self.ratings_of(day), steps)

    def lines(self, day: DayStats) -> list[RatingLine]:
        cases = {c.rating_id: c.case_id for c in self.cases()}
        names = {s.id: s.name for s in self.config.staff}
        return [RatingLine(rated_at=r.rated_at, ticket_number=r.ticket_number, window=r.window,
                           staff=names.get(r.staff_id or "", r.staff_name), service=r.service_name,
                           level=int(r.level), channel=r.channel.value, tags=r.tags, text=r.text,
                           case_id=cases.get(r.rating_id))
                for r in sorted(self.ratings_of(day), key=lambda r: r.rated_at, reverse=True)]

    def case_views(self, today: date, warning_days: int, phones: dict[str, str] | None = None) -> list[CaseView]:
        """Every case still open, then those closed in the last weeks, newest first.

        ``phones``: follow-up numbers by case (web/followup.py), given only for a manager; a finished
        case shows none even before the phone page's sweep deletes it.
        """
        phones = phones or {}
        conn = self._conn()
        if conn is None:
            return []
        names = {s.id: s.name for s in self.config.staff}
        services = {s.id: s.name for s in self.config.services}
        views = []
        for case in sorted(store.cases(conn), key=lambda c: (c.state.finished, c.opened_at)):
            if case.state.finished and (today - case.updated_at.date()).days > FINISHED_SHOWN_DAYS:
                continue
            rating = store.rating_by_id(conn, case.rating_id)
            views.append(CaseView(
                case_id=case.case_id, ticket_number=case.ticket_number, window=case.window,
                staff=names.get(case.staff_id or "", case.staff_id), service=services.get(case.service_id, case.service_id),
                level=int(case.level), state=case.state.value, deadline=case.deadline,
                overdue=case.overdue(today),
                due_soon=not case.state.finished and (case.deadline - today).days <= warning_days,
                opened_at=case.opened_at, next_steps=[s.value for s in next_steps(case.state)],
                steps=[CaseStepView(step=u.step.value, by="" if u.by == OPENED_BY else names.get(u.by, u.by),
                                    at=u.at, note=u.note)
                       for u in store.steps(conn, case.case_id)],
                channel=rating.channel.value if rating else "", tags=rating.tags if rating else [],
                text=rating.text if rating else "",
                followup_phone=None if case.state.finished else phones.get(case.case_id)))
        return views


def slices(report: RatingReport, dimension: str, ratings: list[Rating], names: dict[str, str]) -> list[RatingSlice]:
    """Level counts and satisfaction per window or staff member, for the charts."""
    found = []
    for row in report.rows:
        if row.dimension != dimension:
            continue
        if dimension == "window":
            mine = [r for r in ratings if f"{r.window:03d}" == row.key]
        else:
            mine = [r for r in ratings if (r.staff_id or "-") == row.key]
        levels = [sum(1 for r in mine if r.level is level) for level in Level]
        found.append(RatingSlice(name=names.get(row.key, row.name), levels=levels,
                                 satisfaction=row.satisfaction_rate, coverage=row.coverage,
                                 served=row.figures.served, rated=row.figures.rated))
    return found

