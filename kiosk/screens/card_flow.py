"""The ID card at the kiosk: a record read (masked name, age, keyed hash), or a card problem."""

from __future__ import annotations

from collections.abc import Callable

from hallkit.devices.idcard.problems import IdCardError
from hallkit.devices.idcard.records import ResidentRecord
from hallkit.kiosk.screens.appointment_flow import AppointmentFlow
from hallkit.kiosk.screens.ports import Screens, Visit
from hallkit.kiosk.timers import Timer, Timers

from hallkit.i18n import text

CARD_HINT_SECONDS = 4.0
"""How long "hold the card still" stays after a read that needs another try."""
PERSONAL_SCREENS = frozenset({"ticket", "no_paper", "refused", "hub_down"})
"""Screens about one resident's ticket: a new card placed there starts a new visit (on hub_down
that drops the previous resident's pending request, so its retry cannot carry a new card)."""
CARD_SCREENS = frozenset({"home", "services", "confirm", "guide", "card_problem"})
"""Screens before a ticket is taken, where a card problem is worth interrupting for."""


class CardFlow:
    """Puts the card holder's record into the visit and looks their appointments up.

    Args:
        visit: the visit's state.
        screens: navigation.
        timers: the hint's timer.
        appointments: looks the card holder's appointments up.
        new_visit: drops the previous resident's visit (the app's reset).
    """

    def __init__(self, visit: Visit, screens: Screens, timers: Timers, appointments: AppointmentFlow,
                 new_visit: Callable[[], None]) -> None:
        self.visit = visit
        self.screens = screens
        self.timers = timers
        self.appointments = appointments
        self._new_visit = new_visit
        self._came_from = "home"
        self._hint_timer: Timer | None = None

    def read(self, record: ResidentRecord) -> None:
        if self.screens.current in PERSONAL_SCREENS:
            self._new_visit()
        self.visit.resident = record
        if record.elderly:
            self.visit.elder = True  # 长辈模式 by itself for the hall's elderly; the visit's end turns it off
        self._set_hint("")
        self.appointments.look_up(record)
        if self.screens.current == "card_problem":
            self.leave_problem()
        else:
            self.screens.refresh_current()

    def problem(self, error: IdCardError) -> None:
        if error.retry:
            self._set_hint(text("kiosk.card.hold_still", self.visit.lang))
            self._hint_timer = self.timers.after(CARD_HINT_SECONDS, lambda: self._set_hint(""))
            return
        current = self.screens.current
        if current not in CARD_SCREENS:
            return
        if current != "card_problem":
            self._came_from = current
        self.visit.card_error = error
        self.screens.show("card_problem")

    def leave_problem(self) -> None:
        """Go on without the card, back where the resident was."""
        self.visit.card_error = None
        self.screens.show(self._came_from)

    def drop(self) -> None:
        self.visit.resident = None
        self.visit.card_error = None
        self._set_hint("")
        self.appointments.drop()

    def _set_hint(self, hint: str) -> None:
        # A newer hint (or none) replaces the old one with its own time on screen.
        if self._hint_timer is not None:
            self._hint_timer.cancel()
            self._hint_timer = None
        self.visit.card_hint = hint
