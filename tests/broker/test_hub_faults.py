"""The hub under faults: killed with SIGKILL mid-burst, a broker restart mid-burst, hostile payloads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import paho.mqtt.client as mqtt
from hallkit.broker.client import read_hall
from hallkit.broker.hub import Hub
from hallkit.contracts.hall import CommandReply, CommandRequest, Topics
from hallkit.contracts.mqtt import make_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hallkit.config import parse_config
from hallkit.queue.models import TakeTicket
from hallkit.store.sqlite import EventStore
from hallkit.testing import HALL_WITH_DEVICES, write_hall_config
from tests.broker.test_hub import wait_for

ROOT = Path(__file__).parents[2]
TOPICS = Topics("test-hall")


class Burst:
    """A kiosk that fires take-ticket requests without waiting, and collects every reply."""

    def __init__(self, mosquitto, count: int) -> None:
        self.commands = [TakeTicket(service_id=("social", "pension", "permit")[i % 3], request_id=f"req-{i}")
                         for i in range(count)]
        self.replies: dict[str, list[CommandReply]] = defaultdict(list)
        self.lock = threading.Lock()
        self.client = make_client(mosquitto.address, "burst-kiosk", clean_session=False)
        self.client.message_callback_add(TOPICS.reply("kiosk-1"), self._on_reply)
        self.client.on_connect = lambda c, *_: c.subscribe(TOPICS.reply("kiosk-1"), qos=1)
        self.client.connect(mosquitto.address.host, mosquitto.address.port)
        self.client.loop_start()
        time.sleep(0.3)

    def _on_reply(self, _c, _u, message: mqtt.MQTTMessage) -> None:
        reply = CommandReply.model_validate_json(message.payload)
        with self.lock:
            self.replies[reply.request_id].append(reply)

    def send(self, command: TakeTicket) -> None:
        request = CommandRequest(device="kiosk-1", reply_to=TOPICS.reply("kiosk-1"), command=command)
        self.client.publish(TOPICS.command("kiosk-1"), request.model_dump_json(), qos=1)

    def answered(self) -> int:
        with self.lock:
            return len(self.replies)

    def retry_unanswered(self) -> None:
        for command in self.commands:
            if command.request_id not in self.replies:
                self.send(command)

    def check(self) -> None:
        """Every request answered, every answer for one request the same, numbers unique and gapless."""
        assert {c.request_id for c in self.commands} == set(self.replies)
        numbers: dict[str, str] = {}
        for request_id, replies in self.replies.items():
            assert all(r.ok for r in replies), replies[0].refusal
            assert len({r.outcome.ticket.ticket_id for r in replies}) == 1, "a repeat got another ticket"
            numbers[request_id] = replies[0].outcome.ticket.number
        assert len(set(numbers.values())) == len(self.commands)
        by_prefix = defaultdict(list)
        for number in numbers.values():
            by_prefix[number[0]].append(int(number[1:]))
        for seqs in by_prefix.values():
            assert sorted(seqs) == list(range(1, len(seqs) + 1))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def start_hub_process(config: Path, mosquitto, data: Path) -> subprocess.Popen[bytes]:
    with open(data.parent / "hub.log", "ab") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            [sys.executable, "-m", "hallkit.cli", "hub", "--config", str(config), "--broker", mosquitto.url,
             "--data", str(data), "--sync", "normal"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    wait_for(lambda: (h := read_hall(mosquitto.address, "test-hall", 0.5).hub) is not None
             and h.state == "online" and h.detail.get("accepted") is not None, timeout=20)
    return process


def test_hub_killed_mid_burst_loses_and_duplicates_nothing(mosquitto, tmp_path):
    config = write_hall_config(tmp_path / "hall.toml", HALL_WITH_DEVICES)
    data = tmp_path / "data"
    hub = start_hub_process(config, mosquitto, data)
    burst = Burst(mosquitto, 600)
    try:
        for i, command in enumerate(burst.commands):
            burst.send(command)
            if i == 250:
                wait_for(lambda: burst.answered() >= 100)
                hub.send_signal(signal.SIGKILL)
                hub.wait()
                # The hub's Last Will turns its retained status offline.
                wait_for(lambda: read_hall(mosquitto.address, "test-hall", 0.5).hub.state == "offline")
            time.sleep(0.001)
        hub = start_hub_process(config, mosquitto, data)
        wait_for(lambda: burst.answered() >= 400, timeout=30)
        # A kiosk retries what was never answered, with the same request ids.
        burst.retry_unanswered()
        wait_for(lambda: burst.answered() == 600, timeout=30)
        burst.check()
    finally:
        burst.close()
        hub.terminate()
        hub.wait(10)
    store = EventStore(data / "hall.sqlite3")
    issued = [e for _, e in store.events() if e.type == "ticket_issued"]
    assert len(issued) == 600 and len({e.ticket.id for e in issued}) == 600


def test_broker_restart_mid_burst(mosquitto, tmp_path):
    hub = Hub(parse_config(HALL_WITH_DEVICES), mosquitto.address, tmp_path / "data", synchronous="normal")
    hub.start()
    burst = Burst(mosquitto, 400)
    try:
        for i, command in enumerate(burst.commands):
            burst.send(command)
            if i == 150:
                mosquitto.restart()
            time.sleep(0.001)
        wait_for(lambda: hub.connected, timeout=40)
        wait_for(burst.client.is_connected, timeout=40)
        time.sleep(1)
        burst.retry_unanswered()
        wait_for(lambda: burst.answered() == 400, timeout=30)
        burst.check()
        # Retained state is back on the broker after the restart.
        wait_for(lambda: (q := read_hall(mosquitto.address, "test-hall", 0.5).queue) is not None
                 and q.waiting_total == 400)
    finally:
        burst.close()
        hub.stop()


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
VALID = json.loads(CommandRequest(device="kiosk-1", reply_to=TOPICS.reply("kiosk-1"),
                                  command=TakeTicket(service_id="social")).model_dump_json())


@st.composite
def hostile(draw) -> tuple[str, bytes]:
    device = draw(st.sampled_from(["kiosk-1", "console", "pad-2", "display-1", "ghost", "x" * 60]))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        payload = draw(st.binary(max_size=200))
    elif kind == 1:
        payload = json.dumps(draw(JSONISH)).encode()
    else:
        mutated = dict(VALID)
        key = draw(st.sampled_from(sorted(VALID)))
        mutated[key] = draw(JSONISH)
        if kind == 3:
            mutated["command"] = {**VALID["command"], draw(st.sampled_from(
                ["action", "service_id", "channel", "priority", "id_hash", "request_id", "window"])): draw(JSONISH)}
        payload = json.dumps(mutated).encode()
    return TOPICS.command(device), payload


def test_ten_thousand_hostile_payloads_leave_the_hub_alive(mosquitto, tmp_path):
    hub = Hub(parse_config(HALL_WITH_DEVICES), mosquitto.address, tmp_path / "data", synchronous="normal")
    hub.start()
    sender = make_client(mosquitto.address, "attacker")
    sender.connect(mosquitto.address.host, mosquitto.address.port)
    sender.loop_start()
    sent = 0

    @settings(max_examples=200, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(st.lists(hostile(), min_size=50, max_size=50))
    def attack(batch: list[tuple[str, bytes]]) -> None:
        nonlocal sent
        for topic, payload in batch:
            sender.publish(topic, payload, qos=1)
        sent += len(batch)

    try:
        attack()
        assert sent == 10_000
        wait_for(lambda: hub.accepted + sum(hub.refusals.values()) >= sent, timeout=120)
        assert hub.accepted + sum(hub.refusals.values()) == sent  # every payload counted once
        assert sum(hub.refusals.values()) > 9_000
        # ... and the hub still serves.
        from hallkit.broker.client import HallClient

        with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
            assert kiosk.request(TakeTicket(service_id="permit")).ok
    finally:
        sender.loop_stop()
        hub.stop()
