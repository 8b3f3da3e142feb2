"""Test seams for the kiosk and the display: taps, scripted steps on the Kivy clock, screenshots.

Tests and ``bench/kiosk.py`` run a real app (``App.run()``, a real window, SDL offscreen
or Xvfb) and drive it from a *scenario*: a generator that yields the condition to wait
for between its taps — a screen shown and laid out (:func:`settled`), a ticket printed —
never a number of seconds. It runs on the Kivy clock, so every step sees the UI as a
resident would. The kiosk's own timers (idle reset, retries, the PIN lock) run on a
:class:`~kiosk.timers.ManualTimers` in tests: a scenario moves that time by hand.
"""

from __future__ import annotations

import json
import re
import time
import traceback
from collections.abc import Callable, Generator
from pathlib import Path

from kivy.app import App
from kivy.base import EventLoop
from kivy.clock import Clock
from kivy.input.motionevent import MotionEvent
from kivy.uix.label import Label
from kivy.uix.widget import Widget

Step = Callable[[], bool]
"""A predicate: the scenario goes on once it holds (its docstring names it in a timeout)."""
Scenario = Generator[Step, None, None]

MARKUP = re.compile(r"\[/?[a-z]+(=[^\]]*)?\]")


class _Finger(MotionEvent):
    """One touch at a window position (what Kivy's ``kivy.tests.common.UnitTestTouch`` does; that
    module imports pytest, which must not weigh on the memory the kiosk bench measures)."""

    def __init__(self, x: float, y: float) -> None:
        window = EventLoop.window
        super().__init__("Finger", 99, {"x": x / (window.width - 1.0), "y": y / (window.height - 1.0)},
                         is_touch=True, type_id="touch")
        self.profile = ["pos"]

    def depack(self, args: dict[str, float]) -> None:
        self.sx, self.sy = args["x"], args["y"]
        super().depack(args)


def tap(widget: Widget) -> None:
    """A finger down and up at the widget's centre, through Kivy's input dispatch."""
    if widget.disabled:
        raise AssertionError(f"tapped a disabled widget: {widget!r}")
    touch = _Finger(*widget.to_window(*widget.center))
    EventLoop.post_dispatch_input("begin", touch)
    EventLoop.post_dispatch_input("end", touch)


def visible(widget: Widget) -> bool:
    node: Widget | None = widget
    while node is not None:
        if getattr(node, "opacity", 1) == 0:
            return False
        node = node.parent if node.parent is not node else None
    return True


def texts(root: Widget) -> list[str]:
    """Every visible label's text under ``root`` (markup removed), top of the tree first."""
    return [MARKUP.sub("", w.text) for w in root.walk(restrict=True)
            if isinstance(w, Label) and w.text and visible(w)]


def find_text(root: Widget, needle: str) -> Widget:
    """The visible label (or button) whose text contains ``needle``."""
    for widget in root.walk(restrict=True):
        if isinstance(widget, Label) and needle in MARKUP.sub("", widget.text) and visible(widget):
            return widget
    raise AssertionError(f"no visible text {needle!r} in {texts(root)}")


def _box(label: Label) -> tuple[float, float, float, float]:
    """Where a label's text is on the window: along an axis its text_size fixes, its box; else its
    texture, which Kivy centres in the box."""
    x, y = label.to_window(label.x, label.y)
    (w, h), (fixed_w, fixed_h) = label.texture_size, label.text_size
    x0 = x if fixed_w is not None else x + (label.width - w) / 2
    y0 = y if fixed_h is not None else y + (label.height - h) / 2
    return (x0, y0, x0 + (label.width if fixed_w is not None else w),
            y0 + (label.height if fixed_h is not None else h))


def _shown_text(label: Label) -> str:
    """The text the label actually drew: the words of the lines it laid out (fewer when cut)."""
    lines = getattr(label._label, "_cached_lines", None) or []
    return "".join(word.text for line in lines for word in line.words)


def layout_problems(root: Widget, *, ignore: tuple[Widget, ...] = ()) -> list[str]:
    """Texts cut short, drawn outside ``root`` or over one another (empty when the layout is sound).

    A label is cut when it shortened its text (…) or left lines out; two labels clash when
    their text boxes overlap. ``ignore``: labels meant to move past edges (a scrolling line).
    """
    labels = [w for w in root.walk(restrict=True)
              if isinstance(w, Label) and w.text.strip() and visible(w) and w not in ignore]
    left, bottom = root.to_window(root.x, root.y)
    right, top = left + root.width, bottom + root.height
    problems: list[str] = []
    boxes = []
    for label in labels:
        label.texture_update()
        text = MARKUP.sub("", label.text)
        shown = _shown_text(label)
        if label.shorten or "".join(text.split()) != "".join(shown.split()):
            problems.append(f"{text!r} is cut to {shown!r}")
        box = _box(label)
        tw, th = label.texture_size
        if tw > label.width + 1 and label.text_size[0] is not None:
            problems.append(f"{text!r} is wider ({tw:.0f}) than its box ({label.width:.0f})")
        if box[0] < left - 1 or box[1] < bottom - 1 or box[2] > right + 1 or box[3] > top + 1:
            problems.append(f"{text!r} at {tuple(round(v) for v in box)} leaves the screen")
        boxes.append((text, box))
    for index, (text, (x0, y0, x1, y1)) in enumerate(boxes):
        for other, (u0, v0, u1, v1) in boxes[index + 1:]:
            if min(x1, u1) - max(x0, u0) > 1 and min(y1, v1) - max(y0, v0) > 1:
                problems.append(f"{text!r} overlaps {other!r}")
    return problems


