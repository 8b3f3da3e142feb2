"""The hall display app: now calling, the windows, recent calls, waiting counts, a notice, the voice.

Calls arrive from the hub's events (``evt/ticket_called``, ``evt/ticket_recalled``) and
the board changes at the next frame; the announcement goes into the announcer's queue
and is spoken on its own thread. The retained queue snapshot fills the window and
waiting panels, and brings a restarted display up to date at once.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from pathlib import Path

from hallkit.contracts.hall import QueueSnapshot
from hallkit.contracts.mqtt import BrokerAddress
from hallkit.kiosk.app import deliver
from hallkit.kiosk.catalog import window_state
from hallkit.kiosk.display.layout import grid_columns, rows_that_fit
from hallkit.kiosk.display.voice import Announcer
from hallkit.kiosk.feed import Call, HallFeed
from kivy.animation import Animation
from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from hallkit.config import HallConfig
from hallkit.i18n import Lang, text

NOTICE_SPEED = 120
"""Pixels a second the notice line scrolls: slow enough to read while walking past."""
FLASH_SECONDS = 4.0


class Board(BoxLayout):
    """The board's layout is in board.kv; the app fills its lists."""


class WindowRow(BoxLayout):
    """A window: its number, its name, and the ticket it serves or why it serves none."""

    label = StringProperty("")
    name = StringProperty("")
    ticket = StringProperty("")
    state = StringProperty("")
    highlight = BooleanProperty(False)


class RecentCall(BoxLayout):
    number = StringProperty("")
    window = StringProperty("")
    highlight = BooleanProperty(False)


class WaitingRow(BoxLayout):
    name = StringProperty("")
    count = StringProperty("")


class DisplayApp(App):
    lang = StringProperty("zh")
    hall_name = StringProperty("")
    clock = StringProperty("")
    status_text = StringProperty("")
    notice = StringProperty("")
    latest_number = StringProperty("")
    latest_window = NumericProperty(0)
    latest_recall = BooleanProperty(False)
    flash = NumericProperty(0)
    u = NumericProperty(10.8)
    """One hundredth of the screen height: the board's unit of size (board.kv)."""

    def __init__(self, config: HallConfig, broker: BrokerAddress, announcer: Announcer | None,
                 device_id: str = "display") -> None:
        super().__init__()
        self.hall = config
        self.title = config.hall.name
        self.hall_name = config.hall.name
        self.notice = config.kiosk.display.notice
        self.announcer = announcer
        self.recent: deque[Call] = deque(maxlen=config.kiosk.display.recent_calls)
        self.snapshot: QueueSnapshot | None = None
        self.calls_shown = 0
        self.last_call_frames: int | None = None
        """Frames between the last call's arrival and the board showing it (tests check it is the next)."""
        self.feed = HallFeed(broker, config.hall.id, device_id,
                             on_snapshot=lambda s: deliver(lambda: self._snapshot(s)),
                             on_call=self._arrived,
                             on_hub=lambda online: deliver(lambda: self._online(online)))

    def t(self, key: str, lang: Lang | None = None, **params: object) -> str:
        return text(key, lang or self.lang, **params)

    def build(self) -> Board:
        Window.bind(size=lambda _w, size: setattr(self, "u", size[1] / 100))
        self.u = Window.height / 100
        Builder.load_file(str(Path(__file__).with_name("board.kv")))
        self.board = Board()
        # How many services fit the waiting panel depends on its height, known after layout.
        self.board.ids.waiting_panel.bind(height=lambda *_: self._fill_waiting())
        Clock.schedule_interval(self._tick, 5)
        Clock.schedule_interval(self._scroll, 1 / 30)
        self._tick()
        self._online(False)
        self._fill_windows(None)
        return self.board

    def on_start(self) -> None:
        if self.announcer is not None:
            self.announcer.start()
        self.feed.start()

    def on_stop(self) -> None:
        self.feed.stop()
        if self.announcer is not None:
            self.announcer.stop()

    def _tick(self, *_: object) -> None:
        self.clock = f"{datetime.now(self.hall.hall.zone):%H:%M}"  # the hall's time, not the machine's

    def _scroll(self, dt: float) -> None:
        notice = self.board.ids.notice
        strip = self.board.ids.strip
        notice.x -= NOTICE_SPEED * dt
        if notice.right < strip.x:
            notice.x = strip.right

    def _online(self, online: bool) -> None:
        self.status_text = "" if online else self.t("display.offline")

    def _arrived(self, call: Call) -> None:
        """In the feed's thread: to the board at the next frame."""
        arrived = Clock.frames
        deliver(lambda: self._call(call, arrived))

    def _call(self, call: Call, arrived: int) -> None:
        self.latest_number = call.number
        self.latest_window = call.window
        self.latest_recall = call.recall
        # A recall moves the ticket back to the top instead of listing it twice.
        for earlier in [c for c in self.recent if (c.number, c.window) == (call.number, call.window)]:
            self.recent.remove(earlier)
        self.recent.appendleft(call)
        self._fill_recent()
        Animation.cancel_all(self, "flash")
        self.flash = 1
        Animation(flash=0, duration=FLASH_SECONDS, t="in_quad").start(self)
        self.calls_shown += 1
        self.last_call_frames = Clock.frames - arrived
        if self.announcer is not None:
            self.announcer.announce(call.number, call.window)

    def _fill_recent(self) -> None:
        box = self.board.ids.recent
        box.clear_widgets()
        for index, call in enumerate(self.recent):
            box.add_widget(RecentCall(number=call.number, window=self.t("display.window", window=call.window),
                                      highlight=index == 0))

    def _snapshot(self, snapshot: QueueSnapshot) -> None:
        self.snapshot = snapshot
        self._online(True)
        self._fill_windows(snapshot)
        self._fill_waiting()

    def _fill_waiting(self) -> None:
        """The busiest services, as many as the panel holds below its caption."""
        grid = self.board.ids.waiting
        panel = self.board.ids.waiting_panel
        grid.clear_widgets()
        if self.snapshot is None:
            return
        room = panel.height - panel.padding[1] - panel.padding[3] - self.u * 5.5 - panel.spacing
        shown = rows_that_fit(room, grid.row_default_height, grid.spacing[1]) * grid.cols
        busiest = sorted((s for s in self.snapshot.services if s.waiting), key=lambda s: -s.waiting)[:shown]
        for service in busiest:
            grid.add_widget(WaitingRow(name=service.name, count=self.t("display.count", count=service.waiting)))

    def _fill_windows(self, snapshot: QueueSnapshot | None) -> None:
        grid = self.board.ids.windows
        grid.clear_widgets()
        grid.cols = grid_columns(len(self.hall.windows))
        calling = {w.number: w.ticket.number for w in snapshot.windows if w.ticket} if snapshot else {}
        for window in self.hall.windows:
            state = window_state(snapshot, window.number)
            ticket = calling.get(window.number, "") if state == "open" else ""
            shown_state = "" if ticket else "—" if state == "open" else self.t(f"display.{state}")
            grid.add_widget(WindowRow(label=self.t("display.window", window=window.number), name=window.name,
                                      ticket=ticket, state=shown_state, highlight=bool(ticket)))
