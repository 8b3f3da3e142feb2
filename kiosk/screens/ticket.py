"""The ticket: number, people ahead, estimated wait, windows, QR, and whether it printed."""

from __future__ import annotations

from hallkit.kiosk.screens.base import KioskScreen
from kivy.properties import StringProperty

PRINT_TEXT = {
    "none": "",
    "printing": "kiosk.ticket.printing",
    "printed": "kiosk.ticket.printed",
    "failed": "kiosk.nopaper.photo",
    "no_printer": "kiosk.ticket.no_printer",
}


class TicketScreen(KioskScreen):
    qr_url = StringProperty("")
    print_text = StringProperty("")

    def on_kv_post(self, *_: object) -> None:
        self.app.bind(print_state=self._print_changed, lang=self._print_changed)

    def refresh(self) -> None:
        app = self.app
        self.qr_url = app.hall.web.ticket_url(app.ticket.public_id) if app.ticket else ""
        self._print_changed()

    def _print_changed(self, *_: object) -> None:
        key = PRINT_TEXT[self.app.print_state]
        self.print_text = self.app.t(key) if key else ""
