"""The hub cannot be reached: no number is shown (none was issued); the app retries by itself."""

from __future__ import annotations

from hallkit.kiosk.screens.base import KioskScreen


class HubDownScreen(KioskScreen):
    """All it shows is bound to the app (attempt count); the retries are :class:`~kiosk.screens.retry_flow.RetryFlow`'s."""
