"""The bad-rating case (差评整改): its states, the steps between them, and its deadline in working days.

Every bad rating opens a case. The usual local pattern (domain notes, 1.4):

    opened ──核实──▶ verified ──整改──▶ rectified ──回访──▶ called back ──▶ closed
       │                 └──解释──▶ explained ──┘
       └──申诉──▶ appealing ──复核成立──▶ voided (the rating was mistaken or malicious)
       (also from verified)   └──复核驳回──▶ verified (handling goes on)

The deadline is a number of working days from the day the case opened;
provinces use 5 or 15, so it is a setting, as is the holiday calendar.
Pure: no clock, no storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from hallkit.config import RatingRules
from hallkit.i18n import Message
from hallkit.queue.models import new_id
from hallkit.rating.models import CaseStep, CaseUpdate, Level, Rating

OPENED_BY = "hub"
SATURDAY = 5
"""``date.weekday()`` of Saturday: Monday to Friday are working days unless a holiday."""
"""Who opens a case: the hub, the moment the bad rating is stored."""


class CaseState(StrEnum):
    OPEN = "open"
    VERIFIED = "verified"
    RECTIFIED = "rectified"
    EXPLAINED = "explained"
    CALLED_BACK = "called_back"
    APPEALING = "appealing"
    CLOSED = "closed"
    VOIDED = "voided"

    @property
    def finished(self) -> bool:
        return self in (CaseState.CLOSED, CaseState.VOIDED)


_S = CaseState
STEPS: dict[CaseStep, tuple[frozenset[CaseState], CaseState]] = {
    CaseStep.VERIFIED: (frozenset({_S.OPEN}), _S.VERIFIED),
    CaseStep.RECTIFIED: (frozenset({_S.VERIFIED}), _S.RECTIFIED),
    CaseStep.EXPLAINED: (frozenset({_S.VERIFIED}), _S.EXPLAINED),
    CaseStep.CALLED_BACK: (frozenset({_S.RECTIFIED, _S.EXPLAINED}), _S.CALLED_BACK),
    CaseStep.CLOSED: (frozenset({_S.CALLED_BACK}), _S.CLOSED),
    CaseStep.APPEALED: (frozenset({_S.OPEN, _S.VERIFIED}), _S.APPEALING),
    CaseStep.APPEAL_UPHELD: (frozenset({_S.APPEALING}), _S.VOIDED),
    CaseStep.APPEAL_REJECTED: (frozenset({_S.APPEALING}), _S.VERIFIED),
}
"""For each step a person may record: the states it may follow, and the state it leads to."""


class Case(BaseModel):
    """A bad-rating case as the hall tracks it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: str
    rating_id: str
    service_event_id: str
    ticket_number: str
    window: int
    staff_id: str | None
    service_id: str
    level: Level
    opened_at: datetime
    deadline: date
    state: CaseState = CaseState.OPEN
    updated_at: datetime

    def overdue(self, today: date) -> bool:
        """Still being handled after its last working day."""
        return not self.state.finished and today > self.deadline


class CaseRefused(Exception):
    def __init__(self, key: str, **params: str | int | float) -> None:
        self.message = Message(key=key, params=params)
        super().__init__(self.message.render("en"))


