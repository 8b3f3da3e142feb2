"""The kiosk under load: cold start, memory, frame times while tickets print and cards are read, tap → ticket.

The kiosk runs in its own process (SDL offscreen, software GL) exactly as ``hall kiosk``
does; the broker (Mosquitto), the hub (at its default durability), the virtual printer and
the ID-card simulator run in this process, as separate devices would. A scripted resident
takes tickets back to back (window group → service → confirm → ticket → done), each printed
through the spooler; every ``--card-every``-th resident first lays an elderly resident's
ID card on the reader (elder mode comes on, the ticket has priority).

Printed for each run and over all runs, with the machine's load:
- cold start: process spawn → first frame with the home screen drawn (checked by its pixels:
  the header, the first window tile and the card prompt, each with its text);
- peak memory of the kiosk process (VmHWM);
- frame times while the tickets are taken and printed (goal: none over 100 ms), and where the
  UI thread was during the slow ones;
- tap on "confirm" → ticket number on screen, p50 and p99;
- CPU seconds of the kiosk process (all its threads, Mesa's included) to the first frame and per
  ticket, and the UI thread's CPU per tap → ticket: figures that a loaded machine inflates far
  less than the wall-clock ones, to compare before and after a change;
- hangs: a run whose resident waited 30 s for a step, with the app's state and its threads' stacks.

A frame counts as shown once Mesa has drawn it: the bench waits for the rasterizer (``glFinish``)
when Kivy flips. Under SDL's offscreen driver the window is an EGL pbuffer, whose
``eglSwapBuffers`` does nothing at all, so without that wait llvmpipe keeps the frames it was given
and draws them all at once when a later call needs them (a label's texture updated in place, a
pixel read): every frame looked free and the frame that paid for all of them looked slow. A kiosk's
real window is drawn at each swap.

``--code DIR`` (repeatable) runs the kiosk from other source trees too, run by run in turn with
this tree's, to compare before and after on the same machine at the same time (with the tree's own
``.venv`` when it has one: the editable install maps ``hallkit.<part>`` to its own folders); the
measuring code, the hub and the devices are this tree's.

Run:  .venv/bin/python bench/kiosk.py [--tickets 50] [--runs 1] [--card-every 10] [--code DIR ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SLOW_FRAME = 0.100
STEP_TIMEOUT = 30.0
"""Seconds the scripted resident waits for one step before the run counts as a hang."""
CARD = "elderly"
SERVICE = "城乡居民养老保险参保登记"
"""On the first page of its window's services in elder mode (three a page) too."""


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


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
    if top is not None and top.f_code.co_name == "flipped" and top.f_code.co_filename == __file__:
        return "Mesa rasterizing the frame (glFinish at the flip)"
    return f"{Path(top.f_code.co_filename).parent.name}/{Path(top.f_code.co_filename).name}:{top.f_code.co_name}" \
        if top else "unknown"


