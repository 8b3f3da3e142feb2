"""Staff entry: the hidden gesture, the PIN and its lock, and where an accepted PIN leads."""

from __future__ import annotations

import hashlib
import hmac

from hallkit.kiosk.screens.ports import Screens, Visit
from hallkit.kiosk.timers import Timers

from hallkit.i18n import text

STAFF_TAPS = 5
STAFF_TAP_SECONDS = 4.0
"""The hidden staff gesture: this many taps on the hall's name within this many seconds."""
MAX_DIGITS = 8
TRIES = 5
LOCK_SECONDS = 60


def pin_matches(pin: str, pin_hash: str | None) -> bool:
    if pin_hash is None or not pin:
        return False
    return hmac.compare_digest(hashlib.sha256(pin.encode()).hexdigest(), pin_hash)


class PinFlow:
    """Opens the PIN screen for agent service (代办) or maintenance; five wrong tries lock it."""

    def __init__(self, visit: Visit, screens: Screens, timers: Timers) -> None:
        self.visit = visit
        self.screens = screens
        self.timers = timers
        self._taps: list[float] = []
        self._wrong = 0
        self._locked_until = 0.0

    def staff_tap(self) -> None:
        """A tap on the hall's name: the fifth within a few seconds asks for the PIN."""
        now = self.timers.now()
        self._taps = [t for t in self._taps if now - t < STAFF_TAP_SECONDS] + [now]
        if len(self._taps) >= STAFF_TAPS:
            self._taps = []
            self.ask("maintenance")

    def ask(self, purpose: str) -> None:
        self.visit.pin_purpose = purpose
        self.screens.show("pin")

    @property
    def unset(self) -> bool:
        """No PIN is configured: staff entry is closed."""
        return self.visit.hall.kiosk.staff_pin_hash is None

    def submit(self, entered: str) -> str:
        """Check ``entered``; an accepted PIN leads on, else returns what the screen says."""
        lang = self.visit.lang
        now = self.timers.now()
        if now < self._locked_until:
            return text("kiosk.pin.locked", lang, seconds=int(self._locked_until - now) + 1)
        if pin_matches(entered, self.visit.hall.kiosk.staff_pin_hash):
            self._wrong = 0
            self._accepted()
            return ""
        if self.unset:
            return text("kiosk.pin.unset", lang)
        self._wrong += 1
        if self._wrong >= TRIES:
            self._wrong = 0
            self._locked_until = now + LOCK_SECONDS
            return text("kiosk.pin.locked", lang, seconds=LOCK_SECONDS)
        return text("kiosk.pin.wrong", lang, left=TRIES - self._wrong)

    def _accepted(self) -> None:
        if self.visit.pin_purpose == "agent":
            self.visit.agent = True
            self.screens.home()
        else:
            self.screens.show("maintenance")
