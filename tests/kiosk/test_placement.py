"""Where ``hall kiosk`` and ``hall display`` put their windows: full screen, a monitor, a position."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
from hallkit.kiosk.boot import SDL_CENTERED_ON_DISPLAY, Placement
from hallkit.kiosk.cli import add_placement, placement

from hallkit.commandline import CommandFailed
from tests.kiosk.conftest import ROOT


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windowed", action="store_true")
    add_placement(parser)
    return parser.parse_args(argv)


def test_command_line_placement_over_the_configuration():
    assert placement(_args(), (1280, 800), "borderless", on_top=True) == \
        Placement(mode="borderless", size=(1280, 800), on_top=True)
    full = placement(_args("--fullscreen", "--screen", "1"), (1920, 1080), "borderless", on_top=False)
    assert (full.mode, full.screen, full.origin()) == ("fullscreen", 1, (SDL_CENTERED_ON_DISPLAY | 1,) * 2)
    moved = placement(_args("--position", "1920,0", "--size", "1366x768"), (1920, 1080), "borderless", on_top=True)
    assert (moved.origin(), moved.size) == ((1920, 0), (1366, 768))
    desk = placement(_args("--windowed"), (1280, 800), "borderless", on_top=True)
    assert (desk.mode, desk.on_top, desk.origin()) == ("windowed", False, None)  # a desk window is an ordinary one


@pytest.mark.parametrize("argv", [("--windowed", "--fullscreen"), ("--screen", "1", "--position", "0,0"),
                                  ("--size", "big"), ("--position", "10"), ("--screen", "-1")])
def test_contradictory_or_malformed_placement_is_refused(argv):
    with pytest.raises(CommandFailed):
        placement(_args(*argv), (1280, 800), "borderless", on_top=True)


PLACED = """
import sys
from hallkit.kiosk import boot
boot.prepare(boot.Placement(mode="borderless", size=(640, 480), position=(300, 200), on_top=True))
from kivy.base import EventLoop
from kivy.core.window import Window
boot.lock_window()
EventLoop.ensure_window()
EventLoop.idle()
refused = Window.dispatch("on_request_close")
print("PLACED", *Window._win.get_window_pos(), *Window.size, int(Window.always_on_top), int(bool(refused)))
"""


def test_the_window_lands_where_asked_above_the_others_and_does_not_close(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    env.update(KIVY_HOME=str(tmp_path), KIVY_NO_ARGS="1", KIVY_NO_CONSOLELOG="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x720x24", sys.executable, "-c", PLACED],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("PLACED")), None)
    assert line is not None, proc.stderr[-3000:]
    # Borderless at (300, 200), 640x480, always on top; Alt+F4 (a close request) is refused.
    assert line.split()[1:] == ["300", "200", "640", "480", "1", "1"]


SCALED = """
import sys
from kivy.metrics import Metrics, sp  # imported first, as a caller may: the scale must still apply
from hallkit.kiosk import boot
boot.prepare((int(sys.argv[1]), int(sys.argv[2])), "windowed", design_height=boot.KIOSK_DESIGN_HEIGHT)
print("SCALED", Metrics.density, sp(20))
"""


@pytest.mark.parametrize(("size", "density"), [((1920, 1080), 1.35), ((1280, 800), 1.0), ((1366, 768), 1.0)])
def test_kiosk_text_and_targets_grow_with_a_taller_screen(tmp_path, size, density):
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", KIVY_HOME=str(tmp_path), KIVY_NO_ARGS="1",
               KIVY_NO_CONSOLELOG="1", PYTHONPATH=str(ROOT))
    env.pop("KIVY_METRICS_DENSITY", None)
    proc = subprocess.run([sys.executable, "-c", SCALED, *map(str, size)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("SCALED")), None)
    assert line is not None, proc.stderr[-3000:]
    assert [float(x) for x in line.split()[1:]] == pytest.approx([density, 20 * density])
