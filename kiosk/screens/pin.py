"""The staff PIN, before agent service (代办) or maintenance; the checking is :class:`PinFlow`'s."""

from __future__ import annotations

from hallkit.kiosk.screens.base import KioskScreen
from hallkit.kiosk.screens.pin_flow import MAX_DIGITS
from kivy.properties import StringProperty


class PinScreen(KioskScreen):
    entered = StringProperty("")
    message = StringProperty("")

    def on_pre_enter(self, *_: object) -> None:
        self.entered = ""
        self.message = self.app.t("kiosk.pin.unset") if self.app.pin_flow.unset else ""

    def on_leave(self, *_: object) -> None:
        self.entered = ""  # a PIN never stays on a screen someone else may walk up to

    def digit(self, digit: str) -> None:
        if len(self.entered) < MAX_DIGITS:
            self.entered += digit

    def submit(self) -> None:
        entered, self.entered = self.entered, ""
        self.message = self.app.pin_flow.submit(entered)