def cpu_seconds() -> float:
    """CPU time of this whole process so far (every thread: the UI, Mesa's rasterizers, the workers)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(work: Path, broker_url: str, tickets: int, card_every: int, spawned: float) -> None:
    """The kiosk process: run the app with a scripted resident and write the figures."""
    from hallkit.kiosk import boot

    boot.prepare((1280, 800), "windowed")
    from hallkit.contracts.mqtt import parse_broker_url
    from hallkit.kiosk import theme
    from hallkit.kiosk.app import KioskApp
    from hallkit.kiosk.testing import Scenario, Script, find_text, settled, tap
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.graphics.opengl import GL_RGB, GL_UNSIGNED_BYTE, glFinish, glReadPixels
    from kivy.uix.widget import Widget

    from hallkit.config import load_config

    def on(name: str) -> Callable[[], bool]:
        def check() -> bool:
            return app.current == name
        check.__doc__ = f"screen {name} (now {app.current!r}, ticket {len(latencies) + 1})"
        return check

    def device(command: str) -> None:
        """Asks the bench's process to act on a device (the card simulator lives there)."""
        print(command, flush=True)

    figures: dict[str, Any] = {}
    config_path = work / "hall.toml"
    app = KioskApp(load_config(config_path), config_path, parse_broker_url(broker_url), "kiosk-1")

    def drawn(widget: Widget, background: tuple[float, ...], ink: tuple[float, ...]) -> bool:
        """The widget's pixels show its background and some of its text."""
        x, y = (max(0, int(v)) for v in widget.to_window(widget.x, widget.y))
        width, height = max(1, min(int(widget.width), Window.width - x)), max(1, min(int(widget.height), Window.height - y))
        block = glReadPixels(x, y, width, height, GL_RGB, GL_UNSIGNED_BYTE)
        pixels = {block[i:i + 3] for i in range(0, len(block), 3)}

        def seen(colour: tuple[float, ...]) -> bool:
            want = [round(c * 255) for c in colour[:3]]
            return any(all(abs(p - w) <= 6 for p, w in zip(pixel, want, strict=True)) for pixel in pixels)
        return seen(background) and seen(ink)

    def home_drawn() -> bool:
        """The frame about to be shown has the home screen: header, first tile and card prompt, with text."""
        if app.current != "home":
            return False
        home = app.manager.get_screen("home")
        tiles = home.ids.groups.children
        return bool(tiles) and drawn(home.ids.hall_name, theme.HEADER, theme.ON_DARK) \
            and drawn(tiles[-1], theme.PRIMARY, theme.ON_DARK) \
            and drawn(home.ids.card_banner, theme.PRIMARY, theme.ON_DARK)

    shown: list[float] = []
    shown_cpu: list[float] = []
    tapped_cpu = [0.0]
    draws = [0]
    """Frames drawn (a tick with nothing changed draws nothing)."""

    def flipped(*_: object) -> None:
        # The frame is shown when it is drawn: wait for the rasterizer, as a window's swap does (an
        # offscreen pbuffer's swap does not, see the module's docstring).
        glFinish()
        draws[0] += 1
        # Before the buffers are swapped: the back buffer holds the frame about to be shown.
        if "first_frame" not in figures and home_drawn():
            figures["first_frame"] = time.time() - spawned
            figures["first_frame_cpu"] = cpu_seconds()
        # The ticket is on screen at the first flip after the ticket screen became current.
        if app.current == "ticket" and app.ticket_flow.tapped_at is not None and len(shown) < len(latencies) + 1:
            shown.append(time.monotonic() - app.ticket_flow.tapped_at)
            shown_cpu.append(time.thread_time() - tapped_cpu[0])

    Window.bind(on_flip=flipped)
    answered: list[float] = []

    def switched(_manager: object, name: str) -> None:
        # The hub's answer reached the UI thread and the ticket screen became current (not yet drawn).
        if name == "ticket" and app.ticket_flow.tapped_at is not None:
            answered.append(time.monotonic() - app.ticket_flow.tapped_at)
    stalls: dict[str, int] = {}
    watching = threading.Event()

    def watch(ui_thread: int, last_frame: Callable[[], float]) -> None:
        """Where the UI thread is when a frame runs over 100 ms: device I/O, or drawing?"""
        sampled = 0.0
        while watching.is_set():
            time.sleep(0.02)
            started = last_frame()
            if time.perf_counter() - started < SLOW_FRAME or started == sampled:
                continue
            sampled = started
            where = where_stalled(sys._current_frames().get(ui_thread))
            stalls[where] = stalls.get(where, 0) + 1
    frames: list[float] = []
    latencies: list[float] = []
    latencies_cpu: list[float] = []

    def scenario() -> Scenario:
        yield lambda: "first_frame" in figures
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
        watching.set()
        threading.Thread(target=watch, args=(threading.get_ident(), lambda: last), daemon=True).start()
        loop_cpu = cpu_seconds()
        loop_draws = draws[0]
        cards = 0
        for number in range(1, tickets + 1):
            if card_every and number % card_every == 0:
                device(f"place {CARD}")
                yield lambda: app.resident is not None
                device("remove")  # the resident takes the card back; the visit keeps its record
                cards += 1
                yield settled(app.root)
            tap(find_text(app.manager.get_screen("home").ids.groups, "劳动保障"))
            yield on("services")
            yield settled(app.root)
            tap(find_text(app.manager.get_screen("services"), SERVICE))
            yield on("confirm")
            yield settled(app.root)
            tapped_cpu[0] = time.thread_time()
            tap(app.manager.get_screen("confirm").ids.take)
            yield on("ticket")
            yield lambda: len(shown) > len(latencies)
            latencies.append(shown[-1])
            latencies_cpu.append(shown_cpu[-1])
            yield settled(app.root)
            tap(app.manager.get_screen("ticket").ids.done)
            yield on("home")
            yield settled(app.root)  # the rebuilt home screen laid out, as a resident's next tap would find it
        yield lambda: app.devices.spooler is not None and not app.devices.spooler.pending()
        ticker.cancel()
        watching.clear()
        figures["cpu_per_ticket"] = (cpu_seconds() - loop_cpu) / tickets
        figures["draws_per_ticket"] = (draws[0] - loop_draws) / tickets
        figures["cards"] = cards

    def diagnose() -> str:
        """Why the resident waits: the kiosk's state and where each of its threads is."""
        retry = app.ticket_flow.retry
        lines = [f"kiosk: screen {app.current!r}, busy {app.busy}, busy_shown {app.busy_shown}, "
                 f"hub_online {app.hub_online}, hub attempts {app.hub_attempts}, "
                 f"request pending {retry.pending.request_id if retry.pending else None}, "
                 f"resident {app.resident is not None}, appointments {app.appointment_lookup}, "
                 f"idle warning {app.idle_left}"]
        if app.manager.has_screen("confirm"):
            take = app.manager.get_screen("confirm").ids.take
            lines.append(f"confirm's take button: disabled {take.disabled}, text {take.text!r}, "
                         f"at {take.to_window(*take.pos)} size {tuple(take.size)}")
        for thread in threading.enumerate():
            frame = sys._current_frames().get(thread.ident or 0)
            if frame is not None:
                lines.append(f"--- thread {thread.name}\n" + "".join(traceback.format_stack(frame)[-8:]))
        return "\n".join(lines)

    script = Script(app, scenario(), step_timeout=STEP_TIMEOUT, diagnose=diagnose).start()
    Clock.schedule_once(lambda _dt: app.manager.bind(current=switched), 0)
    app.run()
    with open("/proc/self/status") as status:
        figures["peak_kb"] = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    figures.update(error=script.error, hang=script.timed_out, latencies=latencies, latencies_cpu=latencies_cpu,
                   answered=answered,
                   frames=frames[1:], stalls=stalls)
    (work / "figures.json").write_text(json.dumps(figures))


