"""The kiosk app: a thin façade over the hub link, the devices and the screens.

State lives in Kivy properties the kv files bind to (language, elder mode, the
resident's card record, the ticket, the print state); screens hold the logic of
their own step; the devices and the hub are reached only from worker threads
(:mod:`kiosk.devices`, :mod:`kiosk.hub`), whose answers come back through
``Clock.schedule_once``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

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

from broker.client import HubError
from broker.contract import (
    CHECK_IN_PREFIX,
    AppointmentList,
    AppointmentView,
    CommandReply,
    QueueSnapshot,
    Refusal,
    check_in_request_id,
)
from broker.mosquitto import Logins
from broker.mqtt import BrokerAddress
from devices.idcard.problems import IdCardError
from devices.idcard.records import ResidentRecord
from devices.printer.layout import TicketPrint
from devices.printer.status import PrinterStatus
from hallkit.config import HallConfig, load_config
from hallkit.i18n import Lang, text
from hallkit.queue.models import Channel, Priority, TakeTicket, TicketView
from kiosk import theme, widgets  # noqa: F401 - widgets registers the classes the kv files use
from kiosk.catalog import ServiceGroup, group_services
from kiosk.devices import KioskDevices
from kiosk.feed import HallFeed
from kiosk.hub import Answer, AppointmentsAnswer, HubLink
from kiosk.screens import screen_class

log = logging.getLogger(__name__)

RETRY_SECONDS = 3.0
"""Pause between attempts while the hub cannot be reached."""
BUSY_AFTER_SECONDS = 0.4
"""The hub usually answers in milliseconds; only a slower answer shows "taking your ticket"."""
STAFF_TAPS = 5
STAFF_TAP_SECONDS = 4.0
"""The hidden staff gesture: this many taps on the hall's name within this many seconds."""
CARD_HINT_SECONDS = 4.0
PERSONAL_SCREENS = frozenset({"ticket", "no_paper", "refused", "hub_down"})
"""Screens about one resident's ticket: a new card placed there starts a new visit (on hub_down
that drops the previous resident's pending request, so its retry cannot carry a new card)."""


