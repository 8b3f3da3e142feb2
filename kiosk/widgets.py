"""Widgets shared by the kiosk's screens; their look is in ``shared.kv``."""

from __future__ import annotations

import qrcode
from hallkit.kiosk import theme
from kivy.core.text import Label as CoreLabel
from kivy.graphics.texture import Texture
from kivy.properties import (
    BooleanProperty,
    ColorProperty,
    NumericProperty,
    ObjectProperty,
    OptionProperty,
    StringProperty,
)
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.widget import Widget

QR_DARK = b"\x00\x00\x00\xff"
QR_LIGHT = b"\xff\xff\xff\xff"


def text_width(text: str, font_size: float, bold: bool = True) -> float:
    """How wide ``text`` is drawn on one line: a button sized from it never feeds back into its wrapping."""
    return float(CoreLabel(font_size=font_size, bold=bold).get_extents(text)[0])


class Body(Label):
    """Text a resident reads: at least 32 sp, wrapped to the width it is given."""


class Title(Body):
    """A screen's heading."""


class Note(Body):
    """Secondary text, still dark enough to read."""


class Banner(Body):
    """A coloured band with white text: the card prompt, a warning, a print state."""

    bg = ColorProperty(theme.PRIMARY)


class BigButton(ButtonBehavior, Label):
    """A flat, rounded button at least 96 dp high: primary (filled), secondary (outlined), warn, or
    accent (yellow with dark text: the one thing on the screen meant for this resident)."""

    kind = OptionProperty("primary", options=["primary", "secondary", "warn", "accent"])
    fill = ColorProperty(theme.PRIMARY)
    """The colour of the button's face for its kind and state (set in shared.kv)."""
    min_height = NumericProperty(96)
    scaled = BooleanProperty(True)
    """Grows with elder mode; the header's buttons do not, so the header keeps its height."""


class HallName(ButtonBehavior, Label):
    """The hall's name in the header; five quick taps on it are the hidden staff gesture."""


class QrImage(Widget):
    """A QR code of ``data``, black on white with a quiet zone, as a phone reads it: the largest
    square its box holds, centred (``shared.kv``).

    Its texture has one pixel a module, scaled up with the nearest filter so the modules stay
    sharp: no PNG is drawn, encoded and decoded on the UI thread for each ticket, and it is one
    plain rectangle (Kivy's Image draws through the stencil buffer, dear in software GL)."""

    data = StringProperty("")
    texture = ObjectProperty(None, allownone=True)

    def on_data(self, _widget: QrImage, data: str) -> None:
        if not data:
            self.texture = None
            return
        code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
        code.add_data(data)
        modules = code.get_matrix()  # rows from the top, the quiet zone included
        size = len(modules)
        # RGBA like the labels' textures (rows of whole words, and the same shader for Mesa);
        # GL's rows go from the bottom up.
        pixels = b"".join(QR_DARK if dark else QR_LIGHT for row in reversed(modules) for dark in row)
        texture = Texture.create(size=(size, size), colorfmt="rgba")
        texture.blit_buffer(pixels, colorfmt="rgba", bufferfmt="ubyte")
        texture.mag_filter = "nearest"
        texture.min_filter = "nearest"
        self.texture = texture


class NumPad(GridLayout):
    """A 3×4 keypad of big buttons: digits, clear and OK (no system keyboard on a kiosk)."""

    __events__ = ("on_digit", "on_clear", "on_ok")
    locked = BooleanProperty(False)

    def on_digit(self, digit: str) -> None:
        """A digit was tapped."""

    def on_clear(self) -> None:
        """Clear was tapped."""

    def on_ok(self) -> None:
        """OK was tapped."""
