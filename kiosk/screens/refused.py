"""The hub answered but would not issue a ticket (hall closed, service unknown …): say why."""

from __future__ import annotations

from hallkit.kiosk.screens.base import KioskScreen


class RefusedScreen(KioskScreen):
    """Shows ``app.refusal`` in the resident's language."""