def python_of(code: Path) -> Path:
    """The interpreter that runs the kiosk from ``code``: the tree's own virtual environment if it has
    one. ``PYTHONPATH`` alone is not enough: the editable install maps every ``hallkit.<part>`` to
    this tree's folders, whatever comes first on the path."""
    own = code / ".venv" / "bin" / "python"
    return own if own.exists() else Path(sys.executable)


def run_once(code: Path, tickets: int, card_every: int) -> tuple[dict[str, Any], int]:
    """One kiosk process (from the tree ``code``) against a fresh broker, hub and devices: its figures
    and the tickets printed."""
    from hallkit.broker.hub import Hub
    from hallkit.broker.parts import hub_parts
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
        config = load_config(config_path)
        # As `hall hub` runs it: the default durability, with its parts (appointment look-ups for cards).
        hub = Hub(config, broker.address, work / "hub", parts=hub_parts(config))
        hub.start()
        env = dict(os.environ)
        env.pop("DISPLAY", None)
        env.update(SDL_VIDEODRIVER="offscreen", KIVY_HOME=str(work / "kivy"), KIVY_USE_DEFAULTCONFIG="1",
                   PYTHONPATH=str(code))
        try:
            spawned = time.time()
            kiosk = subprocess.Popen([str(python_of(code)), __file__, "--tickets", str(tickets), "--card-every",
                                      str(card_every), "--child", str(work), broker.url, repr(spawned)],
                                     env=env, stdout=subprocess.PIPE, text=True)
            assert kiosk.stdout is not None
            for line in kiosk.stdout:  # the scripted resident's hands on the card reader
                match line.split():
                    case ["place", card]:
                        idcard.place(card)
                    case ["remove"]:
                        idcard.remove()
                    case _:
                        print(line, end="")
            if kiosk.wait(timeout=600) != 0:
                raise SystemExit(f"the kiosk process failed (exit {kiosk.returncode})")
            figures = json.loads((work / "figures.json").read_text())
            printed = len(printer.wait_for_tickets(len(figures["latencies"]), 30))
        finally:
            hub.stop()
            printer.stop()
            idcard.stop()
            broker.stop()
    return figures, printed


