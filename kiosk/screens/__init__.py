"""The kiosk's screens: one Screen class and one kv file each, listed here, and the flows
behind them (``*_flow.py``: plain classes, no Kivy, unit-tested on their own).

A screen is loaded (its module imported, its kv file read) the first time it is
shown, and kept. The name is what :meth:`kiosk.app.KioskApp.show` takes. Nothing
here imports Kivy until a screen is loaded, so the flows import without it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hallkit.kiosk.screens.base import KioskScreen

SCREENS: dict[str, str] = {
    "home": "hallkit.kiosk.screens.home:HomeScreen",
    "services": "hallkit.kiosk.screens.services:ServicesScreen",
    "confirm": "hallkit.kiosk.screens.confirm:ConfirmScreen",
    "ticket": "hallkit.kiosk.screens.ticket:TicketScreen",
    "no_paper": "hallkit.kiosk.screens.no_paper:NoPaperScreen",
    "hub_down": "hallkit.kiosk.screens.hub_down:HubDownScreen",
    "refused": "hallkit.kiosk.screens.refused:RefusedScreen",
    "card_problem": "hallkit.kiosk.screens.card_problem:CardProblemScreen",
    "guide": "hallkit.kiosk.screens.guide:GuideScreen",
    "scan": "hallkit.kiosk.screens.scan:ScanScreen",
    "staff": "hallkit.kiosk.screens.staff:StaffScreen",
    "pin": "hallkit.kiosk.screens.pin:PinScreen",
    "maintenance": "hallkit.kiosk.screens.maintenance:MaintenanceScreen",
}

_FOLDER = Path(__file__).parent
_loaded: set[str] = set()


def screen_class(name: str) -> type[KioskScreen]:
    """The Screen class registered as ``name``, with its kv rules loaded once."""
    from kivy.lang import Builder

    module_name, _, class_name = SCREENS[name].partition(":")
    cls: type[KioskScreen] = getattr(importlib.import_module(module_name), class_name)
    if name not in _loaded:
        Builder.load_file(str(_FOLDER / f"{name}.kv"))
        _loaded.add(name)
    return cls
