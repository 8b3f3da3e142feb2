"""Runs kiosk scenarios in child processes (one Kivy app per process) under SDL's offscreen driver."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hallkit.kiosk.boot import cjk_font
from PIL import Image, ImageFont

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
"""Every screenshot is also copied here, to look at after a run."""


def kivy_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DISPLAY", None)  # SDL offscreen renders through EGL: no X server needed
    env.update(SDL_VIDEODRIVER="offscreen", KIVY_NO_ARGS="1", KIVY_HOME=str(home), KIVY_USE_DEFAULTCONFIG="1",
               KIVY_NO_FILELOG="1", KIVY_NO_CONSOLELOG="1", PYTHONPATH=str(ROOT),
               # The machine's zone is not the hall's (Asia/Shanghai): every screen must show the hall's time.
               TZ="America/Los_Angeles")
    return env


@pytest.fixture
def run_scenario(mosquitto, tmp_path):
    def run(name: str, timeout: float = 120, size: str | None = None) -> dict:
        work = tmp_path / (name if size is None else f"{name}-{size}")
        work.mkdir()
        proc = subprocess.run([sys.executable, "-m", "tests.kiosk.harness", name, str(work), mosquitto.url,
                               *([size] if size else [])],
                              cwd=ROOT, env=kivy_env(tmp_path / "kivy-home"), capture_output=True, text=True,
                              timeout=timeout, check=False)
        log = (work / "harness.log").read_text("utf-8") if (work / "harness.log").exists() else ""
        assert proc.returncode == 0, f"{proc.stderr[-6000:]}\n--- harness log ---\n{log[-4000:]}"
        result = json.loads((work / "result.json").read_text("utf-8"))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for shot in result["shots"]:
            shutil.copy(shot["png"], SCREENSHOTS / Path(shot["png"]).name)
            check_screenshot(shot)
        return result

    return run


def check_screenshot(shot: dict) -> None:
    """Not pixel-exact: the picture is not blank, and every character on it exists in the font (no tofu □)."""
    image = Image.open(shot["png"]).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 8, f"{shot['png']} is nearly blank"
    missing = sorted({c for line in shot["texts"] for c in line if not has_glyph(c)})
    assert not missing, f"{shot['png']}: no glyph for {missing!r} (would show as tofu)"


@functools.cache
def _font_and_notdef() -> tuple[ImageFont.FreeTypeFont, bytes]:
    """The CJK font and the mask it draws for a character it lacks, loaded once."""
    path = cjk_font()
    assert path is not None, "no CJK font installed (fonts-wqy-microhei)"
    font = ImageFont.truetype(str(path), 32)
    return font, bytes(font.getmask("\U000f0000"))  # a private-use character no font has


def has_glyph(char: str) -> bool:
    if char.isspace():
        return True
    font, notdef = _font_and_notdef()
    return bytes(font.getmask(char)) != notdef
