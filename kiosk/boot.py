"""Kivy settings that only work before Kivy creates its window: call :func:`prepare` first.

Kivy reads its configuration when ``kivy.core.window`` is first imported, so the
kiosk-mode settings (borderless at the display size, no cursor, no multitouch dots,
no exit on Escape) and the Chinese default font are applied here, before any
other kiosk module imports Kivy widgets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansSC-Regular.otf"),
)
"""Fonts whose first face is Simplified Chinese; Kivy's SDL2 text provider only ever opens face 0."""

NUMBER_FONTS = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"),)
"""Ticket numbers on screens: a serifed I and a dotted 0, so I021 never reads as 1021 nor O as 0."""
NUMBER_FONT = "HallNumbers"
"""The font name screens give ticket numbers (the Chinese font where no number font is installed)."""

WindowMode = Literal["borderless", "fullscreen", "windowed"]


def cjk_font() -> Path | None:
    return next((font for font in CJK_FONTS if font.exists()), None)


def prepare(size: tuple[int, int], mode: WindowMode, *, kiosk: bool = True) -> None:
    """Set Kivy's environment and configuration for a hall screen.

    Args:
        size: the screen's width and height in pixels.
        mode: borderless at ``size`` (the default: ``fullscreen`` draws only 800x600 on some
            X servers without a window manager), real fullscreen, or an ordinary window.
        kiosk: hide the cursor and keep Escape from closing the app (False for a staff desk).
    """
    # Kivy must not parse our command line, write ~/.kivy config, or spam the console.
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    from kivy.config import Config

    width, height = size
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "resizable", "0")
    Config.set("graphics", "allow_screensaver", "0")
    Config.set("graphics", "borderless", "1" if mode == "borderless" else "0")
    Config.set("graphics", "fullscreen", "auto" if mode == "fullscreen" else "0")
    if mode == "borderless":
        Config.set("graphics", "position", "custom")
        Config.set("graphics", "left", "0")
        Config.set("graphics", "top", "0")
    Config.set("graphics", "show_cursor", "0" if kiosk else "1")
    Config.set("kivy", "exit_on_escape", "0" if kiosk else "1")
    # A second finger or a right click must not leave red multitouch dots on the screen.
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("kivy", "keyboard_mode", "system")

    from kivy.core.text import DEFAULT_FONT, LabelBase

    font = cjk_font()
    if font is not None:
        LabelBase.register(DEFAULT_FONT, str(font))
    numbers = next((f for f in NUMBER_FONTS if f.exists()), font)
    LabelBase.register(NUMBER_FONT, str(numbers) if numbers is not None else "Roboto-Bold.ttf")  # Kivy's own
