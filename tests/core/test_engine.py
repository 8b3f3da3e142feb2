"""The queue engine's rules, one test (or more) per rule of issue 2, on real configurations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from hallkit.config import HallConfig, parse_config
from hallkit.i18n import LANGS, catalogue
from hallkit.privacy import id_hash
from hallkit.queue import numbering
from hallkit.queue.engine import QueueEngine, Refused
from hallkit.queue.estimate import CallPace, ServiceTimes, estimated_wait_seconds
from hallkit.queue.models import (
    CallNext,
    Channel,
    Command,
    Complete,
    DayOpened,
    Event,
    Pause,
    Priority,
    Recall,
    Resume,
    Skip,
    StaffChanged,
    SwitchStaff,
    TakeTicket,
    Ticket,
    TicketCalled,
    TicketCompleted,
    TicketIssued,
    TicketRecalled,
    TicketSkipped,
    TicketState,
    TicketTransferred,
    Transfer,
    WindowPaused,
    WindowResumed,
)
from hallkit.testing import MONDAY, SMALL_HALL

# window 3 permit only; max_priority_in_a_row = 2, no_show_requeue = 1; always open.


def hall_config(queue: str = "", extra: str = "", **replace: str) -> HallConfig:
    """SMALL_HALL with lines added to [queue], TOML appended, and ``old=new`` swaps."""
    text = SMALL_HALL.replace("[queue]\n", f"[queue]\n{queue}\n", 1)
    for old, new in replace.values():
        assert old in text
        text = text.replace(old, new, 1)
    return parse_config(text + extra)


class Hall:
    """An engine and a clock that moves forward a few minutes per action."""

    def __init__(self, config: HallConfig, now: datetime = MONDAY) -> None:
        self.engine = QueueEngine(config)
        self.now = now
        self.log: list[Event] = []

    def do(self, command: Command, minutes: float = 1) -> list[Event]:
        self.now += timedelta(minutes=minutes)
        events = self.engine.execute(command, self.now)
        self.log += events
        return events

    def take(self, service: str = "social", minutes: float = 1, **fields: object) -> Ticket:
        events = self.do(TakeTicket(service_id=service, **fields), minutes)
        issued = [e for e in events if isinstance(e, TicketIssued)]
        assert len(issued) == 1
        return issued[0].ticket

    def call(self, window: int, minutes: float = 1) -> str:
        called = [e for e in self.do(CallNext(window=window), minutes) if isinstance(e, TicketCalled)]
        assert len(called) == 1
        return self.number(called[0].ticket_id)

    def number(self, ticket_id: str) -> str:
        return self.engine.state.tickets[ticket_id].ticket.number

    def state_of(self, ticket: Ticket) -> TicketState:
        return self.engine.state.tickets[ticket.id].state

    def refused(self, command: Command, key: str, minutes: float = 1) -> Refused:
        """``command`` is refused with ``key``, changes nothing, and its message reads in zh and en."""
        before = self.engine.snapshot()
        with pytest.raises(Refused) as info:
            self.engine.decide(command, self.now + timedelta(minutes=minutes))
        assert info.value.message.key == key
        for lang in LANGS:
            rendered = info.value.message.render(lang)
            assert rendered != key and "{" not in rendered, rendered
        assert self.engine.snapshot() == before
        return info.value


@pytest.fixture
def hall(small_config: HallConfig) -> Hall:
    return Hall(small_config)


# ---- numbering --------------------------------------------------------------------------------


def test_numbers_are_per_prefix_gapless_and_unique(hall: Hall):
    tickets = [hall.take(s) for s in ["social", "pension", "social", "permit", "social", "pension"]]
    assert [t.number for t in tickets] == ["A001", "B001", "A002", "C001", "A003", "B002"]
    assert len({t.id for t in tickets}) == len(tickets)
    assert all(t.id == f"20261123-{t.number}" for t in tickets)
    assert all(t.day == date(2026, 11, 23) for t in tickets)


def test_number_keeps_counting_past_999():
    assert numbering.ticket_number("A", 7) == "A007"
    assert numbering.ticket_number("A", 999) == "A999"
    assert numbering.ticket_number("A", 1000) == "A1000"


def test_public_id_avoids_look_alike_characters():
    token = numbering.public_id()
    assert len(token) == 10
    assert not set(token) & set("01ilo")


def test_services_sharing_a_prefix_share_one_counter():
    config = hall_config(extra='\n[[services]]\nid = "relief"\nname = "临时救助"\nprefix = "A"\n')
    hall = Hall(config)
    numbers = [hall.take(s).number for s in ["social", "relief", "pension", "relief", "social"]]
    assert numbers == ["A001", "A002", "B001", "A003", "A004"]


def test_numbers_reset_at_the_configured_hour_in_the_halls_zone():
    hall = Hall(hall_config(queue="reset_hour = 4"))
    first = hall.take("social")
    # Tuesday 03:59 Beijing (19:59 UTC Monday) still belongs to Monday's business day.
    hall.now = datetime(2026, 11, 24, 3, 58, tzinfo=UTC) - timedelta(hours=8)
    late = hall.take("social")
    assert (late.number, late.day) == ("A002", date(2026, 11, 23))
    # 04:00 Beijing opens Tuesday: numbers start again and yesterday's queue is abandoned.
    hall.now = datetime(2026, 11, 24, 4, 0, tzinfo=UTC) - timedelta(hours=8)
    events = hall.do(TakeTicket(service_id="social"), minutes=0)
    opened, issued = events
    assert isinstance(opened, DayOpened) and isinstance(issued, TicketIssued)
    assert opened.day == date(2026, 11, 24)
    assert sorted(opened.abandoned) == sorted([first.id, late.id])
    assert (issued.ticket.number, issued.ticket.id) == ("A001", "20261124-A001")
    assert list(hall.engine.state.tickets) == [issued.ticket.id]


def test_reset_follows_local_midnight_not_utc(hall: Hall):
    hall.now = datetime(2026, 11, 23, 15, 57, tzinfo=UTC)  # take() adds a minute: 23:58 Beijing
    assert hall.take("social").number == "A001"
    assert hall.take("social").number == "A002"  # 23:59
    after = hall.take("social", minutes=2)  # 00:01 Beijing, still Monday in UTC
    assert (after.number, after.day) == ("A001", date(2026, 11, 24))


def test_new_day_clears_windows_and_abandons_called_tickets(hall: Hall):
    hall.take("social")
    hall.call(1)
    hall.do(Pause(window=2))
    hall.now += timedelta(days=1)
    hall.refused(CallNext(window=1), "queue.nothing_waiting")
    hall.refused(Complete(window=1), "queue.no_current_ticket")
    hall.take("social")
    assert hall.engine.window_view(1).ticket is None
    assert hall.engine.window_view(1).served_today == 0
    # A pause is the staff's decision and outlasts the night.
    assert hall.engine.window_view(2).paused


def test_clock_stepping_back_never_reopens_a_past_day(hall: Hall):
    hall.take("social")
    hall.now += timedelta(days=1)
    tuesday = hall.take("social")
    hall.now -= timedelta(days=1, minutes=5)  # clock wrongly set back to Monday
    again = hall.take("social")
    assert again.day == tuesday.day
    assert again.number == "A002"


# ---- what a ticket records --------------------------------------------------------------------


def test_ticket_records_service_time_channel_priority_and_only_a_hash(hall: Hall, small_config: HallConfig):
    hashed = id_hash(small_config.privacy.id_hash_key, "65232319500101123X")
    ticket = hall.take("pension", channel=Channel.AGENT, priority=Priority.PRIORITY, id_hash=hashed)
    assert (ticket.service_id, ticket.channel, ticket.priority) == ("pension", Channel.AGENT, Priority.PRIORITY)
    assert ticket.taken_at == hall.now
    assert ticket.id_hash == hashed
    assert "65232319500101123X" not in ticket.model_dump_json()
    assert hall.take("social").channel == Channel.KIOSK
    assert hall.take("social", channel=Channel.APPOINTMENT).channel == Channel.APPOINTMENT


def test_a_raw_id_number_is_not_accepted_as_id_hash():
    with pytest.raises(ValidationError):
        TakeTicket(service_id="social", id_hash="65232319500101123X")


# ---- priority ---------------------------------------------------------------------------------


def test_priority_first_but_at_most_n_in_a_row_while_a_normal_waits(hall: Hall):
    hall.take("social")  # A001 normal
    hall.take("social")  # A002 normal
    for _ in range(4):
        hall.take("social", priority=Priority.PRIORITY)  # A003..A006
    hall.take("social", priority=Priority.APPOINTMENT)  # A007
    order = [hall.call(1) for _ in range(7)]
    # max_priority_in_a_row = 2: two priority calls, then the oldest normal, and so on.
    assert order == ["A003", "A004", "A001", "A005", "A006", "A002", "A007"]


def test_priority_calls_continue_when_no_normal_ticket_waits(hall: Hall):
    for _ in range(4):
        hall.take("social", priority=Priority.PRIORITY)
    assert [hall.call(1) for _ in range(4)] == ["A001", "A002", "A003", "A004"]
    # The streak is now 4; a normal ticket arriving is called before the next priority one.
    hall.take("social")
    hall.take("social", priority=Priority.PRIORITY)
    assert [hall.call(1) for _ in range(2)] == ["A005", "A006"]


def test_normal_tickets_never_starve_under_a_flood_of_priority():
    hall = Hall(hall_config(max=("max_priority_in_a_row = 2", "max_priority_in_a_row = 3")))
    normals = {hall.take("social").id for _ in range(5)}
    priorities_in_a_row = 0
    for _ in range(40):
        # Two priority tickets arrive for every call: there is always a priority ticket waiting.
        hall.take("social", priority=Priority.PRIORITY)
        hall.take("social", priority=Priority.PRIORITY)
        number = hall.call(1)
        ticket = next(t.ticket for t in hall.engine.state.tickets.values() if t.ticket.number == number)
        normal_waiting = any(r.ticket.id in normals for r in hall.engine.state.waiting.values())
        if ticket.priority is Priority.NORMAL:
            priorities_in_a_row = 0
        else:
            priorities_in_a_row += 1
            assert priorities_in_a_row <= 3 or not normal_waiting
    assert all(hall.engine.state.tickets[t].state is not TicketState.WAITING for t in normals)


# ---- calling ----------------------------------------------------------------------------------


def test_window_calls_only_its_services_by_priority_then_arrival(hall: Hall):
    hall.take("social")  # A001
    hall.take("permit")  # C001
    hall.take("pension")  # B001
    hall.take("pension", priority=Priority.PRIORITY)  # B002
    assert hall.call(2) == "B002"  # pension-only window: priority first
    assert hall.call(2) == "B001"
    hall.do(Complete(window=2))
    hall.refused(CallNext(window=2), "queue.nothing_waiting")
    assert hall.call(3) == "C001"
    assert hall.call(1) == "A001"


def test_comprehensive_window_serves_every_service_in_arrival_order(hall: Hall):
    hall.take("permit")
    hall.take("pension")
    hall.take("social")
    assert [hall.call(1) for _ in range(3)] == ["C001", "B001", "A001"]


def test_call_records_window_staff_and_time(hall: Hall):
    ticket = hall.take("social")
    events = hall.do(CallNext(window=1))
    (called,) = events
    assert isinstance(called, TicketCalled)
    assert (called.ticket_id, called.window, called.staff_id, called.at) == (ticket.id, 1, "a1", hall.now)
    view = hall.engine.ticket_view(ticket.id)
    assert (view.state, view.window) == (TicketState.CALLED, 1)


def test_call_next_completes_the_current_ticket_first(hall: Hall):
    first = hall.take("social")
    second = hall.take("social")
    hall.call(1)
    completed, called = hall.do(CallNext(window=1), minutes=4)
    assert isinstance(completed, TicketCompleted) and completed.ticket_id == first.id
    assert isinstance(called, TicketCalled) and called.ticket_id == second.id
    assert hall.state_of(first) is TicketState.DONE
    # With nobody left, call next still completes the ticket at the window.
    (last,) = hall.do(CallNext(window=1))
    assert isinstance(last, TicketCompleted) and last.ticket_id == second.id
    hall.refused(CallNext(window=1), "queue.nothing_waiting")


def test_recall_keeps_the_ticket_at_the_window(hall: Hall):
    ticket = hall.take("social")
    hall.refused(Recall(window=1), "queue.no_current_ticket")
    hall.call(1)
    (recalled,) = hall.do(Recall(window=1))
    assert isinstance(recalled, TicketRecalled) and recalled.ticket_id == ticket.id
    assert hall.state_of(ticket) is TicketState.CALLED
    assert hall.engine.state.windows[1].current == ticket.id


def test_complete_ends_the_service_and_counts_it(hall: Hall):
    ticket = hall.take("social")
    hall.call(1)
    (done,) = hall.do(Complete(window=1), minutes=7)
    assert isinstance(done, TicketCompleted)
    assert (done.service_id, done.staff_id, done.window) == ("social", "a1", 1)
    assert (done.at - done.called_at) == timedelta(minutes=7)
    assert hall.state_of(ticket) is TicketState.DONE
    hall.refused(Complete(window=1), "queue.no_current_ticket")


# ---- skip / no-show ---------------------------------------------------------------------------


def test_skip_requeues_once_at_the_back_then_marks_no_show(hall: Hall):
    absent = hall.take("social")
    hall.take("social")
    hall.call(1)
    (skipped,) = hall.do(Skip(window=1))
    assert isinstance(skipped, TicketSkipped) and skipped.requeued
    assert hall.state_of(absent) is TicketState.WAITING
    hall.take("social")  # A003 arrives after the skip
    assert hall.call(1) == "A002"
    assert hall.call(1) == "A001"  # back in the queue, behind those waiting at the skip
    assert hall.call(1) == "A003"
    hall.take("social")
    hall.do(Skip(window=1))  # A003 skipped once: requeued
    hall.call(1)  # A004 (auto-completes nothing: the skip freed the window)
    assert hall.call(1) == "A003"
    (second,) = hall.do(Skip(window=1))
    assert isinstance(second, TicketSkipped) and not second.requeued
    assert hall.engine.state.tickets["20261123-A003"].state is TicketState.NO_SHOW
    assert hall.engine.state.windows[1].current is None
    hall.refused(Skip(window=1), "queue.no_current_ticket")


@pytest.mark.parametrize("requeues", [0, 2])
def test_requeue_count_is_configurable(requeues: int):
    hall = Hall(hall_config(rule=("no_show_requeue = 1", f"no_show_requeue = {requeues}")))
    ticket = hall.take("social")
    outcomes = []
    for _ in range(requeues + 1):
        hall.call(1)
        (skipped,) = hall.do(Skip(window=1))
        assert isinstance(skipped, TicketSkipped)
        outcomes.append(skipped.requeued)
    assert outcomes == [True] * requeues + [False]
    assert hall.state_of(ticket) is TicketState.NO_SHOW


# ---- transfer ---------------------------------------------------------------------------------


def test_transfer_to_another_service_keeps_the_residents_place(hall: Hall):
    ticket = hall.take("social")
    hall.take("pension")  # B001, taken after A001
    hall.call(1)
    (moved,) = hall.do(Transfer(window=1, to_service="pension"))
    assert isinstance(moved, TicketTransferred)
    assert (moved.to_service, moved.to_window) == ("pension", None)
    record = hall.engine.state.tickets[ticket.id]
    assert (record.state, record.service_id) == (TicketState.WAITING, "pension")
    assert hall.engine.state.windows[1].current is None
    assert hall.engine.ticket_view(ticket.id).windows == [1, 2]
    assert hall.call(2) == "A001"  # it had arrived before B001


def test_transfer_to_a_window_is_called_first_by_that_window_only(hall: Hall):
    hall.take("pension")  # B001
    ticket = hall.take("social")  # A001
    hall.take("pension")  # B002
    assert hall.call(1) == "B001"
    assert hall.call(1) == "A001"
    hall.do(Transfer(window=1, to_service="pension", to_window=2))
    assert hall.engine.ticket_view(ticket.id).windows == [2]
    # Window 1 also serves pension but must leave the directed ticket to window 2.
    assert hall.call(1) == "B002"
    hall.do(Complete(window=1))
    hall.refused(CallNext(window=1), "queue.nothing_waiting")
    hall.take("pension", priority=Priority.PRIORITY)  # B003
    assert hall.call(2) == "A001"  # directed beats even a priority ticket
    assert hall.call(2) == "B003"


def test_transfer_to_a_window_without_changing_service(hall: Hall):
    ticket = hall.take("pension")
    assert hall.call(2) == "B001"
    hall.do(Transfer(window=2, to_window=1))
    assert hall.engine.state.tickets[ticket.id].service_id == "pension"
    assert hall.call(1) == "B001"


def test_invalid_transfers_are_refused():
    config = hall_config(
        extra='\n[[windows]]\nnumber = 4\nname = "备用窗口"\nservices = ["pension"]\nopen = false\n'
    )
    hall = Hall(config)
    hall.take("social")
    hall.refused(Transfer(window=1, to_service="pension"), "queue.no_current_ticket")
    hall.call(1)
    hall.refused(Transfer(window=1), "queue.transfer_needs_target")
    hall.refused(Transfer(window=1, to_window=1), "queue.transfer_same_window")
    hall.refused(Transfer(window=1, to_service="social"), "queue.transfer_same_service")
    hall.refused(Transfer(window=1, to_service="nothing"), "queue.unknown_service")
    hall.refused(Transfer(window=1, to_window=9), "queue.unknown_window")
    hall.refused(Transfer(window=1, to_window=2), "queue.window_does_not_serve")  # 2 does not serve social
    hall.refused(Transfer(window=1, to_service="pension", to_window=4), "queue.window_closed")
    hall.do(Pause(window=2))
    hall.refused(Transfer(window=1, to_service="pension", to_window=2), "queue.window_paused")
    hall.do(Pause(window=3))
    # permit's own window is paused, but window 1 (comprehensive) still serves it.
    hall.do(Transfer(window=1, to_service="permit"))


def test_transfer_to_a_service_with_no_usable_window_is_refused():
    hall = Hall(hall_config(comprehensive=('services = ["*"]', 'services = ["social"]')))
    hall.take("social")
    hall.call(1)
    hall.do(Pause(window=3))
    hall.refused(Transfer(window=1, to_service="permit"), "queue.no_window_open")
    hall.do(Resume(window=3))
    hall.do(Transfer(window=1, to_service="permit"))
    assert hall.call(3) == "A001"


# ---- pause and resume -------------------------------------------------------------------------


def test_paused_window_cannot_call_until_resumed(hall: Hall):
    hall.take("pension")
    (paused,) = hall.do(Pause(window=2))
    assert isinstance(paused, WindowPaused)
    assert hall.engine.window_view(2).paused
    hall.refused(CallNext(window=2), "queue.window_paused")
    hall.refused(Pause(window=2), "queue.window_already_paused")
    (resumed,) = hall.do(Resume(window=2))
    assert isinstance(resumed, WindowResumed)
    hall.refused(Resume(window=2), "queue.window_not_paused")
    assert hall.call(2) == "B001"


def test_service_whose_only_windows_are_paused_refuses_tickets():
    hall = Hall(hall_config(comprehensive=('services = ["*"]', 'services = ["social", "pension"]')))
    hall.do(Pause(window=3))
    error = hall.refused(TakeTicket(service_id="permit"), "queue.no_window_open")
    assert "建房审批" in error.message.render("zh")
    hall.take("pension")  # other services still take tickets
    hall.do(Resume(window=3))
    assert hall.take("permit").number == "C001"


def test_closed_window_cannot_call():
    hall = Hall(hall_config(closed=('services = ["permit"]', 'services = ["permit"]\nopen = false')))
    hall.take("permit")
    hall.refused(CallNext(window=3), "queue.window_closed")
    assert hall.call(1) == "C001"


# ---- staff posts (AB岗) ------------------------------------------------------------------------


def test_switch_to_the_b_post(hall: Hall):
    hall.take("social")
    (changed,) = hall.do(SwitchStaff(window=1, staff_id="b1"))
    assert isinstance(changed, StaffChanged)
    assert hall.engine.window_view(1).staff_id == "b1"
    (called,) = hall.do(CallNext(window=1))
    assert isinstance(called, TicketCalled) and called.staff_id == "b1"
    hall.refused(SwitchStaff(window=2, staff_id="a1"), "queue.staff_not_on_window")


# ---- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "key"),
    [
        (TakeTicket(service_id="nothing"), "queue.unknown_service"),
        (CallNext(window=9), "queue.unknown_window"),
        (Recall(window=9), "queue.unknown_window"),
        (Skip(window=9), "queue.unknown_window"),
        (Complete(window=9), "queue.unknown_window"),
        (Pause(window=9), "queue.unknown_window"),
        (Resume(window=9), "queue.unknown_window"),
        (Transfer(window=9, to_service="social"), "queue.unknown_window"),
        (SwitchStaff(window=9, staff_id="a1"), "queue.unknown_window"),
        (CallNext(window=1), "queue.nothing_waiting"),
        (Recall(window=1), "queue.no_current_ticket"),
        (Skip(window=1), "queue.no_current_ticket"),
        (Complete(window=1), "queue.no_current_ticket"),
        (Transfer(window=1, to_service="pension"), "queue.no_current_ticket"),
        (Resume(window=1), "queue.window_not_paused"),
        (SwitchStaff(window=3, staff_id="a1"), "queue.staff_not_on_window"),
    ],
)
def test_invalid_action_gets_its_refusal(hall: Hall, command: Command, key: str):
    hall.refused(command, key)


def test_every_queue_message_exists_in_both_languages_with_the_same_fields():
    import string

    keys = {lang: {k for k in catalogue(lang) if k.startswith("queue.")} for lang in LANGS}
    assert keys["zh"] == keys["en"]
    for key in keys["en"]:
        fields = {lang: {f for _, f, _, _ in string.Formatter().parse(catalogue(lang)[key]) if f}
                  for lang in LANGS}
        assert fields["zh"] == fields["en"], key


def test_refusal_reads_in_chinese_and_english(hall: Hall):
    error = hall.refused(CallNext(window=2), "queue.nothing_waiting")
    assert error.message.render("zh") == "2号窗口暂无等候的群众"
    assert error.message.render("en") == "Nobody is waiting for window 2"
    assert str(error) == "Nobody is waiting for window 2"


# ---- opening hours ----------------------------------------------------------------------------


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A Beijing wall-clock time as an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_closed_hall_refuses_with_the_next_opening(sample_config: HallConfig):
    service = sample_config.services[0].id
    hall = Hall(sample_config, now=local(2026, 11, 23, 9, 0))  # Monday 09:00, opens 10:00
    error = hall.refused(TakeTicket(service_id=service), "queue.hall_closed", minutes=0)
    assert error.message.params["next"] == "11-23 10:00"
    assert "11-23 10:00" in error.message.render("zh")
    hall.now = local(2026, 11, 22, 12, 0)  # Sunday: next is Monday morning
    assert hall.refused(TakeTicket(service_id=service), "queue.hall_closed",
                        minutes=0).message.params["next"] == "11-23 10:00"
    hall.now = local(2026, 11, 23, 19, 30)  # Monday after closing: next is Tuesday
    assert hall.refused(TakeTicket(service_id=service), "queue.hall_closed",
                        minutes=0).message.params["next"] == "11-24 10:00"


def test_extended_hours_are_open(sample_config: HallConfig):
    service = sample_config.services[0].id
    hall = Hall(sample_config, now=local(2026, 11, 23, 14, 0))  # 午间不打烊
    assert hall.take(service, minutes=0).number == "A001"
    hall.now = local(2026, 11, 28, 11, 0)  # Saturday morning extended service
    assert hall.take(service, minutes=0).number == "A001"


def test_accept_outside_hours_issues_tickets_when_closed(sample_config: HallConfig):
    config = sample_config.model_copy(
        update={"queue": sample_config.queue.model_copy(update={"accept_outside_hours": True})}
    )
    hall = Hall(config, now=local(2026, 11, 23, 7, 0))
    assert hall.take(config.services[0].id, minutes=0).number == "A001"


# ---- figures ----------------------------------------------------------------------------------


def test_people_ahead_counts_priority_then_arrival_in_the_same_service(hall: Hall):
    a1 = hall.take("social")
    a2 = hall.take("social")
    hall.take("pension")
    a3 = hall.take("social", priority=Priority.PRIORITY)
    assert [hall.engine.ticket_view(t.id).ahead for t in (a1, a2, a3)] == [1, 2, 0]
    hall.call(1)  # calls the priority ticket
    assert hall.engine.ticket_view(a2.id).ahead == 1
    assert hall.engine.ticket_view(a3.id).ahead == 0


def test_estimated_wait_follows_the_documented_formula(hall: Hall):
    # social: default 6 minutes, served by window 1 only; pension: 4 minutes, windows 1 and 2.
    tickets = [hall.take("social") for _ in range(3)]
    assert [hall.engine.ticket_view(t.id).estimated_wait_minutes for t in tickets] == [0.0, 6.0, 12.0]
    pension = [hall.take("pension") for _ in range(3)]
    assert hall.engine.ticket_view(pension[2].id).estimated_wait_minutes == 2 * 4 / 2
    hall.call(1)  # window 1 busy with A001; window 2 idle: not all busy
    assert hall.engine.ticket_view(tickets[2].id).estimated_wait_minutes == 1 * 6 + 6 / 2
    # Measured service times replace the default: the mean of the recent completions.
    hall.call(1, minutes=10)  # A001 took 10 minutes; A002 called
    hall.do(Complete(window=1), minutes=2)  # A002 took 2 minutes
    hall.take("social", minutes=0)  # A004: A003 ahead of it, window 1 idle
    # Two calls of social so far, 10 minutes apart: from now on the line's pace counts.
    assert hall.engine.ticket_view("20261123-A004").estimated_wait_minutes == 1 * 10.0
    assert hall.engine.ticket_view(tickets[0].id).estimated_wait_minutes == 0.0  # done: no wait


def test_estimate_before_the_pace_is_known_uses_service_times(hall: Hall):
    # pension has windows 1 and 2; after one call the pace is not known yet.
    for _ in range(4):
        hall.take("pension")
    hall.call(2)
    hall.do(Complete(window=2), minutes=3)  # a 3-minute service
    view = hall.engine.ticket_view("20261123-B004")
    assert view.ahead == 2
    assert view.estimated_wait_minutes == 2 * 3 / 2


def test_estimate_formula_and_recent_samples():
    assert estimated_wait_seconds(ahead=4, mean_service=300, windows=2, all_busy=False) == 600
    assert estimated_wait_seconds(ahead=4, mean_service=300, windows=2, all_busy=True) == 750
    assert estimated_wait_seconds(ahead=1, mean_service=300, windows=0, all_busy=False) == 300
    # Once the line's pace is known it replaces the service-time formula.
    assert estimated_wait_seconds(ahead=4, mean_service=300, windows=2, all_busy=False, call_interval=90) == 360
    assert estimated_wait_seconds(ahead=4, mean_service=300, windows=2, all_busy=True, call_interval=90) == 405
    pace = CallPace(samples=3)
    assert pace.interval is None
    for minute in (0, 2, 10, 16):
        pace.add(MONDAY + timedelta(minutes=minute))
        if minute == 0:
            assert pace.interval is None
    assert pace.interval == 7 * 60  # last three calls: 2, 10, 16
    times = ServiceTimes(default_seconds=60, samples=3)
    assert times.mean == 60
    for seconds in (10, 20, 30, 100):
        times.add(seconds)
    assert times.samples == [20, 30, 100]
    assert times.mean == 50


def test_service_queue_view(hall: Hall):
    hall.take("social")
    hall.take("social", minutes=5)
    views = {v.service_id: v for v in hall.engine.service_queues(hall.now + timedelta(minutes=1))}
    assert (views["social"].waiting, views["social"].longest_wait_seconds) == (2, 360.0)
    assert views["social"].estimated_wait_minutes == 12.0
    assert (views["pension"].waiting, views["pension"].longest_wait_seconds) == (0, 0.0)


def test_window_figures_served_count_and_mean_service_time(hall: Hall):
    for _ in range(3):
        hall.take("pension")
    hall.call(2)
    hall.call(2, minutes=3)
    hall.call(2, minutes=5)
    hall.do(Complete(window=2), minutes=10)
    view = hall.engine.window_view(2)
    assert (view.served_today, view.mean_service_seconds) == (3, 360.0)
    assert hall.engine.window_view(1).mean_service_seconds is None
    assert view.ticket is None and view.staff_id == "b1"


def test_outcome_carries_the_ticket_and_the_window(hall: Hall):
    command = TakeTicket(service_id="social")
    events = hall.engine.execute(command, hall.now)
    outcome = hall.engine.outcome(command, events)
    assert outcome.ticket is not None and outcome.ticket.number == "A001"
    assert outcome.window is None and outcome.action == "take"
    call = CallNext(window=1)
    outcome = hall.engine.outcome(call, hall.engine.execute(call, hall.now))
    assert outcome.window is not None and outcome.window.ticket is not None
    assert outcome.window.ticket.number == "A001"


# ---- events -----------------------------------------------------------------------------------


def test_every_event_has_an_id_and_a_time(hall: Hall):
    hall.take("social", priority=Priority.PRIORITY)
    hall.take("social")
    hall.take("pension")
    hall.call(1)
    hall.do(Recall(window=1))
    hall.do(Skip(window=1))
    hall.call(1)
    hall.do(Transfer(window=1, to_service="pension"))
    hall.call(2)
    hall.do(Pause(window=3))
    hall.do(Resume(window=3))
    hall.do(SwitchStaff(window=1, staff_id="b1"))
    hall.call(1)
    hall.do(Complete(window=1))
    hall.now += timedelta(days=1)
    hall.take("social")
    kinds = {type(e) for e in hall.log}
    assert len(kinds) == 10  # every kind of event took part
    assert len({e.id for e in hall.log}) == len(hall.log)
    assert all(e.at.tzinfo is not None for e in hall.log)
    assert [e.at for e in hall.log] == sorted(e.at for e in hall.log)
    assert all(e.request_id for e in hall.log if not isinstance(e, DayOpened))
