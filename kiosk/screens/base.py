"""The frame every kiosk screen shares: header on top, the screen's own content below."""

from __future__ import annotations

from typing import Any, cast

from hallkit.kiosk.screens.ports import Kiosk
from kivy.app import App
from kivy.uix.screenmanager import Screen
from kivy.uix.widget import Widget


class KioskScreen(Screen):
    """A screen inside the shared frame (``<KioskScreen>`` in shared.kv).

    Widgets a screen's kv rule adds go into the frame's ``content`` box, so each
    screen's kv file holds only its own content (the pattern of Kivy's showcase).
    """

    @property
    def app(self) -> Kiosk:
        """The running kiosk, as the screens see it (:class:`~kiosk.screens.ports.Kiosk`)."""
        return cast(Kiosk, App.get_running_app())

    def add_widget(self, widget: Widget, *args: Any, **kwargs: Any) -> None:
        if "content" in self.ids:
            self.ids.content.add_widget(widget, *args, **kwargs)
        else:
            super().add_widget(widget, *args, **kwargs)

    def on_pre_enter(self, *_: object) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Rebuild what kv bindings cannot follow (lists, pages) from the app's state."""
