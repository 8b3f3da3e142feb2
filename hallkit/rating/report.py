"""The rating figures of a period, per window, staff member and service: each defined once here.

The hall's reports and the dashboard compute them with :func:`build_report`; the county computes
the same definitions in SQL from the same records (``county/report.py``). Also in docs/ratings.md.

- **period**: business days, both ends included. A service belongs to the business day of its
  ticket (:func:`hallkit.queue.numbering.ticket_day`: the queue's ``day_opened``, not the clock),
  and so do its rating and the rating's case.
- **served**: service events (completed tickets) of the period.
- **rated**: of those, the ones a resident rated (pad, QR, kiosk). **coverage** = rated / served: the
  应评尽评 rate. Voided ratings stay rated: the resident did rate.
- **defaulted**: the ones the province's missing-rating rule counted at a default level.
- **voided**: ratings whose case has an ``appeal_upheld`` step (申诉复核成立).
- **counted**: rated + defaulted − voided: the ratings every rate below is over.
- **satisfaction rate** (满意率) = counted ratings at 基本满意 or better / counted.
- **bad** (差评): counted ratings at 不满意 or 非常不满意; **bad rate** (差评率) = bad / counted.
- **mean score**: under the province's score mapping, over counted.
- **open cases**: cases of the period's ratings with neither a ``closed`` nor an ``appeal_upheld``
  step (``appeal_rejected`` sends a case back to verified: still open); **overdue cases**: open ones
  whose deadline is before the report's ``as_of`` date.
- **appeals**: ``appealed`` steps of those cases; **upheld** / **rejected**: their decisions
  (appeals − upheld − rejected are pending).

Pure: the caller loads the rows and names the day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from hallkit.queue.numbering import ticket_day
from hallkit.rating.cases import CaseOutcome, case_outcomes
from hallkit.rating.models import CaseUpdate, Rating, RatingChannel
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
    appeals: int = 0
    appeals_upheld: int = 0
    appeals_rejected: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def coverage(self) -> float | None:
        return self.rated / self.served if self.served else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def satisfaction_rate(self) -> float | None:
        return self.satisfied / self.counted if self.counted else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def bad_rate(self) -> float | None:
        return self.bad / self.counted if self.counted else None

    @computed_field  # type: ignore[prop-decorator]
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


def build_report(hall: str, period: Period, as_of: date, events: Iterable[ServiceEvent],
                 ratings: Iterable[Rating], steps: Iterable[CaseUpdate]) -> RatingReport:
    """The figures of ``period`` from the events, ratings and case steps the hall holds."""
    by_event = {r.service_event_id: r for r in ratings}
    outcomes = case_outcomes(steps)
    tallies = [
        _Tally("hall", lambda e: (hall, hall)),
        _Tally("window", lambda e: (f"{e.window:03d}", f"{e.window} {e.window_name}")),
        _Tally("staff", lambda e: (e.staff_id or NO_STAFF, e.staff_name or NO_STAFF)),
        _Tally("service", lambda e: (e.service_id, e.service_name)),
    ]
    for event in events:
        if not period.start <= ticket_day(event.ticket_id) <= period.end:
            continue
        rating = by_event.get(event.service_event_id)
        outcome = outcomes.get(rating.rating_id) if rating else None
        for tally in tallies:
            _count(tally.of(event), rating, outcome, as_of)
    total = tallies[0].rows()
    return RatingReport(hall=hall, period=period, as_of=as_of,
                        total=total[0] if total else _row("hall", hall, hall, Figures()),
                        rows=[row for tally in tallies[1:] for row in tally.rows()])


def _count(figures: Figures, rating: Rating | None, outcome: CaseOutcome | None, as_of: date) -> None:
    figures.served += 1
    if rating is None:
        return
    if rating.channel is RatingChannel.DEFAULT:
        figures.defaulted += 1
    else:
        figures.rated += 1
    if outcome is not None and outcome.voided:
        figures.voided += 1
    else:
        figures.counted += 1
        figures.score_total += rating.score
        if rating.level.bad:
            figures.bad += 1
        else:
            figures.satisfied += 1
    if outcome is None:
        return
    figures.appeals += outcome.appealed
    figures.appeals_upheld += outcome.upheld
    figures.appeals_rejected += outcome.rejected
    if not outcome.finished:
        figures.open_cases += 1
        figures.overdue_cases += outcome.overdue(as_of)
