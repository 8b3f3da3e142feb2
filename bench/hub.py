"""Benchmark of the hub (issue 3): prints, in one run,

1. the raw request/reply round trip paho → Mosquitto → paho echo client → Mosquitto → paho
   (the floor: the same two hops a ticket request makes, with nothing done in between);
2. the take-a-ticket round trip through the hub (p50, p99), one request at a time;
3. the sustained rate of tickets the hub issues and persists, with requests kept in flight
   as fast as the hub answers (the hub commits bursts together: group commit).

Both hub figures are measured with SQLite synchronous=full (the default: survives a power
cut; every commit waits for the disk) and synchronous=normal (survives a killed process).

Goals: take-a-ticket p99 within 3x the raw round trip; at least 2,000 tickets/s sustained.
Run: .venv/bin/python bench/hub.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from broker.client import HallClient, read_hall  # noqa: E402
from broker.contract import CommandReply, CommandRequest, Topics  # noqa: E402
from broker.mqtt import make_client  # noqa: E402
from hallkit.queue.models import TakeTicket  # noqa: E402
from tests.broker.test_hub import HALL_WITH_DEVICES  # noqa: E402
from tests.brokers import Mosquitto  # noqa: E402

ROUND_TRIPS = 2000
SUSTAINED = 20_000
MOSQUITTO_NOTE = "with the project's config (hall broker config limits)"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def raw_round_trip(broker: Mosquitto) -> list[float]:
    echo = make_client(broker.address, "echo")
    echo.on_message = lambda c, u, m: c.publish("bench/pong", m.payload, qos=1)
    echo.connect(broker.address.host, broker.port)
    echo.loop_start()
    echo.subscribe("bench/ping", qos=1)
    got = threading.Event()
    asker = make_client(broker.address, "asker")
    asker.on_message = lambda c, u, m: got.set()
    asker.connect(broker.address.host, broker.port)
    asker.loop_start()
    asker.subscribe("bench/pong", qos=1)
    time.sleep(0.5)
    payload = CommandRequest(device="kiosk-1", reply_to="x", command=TakeTicket(service_id="social")).model_dump_json()
    times = []
    for _ in range(ROUND_TRIPS):
        got.clear()
        start = time.perf_counter()
        asker.publish("bench/ping", payload, qos=1)
        got.wait(5)
        times.append(time.perf_counter() - start)
    echo.loop_stop()
    asker.loop_stop()
    return times


def ticket_round_trip(broker: Mosquitto) -> list[float]:
    times = []
    with HallClient(broker.address, "test-hall", "kiosk-1") as kiosk:
        for i in range(ROUND_TRIPS):
            start = time.perf_counter()
            reply = kiosk.request(TakeTicket(service_id=("social", "pension", "permit")[i % 3]))
            times.append(time.perf_counter() - start)
            assert reply.ok
    return times


def sustained(broker: Mosquitto) -> float:
    topics = Topics("test-hall")
    done = threading.Event()
    received = 0
    lock = threading.Lock()
    window = threading.Semaphore(200)  # requests in flight per kiosk, like a busy kiosk fleet

    def on_reply(_c, _u, message) -> None:
        nonlocal received
        CommandReply.model_validate_json(message.payload)
        window.release()
        with lock:
            received += 1
            if received == SUSTAINED:
                done.set()

    client = make_client(broker.address, "flood")
    client.message_callback_add(topics.reply("kiosk-1"), on_reply)
    client.connect(broker.address.host, broker.port)
    client.loop_start()
    client.subscribe(topics.reply("kiosk-1"), qos=1)
    time.sleep(0.5)
    requests = [CommandRequest(device="kiosk-1", reply_to=topics.reply("kiosk-1"),
                               command=TakeTicket(service_id=("social", "pension", "permit")[i % 3]))
                .model_dump_json() for i in range(SUSTAINED)]
    start = time.perf_counter()
    for payload in requests:
        window.acquire()
        client.publish(topics.command("kiosk-1"), payload, qos=1)
    done.wait(300)
    elapsed = time.perf_counter() - start
    client.loop_stop()
    return received / elapsed


def start_hub(folder: Path, broker: Mosquitto, sync: str) -> subprocess.Popen[bytes]:
    config = folder / "hall.toml"
    config.write_text(HALL_WITH_DEVICES, "utf-8")
    hub = subprocess.Popen(
        [sys.executable, "-m", "hallkit.cli", "hub", "--config", str(config), "--broker", broker.url,
         "--data", str(folder / f"data-{sync}"), "--sync", sync],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(folder / f"hub-{sync}.log", "wb"),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 20
    while (read_hall(broker.address, "test-hall", 0.5).hub or None) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    return hub


def main() -> None:
    print(f"{os.cpu_count()} cores; Mosquitto {MOSQUITTO_NOTE}; the hub runs as its own process")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder / "mosquitto").start()
        try:
            raw = raw_round_trip(broker)
            raw_p50, raw_p99 = percentile(raw, 0.5) * 1e3, percentile(raw, 0.99) * 1e3
            print(f"raw round trip paho -> Mosquitto -> echo client -> Mosquitto -> paho ({ROUND_TRIPS}): "
                  f"p50 {raw_p50:.2f} ms, p99 {raw_p99:.2f} ms")
            for sync in ("full", "normal"):
                hub = start_hub(folder, broker, sync)
                try:
                    ticket = ticket_round_trip(broker)
                    rate = sustained(broker)
                finally:
                    hub.terminate()
                    hub.wait(10)
                t_p50, t_p99 = percentile(ticket, 0.5) * 1e3, percentile(ticket, 0.99) * 1e3
                print(f"[synchronous={sync}] take-a-ticket round trip through the hub ({ROUND_TRIPS}): "
                      f"p50 {t_p50:.2f} ms, p99 {t_p99:.2f} ms = {t_p99 / raw_p99:.2f}x the raw p99 "
                      f"(goal: at most 3x) -> {'met' if t_p99 <= 3 * raw_p99 else 'MISSED'}")
                print(f"[synchronous={sync}] sustained tickets issued and persisted: {rate:,.0f}/s over "
                      f"{SUSTAINED:,} tickets (goal: at least 2,000/s) -> {'met' if rate >= 2000 else 'MISSED'}")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
