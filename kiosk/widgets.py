"""Widgets shared by the kiosk's screens; their look is in ``shared.kv``."""

from __future__ import annotations

import io

import qrcode
from hallkit.kiosk import theme
from kivy.core.image import Image as CoreImage
from kivy.core.text import Label as CoreLabel
from kivy.properties import BooleanProperty, ColorProperty, NumericProperty, OptionProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.gridlayout import GridLayout
from kivy.uix.image import Image
from kivy.uix.label import Label


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


class QrImage(Image):
    """A QR code of ``data``, drawn black on white with a quiet zone, as a phone reads it."""

    data = StringProperty("")

    def on_data(self, _widget: QrImage, data: str) -> None:
        if not data:
            self.texture = None
            return
        code = qrcode.QRCode(border=2, box_size=8, error_correction=qrcode.constants.ERROR_CORRECT_M)
        code.add_data(data)
        buffer = io.BytesIO()
        code.make_image(fill_color="black", back_color="white").save(buffer, "PNG")
        buffer.seek(0)
        texture = CoreImage(buffer, ext="png").texture
        texture.mag_filter = "nearest"  # keep the modules sharp when scaled up
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
