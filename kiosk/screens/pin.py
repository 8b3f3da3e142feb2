"""The staff PIN, before agent service (代办) or maintenance. Wrong tries lock it for a while."""

from __future__ import annotations

import hashlib
import hmac
import time

from kivy.properties import StringProperty

from kiosk.screens.base import KioskScreen

MAX_DIGITS = 8
TRIES = 5
LOCK_SECONDS = 60


def pin_matches(pin: str, pin_hash: str | None) -> bool:
    if pin_hash is None or not pin:
        return False
    return hmac.compare_digest(hashlib.sha256(pin.encode()).hexdigest(), pin_hash)


class PinScreen(KioskScreen):
    entered = StringProperty("")
    message = StringProperty("")

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._wrong = 0
        self._locked_until = 0.0

    def on_pre_enter(self, *_: object) -> None:
        self.entered = ""
        unset = self.app.hall.kiosk.staff_pin_hash is None
        self.message = self.app.t("kiosk.pin.unset") if unset else ""

    def on_leave(self, *_: object) -> None:
        self.entered = ""  # a PIN never stays on a screen someone else may walk up to

    def digit(self, digit: str) -> None:
        if len(self.entered) < MAX_DIGITS:
            self.entered += digit

    def submit(self) -> None:
        app = self.app
        now = time.monotonic()
        if now < self._locked_until:
            self.message = app.t("kiosk.pin.locked", seconds=int(self._locked_until - now) + 1)
            self.entered = ""
            return
        if pin_matches(self.entered, app.hall.kiosk.staff_pin_hash):
            self._wrong = 0
            self.entered = ""
            app.pin_accepted()
            return
        self.entered = ""
        if app.hall.kiosk.staff_pin_hash is None:
            return
        self._wrong += 1
        if self._wrong >= TRIES:
            self._wrong = 0
            self._locked_until = now + LOCK_SECONDS
            self.message = app.t("kiosk.pin.locked", seconds=LOCK_SECONDS)
        else:
            self.message = app.t("kiosk.pin.wrong", left=TRIES - self._wrong)
