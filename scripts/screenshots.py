"""Renders the hall's screens into docs/screenshots/ at a wall TV's and a small monitor's size.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--sizes 1920x1080,1366x768]

What a resident sees (kiosk: home, services, confirm, ticket, elder mode; the hall display) runs
in the kiosk test harness (:mod:`tests.kiosk.harness`: a real hub on a real Mosquitto, the virtual
printer and card reader, SDL offscreen). What a manager sees (the wall board, devices, charts,
cases) comes from ``hall demo --headless`` run fast for a while, opened in Debian's Chromium.
Every file is named ``<screen>-<W>x<H>.png``; run it again after changing a screen.

The phone page and the tablet pad are drawn by their tests, into docs/screenshots only when asked:
``HALLKIT_DOCS_SCREENSHOTS=1 scripts/test.sh tests/web/test_phone_browser.py tests/kiosk/test_touch_pad.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hallkit.broker.testing import Mosquitto  # noqa: E402
from hallkit.demo.demo import Demo, DemoOptions  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from hallkit.accounts import Role  # noqa: E402
from tests.kiosk.conftest import kivy_env  # noqa: E402

KIOSK_SCENARIOS = {"gallery": "kiosk", "display_busy": "display"}
DASHBOARD_PAGES = {"wall": ("wall", "#windows .window"), "devices": ("devices", "#devices tbody tr"),
                   "charts": ("charts", "#chart-staff canvas"), "cases": ("ratings", ".cases")}
"""Screenshot name: the page, and what shows it is drawn (the live stream never lets the network idle)."""
DEMO_SECONDS = 40.0
"""Hall time enough for ratings, a bad one with its case, and the charts' lines (at the demo's speed)."""


def kiosk_shots(work: Path, out: Path, size: str) -> list[Path]:
    broker = Mosquitto(work / "mosquitto").start()
    saved = []
    try:
        for scenario, kind in KIOSK_SCENARIOS.items():
            folder = work / f"{scenario}-{size}"
            folder.mkdir()
            proc = subprocess.run([sys.executable, "-m", "tests.kiosk.harness", scenario, str(folder), broker.url, size],
                                  cwd=ROOT, env=kivy_env(work / "kivy-home"), capture_output=True, text=True,
                                  timeout=300, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"{scenario} at {size} failed:\n{proc.stderr[-4000:]}")
            for shot in json.loads((folder / "result.json").read_text("utf-8"))["shots"]:
                name = Path(shot["png"]).stem
                name = f"display-{size}" if kind == "display" else f"kiosk-{name}-{size}"
                target = out / (name if name.endswith(size) else f"{name}-{size}")
                saved.append(Path(shutil.copy(shot["png"], target.with_suffix(".png"))))
    finally:
        broker.stop()
    return saved


def dashboard_shots(work: Path, out: Path, sizes: list[str]) -> list[Path]:
    demo = Demo(DemoOptions(data=work / "demo", headless=True, speed=300))
    demo.start()
    saved = []
    try:
        assert demo.dashboard is not None
        demo.dashboard.users.add_user("shots", Role.MANAGER, "screenshots-only-123")
        time.sleep(DEMO_SECONDS)  # the demo's hall fills up: this is what the pictures show
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=["--headless", "--no-sandbox", "--disable-gpu"])
            for size in sizes:
                width, height = (int(n) for n in size.split("x"))
                context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
                page = context.new_page()
                page.goto(demo.dashboard.url + "login")
                page.fill("input[name=name]", "shots")
                page.fill("input[name=password]", "screenshots-only-123")
                page.click("button[type=submit]")
                page.wait_for_url(demo.dashboard.url)
                for name, (path, drawn) in DASHBOARD_PAGES.items():
                    page.goto(demo.dashboard.url + path)
                    page.wait_for_selector(drawn)
                    page.wait_for_timeout(800)  # the rest of the first live message, ECharts' first draw
                    target = out / f"dashboard-{name}-{size}.png"
                    page.screenshot(path=str(target), full_page=name == "charts")  # the others: what one screen shows
                    saved.append(target)
                context.close()
            browser.close()
    finally:
        demo.stop()
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--sizes", default="1920x1080,1366x768")
    parser.add_argument("--only", choices=["kiosk", "dashboard"], help="just one of the two halves")
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="hallkit-shots-") as temp:
        work = Path(temp)
        if args.only in (None, "kiosk"):
            for size in sizes:
                saved += kiosk_shots(work / size, args.out, size)
        if args.only in (None, "dashboard"):
            saved += dashboard_shots(work, args.out, sizes)
    for path in saved:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
