"""The kiosk under load: cold start, memory, frame times while tickets print, tap → ticket latency.

The kiosk runs in its own process (SDL offscreen, software GL) exactly as ``hall kiosk``
does; the broker (Mosquitto), the hub, the virtual printer and the ID-card simulator run
in this process, as separate devices would. A scripted resident takes tickets back to back
(window group → service → confirm → ticket → done), each printed through the spooler.

Printed:
- cold start: process spawn → first frame on screen;
- peak memory of the kiosk process (VmHWM);
- frame times while the tickets are taken and printed (goal: no frame over 100 ms, which
  would mean device or network I/O on the UI thread);
- tap on "confirm" → ticket number on screen, p50 and p99.

Run:  .venv/bin/python bench/kiosk.py [--tickets 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]

SLOW_FRAME = 0.100


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


IO_CODE = ("/socket.py", "/serial/", "/paho/", "/devices/", "/kiosk/hub.py", "/kiosk/devices.py", "/broker/",
           "/ssl.py", "/selectors.py", "/subprocess.py")
"""Code that talks to devices or the network: a stall inside it would be device I/O on the UI thread."""


def where_stalled(frame: FrameType | None) -> str:
    stack = []
    while frame is not None:
        stack.append(frame)
        frame = frame.f_back
    if any(any(part in f.f_code.co_filename for part in IO_CODE) for f in stack):
        return "device or network I/O"
    top = stack[0] if stack else None
    return f"{Path(top.f_code.co_filename).parent.name}/{Path(top.f_code.co_filename).name}:{top.f_code.co_name}" \
        if top else "unknown"


def child(work: Path, broker_url: str, tickets: int, spawned: float) -> None:
    """The kiosk process: run the app with a scripted resident and write the figures."""
    from hallkit.kiosk import boot

    boot.prepare((1280, 800), "windowed")
    from hallkit.contracts.mqtt import parse_broker_url
    from hallkit.kiosk.app import KioskApp
    from hallkit.kiosk.testing import Scenario, Script, find_text, settled, tap
    from kivy.clock import Clock
    from kivy.core.window import Window

    from hallkit.config import load_config

    def on(name: str):
        def check() -> bool:
            return app.current == name
        check.__doc__ = f"screen {name} (now {app.current!r}, ticket {len(latencies) + 1})"
        return check

    figures: dict[str, object] = {}
    config_path = work / "hall.toml"
    app = KioskApp(load_config(config_path), config_path, parse_broker_url(broker_url), "kiosk-1")

    shown: list[float] = []

    def flipped(*_: object) -> None:
        if "first_frame" not in figures:
            figures["first_frame"] = time.time() - spawned
        # The ticket is on screen at the first flip after the ticket screen became current.
        if app.current == "ticket" and app.ticket_flow.tapped_at is not None and len(shown) < len(latencies) + 1:
            shown.append(time.monotonic() - app.ticket_flow.tapped_at)

    Window.bind(on_flip=flipped)
    stalls: dict[str, object] = {}

    def watch(ui_thread: int, last_frame: Callable[[], float]) -> None:
        """Where the UI thread is when a frame runs over 100 ms: device I/O, or drawing?"""
        sampled = 0.0
        while not stalls.get("done"):
            time.sleep(0.02)
            started = last_frame()
            if time.perf_counter() - started < SLOW_FRAME or started == sampled:
                continue
            sampled = started
            frame = sys._current_frames().get(ui_thread)
            where = where_stalled(frame)
            stalls[where] = int(stalls.get(where, 0)) + 1  # type: ignore[call-overload]
    frames: list[float] = []
    latencies: list[float] = []

    def scenario() -> Scenario:
        yield lambda: app.current == "home" and app.hub_online and app.devices.spooler is not None
        yield settled(app.root)
        last = time.perf_counter()

        def frame(_dt: float) -> None:
            nonlocal last
            now = time.perf_counter()
            frames.append(now - last)
            last = now

        # Called every frame: Kivy then draws continuously, so a stall shows as a long frame.
        ticker = Clock.schedule_interval(frame, 0)
        watchdog = threading.Thread(target=watch, args=(threading.get_ident(), lambda: last), daemon=True)
        watchdog.start()
        for _ in range(tickets):
            tap(find_text(app.manager.get_screen("home").ids.groups, "劳动保障"))
            yield on("services")
            yield settled(app.root)
            tap(find_text(app.manager.get_screen("services"), "失业登记"))
            yield on("confirm")
            yield settled(app.root)
            tap(app.manager.get_screen("confirm").ids.take)
            yield on("ticket")
            yield lambda: len(shown) > len(latencies)
            latencies.append(shown[-1])
            yield settled(app.root)
            tap(app.manager.get_screen("ticket").ids.done)
            yield on("home")
            yield settled(app.root)  # the rebuilt home screen laid out, as a resident's next tap would find it
        yield lambda: app.devices.spooler is not None and not app.devices.spooler.pending()
        ticker.cancel()
        stalls["done"] = True
        figures["latencies"] = latencies
        figures["stalls"] = {k: v for k, v in stalls.items() if k != "done"}
        figures["frames"] = frames[1:]

    script = Script(app, scenario(), step_timeout=30).start()
    app.run()
    with open("/proc/self/status") as status:
        figures["peak_kb"] = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    figures["error"] = script.error
    (work / "figures.json").write_text(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=50)
    parser.add_argument("--child", nargs=3, metavar=("WORK", "BROKER", "SPAWNED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], args.tickets, float(args.child[2]))
        return

    from hallkit.broker.hub import Hub
    from hallkit.broker.testing import Mosquitto
    from hallkit.devices.idcard.simulator import IdCardSimulator
    from hallkit.devices.printer.simulator import PrinterSimulator

    from hallkit.config import load_config
    from hallkit.testing import write_kiosk_config

    with tempfile.TemporaryDirectory(prefix="bench-kiosk-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        printer = PrinterSimulator().start()  # tickets kept in memory: drawing PNGs is not the kiosk's cost
        idcard = IdCardSimulator()
        idcard.start()
        config_path = write_kiosk_config(work, printer.url, idcard.port)
        hub = Hub(load_config(config_path), broker.address, work / "hub", synchronous="normal")
        hub.start()
        env = dict(os.environ)
        env.pop("DISPLAY", None)
        env.update(SDL_VIDEODRIVER="offscreen", KIVY_HOME=str(work / "kivy"), KIVY_USE_DEFAULTCONFIG="1",
                   PYTHONPATH=str(ROOT))
        try:
            spawned = time.time()
            subprocess.run([sys.executable, __file__, "--tickets", str(args.tickets), "--child", str(work),
                            broker.url, repr(spawned)], env=env, check=True, timeout=600)
            figures = json.loads((work / "figures.json").read_text())
            printed = len(printer.wait_for_tickets(args.tickets, 30))
        finally:
            hub.stop()
            printer.stop()
            idcard.stop()
            broker.stop()

    if figures["error"]:
        raise SystemExit(f"scenario failed: {figures['error']}")
    frames_ms = [f * 1000 for f in figures["frames"]]
    latency_ms = [t * 1000 for t in figures["latencies"]]
    slow = sum(1 for f in figures["frames"] if f > SLOW_FRAME)
    print(f"kiosk bench: {args.tickets} tickets taken by taps and printed ({printed} reached the virtual printer); "
          "SDL offscreen, software GL")
    print(f"cold start (spawn -> first frame)   {figures['first_frame']:.2f} s")
    print(f"peak memory (VmHWM)                 {figures['peak_kb'] / 1024:.0f} MB")
    print(f"frame time over {len(frames_ms)} frames         p50 {statistics.median(frames_ms):.1f} ms   "
          f"p99 {percentile(frames_ms, 0.99):.1f} ms   max {max(frames_ms):.1f} ms   "
          f"frames > {SLOW_FRAME * 1000:.0f} ms: {slow}")
    stalls = ", ".join(f"{where} {count}" for where, count in sorted(figures["stalls"].items(), key=lambda kv: -kv[1]))
    print(f"where the UI thread was in frames > {SLOW_FRAME * 1000:.0f} ms: {stalls or 'none'}")
    print(f"tap -> ticket on screen             p50 {statistics.median(latency_ms):.1f} ms   "
          f"p99 {percentile(latency_ms, 0.99):.1f} ms   max {max(latency_ms):.1f} ms")


if __name__ == "__main__":
    main()
