"""Home: the hall's services grouped by window, the card prompt, guides, staff board, agent entry."""

from __future__ import annotations

from kivy.properties import NumericProperty, StringProperty

from kiosk.catalog import ServiceGroup, page_count, page_of
from kiosk.screens.base import KioskScreen
from kiosk.widgets import BigButton

GROUPS_PER_PAGE = {False: 6, True: 4}
"""Window tiles a page: 3×2, or 2×2 in elder mode."""


class HomeScreen(KioskScreen):
    page = NumericProperty(0)
    card_text = StringProperty("")

    def on_kv_post(self, *_: object) -> None:
        self._tiles: list[tuple[BigButton, ServiceGroup]] = []
        self._built: tuple[object, ...] = ()
        self.app.bind(resident=self._card_changed, card_hint=self._card_changed, waiting=self._waiting_changed)

    def refresh(self) -> None:
        app = self.app
        self._card_changed()
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
            tile = BigButton(text=self._tile_text(group), kind="primary")
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
        return "\n".join((
            app.t("kiosk.home.window", number=group.window) + "  " + group.name,
            app.t("kiosk.home.group_info", count=len(group.services), waiting=waiting),
        ))

    def _waiting_changed(self, *_: object) -> None:
        # Only the texts change: tiles rebuilt under a finger would swallow the tap.
        for tile, group in self._tiles:
            tile.text = self._tile_text(group)

    def _card_changed(self, *_: object) -> None:
        app = self.app
        record = app.resident
        if app.card_hint:
            self.card_text = app.card_hint
        elif record is None:
            self.card_text = app.t("kiosk.home.card_prompt", age=app.hall.queue.elderly_age)
        else:
            follow = "kiosk.home.card_priority" if record.elderly else "kiosk.home.card_regular"
            self.card_text = "\n".join((app.t("kiosk.home.card_read", name=record.name_masked, age=record.age),
                                        app.t(follow) + "　" + app.t("kiosk.home.no_appointments")))

    def open_guides(self) -> None:
        self.app.group = None
        self.app.guide_mode = True
        self.app.show("services")

    def toggle_agent(self) -> None:
        if self.app.agent:
            self.app.reset_session()
        else:
            self.app.ask_pin("agent")
