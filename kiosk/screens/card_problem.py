"""The card could not be read or is not accepted: what happened, and what to do now."""

from __future__ import annotations

from hallkit.kiosk.screens.base import KioskScreen
from kivy.properties import StringProperty


class CardProblemScreen(KioskScreen):
    what_key = StringProperty("kiosk.card.what")

    def refresh(self) -> None:
        error = self.app.card_error
        if error is None:
            return
        if error.refused:
            self.what_key = "kiosk.card.what_refused"
        elif error.retry:
            self.what_key = "kiosk.card.what"
        else:
            self.what_key = "kiosk.card.what_reader"
