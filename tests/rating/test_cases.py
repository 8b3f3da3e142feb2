"""The bad-rating case: workflow, appeal, working-day deadlines with holidays and 调休, overdue."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from hallkit.config import RatingRules
from hallkit.rating.cases import Case, CaseRefused, CaseState, WorkingCalendar, next_steps, open_case, take_step
from hallkit.rating.models import CaseStep, Level, Rating, RatingChannel
from hallkit.testing import MONDAY

NATIONAL_DAY = RatingRules(
    case_deadline_working_days=5,
    holidays=[date(2026, 10, d) for d in range(1, 8)],
    working_weekends=[date(2026, 9, 27), date(2026, 10, 10)],
)


def bad_rating(rated_at=MONDAY) -> Rating:
    return Rating(rating_id="r1", hall_id="h", region_code="652323100201", service_event_id="e1",
                  ticket_id="t", ticket_number="A001", service_code="s", service_name="低保申请", department="",
                  window=1, staff_id="a1", staff_name="张三", channel=RatingChannel.PAD,
                  level=Level.VERY_DISSATISFIED, score=1, tags=["态度不好"], served_at=rated_at, rated_at=rated_at)


def test_deadline_counts_working_days_only():
    plain = WorkingCalendar(RatingRules())
    assert plain.add_working_days(date(2026, 11, 23), 5) == date(2026, 11, 30)  # Monday → next Monday
    assert plain.add_working_days(date(2026, 11, 27), 1) == date(2026, 11, 30)  # Friday → Monday
    assert plain.add_working_days(date(2026, 11, 23), 15) == date(2026, 12, 14)
    holiday = WorkingCalendar(NATIONAL_DAY)
    # Opened Wednesday 30 Sept: the holiday week is skipped, Saturday 10 Oct counts.
    assert holiday.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert holiday.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
    assert holiday.add_working_days(date(2026, 9, 26), 1) == date(2026, 9, 27)


def test_the_whole_workflow_records_who_and_when():
    case, opened = open_case(bad_rating(), "social", RatingRules(), MONDAY.date(), "h")
    assert case.state is CaseState.OPEN and opened.step is CaseStep.OPENED and opened.by == "hub"
    assert case.deadline == date(2026, 11, 30) == opened.deadline
    at = MONDAY
    for step, state in [(CaseStep.VERIFIED, CaseState.VERIFIED), (CaseStep.RECTIFIED, CaseState.RECTIFIED),
                        (CaseStep.CALLED_BACK, CaseState.CALLED_BACK), (CaseStep.CLOSED, CaseState.CLOSED)]:
        at += timedelta(hours=1)
        case, update = take_step(case, step, "zhang", at, "", "h")
        assert case.state is state and update.by == "zhang" and update.at == at and update.case_id == case.case_id
    assert case.state.finished and not case.overdue(date(2027, 1, 1))


def test_steps_out_of_order_are_refused_with_what_is_allowed():
    case, _ = open_case(bad_rating(), "social", RatingRules(), MONDAY.date(), "h")
    with pytest.raises(CaseRefused) as refused:
        take_step(case, CaseStep.CLOSED, "zhang", MONDAY, "", "h")
    assert refused.value.message.key == "case.step_not_allowed"
    assert "verified" in refused.value.message.params["allowed"]
    with pytest.raises(CaseRefused):
        take_step(case, CaseStep.OPENED, "zhang", MONDAY, "", "h")
    verified, _ = take_step(case, CaseStep.VERIFIED, "zhang", MONDAY, "", "h")
    with pytest.raises(CaseRefused) as refused:
        take_step(verified, CaseStep.EXPLAINED, "zhang", MONDAY, "  ", "h")
    assert refused.value.message.key == "case.note_required"
    assert next_steps(CaseState.VERIFIED) == [CaseStep.RECTIFIED, CaseStep.EXPLAINED, CaseStep.APPEALED]


def test_appeal_voids_or_goes_on():
    case, _ = open_case(bad_rating(), "social", RatingRules(), MONDAY.date(), "h")
    appealing, _ = take_step(case, CaseStep.APPEALED, "li", MONDAY, "同一人连续差评，疑似恶意", "h")
    voided, _ = take_step(appealing, CaseStep.APPEAL_UPHELD, "zhan", MONDAY, "监控核实，评价人误按", "h")
    assert voided.state is CaseState.VOIDED and voided.state.finished
    rejected, _ = take_step(appealing, CaseStep.APPEAL_REJECTED, "zhan", MONDAY, "理由不足", "h")
    assert rejected.state is CaseState.VERIFIED
    explained, _ = take_step(rejected, CaseStep.EXPLAINED, "li", MONDAY, "政策规定需本人到场", "h")
    assert explained.state is CaseState.EXPLAINED


def test_overdue_after_the_last_working_day():
    case, _ = open_case(bad_rating(), "social", RatingRules(), MONDAY.date(), "h")
    assert not case.overdue(date(2026, 11, 30))
    assert case.overdue(date(2026, 12, 1))
    assert isinstance(case, Case)
