"""The rating figures of a period, per window, staff member and service.

Definitions (also in docs/ratings.md):

- **served**: service events (completed tickets) whose service ended in the period (local dates).
- **rated**: of those, the ones a resident rated (pad, QR, kiosk). **coverage** = rated / served: the
  应评尽评 rate.
- **defaulted**: the ones the province's missing-rating rule counted at a default level.
- **counted**: rated + defaulted, less ratings voided on appeal (申诉复核成立).
- **satisfaction rate** = counted ratings that are not bad / counted (bad = 不满意, 非常不满意).
- **bad**: counted bad ratings. **mean score**: under the province's score mapping, over counted.
- **open cases** / **overdue cases**: cases of the period's bad ratings not yet closed or voided, as of
  the day the report is made; overdue ones are past their working-day deadline.

Pure: the caller loads the rows and names the day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hallkit.rating.cases import Case
from hallkit.rating.models import Rating, RatingChannel
from hallkit.rating.rules import ServiceEvent

Dimension = Literal["window", "staff", "service"]


class Period(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: date
    end: date = Field(description="inclusive")

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")
        return self


class Figures(BaseModel):
    served: int = 0
    rated: int = 0
    defaulted: int = 0
    voided: int = 0
    counted: int = 0
    satisfied: int = 0
    bad: int = 0
    score_total: int = 0
    open_cases: int = 0
    overdue_cases: int = 0

    @property
    def coverage(self) -> float | None:
        return self.rated / self.served if self.served else None

    @property
    def satisfaction_rate(self) -> float | None:
        return self.satisfied / self.counted if self.counted else None

    @property
    def mean_score(self) -> float | None:
        return self.score_total / self.counted if self.counted else None


class ReportRow(BaseModel):
    dimension: Dimension | Literal["hall"]
    key: str
    name: str
    figures: Figures
    coverage: float | None = None
    satisfaction_rate: float | None = None
    mean_score: float | None = None


class RatingReport(BaseModel):
    hall: str
    period: Period
    as_of: date
    total: ReportRow
    rows: list[ReportRow]


class _Tally:
    """Figures per key of one dimension, filled event by event."""

    def __init__(self, dimension: Dimension | Literal["hall"], key_of: Callable[[ServiceEvent], tuple[str, str]]) -> None:
        self.dimension = dimension
        self.key_of = key_of
        self.figures: dict[str, Figures] = {}
        self.names: dict[str, str] = {}

    def of(self, event: ServiceEvent) -> Figures:
        key, name = self.key_of(event)
        self.names.setdefault(key, name)
        return self.figures.setdefault(key, Figures())

    def rows(self) -> list[ReportRow]:
        return [_row(self.dimension, key, self.names[key], self.figures[key]) for key in sorted(self.figures)]


def _row(dimension: Dimension | Literal["hall"], key: str, name: str, figures: Figures) -> ReportRow:
    return ReportRow(dimension=dimension, key=key, name=name, figures=figures, coverage=figures.coverage,
                     satisfaction_rate=figures.satisfaction_rate, mean_score=figures.mean_score)


NO_STAFF = "-"


def build_report(hall: str, period: Period, as_of: date, zone: ZoneInfo, events: Iterable[ServiceEvent],
                 ratings: Iterable[Rating], cases: Iterable[Case], voided: set[str]) -> RatingReport:
    """The figures of ``period`` from every event, rating and case the hall holds."""
    by_event = {r.service_event_id: r for r in ratings}
    cases_by_event = {c.service_event_id: c for c in cases}
    tallies = [
        _Tally("hall", lambda e: (hall, hall)),
        _Tally("window", lambda e: (f"{e.window:03d}", f"{e.window} {e.window_name}")),
        _Tally("staff", lambda e: (e.staff_id or NO_STAFF, e.staff_name or NO_STAFF)),
        _Tally("service", lambda e: (e.service_id, e.service_name)),
    ]
    for event in events:
        if not period.start <= event.served_at.astimezone(zone).date() <= period.end:
            continue
        rating = by_event.get(event.service_event_id)
        case = cases_by_event.get(event.service_event_id)
        for tally in tallies:
            _count(tally.of(event), rating, case, voided, as_of)
    total = tallies[0].rows()
    return RatingReport(hall=hall, period=period, as_of=as_of,
                        total=total[0] if total else _row("hall", hall, hall, Figures()),
                        rows=[row for tally in tallies[1:] for row in tally.rows()])


def _count(figures: Figures, rating: Rating | None, case: Case | None, voided: set[str], as_of: date) -> None:
    figures.served += 1
    if rating is None:
        return
    if rating.channel is RatingChannel.DEFAULT:
        figures.defaulted += 1
    else:
        figures.rated += 1
    if rating.rating_id in voided:
        figures.voided += 1
    else:
        figures.counted += 1
        figures.score_total += rating.score
        if rating.level.bad:
            figures.bad += 1
        else:
            figures.satisfied += 1
    if case is not None and not case.state.finished:
        figures.open_cases += 1
        figures.overdue_cases += case.overdue(as_of)
