"""The kiosk's flows on their own: plain classes around fakes, no Kivy, no window, no broker."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from hallkit.broker.client import HubError
from hallkit.contracts.hall import AppointmentList, AppointmentView, check_in_request_id
from hallkit.devices.idcard.problems import IdCardError, Problem
from hallkit.devices.printer.status import PaperLevel, PrinterCondition, PrinterStatus
from hallkit.kiosk.screens.card_flow import CARD_HINT_SECONDS
from hallkit.kiosk.screens.idle_flow import IdleFlow
from hallkit.kiosk.screens.pin_flow import LOCK_SECONDS, STAFF_TAP_SECONDS, TRIES
from hallkit.kiosk.screens.retry_flow import BUSY_AFTER_SECONDS, RETRY_SECONDS
from hallkit.kiosk.screens.ticket_flow import ticket_texts
from hallkit.kiosk.timers import ManualTimers

from hallkit.config import HallConfig
from hallkit.queue.models import Channel, Priority
from tests.kiosk.fakes import FakeVisit, Kiosk, record, refusal_reply, ticket_reply

PIN = "2468"


@pytest.fixture
def kiosk(small_config: HallConfig) -> Kiosk:
    pin_hash = hashlib.sha256(PIN.encode()).hexdigest()
    hall = small_config.model_copy(update={"kiosk": small_config.kiosk.model_copy(update={"staff_pin_hash": pin_hash})})
    return Kiosk.build(hall)


def appointment(service_id: str = "social") -> AppointmentView:
    return AppointmentView(appointment_id="ap-1", service_id=service_id, service_name="低保申请",
                           starts=datetime(2026, 11, 23, 1, 0, tzinfo=UTC), ends=datetime(2026, 11, 23, 1, 30, tzinfo=UTC))


def test_the_flows_import_without_kivy():
    code = ("import sys, kiosk.screens.ticket_flow, kiosk.screens.card_flow, kiosk.screens.pin_flow, "
            "kiosk.screens.retry_flow, kiosk.screens.appointment_flow, kiosk.screens.ports, kiosk.timers; "
            "assert not [m for m in sys.modules if m == 'kivy' or m.startswith('kivy.')], 'kivy imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- taking a ticket ---------------------------------------------------------------------------


def test_an_elderly_card_takes_a_priority_ticket_and_prints_it(kiosk: Kiosk):
    kiosk.visit.resident = record(elderly=True)
    kiosk.visit.service_id = "social"
    kiosk.tickets.take()
    command = kiosk.hub.asked[0][0]
    assert (command.channel, command.priority, command.id_hash) == (Channel.KIOSK, Priority.PRIORITY, "a" * 64)
    assert kiosk.visit.busy
    kiosk.hub.answer(ticket_reply(command.request_id))
    assert kiosk.screens.current == "ticket" and kiosk.visit.ticket.number == "A001"
    assert not kiosk.visit.busy and kiosk.visit.print_state == "printing"
    assert [t.number for t in kiosk.printer.printed] == ["A001"]
    kiosk.tickets.printed("t-A001")
    assert kiosk.visit.print_state == "printed"


def test_agent_mode_and_no_card_take_a_normal_agent_ticket(kiosk: Kiosk):
    kiosk.visit.agent = True
    kiosk.visit.service_id = "pension"
    command = kiosk.tickets.command()
    assert (command.channel, command.priority, command.id_hash) == (Channel.AGENT, Priority.NORMAL, None)


def test_a_second_tap_while_asking_sends_nothing(kiosk: Kiosk):
    kiosk.visit.service_id = "social"
    kiosk.tickets.take()
    kiosk.tickets.take()
    assert len(kiosk.hub.asked) == 1


def test_taking_shows_only_when_the_hub_is_slow(kiosk: Kiosk):
    kiosk.visit.service_id = "social"
    kiosk.tickets.take()
    kiosk.timers.advance(BUSY_AFTER_SECONDS - 0.1)
    assert not kiosk.visit.busy_shown
    kiosk.timers.advance(0.1)
    assert kiosk.visit.busy_shown
    kiosk.hub.answer(ticket_reply(kiosk.hub.asked[0][0].request_id))
    assert not kiosk.visit.busy_shown


def test_a_refusal_shows_the_reason(kiosk: Kiosk):
    kiosk.visit.service_id = "social"
    kiosk.tickets.take()
    kiosk.hub.answer(refusal_reply(kiosk.hub.asked[0][0].request_id))
    assert kiosk.screens.current == "refused" and kiosk.visit.refusal.zh == "大厅已下班"
    assert kiosk.visit.ticket is None and not kiosk.printer.printed


def test_no_printer_and_a_failed_print(small_config: HallConfig):
    kiosk = Kiosk.build(small_config, printer=False)
    kiosk.visit.service_id = "social"
    kiosk.tickets.take()
    kiosk.hub.answer(ticket_reply(kiosk.hub.asked[0][0].request_id))
    assert kiosk.visit.print_state == "no_printer"
    out = PrinterStatus(condition=PrinterCondition.PAPER_OUT, answered=True, paper=PaperLevel.OUT)
    kiosk.tickets.not_printed("t-other", out)
    assert kiosk.screens.current == "ticket"  # another ticket's failure is not this resident's
    kiosk.tickets.not_printed("t-A001", out)
    assert kiosk.screens.current == "no_paper" and kiosk.visit.print_state == "failed"
    assert "纸" in kiosk.visit.printer_condition


def test_ticket_texts_follow_the_language():
    reply = ticket_reply("r", ahead=3, wait=7.2)
    zh = ticket_texts(reply.outcome.ticket, "zh")
    en = ticket_texts(reply.outcome.ticket, "en")
    assert "3" in zh.ahead and "8" in zh.wait and "1" in zh.windows and "2" in zh.windows
    assert en.ahead != zh.ahead
    assert ticket_texts(ticket_reply("r", ahead=0).outcome.ticket, "zh").wait == ""
    assert ticket_texts(None, "zh").ahead == ""


# ---- the hub away: retry with the same request id ---------------------------------------------


def test_the_hub_away_retries_the_same_request_every_few_seconds(kiosk: Kiosk):
    kiosk.visit.service_id = "social"
    kiosk.tickets.take()
    first = kiosk.hub.asked[0][0]
    kiosk.hub.answer(HubError("hub.unreachable"))
    assert kiosk.screens.current == "hub_down" and kiosk.visit.hub_attempts == 1
    assert kiosk.visit.ticket is None
    kiosk.timers.advance(RETRY_SECONDS - 0.1)
    assert len(kiosk.hub.asked) == 1
    kiosk.timers.advance(0.1)
    assert len(kiosk.hub.asked) == 2 and kiosk.hub.asked[1][0] == first
    kiosk.hub.answer(HubError("hub.unreachable"))
    kiosk.timers.advance(RETRY_SECONDS)
    assert kiosk.visit.hub_attempts == 2 and len(kiosk.hub.asked) == 3
    kiosk.hub.answer(ticket_reply(first.request_id))
    assert kiosk.screens.current == "ticket"
    kiosk.timers.advance(RETRY_SECONDS * 3)
    assert len(kiosk.hub.asked) == 3  # answered: no more retries


def test_a_reset_while_retrying_drops_the_request(kiosk: Kiosk):
    kiosk.visit.service_id = "social"
    kiosk.tickets.take()
    kiosk.hub.answer(HubError("hub.unreachable"))
    kiosk.tickets.drop()
    kiosk.screens.home()
    kiosk.timers.advance(RETRY_SECONDS * 2)
    assert len(kiosk.hub.asked) == 1
    kiosk.hub.answer(ticket_reply(kiosk.hub.asked[0][0].request_id))  # a late answer: nobody waits for it
    assert kiosk.visit.ticket is None and kiosk.screens.current == "home"


# ---- the card -----------------------------------------------------------------------------------


def test_a_card_looks_up_appointments_and_their_check_in(kiosk: Kiosk):
    kiosk.cards.read(record())
    assert kiosk.visit.appointment_lookup == "asking" and kiosk.hub.lookups[0][0] == "a" * 64
    kiosk.hub.lookups[0][1](AppointmentList(device="hub", request_id="x", appointments=[appointment()]))
    assert kiosk.visit.appointment_lookup == "done" and len(kiosk.visit.appointments) == 1
    assert kiosk.appointments.slot_text(kiosk.visit.appointments[0]) == "09:00–09:30"  # the hall's time
    kiosk.visit.service_id = "social"
    kiosk.tickets.take()
    command = kiosk.hub.asked[0][0]
    assert command.request_id == check_in_request_id("ap-1") and command.channel is Channel.APPOINTMENT
    kiosk.hub.answer(ticket_reply(command.request_id))
    assert kiosk.visit.appointments == []  # checked in: not offered again


def test_a_failed_lookup_is_asked_again_when_the_hub_is_back(kiosk: Kiosk):
    kiosk.cards.read(record())
    kiosk.hub.lookups[0][1](HubError("hub.timeout"))
    assert kiosk.visit.appointment_lookup == "failed"
    kiosk.appointments.hub_back()
    assert len(kiosk.hub.lookups) == 2


def test_an_answer_for_an_earlier_card_is_dropped(kiosk: Kiosk):
    kiosk.cards.read(record(id_hash="c" * 64))
    kiosk.cards.read(record(id_hash="d" * 64))
    kiosk.hub.lookups[0][1](AppointmentList(device="hub", request_id="x", appointments=[appointment()]))
    assert kiosk.visit.appointments == [] and kiosk.visit.appointment_lookup == "asking"


def test_a_new_card_on_the_ticket_screen_starts_a_new_visit(kiosk: Kiosk):
    kiosk.screens.show("ticket")
    kiosk.cards.read(record())
    assert kiosk.resets == [1] and kiosk.visit.resident is not None


def test_a_card_problem_and_going_on_without_it(kiosk: Kiosk):
    kiosk.screens.show("confirm")
    kiosk.cards.problem(IdCardError(Problem.EXPIRED))
    assert kiosk.screens.current == "card_problem" and kiosk.visit.card_error is not None
    kiosk.cards.leave_problem()
    assert kiosk.screens.current == "confirm" and kiosk.visit.card_error is None
    kiosk.screens.show("ticket")
    kiosk.cards.problem(IdCardError(Problem.EXPIRED))
    assert kiosk.screens.current == "ticket"  # not worth interrupting a ticket for


def test_hold_still_shows_for_a_while_and_a_new_hint_gets_its_own_time(kiosk: Kiosk):
    kiosk.cards.problem(IdCardError(Problem.CARD_MOVED))
    assert kiosk.visit.card_hint
    kiosk.timers.advance(CARD_HINT_SECONDS - 1)
    kiosk.cards.problem(IdCardError(Problem.CARD_MOVED))
    kiosk.timers.advance(2)
    assert kiosk.visit.card_hint  # the first hint's timer does not clear the second
    kiosk.timers.advance(CARD_HINT_SECONDS)
    assert kiosk.visit.card_hint == ""


# ---- staff PIN ----------------------------------------------------------------------------------


def test_five_quick_taps_on_the_hall_name_ask_for_the_pin(kiosk: Kiosk):
    for _ in range(4):
        kiosk.pins.staff_tap()
        kiosk.timers.advance(STAFF_TAP_SECONDS / 2)  # too slow: the first taps fall out of the window
    assert kiosk.screens.current == "home"
    for _ in range(5):
        kiosk.pins.staff_tap()
        kiosk.timers.advance(0.2)
    assert kiosk.screens.current == "pin" and kiosk.visit.pin_purpose == "maintenance"


def test_the_right_pin_opens_agent_mode_or_maintenance(kiosk: Kiosk):
    kiosk.pins.ask("agent")
    assert kiosk.pins.submit(PIN) == "" and kiosk.visit.agent and kiosk.screens.current == "home"
    kiosk.pins.ask("maintenance")
    kiosk.pins.submit(PIN)
    assert kiosk.screens.current == "maintenance"


def test_wrong_pins_lock_for_a_minute(kiosk: Kiosk):
    kiosk.pins.ask("maintenance")
    messages = [kiosk.pins.submit("0000") for _ in range(TRIES)]
    assert "4" in messages[0] and str(LOCK_SECONDS) in messages[-1]
    assert "秒" in kiosk.pins.submit(PIN) and kiosk.screens.current == "pin"  # locked: even the right one
    kiosk.timers.advance(LOCK_SECONDS)
    assert kiosk.pins.submit(PIN) == "" and kiosk.screens.current == "maintenance"


def test_no_pin_configured_opens_nothing(small_config: HallConfig):
    kiosk = Kiosk.build(small_config)
    kiosk.pins.ask("maintenance")
    assert kiosk.pins.unset and kiosk.pins.submit("") and kiosk.screens.current == "pin"


# ---- the fake clock itself -----------------------------------------------------------------------


def test_manual_timers_run_due_calls_in_order_and_skip_cancelled_ones():
    timers = ManualTimers()
    ran: list[str] = []
    timers.after(2, lambda: ran.append("b"))
    timers.after(1, lambda: ran.append("a"))
    timers.after(1.5, lambda: ran.append("never")).cancel()
    start = timers.now()
    timers.advance(1.9)
    assert ran == ["a"] and timers.now() == start + 1.9
    timers.advance(0.1)
    assert ran == ["a", "b"] and timers.pending() == 0


# ---- idle reset ---------------------------------------------------------------------------------


def idle(visit_busy: bool = False) -> tuple[IdleFlow, ManualTimers, list[int], FakeVisit]:
    timers = ManualTimers()
    visit = FakeVisit(hall=None)  # type: ignore[arg-type] - the idle flow reads only ``busy``
    visit.busy = visit_busy
    resets: list[int] = []
    return IdleFlow(visit, timers, 60, lambda: resets.append(1)), timers, resets, visit


def test_tapping_every_ten_seconds_for_three_minutes_keeps_the_visit():
    flow, timers, resets, _ = idle()
    flow.activity()
    for _ in range(18):
        timers.advance(10)
        flow.activity()
    assert resets == []
    timers.advance(59.9)
    assert resets == []
    timers.advance(0.1)
    assert resets == [1]
    assert timers.pending() == 0


def test_a_ticket_being_asked_for_is_not_cut_off_by_the_idle_reset():
    flow, timers, resets, visit = idle(visit_busy=True)
    flow.activity()
    timers.advance(60)
    assert resets == []
    visit.busy = False
    timers.advance(60)
    assert resets == [1]
