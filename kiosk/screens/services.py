"""The services of one window group (to take a ticket), or of the whole hall (to read a guide)."""

from __future__ import annotations

from hallkit.kiosk.catalog import page_count, page_of, service_open
from hallkit.kiosk.screens.base import KioskScreen
from hallkit.kiosk.widgets import BigButton
from kivy.properties import NumericProperty, StringProperty
from kivy.uix.widget import Widget

from hallkit.config import Service


class ServicesScreen(KioskScreen):
    page = NumericProperty(0)
    heading = StringProperty("")

    def on_kv_post(self, *_: object) -> None:
        self._built: tuple[object, ...] = ()
        self.app.bind(snapshot=self._snapshot_changed)

    def _snapshot_changed(self, *_: object) -> None:
        # A window paused or resumed while the list is on screen: its services say so at once.
        if self.manager is not None and self.manager.current == self.name:
            self.refresh()

    def on_pre_enter(self, *_: object) -> None:
        self.page = 0
        super().on_pre_enter()

    def _services(self) -> list[Service]:
        app = self.app
        if app.guide_mode or app.group is None:
            return list(app.hall.services)
        return list(app.group.services)

    def refresh(self) -> None:
        app = self.app
        if app.guide_mode or app.group is None:
            self.heading = app.t("kiosk.services.title_guide")
        else:
            self.heading = app.t("kiosk.services.title", window=app.group.window, name=app.group.name)
        # New widgets render their text at a provisional size first: rebuild only when needed.
        services = self._services()
        closed = frozenset(s.id for s in services if not service_open(app.hall, app.snapshot, s.id))
        built = (app.guide_mode, app.group, self.page, app.elder, app.lang, app.generation, closed)
        if built == self._built:
            return
        self._built = built
        per_page = app.items_per_page
        self.ids.pager.pages = page_count(services, per_page)
        self.page = min(self.page, self.ids.pager.pages - 1)
        self.ids.pager.page = self.page
        grid = self.ids.services
        grid.clear_widgets()
        shown = page_of(services, self.page, per_page)
        for service in shown:
            if service.id in closed and not app.guide_mode:
                # Still a button: a tap says why there is no ticket, rather than nothing happening.
                button = BigButton(text=f"{service.name}\n{app.t('kiosk.services.unavailable')}", kind="secondary")
            else:
                button = BigButton(text=service.name, kind="primary" if not app.guide_mode else "secondary")
            button.size_hint_y = 1
            button.bind(on_release=lambda _b, sid=service.id: self._chosen(sid))
            grid.add_widget(button)
        # Empty cells keep every button the same size on a page that is not full.
        for _ in range(per_page - len(shown)):
            grid.add_widget(Widget())

    def turn(self, step: int) -> None:
        self.page += step
        self.refresh()

    def _chosen(self, service_id: str) -> None:
        if self.app.guide_mode:
            self.app.open_guide(service_id)
        else:
            self.app.choose_service(service_id)
