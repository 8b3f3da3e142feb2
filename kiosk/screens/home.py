"""Home: the hall's services grouped by window, the card prompt and the card holder's appointments,
guides, staff board, agent entry."""

from __future__ import annotations

from hallkit.kiosk.catalog import ServiceGroup, page_count, page_of, window_state
from hallkit.kiosk.screens.base import KioskScreen
from hallkit.kiosk.widgets import BigButton, Body
from kivy.properties import BooleanProperty, NumericProperty, StringProperty

GROUPS_PER_PAGE = {False: 6, True: 4}
"""Window tiles a page: 3×2, or 2×2 in elder mode."""
OFFERS = {False: 3, True: 2}
"""Appointments offered as buttons (more are rare: the rest are named in one line)."""


class HomeScreen(KioskScreen):
    page = NumericProperty(0)
    card_text = StringProperty("")
    focus = BooleanProperty(False)
    """The card holder has appointments today: home shows them (and "other business") instead of the
    window tiles, so every button stays big in elder mode too."""

    def on_kv_post(self, *_: object) -> None:
        self._tiles: list[tuple[BigButton, ServiceGroup]] = []
        self._built: tuple[object, ...] = ()
        self._offered: tuple[object, ...] = ()
        self._others_for: tuple[str, ...] | None = None
        """The appointments for which the resident chose "other business" (the tiles come back)."""
        self.app.bind(resident=self._card_changed, card_hint=self._card_changed, snapshot=self._waiting_changed,
                      appointments=self._offers_changed)
        self.app.bind(resident=self._resident_changed)
        self.bind(focus=self._card_changed)

    def refresh(self) -> None:
        app = self.app
        self._card_changed()
        self._offers_changed()
        # New widgets render their text at a provisional size first: rebuild only when needed.
        built = (self.page, app.elder, app.lang, app.generation)
        if built == self._built:
            return
        self._built = built
        per_page = GROUPS_PER_PAGE[app.elder]
        self.ids.pager.pages = page_count(app.groups, per_page)
        self.page = min(self.page, self.ids.pager.pages - 1)
        self.ids.pager.page = self.page
        grid = self.ids.groups
        grid.clear_widgets()
        self._tiles = []
        for group in page_of(app.groups, self.page, per_page):
            tile = BigButton(text=self._tile_text(group), kind=self._tile_kind(group))
            tile.size_hint_y = 1
            tile.bind(on_release=lambda _b, g=group: app.choose_group(g))
            grid.add_widget(tile)
            self._tiles.append((tile, group))

    def turn(self, step: int) -> None:
        self.page += step
        self.refresh()

    def _tile_text(self, group: ServiceGroup) -> str:
        app = self.app
        waiting = sum(app.waiting.get(s.id, 0) for s in group.services)
        lines = [app.t("kiosk.home.window", number=group.window) + "  " + group.name,
                 app.t("kiosk.home.group_info", count=len(group.services), waiting=waiting)]
        state = window_state(app.snapshot, group.window)
        if state != "open":
            lines.append(app.t(f"kiosk.home.window_{state}"))
        return "\n".join(lines)

    def _waiting_changed(self, *_: object) -> None:
        # Waiting counts and paused windows: only the texts change, tiles rebuilt under a finger
        # would swallow the tap.
        for tile, group in self._tiles:
            tile.text = self._tile_text(group)
            tile.kind = self._tile_kind(group)

    def _tile_kind(self, group: ServiceGroup) -> str:
        """A paused or closed window's tile is outlined, not filled: it reads as "not now" at a glance."""
        return "primary" if window_state(self.app.snapshot, group.window) == "open" else "secondary"

    def _card_changed(self, *_: object) -> None:
        app = self.app
        record = app.resident
        if app.card_hint:
            self.card_text = app.card_hint
        elif record is None:
            self.card_text = app.t("kiosk.home.card_prompt", age=app.hall.queue.elderly_age)
        else:
            if self.focus:
                follow = (app.t("kiosk.appointment.priority") + " · " if record.elderly else "") \
                    + app.t("kiosk.appointment.banner")
            else:
                follow = app.t("kiosk.home.card_priority" if record.elderly else "kiosk.home.card_regular")
            self.card_text = "\n".join((app.t("kiosk.home.card_read", name=record.name_masked, age=record.age),
                                        follow))

    def _offers_changed(self, *_: object) -> None:
        """One button for each of the card holder's appointments today: a tap confirms the check-in."""
        app = self.app
        ids = tuple(a.appointment_id for a in app.appointments)
        self.focus = bool(ids) and self._others_for != ids
        offered = (ids, self.focus, app.elder, app.lang, app.generation)
        if offered == self._offered:
            return
        self._offered = offered
        box = self.ids.offers
        box.clear_widgets()
        if not self.focus:
            return
        shown = app.appointments[:OFFERS[app.elder]]
        for appointment in shown:
            button = BigButton(kind="accent", text=app.t("kiosk.appointment.offer", service=appointment.service_name,
                                                          slot=app.appointment_flow.slot_text(appointment)))
            button.bind(on_release=lambda _b, a=appointment: app.check_in(a))
            box.add_widget(button)
        if len(app.appointments) > len(shown):
            box.add_widget(Body(text=app.t("kiosk.appointment.more", count=len(app.appointments) - len(shown))))
        others = BigButton(kind="secondary", text=app.t("kiosk.appointment.others"))
        others.bind(on_release=lambda _b: self.show_others())
        box.add_widget(others)
        self.ids["others"] = others

    def _resident_changed(self, *_: object) -> None:
        self._others_for = None  # a new card (or none): its appointments are offered first again
        self._offers_changed()

    def show_others(self) -> None:
        """Other business than the appointments: the window tiles (a booked service chosen there is
        still checked in as the appointment)."""
        self._others_for = tuple(a.appointment_id for a in self.app.appointments)
        self._offers_changed()

    def open_guides(self) -> None:
        self.app.group = None
        self.app.guide_mode = True
        self.app.show("services")

    def toggle_agent(self) -> None:
        if self.app.agent:
            self.app.reset_session()
        else:
            self.app.pin_flow.ask("agent")
