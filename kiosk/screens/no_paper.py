"""The ticket did not print (paper out, cover open, offline): show it to be photographed instead."""

from __future__ import annotations

from hallkit.kiosk.screens.base import KioskScreen
from kivy.properties import StringProperty


class NoPaperScreen(KioskScreen):
    qr_url = StringProperty("")

    def refresh(self) -> None:
        app = self.app
        self.qr_url = app.hall.web.ticket_url(app.ticket.public_id) if app.ticket else ""