def summary(frames_ms: list[float], latency_ms: list[float]) -> Iterator[str]:
    slow = sum(1 for f in frames_ms if f > SLOW_FRAME * 1000)
    yield (f"frame time over {len(frames_ms)} frames: p50 {statistics.median(frames_ms):.1f} ms  "
           f"p99 {percentile(frames_ms, 0.99):.1f} ms  max {max(frames_ms):.1f} ms  "
           f"frames > {SLOW_FRAME * 1000:.0f} ms: {slow}")
    yield (f"tap -> ticket on screen: p50 {statistics.median(latency_ms):.1f} ms  "
           f"p99 {percentile(latency_ms, 0.99):.1f} ms  max {max(latency_ms):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=50, help="tickets taken in each run")
    parser.add_argument("--runs", type=int, default=1, help="kiosk processes run one after the other (for each tree)")
    parser.add_argument("--card-every", type=int, default=10, help="every n-th resident lays an ID card (0: none)")
    parser.add_argument("--code", type=Path, action="append", default=[], metavar="DIR",
                        help="another source tree whose kiosk runs too, in turn with this tree's")
    parser.add_argument("--child", nargs=3, metavar=("WORK", "BROKER", "SPAWNED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], args.tickets, args.card_every, float(args.child[2]))
        return

    codes = [ROOT, *(code.resolve() for code in args.code)]
    print(f"kiosk bench: {args.runs} run(s) of {args.tickets} tickets taken by taps and printed, an elderly "
          f"resident's card every {args.card_every}; SDL offscreen, software GL; {load()}")
    runs: dict[Path, list[dict[str, Any]]] = {code: [] for code in codes}
    hangs = dict.fromkeys(codes, 0)
    for run in range(1, args.runs + 1):
        for code in codes:
            before = load()
            figures, printed = run_once(code, args.tickets, args.card_every)
            runs[code].append(figures)
            name = f"run {run}" + (f" of {code}" if len(codes) > 1 else "")
            frames_ms = [f * 1000 for f in figures["frames"]]
            latency_ms = [t * 1000 for t in figures["latencies"]]
            if figures["error"]:
                hangs[code] += figures["hang"]
                print(f"{name}: {'HANG' if figures['hang'] else 'FAILED'} after {len(latency_ms)} tickets "
                      f"({before}):\n{figures['error']}")
                continue
            stalls = ", ".join(f"{where} {count}" for where, count in sorted(figures["stalls"].items(),
                                                                            key=lambda kv: -kv[1]))
            print(f"{name} ({before}): {len(latency_ms)} tickets ({printed} printed), {figures['cards']} cards; "
                  f"first frame {figures['first_frame']:.2f} s ({figures['first_frame_cpu']:.2f} s CPU); "
                  f"peak memory {figures['peak_kb'] / 1024:.0f} MB; CPU {figures['cpu_per_ticket'] * 1000:.0f} ms and "
                  f"{figures['draws_per_ticket']:.1f} frames drawn a ticket; "
                  f"UI thread CPU tap -> ticket p50 {statistics.median(figures['latencies_cpu']) * 1000:.0f} ms; "
                  f"tap -> hub's answer on the UI thread p50 {statistics.median(figures['answered']) * 1000:.0f} ms")
            for line in summary(frames_ms, latency_ms):
                print(f"  {line}")
            print(f"  where the UI thread was in frames > {SLOW_FRAME * 1000:.0f} ms: {stalls or 'none'}")
    failed = False
    for code in codes:
        done = [f for f in runs[code] if not f["error"]]
        if (args.runs > 1 or len(codes) > 1) and done:
            print(f"over {len(done)} completed run(s){f' of {code}' if len(codes) > 1 else ''} ({load()}):")
            print(f"  first frame p50 {statistics.median(f['first_frame'] for f in done):.2f} s, "
                  f"max {max(f['first_frame'] for f in done):.2f} s; "
                  f"peak memory max {max(f['peak_kb'] for f in done) / 1024:.0f} MB; "
                  f"CPU a ticket p50 {statistics.median(f['cpu_per_ticket'] for f in done) * 1000:.0f} ms")
            for line in summary([t * 1000 for f in done for t in f["frames"]],
                                [t * 1000 for f in done for t in f["latencies"]]):
                print(f"  {line}")
        print(f"hangs{f' of {code}' if len(codes) > 1 else ''}: {hangs[code]} of {args.runs} runs; "
              f"other failures: {len(runs[code]) - len(done) - hangs[code]}")
        failed = failed or len(done) < len(runs[code])
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
