"""What the screens and their flows need from the kiosk, as protocols: none of it imports Kivy.

:class:`kiosk.app.KioskApp` provides all of it (its state as Kivy properties the kv files
bind to); the flows' unit tests provide plain objects.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from hallkit.contracts.hall import AppointmentView, QueueSnapshot, Refusal
from hallkit.devices.idcard.problems import IdCardError
from hallkit.devices.idcard.records import ResidentRecord
from hallkit.kiosk.catalog import ServiceGroup

from hallkit.config import HallConfig
from hallkit.i18n import Lang
from hallkit.queue.models import TicketView

if TYPE_CHECKING:
    from hallkit.contracts.mqtt import BrokerAddress
    from hallkit.kiosk.devices import KioskDevices
    from hallkit.kiosk.screens.appointment_flow import AppointmentFlow
    from hallkit.kiosk.screens.card_flow import CardFlow
    from hallkit.kiosk.screens.pin_flow import PinFlow
    from hallkit.kiosk.screens.ticket_flow import TicketFlow

Deliver = Callable[[Callable[[], None]], None]
"""Runs a callable on the UI thread."""


class Screens(Protocol):
    """Moving between screens."""

    @property
    def current(self) -> str: ...

    def show(self, name: str) -> None: ...

    def home(self) -> None:
        """Back to home, keeping the visit (card, agent mode)."""

    def refresh_current(self) -> None:
        """Rebuild the screen on show from the state (after a change kv bindings cannot follow)."""


class Visit(Protocol):
    """One resident's visit: the state the flows read and write (Kivy properties on the app)."""

    hall: HallConfig
    lang: Lang
    elder: bool
    agent: bool
    hub_online: bool
    resident: ResidentRecord | None
    card_hint: str
    card_error: IdCardError | None
    appointments: list[AppointmentView]
    appointment_lookup: str
    service_id: str
    busy: bool
    busy_shown: bool
    hub_attempts: int
    refusal: Refusal | None
    ticket: TicketView | None
    print_state: str
    printer_condition: str
    pin_purpose: str


class Kiosk(Screens, Visit, Protocol):
    """Everything a kiosk screen reaches through ``self.app``."""

    groups: list[ServiceGroup]
    generation: int
    group: ServiceGroup | None
    guide_mode: bool
    waiting: dict[str, int]
    snapshot: QueueSnapshot | None
    config_path: Path | None
    broker: BrokerAddress
    devices: KioskDevices
    ticket_flow: TicketFlow
    card_flow: CardFlow
    appointment_flow: AppointmentFlow
    pin_flow: PinFlow

    @property
    def items_per_page(self) -> int: ...

    def bind(self, **handlers: Callable[..., object]) -> None:
        """Kivy's property binding (``EventDispatcher.bind``): screens follow the app's state."""

    def t(self, key: str, lang: Lang | None = None, **params: object) -> str: ...

    def reset_session(self) -> None: ...

    def choose_group(self, group: ServiceGroup) -> None: ...

    def choose_service(self, service_id: str) -> None: ...

    def open_guide(self, service_id: str) -> None: ...

    def check_in(self, appointment: AppointmentView) -> None: ...

    def reload_config(self) -> str: ...
