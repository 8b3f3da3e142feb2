"""Plain stand-ins for what the kiosk's flows talk to, so the flows run without Kivy.

They play the *outside* of a flow (the app's state and screens, the hub link's thread,
the printer spooler); the flows under test are the real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hallkit.contracts.hall import AppointmentView, CommandReply, Refusal
from hallkit.devices.idcard.problems import IdCardError
from hallkit.devices.idcard.records import CardKind, Gender, ResidentRecord
from hallkit.devices.printer.layout import TicketPrint
from hallkit.kiosk.hub import Answer, AppointmentsAnswer
from hallkit.kiosk.screens.appointment_flow import AppointmentFlow
from hallkit.kiosk.screens.card_flow import CardFlow
from hallkit.kiosk.screens.pin_flow import PinFlow
from hallkit.kiosk.screens.ticket_flow import TicketFlow
from hallkit.kiosk.timers import ManualTimers

from hallkit.config import HallConfig
from hallkit.i18n import Lang
from hallkit.queue.models import Channel, Command, Outcome, Priority, TicketState, TicketView


@dataclass
class FakeVisit:
    """The app's Kivy properties, as plain attributes."""

    hall: HallConfig
    lang: Lang = "zh"
    elder: bool = False
    agent: bool = False
    hub_online: bool = True
    resident: ResidentRecord | None = None
    card_hint: str = ""
    card_error: IdCardError | None = None
    appointments: list[AppointmentView] = field(default_factory=list)
    appointment_lookup: str = "none"
    service_id: str = ""
    busy: bool = False
    busy_shown: bool = False
    hub_attempts: int = 0
    refusal: Refusal | None = None
    ticket: TicketView | None = None
    print_state: str = "none"
    printer_condition: str = ""
    pin_purpose: str = "maintenance"


class FakeScreens:
    """Navigation that only remembers where it went."""

    def __init__(self) -> None:
        self.shown: list[str] = ["home"]
        self.refreshed = 0

    @property
    def current(self) -> str:
        return self.shown[-1]

    def show(self, name: str) -> None:
        self.shown.append(name)

    def home(self) -> None:
        self.show("home")

    def refresh_current(self) -> None:
        self.refreshed += 1


class FakeHub:
    """The hub link: requests wait in ``asked`` until the test answers them (as its thread would)."""

    def __init__(self) -> None:
        self.asked: list[tuple[Command, Callable[[Answer], None]]] = []
        self.lookups: list[tuple[str, Callable[[AppointmentsAnswer], None]]] = []

    def ask(self, command: Command, done: Callable[[Answer], None]) -> None:
        self.asked.append((command, done))

    def appointments(self, id_hash: str, done: Callable[[AppointmentsAnswer], None]) -> None:
        self.lookups.append((id_hash, done))

    def answer(self, answer: Answer, index: int = -1) -> None:
        self.asked[index][1](answer)


class FakePrinter:
    def __init__(self, present: bool = True) -> None:
        self.present = present
        self.printed: list[TicketPrint] = []

    def print_ticket(self, ticket: TicketPrint) -> bool:
        if self.present:
            self.printed.append(ticket)
        return self.present


@dataclass
class Kiosk:
    """The flows wired as the app wires them, around fakes."""

    visit: FakeVisit
    screens: FakeScreens
    timers: ManualTimers
    hub: FakeHub
    printer: FakePrinter
    appointments: AppointmentFlow
    tickets: TicketFlow
    cards: CardFlow
    pins: PinFlow
    resets: list[int]

    @classmethod
    def build(cls, hall: HallConfig, printer: bool = True) -> Kiosk:
        visit, screens, timers, hub = FakeVisit(hall), FakeScreens(), ManualTimers(), FakeHub()
        fake_printer = FakePrinter(printer)
        appointments = AppointmentFlow(visit, hub)
        tickets = TicketFlow(visit, hub, fake_printer, appointments, screens, timers)
        resets: list[int] = []

        def reset() -> None:
            resets.append(1)
            tickets.drop()
            cards.drop()

        cards = CardFlow(visit, screens, timers, appointments, reset)
        return cls(visit, screens, timers, hub, fake_printer, appointments, tickets, cards,
                   PinFlow(visit, screens, timers), resets)


def record(elderly: bool = False, id_hash: str = "a" * 64) -> ResidentRecord:
    return ResidentRecord(card=CardKind.RESIDENT, id_masked="110101********1234", name_masked="王**",
                          gender=Gender.FEMALE, age=71 if elderly else 40, elderly=elderly, id_hash=id_hash)


def ticket_reply(request_id: str, number: str = "A001", service_id: str = "social", **view: Any) -> CommandReply:
    ticket = TicketView(ticket_id=f"t-{number}", public_id=f"p-{number}", number=number, service_id=service_id,
                        service_name="低保申请", state=TicketState.WAITING, priority=Priority.NORMAL,
                        channel=Channel.KIOSK, taken_at=datetime(2026, 11, 23, 2, 0, tzinfo=UTC),
                        ahead=view.get("ahead", 2), estimated_wait_minutes=view.get("wait", 7.5),
                        windows=[1, 2])
    return CommandReply(device="hub", request_id=request_id, ok=True,
                        outcome=Outcome(action="take", events=[], ticket=ticket))


def refusal_reply(request_id: str) -> CommandReply:
    return CommandReply(device="hub", request_id=request_id, ok=False,
                        refusal=Refusal(reason="queue.closed", zh="大厅已下班", en="The hall is closed"))
