"""Confirm: the chosen service, its windows and queue, the optional card, then take the ticket.

With a card whose holder booked this service today, taking the ticket is the appointment's check-in."""

from __future__ import annotations

from hallkit.kiosk.screens.base import KioskScreen
from kivy.properties import StringProperty


class ConfirmScreen(KioskScreen):
    service_name = StringProperty("")
    windows_text = StringProperty("")
    card_text = StringProperty("")
    take_text = StringProperty("")

    def on_kv_post(self, *_: object) -> None:
        self.app.bind(resident=self._card_changed, card_hint=self._card_changed, appointments=self._card_changed,
                      busy_shown=self._card_changed, service_id=self._card_changed)

    def refresh(self) -> None:
        app = self.app
        if not app.service_id:
            return
        service = app.hall.service(app.service_id)
        self.service_name = service.name
        names = [app.t("kiosk.confirm.window", number=w.number, name=w.name)
                 for w in app.hall.windows_serving(service.id)]
        self.windows_text = app.t("kiosk.confirm.windows", windows=app.t("kiosk.confirm.separator").join(names))
        self._card_changed()

    def _card_changed(self, *_: object) -> None:
        app = self.app
        record = app.resident
        appointment = app.appointment_flow.for_service(app.service_id) if app.service_id else None
        if app.busy_shown:
            self.take_text = app.t("kiosk.confirm.taking")
        else:
            self.take_text = app.t("kiosk.appointment.take" if appointment else "kiosk.confirm.take")
        if app.card_hint:
            self.card_text = app.card_hint
        elif record is None:
            self.card_text = app.t("kiosk.confirm.card_none", age=app.hall.queue.elderly_age)
        elif appointment is not None:
            self.card_text = app.t("kiosk.appointment.confirm", name=record.name_masked, slot=app.appointment_flow.slot_text(appointment))
        elif record.elderly:
            self.card_text = app.t("kiosk.confirm.card_elderly", name=record.name_masked, age=record.age)
        else:
            self.card_text = app.t("kiosk.confirm.card_adult", name=record.name_masked)
