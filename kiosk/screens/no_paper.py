"""The ticket did not print (paper out, cover open, offline): show it to be photographed instead."""

from __future__ import annotations

from kivy.properties import StringProperty

from kiosk.screens.base import KioskScreen


class NoPaperScreen(KioskScreen):
    qr_url = StringProperty("")

    def refresh(self) -> None:
        app = self.app
        self.qr_url = app.hall.web.ticket_url(app.ticket.public_id) if app.ticket else ""
