"""Dashboard bench: from a counter's call to the live board showing it, with 20 viewers open.

Mosquitto, the hub and the dashboard each run as their own process, as in a hall. Twenty
viewers, each its own logged-in browser context (own session, own SSE stream), are tabs of one
headless Debian Chromium: twenty separate Chromium processes do not fit two cores beside the
hall. Every tab records, with a MutationObserver, the moment the called number appears on its
board; the latency is that moment less the moment the counter sent the call (one machine, one
clock). Then the CPU of the hub, the dashboard and Chromium while the viewers watch a busy hall.

    .venv/bin/python bench/dashboard.py [--viewers 20] [--calls 40]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from hallkit.broker.client import HallClient, read_hall
from hallkit.broker.testing import Mosquitto
from hallkit.contracts.mqtt import parse_broker_url
from playwright.sync_api import Page, sync_playwright

from hallkit.config import parse_config
from hallkit.queue.models import CallNext, Complete, TakeTicket
from hallkit.testing import DASHBOARD_HALL, free_port

ROOT = Path(__file__).resolve().parents[1]


USER = ("bench", "bench-password-1")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WATCH = """() => {
  window.__seen = {};
  new MutationObserver(() => {
    document.querySelectorAll('#windows .calling').forEach(n => {
      if (!(n.textContent in window.__seen)) window.__seen[n.textContent] = Date.now();
    });
  }).observe(document.getElementById('windows'), {childList: true, subtree: true, characterData: true});
}"""


def serve(role: str, config_path: Path, broker: str, data: Path, port: int) -> None:
    """Run the hub or the dashboard in this process until killed (the bench's child processes)."""
    from hallkit.broker.hub import Hub
    from hallkit.broker.parts import hub_parts
    from hallkit.dashboard.server import DashboardServer

    from hallkit.accounts import Role

    config = parse_config(config_path.read_text("utf-8"))
    address = parse_broker_url(broker)
    if role == "hub":
        Hub(config, address, data, "normal", parts=hub_parts(config)).start()
        while True:
            time.sleep(3600)
    server = DashboardServer(config, address, data, host="127.0.0.1", port=port)
    server.users.add_user(USER[0], Role.VIEWER, USER[1])
    server.run()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def spawn(role: str, config: Path, broker: Mosquitto, data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--serve", role, "--config", str(config), "--broker", broker.url,
                             "--data", str(data), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def open_viewer(browser, url: str) -> Page:  # noqa: ANN001
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(url + "login")
    page.fill("input[name=name]", USER[0])
    page.fill("input[name=password]", USER[1])
    page.click("button[type=submit]")
    page.wait_for_url(url)
    page.wait_for_selector("#windows .window")
    page.evaluate(WATCH)
    return page


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def chromium_processes(root: psutil.Process) -> list[psutil.Process]:
    return [p for p in root.children(recursive=True) if "chrom" in p.name().lower()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--serve", choices=["hub", "dashboard"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.config, args.broker, args.data, args.port)
        return

    print(f"{os.cpu_count()} cores; Mosquitto, hub and dashboard as separate processes; "
          f"{args.viewers} viewers = {args.viewers} logged-in browser contexts (own session and SSE stream each) "
          f"in one headless Debian Chromium")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder / "mosquitto").start()
        config = folder / "hall.toml"
        config.write_text(DASHBOARD_HALL, "utf-8")
        hall = parse_config(DASHBOARD_HALL)
        data = folder / "data"
        port = free_port()
        hub = spawn("hub", config, broker, data, port, folder / "hub.log")
        deadline = time.monotonic() + 20
        while read_hall(broker.address, hall.hall.id, 0.5).hub is None and time.monotonic() < deadline:
            time.sleep(0.2)
        dashboard = spawn("dashboard", config, broker, data, port, folder / "dashboard.log")
        url = f"http://127.0.0.1:{port}/"
        while time.monotonic() < deadline + 20:
            try:
                if httpx.get(url + "health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        try:
            run(args, broker, hall.hall.id, url, hub, dashboard)
        finally:
            for child in (dashboard, hub):
                child.terminate()
                child.wait(10)
            broker.stop()


def run(args: argparse.Namespace, broker: Mosquitto, hall_id: str, url: str, hub: subprocess.Popen[bytes],
        dashboard: subprocess.Popen[bytes]) -> None:
    with sync_playwright() as playwright, HallClient(broker.address, hall_id, "kiosk-1") as kiosk, \
            HallClient(broker.address, hall_id, "console") as counter:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        pages = [open_viewer(browser, url) for _ in range(args.viewers)]
        for _ in range(args.calls + 5):
            kiosk.request(TakeTicket(service_id="social"))
        time.sleep(1)
        latencies: list[float] = []
        hub_process, dash_process = psutil.Process(hub.pid), psutil.Process(dashboard.pid)
        chromium = chromium_processes(psutil.Process())
        hub_cpu, dash_cpu, chrome_cpu = cpu_seconds([hub_process]), cpu_seconds([dash_process]), cpu_seconds(chromium)
        started = time.monotonic()
        for _ in range(args.calls):
            sent = time.time() * 1000
            reply = counter.request(CallNext(window=1))
            number = reply.outcome.ticket.number
            deadline = time.monotonic() + 5
            seen: list[float | None] = [None] * len(pages)
            while None in seen and time.monotonic() < deadline:
                for i, page in enumerate(pages):
                    if seen[i] is None:
                        seen[i] = page.evaluate("n => window.__seen[n] ?? null", number)
                time.sleep(0.02)
            latencies += [(s - sent) for s in seen if s is not None]
            missed = seen.count(None)
            if missed:
                print(f"  {number}: {missed} viewers did not show it within 5 s")
            counter.request(Complete(window=1))
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        hub_cpu = cpu_seconds([hub_process]) - hub_cpu
        dash_cpu = cpu_seconds([dash_process]) - dash_cpu
        chrome_cpu = cpu_seconds(chromium) - chrome_cpu
        browser.close()
    print(f"call → board shown, {len(latencies)} samples ({args.calls} calls × {args.viewers} viewers): "
          f"p50 {percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms, "
          f"max {max(latencies):.0f} ms")
    print(f"CPU over {elapsed:.1f} s of calls with {args.viewers} viewers open (100% = one core): "
          f"hub {hub_cpu / elapsed * 100:.1f}%, dashboard {dash_cpu / elapsed * 100:.1f}%, "
          f"Chromium (all {args.viewers} tabs) {chrome_cpu / elapsed * 100:.1f}%")


if __name__ == "__main__":
    main()
