"""The report's figures against a hand-computed fixture (see the table in each test)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hallkit.rating.models import CaseStep, CaseUpdate, Level, Rating, RatingChannel
from hallkit.rating.report import Figures, Period, build_report
from hallkit.rating.rules import ServiceEvent

ZONE = ZoneInfo("Asia/Shanghai")
MON_10 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 Beijing
SERVICES = {"social": "低保申请", "pension": "养老保险", "permit": "建房审批"}
STAFF = {"a1": "张三", "b1": "李四", None: None}


def event(eid: str, window: int, staff: str | None, service: str, served: datetime) -> ServiceEvent:
    # Ticket ids start with the business day (reset_hour 0 here: the local date).
    return ServiceEvent(service_event_id=eid, ticket_id=f"{served.astimezone(ZONE):%Y%m%d}-{eid}", ticket_number=f"A{eid[1:]:0>3}",
                        ticket_public_id=f"q-{eid}", service_id=service, service_code=service,
                        service_name=SERVICES[service], department="", window=window, window_name=f"窗口{window}",
                        staff_id=staff, staff_name=STAFF[staff], called_at=served, served_at=served)


def rating(e: ServiceEvent, level: int, channel: RatingChannel = RatingChannel.PAD) -> Rating:
    return Rating(rating_id=f"r-{e.service_event_id}", hall_id="h", region_code="652323100201",
                  service_event_id=e.service_event_id, ticket_id=e.ticket_id, ticket_number=e.ticket_number,
                  service_code=e.service_id, service_name=e.service_name, department="", window=e.window,
                  staff_id=e.staff_id, staff_name=e.staff_name, channel=channel, level=Level(level), score=level,
                  served_at=e.served_at, rated_at=e.served_at)


def case(r: Rating, steps: list[CaseStep], deadline: date) -> list[CaseUpdate]:
    """The recorded steps of the rating's case, from ``opened``."""
    return [CaseUpdate(update_id=f"u-{r.rating_id}-{i}", case_id=f"c-{r.rating_id}", rating_id=r.rating_id,
                       hall_id="h", step=step, by="manager", at=r.rated_at + timedelta(hours=i), deadline=deadline)
            for i, step in enumerate([CaseStep.OPENED, *steps])]


# event  window staff  service  served               rating            case
# e1     1      a1     social   Mon 10:00            5 pad
# e2     1      a1     social   Mon 10:10            1 pad             open, due 30 Nov (overdue on 1 Dec)
# e3     1      b1     pension  Mon 10:20            -
# e4     2      b1     pension  Mon 10:30            4 qr
# e5     2      b1     pension  Mon 10:40            5 default
# e6     2      b1     pension  Tue 09:00            2 pad             voided on appeal
# e7     3      -      permit   Tue 11:00            2 kiosk           closed
# e9     3      -      permit   Mon 00:30 (Sun UTC)  3 pad
# e8     1      a1     social   Wed (outside)        1 pad             open
E = {
    "e1": event("e1", 1, "a1", "social", MON_10),
    "e2": event("e2", 1, "a1", "social", MON_10 + timedelta(minutes=10)),
    "e3": event("e3", 1, "b1", "pension", MON_10 + timedelta(minutes=20)),
    "e4": event("e4", 2, "b1", "pension", MON_10 + timedelta(minutes=30)),
    "e5": event("e5", 2, "b1", "pension", MON_10 + timedelta(minutes=40)),
    "e6": event("e6", 2, "b1", "pension", MON_10 + timedelta(hours=23)),
    "e7": event("e7", 3, None, "permit", MON_10 + timedelta(hours=25)),
    "e9": event("e9", 3, None, "permit", datetime(2026, 11, 22, 16, 30, tzinfo=UTC)),
    "e8": event("e8", 1, "a1", "social", MON_10 + timedelta(days=2)),
}
R = {
    "e1": rating(E["e1"], 5), "e2": rating(E["e2"], 1), "e4": rating(E["e4"], 4, RatingChannel.QR),
    "e5": rating(E["e5"], 5, RatingChannel.DEFAULT), "e6": rating(E["e6"], 2),
    "e7": rating(E["e7"], 2, RatingChannel.KIOSK), "e9": rating(E["e9"], 3), "e8": rating(E["e8"], 1),
}
STEPS = [*case(R["e2"], [CaseStep.APPEALED, CaseStep.APPEAL_REJECTED], date(2026, 11, 30)),
         *case(R["e6"], [CaseStep.APPEALED, CaseStep.APPEAL_UPHELD], date(2026, 12, 1)),
         *case(R["e7"], [CaseStep.VERIFIED, CaseStep.RECTIFIED, CaseStep.CALLED_BACK, CaseStep.CLOSED],
               date(2026, 12, 1)),
         *case(R["e8"], [], date(2026, 12, 2))]


def report(as_of: date = date(2026, 12, 1)):
    return build_report("h", Period(start=date(2026, 11, 23), end=date(2026, 11, 24)), as_of, E.values(),
                        R.values(), STEPS)


def row(rep, dimension: str, key: str):
    return next(r for r in rep.rows if r.dimension == dimension and r.key == key)


def test_hall_totals():
    total = report().total
    # e2's appeal was rejected: its case goes on (open) and its rating counts; e6's was upheld.
    assert total.figures == Figures(served=8, rated=6, defaulted=1, voided=1, counted=6, satisfied=4, bad=2,
                                    score_total=20, open_cases=1, overdue_cases=1, appeals=2, appeals_upheld=1,
                                    appeals_rejected=1)
    assert total.coverage == 6 / 8
    assert total.satisfaction_rate == 4 / 6 and total.figures.bad_rate == 2 / 6
    assert total.mean_score == 20 / 6


def test_per_window():
    rep = report()
    assert row(rep, "window", "001").figures == Figures(served=3, rated=2, counted=2, satisfied=1, bad=1,
                                                        score_total=6, open_cases=1, overdue_cases=1, appeals=1,
                                                        appeals_rejected=1)
    assert row(rep, "window", "001").coverage == 2 / 3
    assert row(rep, "window", "002").figures == Figures(served=3, rated=2, defaulted=1, voided=1, counted=2,
                                                        satisfied=2, score_total=9, appeals=1, appeals_upheld=1)
    assert row(rep, "window", "003").figures == Figures(served=2, rated=2, counted=2, satisfied=1, bad=1,
                                                        score_total=5)
    assert row(rep, "window", "003").name == "3 窗口3"


def test_per_staff_and_service():
    rep = report()
    assert row(rep, "staff", "a1").figures == Figures(served=2, rated=2, counted=2, satisfied=1, bad=1,
                                                      score_total=6, open_cases=1, overdue_cases=1, appeals=1,
                                                      appeals_rejected=1)
    assert row(rep, "staff", "b1").figures.served == 4 and row(rep, "staff", "b1").coverage == 0.5
    assert row(rep, "staff", "-").figures.served == 2
    assert row(rep, "service", "pension").figures == row(rep, "staff", "b1").figures
    assert row(rep, "service", "social").name == "低保申请"


def test_not_overdue_before_the_deadline_passes_and_empty_periods():
    assert report(as_of=date(2026, 11, 30)).total.figures.overdue_cases == 0
    empty = build_report("h", Period(start=date(2027, 1, 1), end=date(2027, 1, 2)), date(2027, 1, 3),
                         E.values(), R.values(), STEPS)
    assert empty.total.figures == Figures() and empty.total.coverage is None and empty.rows == []
