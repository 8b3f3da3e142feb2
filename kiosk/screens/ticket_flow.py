"""Taking a ticket: the command for the chosen service, the hub's reply, the print, the ticket texts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from hallkit.contracts.hall import CHECK_IN_PREFIX, CommandReply, Refusal
from hallkit.devices.printer.layout import TicketPrint
from hallkit.devices.printer.status import PrinterStatus
from hallkit.kiosk.screens.appointment_flow import AppointmentFlow, check_in_command
from hallkit.kiosk.screens.ports import Screens, Visit
from hallkit.kiosk.screens.retry_flow import CommandLink, RetryFlow
from hallkit.kiosk.timers import Timers

from hallkit.i18n import Lang, text
from hallkit.queue.models import Channel, Priority, TakeTicket, TicketView


class TicketPrinter(Protocol):
    """The kiosk's printer spooler (:meth:`kiosk.devices.KioskDevices.print_ticket`)."""

    def print_ticket(self, ticket: TicketPrint) -> bool: ...


@dataclass(frozen=True, slots=True)
class TicketTexts:
    """The lines under the number on the ticket screen (and on ``no_paper``)."""

    ahead: str
    wait: str
    windows: str


def ticket_texts(view: TicketView | None, lang: Lang) -> TicketTexts:
    if view is None:
        return TicketTexts("", "", "")
    ahead = text("kiosk.ticket.ahead", lang, ahead=view.ahead) if view.ahead else text("kiosk.ticket.none_ahead", lang)
    minutes = math.ceil(view.estimated_wait_minutes)
    wait = text("kiosk.ticket.wait", lang, minutes=minutes) if view.ahead and minutes else ""
    windows = text("kiosk.confirm.separator", lang).join(text("kiosk.ticket.window", lang, number=n)
                                                         for n in view.windows)
    return TicketTexts(ahead, wait, text("kiosk.ticket.windows", lang, windows=windows))


class TicketFlow:
    """From 取号 on the confirm screen to the ticket on screen and on paper."""

    def __init__(self, visit: Visit, hub: CommandLink, printer: TicketPrinter, appointments: AppointmentFlow,
                 screens: Screens, timers: Timers) -> None:
        self.visit = visit
        self.printer = printer
        self.appointments = appointments
        self.screens = screens
        self.timers = timers
        self.retry = RetryFlow(visit, hub, screens, timers, self._replied)
        self.tapped_at: float | None = None
        """When the last ticket was asked for (``timers.now()``), for the tap-to-ticket latency."""
        self.ticket_shown_at: float | None = None

    def command(self) -> TakeTicket:
        """The request for the chosen service: the check-in when the card holder booked it today."""
        visit = self.visit
        resident = visit.resident
        appointment = self.appointments.for_service(visit.service_id)
        if resident is not None and appointment is not None:
            return check_in_command(appointment, resident)
        return TakeTicket(
            service_id=visit.service_id,
            channel=Channel.AGENT if visit.agent else Channel.KIOSK,
            priority=Priority.PRIORITY if resident is not None and resident.elderly else Priority.NORMAL,
            id_hash=resident.id_hash if resident is not None else None,
        )

    def take(self) -> None:
        """Ask the hub for a ticket for the chosen service (the answer comes back on the UI thread)."""
        if self.visit.busy or not self.visit.service_id:
            return
        self.tapped_at = self.timers.now()
        self.retry.ask(self.command())

    def drop(self) -> None:
        self.retry.drop()
        self.visit.ticket = None
        self.visit.refusal = None
        self.visit.print_state = "none"

    def _replied(self, request_id: str, reply: CommandReply) -> None:
        if reply.ok and request_id.startswith(CHECK_IN_PREFIX):
            self.appointments.checked_in(request_id)
        if not reply.ok or reply.outcome is None or reply.outcome.ticket is None:
            self.visit.refusal = reply.refusal or Refusal(reason="kiosk.refused", zh="", en="")
            self.screens.show("refused")
            return
        view: TicketView = reply.outcome.ticket
        self.visit.ticket = view
        printed = self.printer.print_ticket(TicketPrint.from_view(view, self.visit.hall))
        self.visit.print_state = "printing" if printed else "no_printer"
        self.screens.show("ticket")
        self.ticket_shown_at = self.timers.now()

    # ---- what the printer spooler says (on the UI thread) -------------------------------------

    def printer_status(self, status: PrinterStatus) -> None:
        self.visit.printer_condition = status.describe(self.visit.lang)

    def printed(self, ticket_id: str) -> None:
        if self.visit.ticket is not None and self.visit.ticket.ticket_id == ticket_id:
            self.visit.print_state = "printed"

    def not_printed(self, ticket_id: str, status: PrinterStatus) -> None:
        if self.visit.ticket is not None and self.visit.ticket.ticket_id == ticket_id:
            self.visit.print_state = "failed"
            self.visit.printer_condition = status.describe(self.visit.lang)
            self.screens.show("no_paper")