class WorkingCalendar:
    """Working days: Monday to Friday, less public holidays, plus weekend days worked in exchange (调休)."""

    def __init__(self, rules: RatingRules) -> None:
        self.holidays = frozenset(rules.holidays)
        self.working_weekends = frozenset(rules.working_weekends)

    def is_working_day(self, day: date) -> bool:
        if day in self.working_weekends:
            return True
        return day.weekday() < SATURDAY and day not in self.holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (the opening day itself does not count)."""
        day = start
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            counted += self.is_working_day(day)
        return day


def open_case(rating: Rating, service_id: str, rules: RatingRules, local_day: date, hall_id: str) -> tuple[Case, CaseUpdate]:
    """The case a bad rating opens, and its first recorded step."""
    deadline = WorkingCalendar(rules).add_working_days(local_day, rules.case_deadline_working_days)
    case = Case(case_id=new_id(), rating_id=rating.rating_id, service_event_id=rating.service_event_id,
                ticket_number=rating.ticket_number, window=rating.window, staff_id=rating.staff_id,
                service_id=service_id, level=rating.level, opened_at=rating.rated_at, deadline=deadline,
                updated_at=rating.rated_at)
    update = CaseUpdate(update_id=new_id(), case_id=case.case_id, rating_id=rating.rating_id, hall_id=hall_id,
                        step=CaseStep.OPENED, by=OPENED_BY, at=rating.rated_at, deadline=deadline)
    return case, update


def take_step(case: Case, step: CaseStep, by: str, at: datetime, note: str, hall_id: str) -> tuple[Case, CaseUpdate]:
    """The case after ``step``, and the record of it; :class:`CaseRefused` when the step does not fit."""
    rule = STEPS.get(step)
    if rule is None:
        raise CaseRefused("case.step_not_recorded_by_hand", step=step.value)
    allowed_from, to = rule
    if case.state not in allowed_from:
        raise CaseRefused("case.step_not_allowed", step=step.value, state=case.state.value,
                          allowed=", ".join(s.value for s in next_steps(case.state)) or "-")
    if step in (CaseStep.EXPLAINED, CaseStep.APPEALED, CaseStep.APPEAL_UPHELD, CaseStep.APPEAL_REJECTED) \
            and not note.strip():
        # An explanation or an appeal without its reasons cannot be checked upstream.
        raise CaseRefused("case.note_required", step=step.value)
    update = CaseUpdate(update_id=new_id(), case_id=case.case_id, rating_id=case.rating_id, hall_id=hall_id,
                        step=step, by=by, at=at, note=note.strip(), deadline=case.deadline)
    return case.model_copy(update={"state": to, "updated_at": at}), update


FINISHING_STEPS = (CaseStep.CLOSED, CaseStep.APPEAL_UPHELD)
"""A case is finished (closed, or voided with its rating) once it has one of these steps.
``appeal_rejected`` is not one: the case goes back to verified and handling goes on."""


class CaseOutcome(BaseModel):
    """What the steps of one case add up to, for the figures (docs/ratings.md).

    Order-free on purpose: the county gets the steps from several ingest workers, and a hall clock
    stepped back can make a later step read earlier, but both finishing steps end the workflow, so
    having one of them is the same as it being the latest.
    """

    rating_id: str
    deadline: date
    finished: bool = False
    voided: bool = Field(False, description="the appeal was upheld: the rating is left out of the figures")
    appealed: int = Field(0, description="appeals made (申诉复核), each decided or pending")
    upheld: int = 0
    rejected: int = 0

    def overdue(self, as_of: date) -> bool:
        """Still being handled after its last working day."""
        return not self.finished and as_of > self.deadline


def case_outcomes(steps: Iterable[CaseUpdate]) -> dict[str, CaseOutcome]:
    """Per rating id, the outcome of its case (one case per bad rating) from its recorded steps."""
    found: dict[str, CaseOutcome] = {}
    for step in steps:
        outcome = found.setdefault(step.rating_id, CaseOutcome(rating_id=step.rating_id, deadline=step.deadline))
        outcome.finished |= step.step in FINISHING_STEPS
        outcome.voided |= step.step is CaseStep.APPEAL_UPHELD
        outcome.appealed += step.step is CaseStep.APPEALED
        outcome.upheld += step.step is CaseStep.APPEAL_UPHELD
        outcome.rejected += step.step is CaseStep.APPEAL_REJECTED
    return found


def next_steps(state: CaseState) -> list[CaseStep]:
    """The steps a person may record next, in workflow order."""
    return [step for step, (allowed_from, _) in STEPS.items() if state in allowed_from]