def settled(root: Widget) -> Step:
    """Holds once nothing under ``root`` waits to be laid out or to have its text drawn.

    Kivy lays out and renders text in triggers run before the next frame; a new or resized
    widget can take a few frames to reach its place (a text's height moves its box, which
    changes another's width …). When no trigger is pending, positions and textures are final:
    a tap lands where a resident's finger would, a screenshot shows what they would see.
    """
    def check() -> bool:
        manager = getattr(root, "transition", None)
        if manager is not None and manager.is_active:
            return False
        for widget in root.walk(restrict=True):
            for name in ("_trigger_layout", "_trigger_texture"):
                trigger = getattr(widget, name, None)
                if trigger is not None and trigger.is_triggered:
                    return False
        return True

    check.__doc__ = f"{type(root).__name__} laid out"
    return check


def export_png(root: Widget, png: Path) -> None:
    """Save what the window shows of ``root``: its drawing over the window's clear colour.

    Drawn into a framebuffer of its own (a window screenshot taken with SDL's offscreen driver
    comes out black), like Kivy's ``export_to_png``, but cleared to the window's colour: the
    kiosk's page colour is that clear colour, not a rectangle of each screen's."""
    from kivy.core.image import Image
    from kivy.core.window import Window
    from kivy.graphics import ClearBuffers, ClearColor, Fbo, Scale, Translate

    parent = root.parent
    index = parent.canvas.indexof(root.canvas) if parent is not None else -1
    if index > -1:
        parent.canvas.remove(root.canvas)
    fbo = Fbo(size=root.size, with_stencilbuffer=True)
    with fbo:
        ClearColor(*Window.clearcolor)
        ClearBuffers()
        Scale(1, -1, 1)
        Translate(-root.x, -root.y - root.height, 0)
    fbo.add(root.canvas)
    fbo.draw()
    Image(fbo.texture).save(str(png), flipped=False)
    fbo.remove(root.canvas)
    if index > -1:
        parent.canvas.insert(index, root.canvas)


def screenshot(root: Widget, folder: Path, name: str) -> dict[str, object]:
    """Save ``root`` as ``name.png`` with its visible texts in ``name.json``; returns both."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    export_png(root, png)
    record: dict[str, object] = {"png": str(png), "texts": texts(root), "size": list(root.size)}
    (folder / f"{name}.json").write_text(json.dumps(record, ensure_ascii=False, indent=1), "utf-8")
    return record


class Script:
    """Runs a scenario on the Kivy clock and stops the app when it ends.

    Args:
        app: the running app.
        scenario: the steps.
        step_timeout: seconds a predicate may take to hold before the scenario fails.
        diagnose: called when a step times out, while the app still runs: what it returns (the
            app's state, where its threads are) is added to the error, to tell why it hung.
    """

    def __init__(self, app: App, scenario: Scenario, step_timeout: float = 60.0,
                 diagnose: Callable[[], str] | None = None) -> None:
        self.app = app
        self.scenario = scenario
        self.step_timeout = step_timeout
        self.diagnose = diagnose
        self.error: str | None = None
        self.timed_out = False
        """A step did not hold within ``step_timeout`` (a hang, as opposed to a failing step)."""
        self.finished = False
        self._until: Callable[[], bool] | None = None
        self._deadline = 0.0
        self._event = None

    def start(self) -> Script:
        Clock.schedule_once(lambda _dt: self._begin(), 0)
        return self

    def _begin(self) -> None:
        self._event = Clock.schedule_interval(self._step, 0.02)

    def _step(self, _dt: float) -> None:
        now = time.monotonic()
        if self._until is not None:
            try:
                held = self._until()
            except Exception:  # noqa: BLE001 - a failing step ends the scenario with its traceback
                self._fail(traceback.format_exc())
                return
            if not held:
                if now > self._deadline:
                    what = getattr(self._until, "__doc__", None) or self._until
                    self.timed_out = True
                    self._fail(f"timed out waiting for {what}" + (f"\n{self.diagnose()}" if self.diagnose else ""))
                return
            self._until = None
        try:
            step = next(self.scenario)
        except StopIteration:
            self._end()
            return
        except Exception:  # noqa: BLE001 - a failing step ends the scenario with its traceback
            self._fail(traceback.format_exc())
            return
        if not callable(step):
            self._fail(f"a scenario yields conditions to wait for, not {step!r}")
            return
        self._until = step
        self._deadline = now + self.step_timeout

    def _fail(self, error: str) -> None:
        self.error = error
        self._end()

    def _end(self) -> None:
        self.finished = True
        if self._event is not None:
            self._event.cancel()
        self.app.stop()
