"""A service's guide: the eight public fields (八公开), a few a page, with take-a-ticket and scan."""

from __future__ import annotations

from hallkit.kiosk.catalog import page_count, page_of
from hallkit.kiosk.screens.base import KioskScreen
from kivy.factory import Factory
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.widget import Widget

from hallkit.config import Guide

FIELDS = ("legal_basis", "conditions", "materials", "process", "time_limit", "fees", "contacts", "location")
"""The eight public fields in the order halls post them."""
FIELDS_PER_PAGE = {False: 4, True: 2}


class GuideScreen(KioskScreen):
    page = NumericProperty(0)
    service_name = StringProperty("")
    can_scan = BooleanProperty(False)

    def on_pre_enter(self, *_: object) -> None:
        self.page = 0
        super().on_pre_enter()

    def refresh(self) -> None:
        app = self.app
        if not app.service_id:
            return
        service = app.hall.service(app.service_id)
        self.service_name = service.name
        self.can_scan = bool(service.guide.materials) and app.devices.scanner_device is not None
        per_page = FIELDS_PER_PAGE[bool(app.elder)]
        self.ids.pager.pages = page_count(FIELDS, per_page)
        self.page = min(self.page, self.ids.pager.pages - 1)
        self.ids.pager.page = self.page
        box = self.ids.fields
        box.clear_widgets()
        for field in page_of(FIELDS, self.page, per_page):
            label = Factory.Body(text=f"[b]{app.t(f'kiosk.guide.{field}')}[/b]　{self._value(service.guide, field)}",
                                 markup=True)
            box.add_widget(label)
        box.add_widget(Widget())

    def _value(self, guide: Guide, field: str) -> str:
        value = getattr(guide, field)
        if isinstance(value, list):
            value = "；".join(f"{n}. {item}" for n, item in enumerate(value, 1))
        return value or self.app.t("kiosk.guide.empty")

    def turn(self, step: int) -> None:
        self.page += step
        self.refresh()
