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

from pydantic import BaseModel, ConfigDict, Field

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


SDL_CENTERED_ON_DISPLAY = 0x2FFF0000
"""SDL_WINDOWPOS_CENTERED_DISPLAY(n) is this mask | n: a window of the display's size then covers it."""


class Placement(BaseModel):
    """Where a hall screen's window goes on a machine with one or more monitors."""

    model_config = ConfigDict(frozen=True)

    mode: WindowMode
    size: tuple[int, int]
    screen: int | None = Field(None, ge=0, description="the monitor (SDL display index, 0 = the first)")
    position: tuple[int, int] | None = Field(None, description="top-left corner on the desktop, in pixels")
    on_top: bool = Field(False, description="above every other window (the kiosk above a full-screen display)")

    def origin(self) -> tuple[int, int] | None:
        if self.position is not None:
            return self.position
        if self.screen is not None:
            return SDL_CENTERED_ON_DISPLAY | self.screen, SDL_CENTERED_ON_DISPLAY | self.screen
        return (0, 0) if self.mode == "borderless" else None


def lock_window() -> None:
    """A kiosk the resident cannot leave: the window manager's close (Alt+F4, a title bar's ×) is
    refused; only the staff's maintenance screen, behind the PIN, stops the app."""
    from kivy.core.window import Window

    Window.bind(on_request_close=lambda *_args, **_kw: True)


KIOSK_DESIGN_HEIGHT = 800
"""The kiosk's screens are laid out for its default 1280x800: on a taller screen text and touch
targets grow with its height (a 1080-line screen: 1.35x), so a wall TV does not show small text
on vast tiles; never smaller than designed."""


def prepare(size: tuple[int, int] | Placement, mode: WindowMode = "borderless", *, kiosk: bool = True,
            design_height: int | None = None) -> None:
    """Set Kivy's environment and configuration for a hall screen.

    Args:
        size: the screen's width and height in pixels, or a whole :class:`Placement`.
        mode: borderless at ``size`` (the default: ``fullscreen`` draws only 800x600 on some
            X servers without a window manager), real fullscreen, or an ordinary window.
        kiosk: hide the cursor and keep Escape from closing the app (False for a staff desk).
        design_height: the screen height the layout is drawn for; a taller screen scales every
            ``dp``/``sp`` size by its height (``KIVY_METRICS_DENSITY`` set by hand wins).
    """
    placement = size if isinstance(size, Placement) else Placement(mode=mode, size=size)
    mode = placement.mode
    # Kivy must not parse our command line, write ~/.kivy config, or spam the console.
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    from kivy.config import Config

    width, height = placement.size
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "resizable", "0")
    Config.set("graphics", "allow_screensaver", "0")
    # No multisampling: Kivy asks for 2 samples and Mesa's llvmpipe (the software GL of the hall's
    # PCs) gives 4, which keeps a colour and a depth-stencil buffer four times the screen (about
    # 47 MB at 1280x800) and writes every pixel four times: a frame costs twice the CPU. Only the
    # rounded corners lose their smoothing (text is antialiased in its textures); the screenshots,
    # drawn into a framebuffer of their own, never had it. Kivy's Smooth* shapes would blur the
    # buttons' 2 dp borders.
    Config.set("graphics", "multisamples", "0")
    Config.set("graphics", "borderless", "1" if mode == "borderless" else "0")
    Config.set("graphics", "fullscreen", "auto" if mode == "fullscreen" else "0")
    origin = placement.origin()
    if origin is not None:
        Config.set("graphics", "position", "custom")
        Config.set("graphics", "left", str(origin[0]))
        Config.set("graphics", "top", str(origin[1]))
    Config.set("graphics", "always_on_top", "1" if placement.on_top else "0")
    Config.set("graphics", "show_cursor", "0" if kiosk else "1")
    Config.set("kivy", "exit_on_escape", "0" if kiosk else "1")
    # A second finger or a right click must not leave red multitouch dots on the screen.
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("kivy", "keyboard_mode", "system")

    if design_height is not None and "KIVY_METRICS_DENSITY" not in os.environ:
        # Set on Metrics, not through the variable: Kivy reads that once, when kivy.metrics is first
        # imported, which a caller may already have done.
        from kivy.metrics import Metrics

        Metrics.density = max(1.0, height / design_height)

    from kivy.core.text import DEFAULT_FONT, LabelBase

    font = cjk_font()
    if font is not None:
        LabelBase.register(DEFAULT_FONT, str(font))
    numbers = next((f for f in NUMBER_FONTS if f.exists()), font)
    LabelBase.register(NUMBER_FONT, str(numbers) if numbers is not None else "Roboto-Bold.ttf")  # Kivy's own
