"""``hall pad touch``: a tablet at the window as its rating pad (评价器), in Kivy.

The same contract as every other pad: the tablet runs the pad bridge
(:class:`devices.evaluator.bridge.PadBridge`) with a :class:`TouchPad` as its driver, so the hub
sees a pad like any other, and this app only draws the :class:`PadDisplay` the bridge hands over
and turns taps into :class:`Rated` and :class:`KeyPress`. What it shows is decided by
:func:`devices.evaluator.touch.face`, a pure function of that display, the clock and what the resident has tapped:

- idle: the window's number and name, the staff member on duty (name, title, staff number, photo
  when ``[[staff]] photo`` names a file), 欢迎光临; serving: the called ticket;
- after a completion: five large buttons with the national words (非常满意 … 非常不满意); after a
  bad level, the configured reasons; then a thank-you screen, and back;
- a red band when the broker is out of reach (offline) or the hub's status says it is down;
- with ``--staff-keys``, a staff strip: 呼叫, 重呼, 过号, 暂停/恢复, 办结.

Sizes follow the screen's height, so 1280×800 and 800×480 both keep targets an elderly finger hits.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from hallkit.broker.pad_bridge import PadBridge
from hallkit.contracts.mqtt import BrokerAddress
from hallkit.devices.evaluator.pad import KeyPress, Rated, StaffKey
from hallkit.devices.evaluator.screen import PadDisplay
from hallkit.devices.evaluator.touch import Face, LinkState, TouchPad, face, link_state
from hallkit.kiosk import theme
from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.graphics import Color, Rectangle
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.image import Image
from kivy.uix.label import Label
from kivy.uix.togglebutton import ToggleButton
from kivy.uix.widget import Widget

from hallkit.config import HallConfig
from hallkit.i18n import text
from hallkit.rating.models import Level

THANKS_SECONDS = 5.0
SENDING_SECONDS = 8.0
"""A rating not answered in this long is given up on screen (the bridge logs what the hub said)."""

LEVEL_COLOURS = {5: (0.05, 0.40, 0.15, 1), 4: (0.16, 0.50, 0.22, 1), 3: (0.02, 0.29, 0.58, 1),
                 2: (0.66, 0.33, 0.02, 1), 1: (0.66, 0.07, 0.07, 1)}
"""Green to red; every one carries white text at 4.5:1 or more."""


def say(key: str, **params: object) -> str:
    return text(f"pad.touch.{key}", "zh", **params)


def say_both(key: str, size: int, **params: object) -> str:
    """Chinese first, English beneath in smaller type (Kivy markup)."""
    zh, en = text(f"pad.touch.{key}", "zh", **params), text(f"pad.touch.{key}", "en", **params)
    return zh if zh == en else f"{zh}\n[size={size}]{en}[/size]"


class Filled(BoxLayout):
    """A box with a background colour."""

    def __init__(self, colour: tuple[float, ...], **kwargs: object) -> None:
        super().__init__(**kwargs)
        with self.canvas.before:
            self._colour = Color(*colour)
            self._rect = Rectangle(pos=self.pos, size=self.size)
        self.bind(pos=self._redraw, size=self._redraw)

    def _redraw(self, *_: object) -> None:
        self._rect.pos, self._rect.size = self.pos, self.size

    def paint(self, colour: tuple[float, ...]) -> None:
        self._colour.rgba = colour


class TouchPadApp(App):
    def __init__(self, broker: BrokerAddress, hall_id: str, device_id: str, window: int,
                 config: HallConfig | None = None, staff_keys: bool = False) -> None:
        super().__init__()
        self.title = f"hallkit pad {device_id}"
        self.pad = TouchPad(device_id)
        self.bridge = PadBridge(self.pad, broker, hall_id, device_id, window)
        self.hall = config
        self.staff_keys = staff_keys
        self.picked: Level | None = None
        self.chosen_reasons: set[str] = set()
        self.sending_since: float | None = None
        self.thanks_until = 0.0
        self.notice = ""
        self._counts = (0, 0)
        self._drawn: tuple[object, ...] | None = None

    # ---- life cycle -----------------------------------------------------------------------------

    def build(self) -> Widget:
        self.unit = max(Window.height / 800, 0.6)
        self.root_box = Filled(theme.BACKGROUND, orientation="vertical")
        self.band = Label(markup=True, size_hint_y=None, height=0, color=theme.ON_DARK)
        self.header = Filled(theme.HEADER, orientation="horizontal", size_hint_y=None, height=self.px(150),
                             padding=self.px(16), spacing=self.px(20))
        self.body = BoxLayout(orientation="vertical", padding=self.px(20), spacing=self.px(16))
        self.staff = BoxLayout(orientation="horizontal", size_hint_y=None, height=self.px(110) if self.staff_keys else 0,
                               spacing=self.px(10), padding=(self.px(10), 0, self.px(10), self.px(10)))
        band_box = Filled(theme.WARN, size_hint_y=None, height=0)
        band_box.add_widget(self.band)
        self.band_box = band_box
        for part in (band_box, self.header, self.body, self.staff):
            self.root_box.add_widget(part)
        if self.staff_keys:
            self._staff_strip()
        self.bridge.start()
        Clock.schedule_interval(self._tick, 0.1)
        return self.root_box

    def on_stop(self) -> None:
        self.bridge.stop()

    def px(self, value: float) -> float:
        return value * self.unit

    # ---- what to show -----------------------------------------------------------------------------

    def _tick(self, _dt: float) -> None:
        ratings, refused = self.bridge.ratings, len(self.bridge.refused)
        if self.sending_since is not None:
            if ratings > self._counts[0]:
                self.sending_since = None
                self.thanks_until = time.monotonic() + THANKS_SECONDS
            elif refused > self._counts[1]:
                self.sending_since = None
                self.notice = self.bridge.refused[-1].zh
            elif time.monotonic() - self.sending_since > SENDING_SECONDS:
                self.sending_since = None
                self.notice = say("no_answer")
        display = self.pad.screen
        now = datetime.now(UTC)
        shown = face(display, now, self.picked, self.sending_since is not None, time.monotonic() < self.thanks_until)
        if shown not in (Face.RATE, Face.REASONS, Face.SENDING):
            self.picked = None
            self.chosen_reasons.clear()
        link = link_state(self.bridge.link.connected, self.bridge.link.hub_online)
        key = (shown, display, link, self.notice, self.picked, frozenset(self.chosen_reasons))
        if key != self._drawn:
            self._drawn = key
            self._draw(shown, display, link)

    def _draw(self, shown: Face, display: PadDisplay | None, link: LinkState) -> None:
        self._band(link)
        self._header(display)
        self.body.clear_widgets()
        if self.notice and shown is not Face.THANKS:
            self.body.add_widget(self._label(self.notice, 28, colour=theme.WARN, size_hint_y=0.25))
        prompt = display.prompt_at(datetime.now(UTC)) if display else None
        if shown is Face.RATE and prompt is not None:
            self.body.add_widget(self._label(say_both("rate_title", int(self.px(26)), number=prompt.ticket_number),
                                             40, size_hint_y=0.3))
            row = BoxLayout(orientation="horizontal", spacing=self.px(14))
            for level in prompt.levels:
                row.add_widget(self._level_button(level))
            self.body.add_widget(row)
        elif shown is Face.REASONS and prompt is not None:
            self.body.add_widget(self._label(say_both("reasons_title", int(self.px(22))), 34, size_hint_y=None,
                                             height=self.px(90)))
            grid = GridLayout(cols=3, spacing=self.px(12))
            for reason in prompt.reasons:
                toggle = ToggleButton(text=reason, font_size=self.px(34), background_normal="",
                                      background_down="", state="down" if reason in self.chosen_reasons else "normal",
                                      background_color=theme.WARN if reason in self.chosen_reasons else theme.SECONDARY_DOWN,
                                      color=theme.ON_DARK if reason in self.chosen_reasons else theme.TEXT)
                toggle.bind(on_release=lambda _b, r=reason: self._toggle(r))
                grid.add_widget(toggle)
            self.body.add_widget(grid)
            actions = BoxLayout(orientation="horizontal", spacing=self.px(14), size_hint_y=None, height=self.px(100))
            actions.add_widget(self._button(say_both("send", int(self.px(22))), theme.PRIMARY, self._send_bad))
            actions.add_widget(self._button(say_both("back", int(self.px(22))), theme.MUTED, self._back))
            self.body.add_widget(actions)
        elif shown is Face.SENDING:
            self.body.add_widget(self._label(say_both("sending", int(self.px(28))), 48))
        elif shown is Face.THANKS:
            self.body.add_widget(self._label(say_both("thanks", int(self.px(36))), 72, colour=theme.GOOD))
        elif shown is Face.SERVING and display is not None:
            self.body.add_widget(self._label(say_both("serving", int(self.px(26))), 36, size_hint_y=0.3))
            self.body.add_widget(self._label(display.ticket_number or "", 150, colour=theme.TICKET, bold=True))
            self.body.add_widget(self._label(display.service_name or "", 36, size_hint_y=0.3))
        elif shown is Face.CLOSED:
            self.body.add_widget(self._label(say_both("closed", int(self.px(28))), 56))
        elif shown is Face.PAUSED:
            self.body.add_widget(self._label(say_both("paused", int(self.px(28))), 56))
        else:
            self.body.add_widget(self._label(say_both("welcome", int(self.px(40))), 96, colour=theme.PRIMARY, bold=True))
        if self.staff_keys:
            self._pause_label(display)

    def _band(self, link: LinkState) -> None:
        if link is LinkState.OK:
            self.band_box.height = 0
            self.band.text = ""
            return
        self.band_box.height = self.px(70)
        self.band.font_size = self.px(28)
        self.band.text = say_both(link.value, int(self.px(20)))

    def _header(self, display: PadDisplay | None) -> None:
        self.header.clear_widgets()
        if display is None:
            self.header.add_widget(self._label(say("connecting"), 40, colour=theme.ON_DARK))
            return
        self.header.add_widget(self._label(say("window", number=display.window), 64, colour=theme.ON_DARK, bold=True,
                                           size_hint_x=0.3))
        self.header.add_widget(self._label(display.window_name, 40, colour=theme.ON_DARK, size_hint_x=0.3))
        photo = self._photo(display.staff_id)
        if photo is not None:
            self.header.add_widget(Image(source=str(photo), size_hint_x=0.12, fit_mode="contain"))
        if display.staff_name:
            staff = f"{display.staff_title} {display.staff_name}".strip()
            number = say("staff_number", number=display.staff_id) if display.staff_id else ""
            self.header.add_widget(self._label(f"{staff}\n[size={int(self.px(26))}]{number}[/size]", 40,
                                               colour=theme.ON_DARK, size_hint_x=0.4))
        else:
            self.header.add_widget(self._label(say("no_staff"), 32, colour=theme.ON_DARK, size_hint_x=0.4))

    def _photo(self, staff_id: str | None) -> Path | None:
        if self.hall is None or staff_id is None:
            return None
        member = self.hall.staff_member(staff_id)
        if member is None or not member.photo or not Path(member.photo).is_file():
            return None
        return Path(member.photo)

    # ---- widgets ------------------------------------------------------------------------------------

    def _label(self, content: str, size: float, colour: tuple[float, ...] = theme.TEXT, bold: bool = False,
               **kwargs: object) -> Label:
        label = Label(text=content, markup=True, font_size=self.px(size), color=colour, bold=bold, halign="center",
                      valign="middle", **kwargs)
        label.bind(size=lambda w, s: setattr(w, "text_size", s))
        return label

    def _button(self, content: str, colour: tuple[float, ...], action: object, size: float = 36) -> Button:
        button = Button(text=content, markup=True, font_size=self.px(size), background_normal="",
                        background_color=colour, color=theme.ON_DARK, halign="center", valign="middle")
        button.bind(size=lambda w, s: setattr(w, "text_size", s))
        button.bind(on_release=lambda _b: action())  # type: ignore[operator]
        return button

    def _level_button(self, level: Level) -> Button:
        words = f"{text(level.label_key, 'zh')}\n[size={int(self.px(22))}]{text(level.label_key, 'en')}[/size]"
        return self._button(words, LEVEL_COLOURS[int(level)], lambda: self._rate(level), size=44)

    def _staff_strip(self) -> None:
        for key in (StaffKey.CALL, StaffKey.RECALL, StaffKey.SKIP, StaffKey.PAUSE, StaffKey.DONE):
            button = self._button(say(f"key.{key.value}"), theme.PRIMARY_DOWN, lambda k=key: self._press(k), size=34)
            button.key = key
            self.staff.add_widget(button)

    def _pause_label(self, display: PadDisplay | None) -> None:
        for button in self.staff.children:
            if getattr(button, "key", None) is StaffKey.PAUSE:
                button.text = say("key.resume" if display is not None and display.paused else "key.pause")

    # ---- taps ---------------------------------------------------------------------------------------

    def _press(self, key: StaffKey) -> None:
        self.notice = ""
        self.pad.touch(KeyPress(key=key))

    def _rate(self, level: Level) -> None:
        self.notice = ""
        if level.bad:
            self.picked = level
            self._drawn = None
            return
        self._send(Rated(level=level))

    def _toggle(self, reason: str) -> None:
        self.chosen_reasons ^= {reason}

    def _send_bad(self) -> None:
        if self.picked is not None:
            prompt = self.pad.screen.prompt if self.pad.screen else None
            order = list(prompt.reasons) if prompt else []
            self._send(Rated(level=self.picked, tags=[r for r in order if r in self.chosen_reasons]))

    def _back(self) -> None:
        self.picked = None
        self.chosen_reasons.clear()

    def _send(self, rated: Rated) -> None:
        self._counts = (self.bridge.ratings, len(self.bridge.refused))
        self.sending_since = time.monotonic()
        self.pad.touch(rated)
