"""Appointments (预约签到): the card holder's bookings today, looked up by the card's keyed hash.

Home offers them; confirming one is its check-in (see :func:`check_in_command`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol

from hallkit.broker.client import HubError
from hallkit.contracts.hall import AppointmentList, AppointmentView, check_in_request_id
from hallkit.devices.idcard.records import ResidentRecord
from hallkit.kiosk.hub import AppointmentsAnswer
from hallkit.kiosk.screens.ports import Visit

from hallkit.queue.models import Channel, Priority, TakeTicket


class AppointmentLookup(Protocol):
    """The hub link's look-up (:meth:`kiosk.hub.HubLink.appointments`); ``done`` runs on the UI thread."""

    def appointments(self, id_hash: str, done: Callable[[AppointmentsAnswer], None]) -> None: ...


def check_in_command(appointment: AppointmentView, resident: ResidentRecord) -> TakeTicket:
    """The ticket that checks an appointment in: channel and priority ``appointment``; the request id
    comes from the appointment, so checking in twice returns the first ticket."""
    return TakeTicket(service_id=appointment.service_id, channel=Channel.APPOINTMENT,
                      priority=Priority.APPOINTMENT, id_hash=resident.id_hash,
                      request_id=check_in_request_id(appointment.appointment_id))


class AppointmentFlow:
    """Looks the card holder's appointments up and keeps them in ``visit.appointments``."""

    def __init__(self, visit: Visit, hub: AppointmentLookup) -> None:
        self.visit = visit
        self.hub = hub
        self._asked = 0
        """Grows with each look-up and each reset: an answer for an earlier one is dropped."""

    def look_up(self, record: ResidentRecord) -> None:
        self._asked += 1
        self.visit.appointments = []
        self.visit.appointment_lookup = "asking"
        self.hub.appointments(record.id_hash, partial(self._arrived, self._asked))

    def _arrived(self, asked: int, answer: AppointmentsAnswer) -> None:
        if asked != self._asked or self.visit.resident is None:
            return  # reset or another card since: this list belongs to nobody on the screen now
        if isinstance(answer, HubError):
            self.visit.appointment_lookup = "failed"  # asked again when the hub is back
            return
        assert isinstance(answer, AppointmentList)
        self.visit.appointments = list(answer.appointments)
        self.visit.appointment_lookup = "done"

    def hub_back(self) -> None:
        if self.visit.appointment_lookup == "failed" and self.visit.resident is not None:
            self.look_up(self.visit.resident)

    def drop(self) -> None:
        self._asked += 1
        self.visit.appointments = []
        self.visit.appointment_lookup = "none"

    def for_service(self, service_id: str) -> AppointmentView | None:
        """The card holder's appointment for this service today, if any: taking it is the check-in."""
        if self.visit.resident is None:
            return None
        return next((a for a in self.visit.appointments if a.service_id == service_id), None)

    def checked_in(self, request_id: str) -> None:
        """Not offered again in this visit (the hub leaves it out of later look-ups too)."""
        self.visit.appointments = [a for a in self.visit.appointments
                                   if check_in_request_id(a.appointment_id) != request_id]

    def slot_text(self, appointment: AppointmentView) -> str:
        """The booked time as the hall reads it, ``09:00–09:30``."""
        zone = self.visit.hall.hall.zone
        starts, ends = (t.astimezone(zone) if t.tzinfo is not None else t
                        for t in (appointment.starts, appointment.ends))
        return f"{starts:%H:%M}–{ends:%H:%M}"
