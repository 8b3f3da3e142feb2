"""The staff board: each window with who is on duty now (photo, name, phone), and today's leader."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from hallkit.kiosk.catalog import page_count, page_of
from hallkit.kiosk.screens.base import KioskScreen
from kivy.properties import NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.widget import Widget

from hallkit.config import WEEKDAYS, Staff, Window

CARDS_PER_PAGE = {False: 6, True: 3}


class StaffCard(BoxLayout):
    """One window: the photo (or the initial in a circle), the window, the staff member, the phone."""

    photo = StringProperty("")
    initial = StringProperty("")
    lines = StringProperty("")


class StaffScreen(KioskScreen):
    page = NumericProperty(0)
    leader_text = StringProperty("")

    def on_pre_enter(self, *_: object) -> None:
        self.page = 0
        super().on_pre_enter()

    def refresh(self) -> None:
        app = self.app
        config = app.hall
        today = WEEKDAYS[datetime.now(config.hall.zone).weekday()]
        leader = next((lead for lead in config.kiosk.leaders if today in lead.days), None)
        self.leader_text = (app.t("kiosk.staff.leader", name=leader.name, title=leader.title, phone=leader.phone)
                            if leader else app.t("kiosk.staff.no_leader"))
        per_page = CARDS_PER_PAGE[bool(app.elder)]
        self.ids.pager.pages = page_count(config.windows, per_page)
        self.page = min(self.page, self.ids.pager.pages - 1)
        self.ids.pager.page = self.page
        grid = self.ids.cards
        grid.clear_widgets()
        shown = page_of(config.windows, self.page, per_page)
        for window in shown:
            grid.add_widget(self._card(window))
        for _ in range(per_page - len(shown)):
            grid.add_widget(Widget())

    def turn(self, step: int) -> None:
        self.page += step
        self.refresh()

    def _on_duty(self, window: Window) -> Staff | None:
        """Who the hub says works the window now, else the window's A post (A岗)."""
        snapshot = self.app.snapshot
        staff_id = window.staff_a
        if snapshot is not None:
            live = next((w for w in snapshot.windows if w.number == window.number), None)
            if live is not None and live.staff_id:
                staff_id = live.staff_id
        return self.app.hall.staff_member(staff_id) if staff_id else None

    def _card(self, window: Window) -> Widget:
        app = self.app
        staff = self._on_duty(window)
        heading = f"[b]{app.t('kiosk.staff.window', number=window.number, name=window.name)}[/b]"
        if staff is None:
            lines = [heading, app.t("kiosk.staff.nobody")]
        else:
            lines = [heading, f"{staff.name}　{staff.title}".rstrip("　")]
            if staff.phone:
                lines.append(app.t("kiosk.staff.phone", phone=staff.phone))
        return StaffCard(photo=self._photo(staff), initial=staff.name[0] if staff else "",
                                 lines="\n".join(lines))

    def _photo(self, staff: Staff | None) -> str:
        if staff is None or not staff.photo:
            return ""
        path = Path(staff.photo)
        if not path.is_absolute() and self.app.config_path is not None:
            path = self.app.config_path.parent / path
        return str(path) if path.exists() else ""
