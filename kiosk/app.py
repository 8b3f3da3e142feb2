"""The kiosk app: a thin façade over the hub link, the devices, the screens and their flows.

State lives in Kivy properties the kv files bind to (language, elder mode, the
resident's card record, the ticket, the print state). What happens in each flow —
taking a ticket, retrying while the hub is away, the card, appointments, the staff
PIN — is a plain class next to its screen (``kiosk/screens/*_flow.py``) that reads
and writes this state; the app only wires them together and moves between screens.
The devices and the hub are reached only from worker threads (:mod:`kiosk.devices`,
:mod:`kiosk.hub`), whose answers come back through ``Clock.schedule_once``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from hallkit.broker.mosquitto import Logins
from hallkit.contracts.hall import AppointmentView, QueueSnapshot, Refusal
from hallkit.contracts.mqtt import BrokerAddress
from hallkit.devices.idcard.problems import IdCardError
from hallkit.devices.idcard.records import ResidentRecord
from hallkit.devices.printer.status import PrinterStatus
from hallkit.kiosk import theme, widgets  # noqa: F401 - widgets registers the classes the kv files use
from hallkit.kiosk.catalog import ServiceGroup, group_services, service_open
from hallkit.kiosk.devices import KioskDevices
from hallkit.kiosk.feed import HallFeed
from hallkit.kiosk.hub import HubLink
from hallkit.kiosk.screens import screen_class
from hallkit.kiosk.screens.appointment_flow import AppointmentFlow
from hallkit.kiosk.screens.card_flow import CardFlow
from hallkit.kiosk.screens.idle_flow import IdleFlow
from hallkit.kiosk.screens.pin_flow import PinFlow
from hallkit.kiosk.screens.ticket_flow import TicketFlow, ticket_texts
from hallkit.kiosk.timers import Timer, Timers
from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import (
    BooleanProperty,
    DictProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    OptionProperty,
    StringProperty,
)
from kivy.uix.screenmanager import NoTransition, ScreenManager

from hallkit.config import HallConfig, load_config
from hallkit.i18n import Lang, Message, text


def deliver(call: Callable[[], None]) -> None:
    """Run ``call`` on the UI thread at the next frame (Kivy widgets are not thread-safe)."""
    Clock.schedule_once(lambda _dt: call(), 0)


class KivyTimers:
    """The flows' :class:`~kiosk.timers.Timers` on Kivy's clock (calls run on the UI thread)."""

    def now(self) -> float:
        return time.monotonic()

    def after(self, seconds: float, call: Callable[[], None]) -> Timer:
        event: Timer = Clock.schedule_once(lambda _dt: call(), seconds)
        return event


class KioskApp(App):
    lang = StringProperty("zh")
    elder = BooleanProperty(False)
    scale = NumericProperty(1.0)
    agent = BooleanProperty(False)
    hub_online = BooleanProperty(False)
    hall_name = StringProperty("")
    clock = StringProperty("")
    status_line = StringProperty("")
    resident = ObjectProperty(None, allownone=True)
    """The card's :class:`ResidentRecord` (masked name, age, keyed hash), dropped at idle."""
    card_hint = StringProperty("")
    appointments = ListProperty([])
    """The card holder's appointments today not yet checked in (:class:`AppointmentView`), from the hub."""
    appointment_lookup = OptionProperty("none", options=["none", "asking", "done", "failed"])
    card_error = ObjectProperty(None, allownone=True)
    group = ObjectProperty(None, allownone=True)
    service_id = StringProperty("")
    guide_mode = BooleanProperty(False)
    busy = BooleanProperty(False)
    busy_shown = BooleanProperty(False)
    """Shown only when the hub is slow to answer: a quick answer goes straight to the ticket."""
    hub_attempts = NumericProperty(0)
    refusal = ObjectProperty(None, allownone=True)
    idle_left = NumericProperty(0)
    """Seconds before the idle reset while "还在吗？" counts down; 0 when it does not."""
    refused_choice = BooleanProperty(False)
    """The refusal is of a service chosen from the list (its windows paused): the visit goes on."""
    ticket = ObjectProperty(None, allownone=True)
    print_state = OptionProperty("none", options=["none", "printing", "printed", "failed", "no_printer"])
    printer_condition = StringProperty("")
    ticket_ahead_text = StringProperty("")
    ticket_wait_text = StringProperty("")
    ticket_windows_text = StringProperty("")
    waiting = DictProperty({})
    snapshot = ObjectProperty(None, allownone=True)
    pin_purpose = OptionProperty("maintenance", options=["agent", "maintenance"])

    def __init__(self, config: HallConfig, config_path: Path | None, broker: BrokerAddress, device_id: str,
                 printer_url: str | None = None, idcard_url: str | None = None,
                 logins: Logins | None = None, timers: Timers | None = None) -> None:
        super().__init__()
        self.hall = config
        self.config_path = config_path
        self.broker = broker
        self.device_id = device_id
        self.groups: list[ServiceGroup] = group_services(config)
        self.generation = 0
        """Grows at each configuration reload: screens rebuild their lists when it changes."""
        self.title = config.hall.name
        self.hall_name = config.hall.name
        self.timers: Timers = timers or KivyTimers()
        """Kivy's clock; a test's :class:`~kiosk.timers.ManualTimers` to move time by hand."""
        self.hub = HubLink(broker, config.hall.id, device_id, deliver)
        self.feed = HallFeed(broker, config.hall.id, device_id, on_snapshot=self._snapshot_arrived,
                             on_hub=lambda online: deliver(lambda: setattr(self, "hub_online", online)))
        self.devices = KioskDevices(config, device_id, deliver, self, printer_url=printer_url,
                                    idcard_url=idcard_url, broker=broker, logins=logins)
        self.appointment_flow = AppointmentFlow(self, self.hub)
        self.ticket_flow = TicketFlow(self, self.hub, self.devices, self.appointment_flow, self, self.timers)
        self.card_flow = CardFlow(self, self, self.timers, self.appointment_flow, self.reset_session)
        self.pin_flow = PinFlow(self, self, self.timers)
        self.idle_flow = IdleFlow(self, self.timers, config.kiosk.idle_seconds, self.reset_session,
                                  warn=lambda left: setattr(self, "idle_left", left),
                                  at_rest=lambda: self.current == "home" and self.resident is None)
        self.elder = config.kiosk.elder_mode

    # ---- Kivy life cycle --------------------------------------------------------------------------

    def build(self) -> ScreenManager:
        Builder.load_file(str(Path(__file__).with_name("shared.kv")))
        # The page colour: the window is cleared to it each frame, at almost no cost, instead of
        # every screen filling itself with a rectangle that software GL has to blend pixel by pixel.
        Window.clearcolor = theme.BACKGROUND
        self.manager = ScreenManager(transition=NoTransition())
        self.bind(elder=self._elder_changed, lang=self.refresh_current, ticket=self._ticket_texts)
        self.bind(lang=self._ticket_texts, agent=self._status, hub_online=self._status)
        self.bind(lang=self._status, hub_online=self._hub_back)
        self._elder_changed()
        self._status()
        Window.bind(on_touch_down=lambda *_: self.idle_flow.activity())
        Clock.schedule_interval(self._tick, 5)
        self._tick()
        self.show("home")
        return self.manager

    def on_start(self) -> None:
        self.devices.start()  # first: the kiosk's status sets its login's Will (see broker.link)
        self.hub.start()
        self.feed.start()
        self.idle_flow.activity()

    def on_stop(self) -> None:
        self.idle_flow.stop()
        self.feed.stop()
        self.hub.stop()
        self.devices.stop()

    # ---- navigation and text (Screens) ----------------------------------------------------------

    def t(self, key: str, lang: Lang | None = None, **params: object) -> str:
        """The catalogue text of ``key``; kv passes ``app.lang`` so the text follows a language switch."""
        return text(key, lang or self.lang, **params)

    def show(self, name: str) -> None:
        if not self.manager.has_screen(name):
            self.manager.add_widget(screen_class(name)(name=name))
        if self.manager.current == name:
            self.manager.current_screen.refresh()
        self.manager.current = name

    @property
    def current(self) -> str:
        return self.manager.current

    def home(self) -> None:
        """Back to the home screen, keeping the visit (card, agent mode)."""
        self.service_id = ""
        self.guide_mode = False
        self.show("home")

    def refresh_current(self, *_: object) -> None:
        if self.manager.current_screen is not None:
            self.manager.current_screen.refresh()

    def reset_session(self) -> None:
        """Drop everything about the resident: card record, ticket, choices; back to home."""
        self.ticket_flow.drop()
        self.card_flow.drop()
        self.group = None
        self.refused_choice = False
        self.agent = False
        self.lang = "zh"
        self.elder = self.hall.kiosk.elder_mode
        self.home()

    def choose_group(self, group: ServiceGroup) -> None:
        self.group = group
        self.guide_mode = False
        self.show("services")

    def choose_service(self, service_id: str) -> None:
        """Go to the confirm step; from a guide, "back" then leads to the service's window group.

        No window serving it takes residents now (paused or closed): say so, as the hub would."""
        if not service_open(self.hall, self.snapshot, service_id):
            self.refusal = Refusal.of(Message(key="queue.no_window_open",
                                              params={"service": self.hall.service(service_id).name}))
            self.refused_choice = True
            self.show("refused")
            return
        self.service_id = service_id
        self.guide_mode = False
        if self.group is None or all(s.id != service_id for s in self.group.services):
            self.group = next((g for g in self.groups if any(s.id == service_id for s in g.services)), None)
        self.show("confirm")

    def choose_again(self) -> None:
        """From a refused choice back to the list it came from; the card and the visit stay."""
        self.refusal = None
        self.refused_choice = False
        self.show("services" if self.group is not None else "home")

    def open_guide(self, service_id: str) -> None:
        self.service_id = service_id
        self.show("guide")

    def check_in(self, appointment: AppointmentView) -> None:
        """The resident tapped one of their appointments: confirm it like any ticket."""
        self.choose_service(appointment.service_id)

    @property
    def items_per_page(self) -> int:
        """Fewer, bigger items a screen in elder mode."""
        return 3 if self.elder else 8

    @property
    def help_window(self) -> int:
        """The window a resident is sent to for help: the first comprehensive one, else the first."""
        return next((w.number for w in self.hall.windows if w.comprehensive), self.hall.windows[0].number)

    def reload_config(self) -> str:
        """Read the configuration file again; services, windows, texts and leaders take effect now."""
        assert self.config_path is not None
        self.hall = load_config(self.config_path)
        self.groups = group_services(self.hall)
        self.generation += 1
        self.hall_name = self.hall.hall.name
        self.idle_flow.seconds = self.hall.kiosk.idle_seconds
        return self.t("kiosk.maint.reloaded")

    # ---- state the kv binds to ------------------------------------------------------------------

    def _tick(self, *_: object) -> None:
        self.clock = f"{datetime.now(self.hall.hall.zone):%H:%M}"  # the hall's time, as on tickets

    def _elder_changed(self, *_: object) -> None:
        self.scale = theme.ELDER_SCALE if self.elder else 1.0
        self.refresh_current()

    def _status(self, *_: object) -> None:
        parts = []
        if self.agent:
            parts.append(self.t("kiosk.header.agent"))
        if not self.hub_online:
            parts.append(self.t("kiosk.header.hub_offline"))
        self.status_line = "  ".join(parts)

    def _ticket_texts(self, *_: object) -> None:
        texts = ticket_texts(self.ticket, self.lang)
        self.ticket_ahead_text, self.ticket_wait_text, self.ticket_windows_text = \
            texts.ahead, texts.wait, texts.windows

    def _hub_back(self, *_: object) -> None:
        if self.hub_online:
            self.appointment_flow.hub_back()

    def _snapshot_arrived(self, snapshot: QueueSnapshot) -> None:
        def apply() -> None:
            self.snapshot = snapshot
            self.waiting = {s.service_id: s.waiting for s in snapshot.services}
        deliver(apply)

    # ---- device events (DeviceEvents), on the UI thread: handed to the flows ----------------------

    def printer_status(self, status: PrinterStatus) -> None:
        self.ticket_flow.printer_status(status)

    def ticket_printed(self, ticket_id: str) -> None:
        self.ticket_flow.printed(ticket_id)

    def ticket_not_printed(self, ticket_id: str, status: PrinterStatus) -> None:
        self.ticket_flow.not_printed(ticket_id, status)

    def card_read(self, record: ResidentRecord) -> None:
        self.idle_flow.activity()
        self.card_flow.read(record)

    def card_problem(self, error: IdCardError) -> None:
        self.idle_flow.activity()
        self.card_flow.problem(error)
