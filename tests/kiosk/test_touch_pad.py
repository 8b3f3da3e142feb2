"""``hall pad touch`` under Xvfb: taps through call → complete → rate → thanks, the rating recorded once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hallkit.broker.client import HallClient
from hallkit.broker.hub import Hub
from hallkit.broker.parts import hub_parts
from PIL import Image, ImageDraw

from hallkit.config import parse_config
from hallkit.queue.models import TakeTicket
from hallkit.testing import DASHBOARD_HALL
from tests.kiosk.conftest import check_screenshot

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "screenshots" if os.environ.get("HALLKIT_DOCS_SCREENSHOTS")
        else Path(tempfile.gettempdir()) / "hallkit-screenshots")
"""docs/screenshots only when asked (HALLKIT_DOCS_SCREENSHOTS=1): a test run leaves the checkout as it was."""


def avatar(path: Path) -> Path:
    """A plain head-and-shoulders picture standing in for a staff photo."""
    image = Image.new("RGB", (240, 300), (214, 226, 238))
    draw = ImageDraw.Draw(image)
    draw.ellipse((70, 40, 170, 150), fill=(70, 90, 120))
    draw.rounded_rectangle((30, 170, 210, 320), radius=60, fill=(70, 90, 120))
    image.save(path)
    return path


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs Xvfb (apt-get install xvfb)")
@pytest.mark.parametrize("size", ["1280x800", "800x480"])
def test_touch_pad_call_complete_rate_thanks(mosquitto, tmp_path, size):
    photo = avatar(tmp_path / "zhang.png")
    text = DASHBOARD_HALL.replace('name = "张三"', f'name = "张三"\ntitle = "综合窗口"\nphoto = "{photo}"', 1)
    config_path = tmp_path / "hall.toml"
    config_path.write_text(text, "utf-8")
    config = parse_config(text)
    hub = Hub(config, mosquitto.address, tmp_path / "data", "normal", parts=hub_parts(config))
    hub.start()
    try:
        with HallClient(mosquitto.address, config.hall.id, "kiosk-1") as kiosk:
            assert kiosk.request(TakeTicket(service_id="social")).ok
        env = dict(os.environ, SDL_VIDEODRIVER="x11", KIVY_NO_ARGS="1", KIVY_HOME=str(tmp_path / "kivy"),
                   KIVY_USE_DEFAULTCONFIG="1", KIVY_NO_FILELOG="1", KIVY_NO_CONSOLELOG="1", PYTHONPATH=str(ROOT))
        width, height = size.split("x")
        proc = subprocess.run(
            ["xvfb-run", "-a", "-s", f"-screen 0 {width}x{height}x24", sys.executable, "-m",
             "tests.kiosk.touch_harness", str(tmp_path), mosquitto.url, str(config_path), size],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
        log = (tmp_path / "harness.log").read_text("utf-8") if (tmp_path / "harness.log").exists() else ""
        assert proc.returncode == 0, f"{proc.stderr[-5000:]}\n--- harness log ---\n{log[-4000:]}"
        result = json.loads((tmp_path / "result.json").read_text("utf-8"))
        with hub.queue.store.transaction() as conn:
            rows = conn.execute("SELECT json_extract(body, '$.channel'), json_extract(body, '$.level'), "
                                "json_extract(body, '$.tags'), json_extract(body, '$.window') FROM ratings").fetchall()
            cases = conn.execute("SELECT count(*) FROM rating_cases").fetchone()[0]
        assert rows == [("pad", 2, '["态度不好","效率低"]', 1)]  # once, at the pad's own window
        assert cases == 1
        DOCS.mkdir(parents=True, exist_ok=True)
        for shot in result["shots"]:
            assert shot["size"] == [int(width), int(height)]
            check_screenshot(shot)
            shutil.copy(shot["png"], DOCS / Path(shot["png"]).name)
    finally:
        hub.stop()


def test_what_the_tablet_shows():
    from datetime import UTC, datetime, timedelta

    from hallkit.devices.evaluator.screen import PadDisplay, PadPrompt
    from hallkit.devices.evaluator.touch import Face, LinkState, face, link_state

    from hallkit.rating.models import Level

    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    idle = PadDisplay(window=1, window_name="综合窗口", open=True, staff_name="张三")
    serving = idle.model_copy(update={"ticket_number": "A001", "service_name": "低保申请"})
    prompt = PadPrompt(ticket_number="A001", service_name="低保申请", until=now + timedelta(seconds=30))
    asking = idle.model_copy(update={"prompt": prompt})
    assert face(None, now, None, False, False) is Face.IDLE
    assert face(idle, now, None, False, False) is Face.IDLE
    assert face(serving, now, None, False, False) is Face.SERVING
    assert face(asking, now, None, False, False) is Face.RATE
    assert face(asking, now, Level.DISSATISFIED, False, False) is Face.REASONS
    assert face(asking, now + timedelta(seconds=31), None, False, False) is Face.IDLE  # the prompt ran out
    assert face(asking, now, None, True, False) is Face.SENDING
    assert face(asking, now, None, False, True) is Face.THANKS
    assert face(idle.model_copy(update={"paused": True}), now, None, False, False) is Face.PAUSED
    assert face(idle.model_copy(update={"open": False}), now, None, False, False) is Face.CLOSED
    assert link_state(False, True) is LinkState.OFFLINE
    assert link_state(True, False) is LinkState.HUB_DOWN
    assert link_state(True, None) is LinkState.OK and link_state(True, True) is LinkState.OK
