"""Phone page bench: 500 phones follow their tickets over SSE; how fast a call reaches every one.

Mosquitto, the hub and ``hall web`` each run as their own process, as on a hall PC. The kiosk
takes 500 tickets of one service; 500 phones (asyncio connections in this process, each its own
SSE stream of its own ticket's page, like a phone's EventSource) open ``/t/<token>/stream``. Then a
counter completes and calls the next ticket, again and again: every call moves each waiting phone
one place up, so every phone must hear of it. The latency of a phone is the moment its stream
delivers the page reflecting the call less the moment the counter sent the call (one machine, one
clock). Goal (issue 18): p99 under 1 s. Then the CPU and memory of the hub, the page and Mosquitto.

    .venv/bin/python bench/web.py [--phones 500] [--calls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from hallkit.broker.client import HallClient
from hallkit.broker.testing import Mosquitto
from hallkit.contracts.mqtt import parse_broker_url

from hallkit.config import parse_config
from hallkit.queue.models import CallNext, Complete, TakeTicket
from hallkit.testing import WEB_HALL, free_port

ROOT = Path(__file__).resolve().parents[1]


GOAL_P99 = 1.0


def serve(role: str, config_path: Path, broker: str, data: Path, port: int) -> None:
    """Run the hub or the phone page in this process until killed (the bench's child processes)."""
    from hallkit.broker.hub import Hub
    from hallkit.broker.parts import hub_parts
    from hallkit.web.server import WebServer

    config = parse_config(config_path.read_text("utf-8"))
    address = parse_broker_url(broker)
    if role == "hub":
        Hub(config, address, data, "normal", parts=hub_parts(config)).start()
        while True:
            time.sleep(3600)
    WebServer(config, address, data, host="127.0.0.1", port=port).run()


def spawn(role: str, config: Path, broker: Mosquitto, data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--serve", role, "--config", str(config), "--broker", broker.url,
                             "--data", str(data), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclass
class Phone:
    token: str
    views: list[tuple[float, dict[str, object]]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def seen_since(self, moment: float, moved: int, initial_ahead: int) -> float | None:
        """When this phone first showed the page after the call that moved it ``moved`` places."""
        for at, view in self.views:
            if at < moment:
                continue
            if view.get("stage") != "waiting" or int(view.get("ahead", 0)) <= initial_ahead - moved:  # type: ignore[arg-type]
                return at
        return None


async def follow(phone: Phone, host: str, port: int, stop: asyncio.Event) -> None:
    """A phone's EventSource: one HTTP/1.1 connection reading ``data:`` lines of its stream."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /t/{phone.token}/stream HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
                 .encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"stream of {phone.token}: {status!r}")
    phone.connected.set()
    while not stop.is_set():
        line = await reader.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            phone.views.append((time.monotonic(), json.loads(line[6:])))
    writer.close()


async def run_phones(phones: list[Phone], host: str, port: int, counter: HallClient, calls: int) -> list[float]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(follow(p, host, port, stop)) for p in phones]
    await asyncio.wait_for(asyncio.gather(*(p.connected.wait() for p in phones)), 60)
    await asyncio.sleep(1.0)
    initial = {p.token: int(p.views[-1][1]["ahead"]) for p in phones}  # type: ignore[arg-type]
    latencies: list[float] = []
    for moved in range(1, calls + 1):
        if moved > 1:
            await asyncio.to_thread(counter.request, Complete(window=1))
            await asyncio.sleep(0.3)
        sent = time.monotonic()
        reply = await asyncio.to_thread(counter.request, CallNext(window=1))
        assert reply.ok, reply.refusal
        waiting = [p for p in phones if initial[p.token] >= moved]
        deadline = time.monotonic() + 10
        while True:
            seen = [p.seen_since(sent, moved, initial[p.token]) for p in waiting]
            if all(s is not None for s in seen) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        missing = sum(s is None for s in seen)
        if missing:
            print(f"call {moved}: {missing} of {len(waiting)} phones did not hear of it within 10 s")
        latencies.extend(s - sent for s in seen if s is not None)
        latencies.extend([10.0] * missing)
        await asyncio.sleep(0.5)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phones", type=int, default=500)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--serve", choices=["hub", "web"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.config, args.broker, args.data, args.port)
        return 0
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="hallkit-bench-web-"))
    port = free_port()
    # One address opens every stream here; a hall's phones each have their own.
    text = WEB_HALL.format(public_url=f"http://127.0.0.1:{port}", rating="",
                           web=f"requests_per_minute_per_address = {args.phones * 4}")
    config_path = work / "hall.toml"
    config_path.write_text(text, "utf-8")
    config = parse_config(text)
    broker = Mosquitto(work / "mosquitto").start()
    hub = spawn("hub", config_path, broker, work / "data", 0, work / "hub.log")
    web = None
    try:
        with HallClient(broker.address, config.hall.id, "kiosk-1") as kiosk:
            deadline = time.monotonic() + 30
            while True:  # the hub is up when it answers
                try:
                    first = kiosk.request(TakeTicket(service_id="social"), timeout=2)
                    break
                except Exception:  # noqa: BLE001 - not yet
                    if time.monotonic() > deadline:
                        raise
            tokens = [first.outcome.ticket.public_id]  # type: ignore[union-attr]
            for _ in range(args.phones - 1):
                reply = kiosk.request(TakeTicket(service_id="social"))
                tokens.append(reply.outcome.ticket.public_id)  # type: ignore[union-attr]
        web = spawn("web", config_path, broker, work / "data", port, work / "web.log")
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()["mqtt"]:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the phone page did not start; see " + str(work / "web.log"))
            time.sleep(0.2)
        processes = {"hub": psutil.Process(hub.pid), "web": psutil.Process(web.pid),
                     "mosquitto": psutil.Process(broker.process.pid)}
        cpu_before = {k: sum(p.cpu_times()[:2]) for k, p in processes.items()}
        started = time.monotonic()
        phones = [Phone(token) for token in tokens]
        with HallClient(broker.address, config.hall.id, "console") as counter:
            latencies = asyncio.run(run_phones(phones, "127.0.0.1", port, counter, args.calls))
        elapsed = time.monotonic() - started
        cpu = {k: (sum(p.cpu_times()[:2]) - cpu_before[k]) / elapsed * 100 for k, p in processes.items()}
        rss = {k: p.memory_info().rss / 2**20 for k, p in processes.items()}
        p50, p99, worst = percentile(latencies, 50), percentile(latencies, 99), max(latencies)
        print(f"call → phone page, {len(latencies)} samples ({args.calls} calls × up to {args.phones} phones over SSE): "
              f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms "
              f"(goal p99 < {GOAL_P99 * 1000:.0f} ms: {'met' if p99 < GOAL_P99 else 'NOT met'})")
        print(f"CPU over {elapsed:.1f} s with {args.phones} phones open (100% = one core): "
              + ", ".join(f"{k} {v:.1f}%" for k, v in cpu.items()))
        print("memory (RSS): " + ", ".join(f"{k} {v:.0f} MiB" for k, v in rss.items()))
        print(f"machine: {os.cpu_count()} cores, load average before {load_before[0]:.2f}, "
              f"after {os.getloadavg()[0]:.2f} (other work on the machine shares these cores)")
        return 0 if p99 < GOAL_P99 else 1
    finally:
        for child in (web, hub):
            if child is not None:
                child.terminate()
                child.wait(timeout=10)
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