def deliver(call: Callable[[], None]) -> None:
    """Run ``call`` on the UI thread at the next frame (Kivy widgets are not thread-safe)."""
    Clock.schedule_once(lambda _dt: call(), 0)


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
                 logins: Logins | None = None) -> None:
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
        self.hub = HubLink(broker, config.hall.id, device_id, deliver)
        self.feed = HallFeed(broker, config.hall.id, device_id, on_snapshot=self._snapshot_arrived,
                             on_hub=lambda online: deliver(lambda: setattr(self, "hub_online", online)))
        self.devices = KioskDevices(config, device_id, deliver, self, printer_url=printer_url,
                                    idcard_url=idcard_url, broker=broker, logins=logins)
        self.elder = config.kiosk.elder_mode
        self._pending: TakeTicket | None = None
        self._staff_taps: list[float] = []
        self._card_screen_from = "home"
        self._visit = 0
        """Grows with each card and each reset: an appointment list for an earlier visit is dropped."""
        self.tapped_at: float | None = None
        """When the last ticket was asked for (``time.monotonic``), for the tap-to-ticket latency."""
        self.ticket_shown_at: float | None = None

    # ---- Kivy life cycle --------------------------------------------------------------------------

    def build(self) -> ScreenManager:
        Builder.load_file(str(Path(__file__).with_name("shared.kv")))
        self.manager = ScreenManager(transition=NoTransition())
        self.bind(elder=self._elder_changed, lang=self._refresh_current, ticket=self._ticket_texts)
        self.bind(lang=self._ticket_texts, agent=self._status, hub_online=self._status)
        self.bind(lang=self._status, hub_online=self._hub_back)
        self._elder_changed()
        self._status()
        self.idle_timer = Clock.create_trigger(self._idle_reset, self.hall.kiosk.idle_seconds)
        Window.bind(on_touch_down=self._touched)
        Clock.schedule_interval(self._tick, 5)
        self._tick()
        self.show("home")
        return self.manager

    def on_start(self) -> None:
        self.devices.start()  # first: the kiosk's status sets its login's Will (see broker.link)
        self.hub.start()
        self.feed.start()
        self.idle_timer()

    def on_stop(self) -> None:
        self.feed.stop()
        self.hub.stop()
        self.devices.stop()

    # ---- navigation and text ------------------------------------------------------------------

    def t(self, key: str, lang: Lang | None = None, **params: object) -> str:
        """The catalogue text of ``key``; kv passes ``app.lang`` so the text follows a language switch."""
        return text(key, lang or self.lang, **params)  # type: ignore[arg-type]

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

    def reset_session(self) -> None:
        """Drop everything about the resident: card record, ticket, choices; back to home."""
        self._pending = None
        self._visit += 1
        self.appointments = []
        self.appointment_lookup = "none"
        self.resident = None
        self.card_error = None
        self.card_hint = ""
        self.ticket = None
        self.refusal = None
        self.print_state = "none"
        self.group = None
        self.agent = False
        self.busy = self.busy_shown = False
        self.lang = "zh"
        self.elder = self.hall.kiosk.elder_mode
        self.home()

    def _touched(self, *_: object) -> None:
        self.idle_timer()

    def _idle_reset(self, *_: object) -> None:
        log.info("idle for %d s: back to home, visit data dropped", self.hall.kiosk.idle_seconds)
        self.reset_session()

    def _tick(self, *_: object) -> None:
        self.clock = datetime.now(self.hall.hall.zone).strftime("%H:%M")  # the hall's time, as on tickets

    def _elder_changed(self, *_: object) -> None:
        self.scale = theme.ELDER_SCALE if self.elder else 1.0
        self._refresh_current()

    def _refresh_current(self, *_: object) -> None:
        if self.manager.current_screen is not None:
            self.manager.current_screen.refresh()

    def _status(self, *_: object) -> None:
        parts = []
        if self.agent:
            parts.append(self.t("kiosk.header.agent"))
        if not self.hub_online:
            parts.append(self.t("kiosk.header.hub_offline"))
        self.status_line = "  ".join(parts)

    @property
    def items_per_page(self) -> int:
        """Fewer, bigger items a screen in elder mode."""
        return 3 if self.elder else 8

    # ---- staff -----------------------------------------------------------------------------------

    def staff_gesture(self) -> None:
        now = time.monotonic()
        self._staff_taps = [t for t in self._staff_taps if now - t < STAFF_TAP_SECONDS] + [now]
        if len(self._staff_taps) >= STAFF_TAPS:
            self._staff_taps = []
            self.ask_pin("maintenance")

    def ask_pin(self, purpose: str) -> None:
        self.pin_purpose = purpose
        self.show("pin")

    def pin_accepted(self) -> None:
        if self.pin_purpose == "agent":
            self.agent = True
            self.home()
        else:
            self.show("maintenance")

    def reload_config(self) -> str:
        """Read the configuration file again; services, windows, texts and leaders take effect now."""
        assert self.config_path is not None
        self.hall = load_config(self.config_path)
        self.groups = group_services(self.hall)
        self.generation += 1
        self.hall_name = self.hall.hall.name
        self.idle_timer.timeout = self.hall.kiosk.idle_seconds
        return self.t("kiosk.maint.reloaded")

    # ---- choosing and taking a ticket ------------------------------------------------------------

    def choose_group(self, group: ServiceGroup) -> None:
        self.group = group
        self.guide_mode = False
        self.show("services")

    def choose_service(self, service_id: str) -> None:
        """Go to the confirm step; from a guide, "back" then leads to the service's window group."""
        self.service_id = service_id
        self.guide_mode = False
        if self.group is None or all(s.id != service_id for s in self.group.services):
            self.group = next((g for g in self.groups if any(s.id == service_id for s in g.services)), None)
        self.show("confirm")

    def open_guide(self, service_id: str) -> None:
        self.service_id = service_id
        self.show("guide")

    def check_in(self, appointment: AppointmentView) -> None:
        """The resident tapped one of their appointments: confirm it like any ticket."""
        self.choose_service(appointment.service_id)

    def appointment_for(self, service_id: str) -> AppointmentView | None:
        """The card holder's appointment for this service today, if any: taking it is the check-in."""
        if self.resident is None:
            return None
        return next((a for a in self.appointments if a.service_id == service_id), None)

    def slot_text(self, appointment: AppointmentView) -> str:
        """The booked time as the hall reads it, ``09:00–09:30``."""
        zone = self.hall.hall.zone
        starts, ends = (t.astimezone(zone) if t.tzinfo is not None else t
                        for t in (appointment.starts, appointment.ends))
        return f"{starts:%H:%M}–{ends:%H:%M}"

    def take_ticket(self) -> None:
        """Ask the hub for a ticket for the chosen service, from the hub link's thread."""
        if self.busy or not self.service_id:
            return
        resident: ResidentRecord | None = self.resident
        appointment = self.appointment_for(self.service_id)
        if resident is not None and appointment is not None:
            self._pending = check_in_command(appointment, resident)
        else:
            self._pending = TakeTicket(
                service_id=self.service_id,
                channel=Channel.AGENT if self.agent else Channel.KIOSK,
                priority=Priority.PRIORITY if resident is not None and resident.elderly else Priority.NORMAL,
                id_hash=resident.id_hash if resident is not None else None,
            )
        self.hub_attempts = 0
        self.tapped_at = time.monotonic()
        self._send()

    def _send(self) -> None:
        command = self._pending
        if command is None:
            return
        self.busy = True
        Clock.schedule_once(self._show_busy, BUSY_AFTER_SECONDS)
        self.hub.ask(command, partial(self._answered, command.request_id))

    def _show_busy(self, *_: object) -> None:
        self.busy_shown = self.busy

    def _answered(self, request_id: str, answer: Answer) -> None:
        if self._pending is None or self._pending.request_id != request_id:
            return  # the visit was reset while the hub was asked: nobody is waiting for this
        self.busy = self.busy_shown = False
        if isinstance(answer, HubError):
            self.hub_attempts += 1
            self.show("hub_down")
            Clock.schedule_once(self._retry, RETRY_SECONDS)
            return
        self._pending = None
        if answer.ok and request_id.startswith(CHECK_IN_PREFIX):
            # Checked in: not offered again in this visit (the hub leaves it out of later look-ups).
            self.appointments = [a for a in self.appointments
                                 if check_in_request_id(a.appointment_id) != request_id]
        self._replied(answer)

    def _retry(self, *_: object) -> None:
        # Same command, same request id: if the hub did issue the ticket, it answers with that one.
        if self.current == "hub_down" and self._pending is not None and not self.busy:
            self._send()

    def _replied(self, reply: CommandReply) -> None:
        if not reply.ok or reply.outcome is None or reply.outcome.ticket is None:
            self.refusal = reply.refusal or Refusal(reason="kiosk.refused", zh="", en="")
            self.show("refused")
            return
        view: TicketView = reply.outcome.ticket
        self.ticket = view
        printed = self.devices.print_ticket(TicketPrint.from_view(view, self.hall))
        self.print_state = "printing" if printed else "no_printer"
        self.show("ticket")
        self.ticket_shown_at = time.monotonic()

    def _ticket_texts(self, *_: object) -> None:
        view: TicketView | None = self.ticket
        if view is None:
            self.ticket_ahead_text = self.ticket_wait_text = self.ticket_windows_text = ""
            return
        self.ticket_ahead_text = (self.t("kiosk.ticket.ahead", ahead=view.ahead) if view.ahead
                                  else self.t("kiosk.ticket.none_ahead"))
        minutes = math.ceil(view.estimated_wait_minutes)
        self.ticket_wait_text = self.t("kiosk.ticket.wait", minutes=minutes) if view.ahead and minutes else ""
        windows = self.t("kiosk.confirm.separator").join(self.t("kiosk.ticket.window", number=n) for n in view.windows)
        self.ticket_windows_text = self.t("kiosk.ticket.windows", windows=windows)

    def _snapshot_arrived(self, snapshot: QueueSnapshot) -> None:
        def apply() -> None:
            self.snapshot = snapshot
            self.waiting = {s.service_id: s.waiting for s in snapshot.services}
        deliver(apply)

    @property
    def help_window(self) -> int:
        """The window a resident is sent to for help: the first comprehensive one, else the first."""
        return next((w.number for w in self.hall.windows if w.comprehensive), self.hall.windows[0].number)

    # ---- device events (DeviceEvents), on the UI thread ----------------------------------------

    def printer_status(self, status: PrinterStatus) -> None:
        self.printer_condition = status.describe(self.lang)  # type: ignore[arg-type]

    def ticket_printed(self, ticket_id: str) -> None:
        if self.ticket is not None and self.ticket.ticket_id == ticket_id:
            self.print_state = "printed"

    def ticket_not_printed(self, ticket_id: str, status: PrinterStatus) -> None:
        if self.ticket is not None and self.ticket.ticket_id == ticket_id:
            self.print_state = "failed"
            self.printer_condition = status.describe(self.lang)  # type: ignore[arg-type]
            self.show("no_paper")

    def card_read(self, record: ResidentRecord) -> None:
        self.idle_timer()
        if self.current in PERSONAL_SCREENS:
            self.reset_session()
        self.resident = record
        self.card_hint = ""
        self._look_up_appointments(record)
        if self.current == "card_problem":
            self.show(self._card_screen_from)
        else:
            self._refresh_current()

    def _look_up_appointments(self, record: ResidentRecord) -> None:
        """Ask the hub (by the card's keyed hash) for the resident's appointments today."""
        self._visit += 1
        self.appointments = []
        self.appointment_lookup = "asking"
        self.hub.appointments(record.id_hash, partial(self._appointments_arrived, self._visit))

    def _appointments_arrived(self, visit: int, answer: AppointmentsAnswer) -> None:
        if visit != self._visit or self.resident is None:
            return  # reset or another card since: this list belongs to nobody on the screen now
        if isinstance(answer, HubError):
            self.appointment_lookup = "failed"  # asked again when the hub is back
            return
        assert isinstance(answer, AppointmentList)
        self.appointments = list(answer.appointments)
        self.appointment_lookup = "done"

    def _hub_back(self, *_: object) -> None:
        if self.hub_online and self.appointment_lookup == "failed" and self.resident is not None:
            self._look_up_appointments(self.resident)

    def card_problem(self, error: IdCardError) -> None:
        self.idle_timer()
        if error.retry:
            self.card_hint = self.t("kiosk.card.hold_still")
            Clock.schedule_once(lambda _dt: setattr(self, "card_hint", ""), CARD_HINT_SECONDS)
            return
        if self.current not in ("home", "services", "confirm", "guide", "card_problem"):
            return
        if self.current != "card_problem":
            self._card_screen_from = self.current
        self.card_error = error
        self.show("card_problem")

    def leave_card_problem(self) -> None:
        self.card_error = None
        self.show(self._card_screen_from)


def check_in_command(appointment: AppointmentView, resident: ResidentRecord) -> TakeTicket:
    """The ticket that checks an appointment in: channel and priority ``appointment``; the request id
    comes from the appointment, so checking in twice returns the first ticket."""
    return TakeTicket(service_id=appointment.service_id, channel=Channel.APPOINTMENT,
                      priority=Priority.APPOINTMENT, id_hash=resident.id_hash,
                      request_id=check_in_request_id(appointment.appointment_id))
