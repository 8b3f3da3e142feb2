"""Pads of all three kinds over real ptys, FIFOs and a real Mosquitto: a day of traffic, faults, listening."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter

import pytest
from hallkit.broker.client import HallClient, read_hall
from hallkit.broker.pad_script import PadScript, SimulatedPad, parse_script
from hallkit.devices.evaluator.codec import KeyCode
from hallkit.devices.evaluator.keypad import KeypadPad, key_events
from hallkit.devices.evaluator.pad import StaffKey
from hallkit.devices.evaluator.serial_pad import SerialPad
from hallkit.devices.evaluator.simulator import KeypadSimulator, SerialPadSimulator

from hallkit.cli import main
from hallkit.queue.models import TakeTicket
from hallkit.rating import store
from hallkit.rating.models import Level, RatingChannel
from hallkit.rating.rules import EventStatus
from tests.broker.test_hub import wait_for

KINDS = {1: "serial", 2: "keypad", 3: "network"}
SCRIPTS = {1: "5,1:态度不好+效率低,walk,4", 2: "2:效率低,5,walk", 3: "walk,3,1:多次跑腿"}


def status_of(address, device: str):
    return read_hall(address, "test-hall", timeout=2.0).devices.get(device)


def problems_of(address, device: str) -> set[str]:
    status = status_of(address, device)
    return {p.reason for p in status.problems} if status is not None and status.state == "online" else {"?"}


@pytest.fixture
def pads(rating_hub, mosquitto, tmp_path):
    reasons = rating_hub.config.rating.bad_reason_tags
    started = {window: SimulatedPad(kind, mosquitto.address, "test-hall", f"pad-{window}", window, reasons,
                                    folder=tmp_path).start()
               for window, kind in KINDS.items()}
    yield started
    for pad in started.values():
        pad.stop()


def test_a_day_through_all_three_kinds(rating_hub, mosquitto, pads):
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
        for service in ["social", "pension", "permit"] * 5:
            assert kiosk.request(TakeTicket(service_id=service)).ok
    scripts = {w: PadScript(pads[w].hardware, parse_script(SCRIPTS[w]), service_seconds=lambda: 0.05,
                          wait_seconds=5)
               for w in KINDS}

    def work(script: PadScript) -> None:
        while script.serve_one() is not None:
            pass

    threads = [threading.Thread(target=work, args=(s,)) for s in scripts.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
        assert not thread.is_alive()

    served = [s for script in scripts.values() for s in script.served]
    assert len(served) == 15 and all(s.prompted for s in served)
    with rating_hub.queue.lock:
        conn = rating_hub.queue.store.conn
        events = list(store.events(conn))
        ratings = list(store.ratings(conn))
        cases = store.cases(conn)
    assert len(events) == 15
    per_event = Counter(r.service_event_id for r in ratings)
    assert max(per_event.values()) == 1  # 一次一评
    rated = [s for s in served if not s.behaviour.walks_away]
    assert sorted(r.ticket_number for r in ratings) == sorted(s.number for s in rated)
    by_number = {r.ticket_number: r for r in ratings}
    for s in rated:
        assert by_number[s.number].level == s.behaviour.level
        assert by_number[s.number].tags == s.behaviour.tags
        assert by_number[s.number].channel is RatingChannel.PAD
    assert len(cases) == sum(1 for s in rated if s.behaviour.level.bad)
    assert {e.status for e in events} == {EventStatus.RATED, EventStatus.PENDING}
    for window, kind in KINDS.items():
        status = status_of(mosquitto.address, f"pad-{window}")
        assert status.state == "online" and status.problems == [] and status.detail["pad"] == kind


def test_serial_pad_garbage_and_unplugging_are_reported_and_it_recovers(rating_hub, mosquitto, pads):
    address = mosquitto.address
    wait_for(lambda: problems_of(address, "pad-1") == set())
    simulator: SerialPadSimulator = pads[1].hardware
    simulator.garbage(b"\x00\xff\x13garbage\xaa")
    wait_for(lambda: "pad.garbage" in problems_of(address, "pad-1"))
    wait_for(lambda: problems_of(address, "pad-1") == set(), timeout=20)  # a clean line again

    simulator.unplug()
    wait_for(lambda: "pad.unplugged" in problems_of(address, "pad-1"), timeout=20)
    status = status_of(address, "pad-1")
    assert "断开" in status.problems[0].zh and "disconnected" in status.problems[0].en
    simulator.plug()
    wait_for(lambda: problems_of(address, "pad-1") == set(), timeout=20)
    with HallClient(address, "test-hall", "kiosk-1") as kiosk:
        assert kiosk.request(TakeTicket(service_id="social")).ok
    simulator.press(StaffKey.CALL)  # the pad works again: its key reaches the hub
    wait_for(lambda: rating_hub.queue.engine.window_view(1).ticket is not None)

    simulator.silent = True
    wait_for(lambda: "pad.no_answer" in problems_of(address, "pad-1"), timeout=20)
    simulator.silent = False
    wait_for(lambda: problems_of(address, "pad-1") == set(), timeout=20)


def test_keypad_unplugged_and_back(rating_hub, mosquitto, pads):
    address = mosquitto.address
    wait_for(lambda: problems_of(address, "pad-2") == set())
    keypad: KeypadSimulator = pads[2].hardware
    keypad.unplug()
    wait_for(lambda: "pad.unplugged" in problems_of(address, "pad-2"), timeout=20)
    keypad.plug()
    wait_for(lambda: problems_of(address, "pad-2") == set(), timeout=20)
    with HallClient(address, "test-hall", "kiosk-1") as kiosk:
        assert kiosk.request(TakeTicket(service_id="pension")).ok
    keypad.press(StaffKey.CALL)
    wait_for(lambda: rating_hub.queue.engine.window_view(2).ticket is not None)


def test_a_stopped_bridge_reads_offline(rating_hub, mosquitto, pads):
    wait_for(lambda: (s := status_of(mosquitto.address, "pad-3")) is not None and s.state == "online")
    pads[3].bridge.stop()
    wait_for(lambda: status_of(mosquitto.address, "pad-3").state == "offline")


def test_listen_to_a_serial_pad_in_words(tmp_path, capsys):
    simulator = SerialPadSimulator(tmp_path / "pad.tty", address=5).start()
    try:
        simulator.press(StaffKey.DONE)
        simulator.press(StaffKey.CALL)
        # After listen opened the port (opening it drops what came before).
        later = threading.Timer(0.5, simulator.garbage, args=(b"noise",))
        later.start()
        assert main(["pad", "listen", "--pad", simulator.url, "--seconds", "2"]) == 0
    finally:
        simulator.stop()
    out = capsys.readouterr().out
    assert "5号评价器：按键 done" in out and "key call" in out and "garbage" in out


def test_listen_to_a_keypad_in_words(tmp_path, capsys):
    keypad = KeypadSimulator(tmp_path / "kbd", tmp_path / "screen", []).start()
    assert keypad.fd is not None
    os.write(keypad.fd, key_events(59) + key_events(4) + key_events(30))
    try:
        assert main(["pad", "listen", "--pad", keypad.url, "--seconds", "1.5"]) == 0
    finally:
        keypad.stop()
    out = capsys.readouterr().out
    assert "按键 F1：叫号" in out and "key 3: digit 3" in out and "code 30: unused" in out


def test_listen_as_json_lines(tmp_path, capsys):
    keypad = KeypadSimulator(tmp_path / "kbd", tmp_path / "screen", []).start()
    assert keypad.fd is not None
    os.write(keypad.fd, key_events(59) + key_events(4))
    try:
        assert main(["pad", "listen", "--pad", keypad.url, "--seconds", "1.5", "--json"]) == 0
    finally:
        keypad.stop()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(lines) == 2 and all(set(line) == {"key", "params", "zh", "en"} for line in lines)
    assert "叫号" in lines[0]["zh"] and "digit 3" in lines[1]["en"]


def test_the_drivers_alone(tmp_path):
    simulator = SerialPadSimulator(tmp_path / "p.tty", address=9).start()
    pad = SerialPad(str(simulator.link), address="9")
    pad.open()
    try:
        simulator.press(StaffKey.RECALL)
        found = None
        for _ in range(20):
            found = pad.read(0.05) or found
        assert found is not None and found.key is StaffKey.RECALL
        assert simulator.outbox == type(simulator.outbox)()  # acknowledged, not sent again
        assert KeyCode.RECALL == 0x11
    finally:
        pad.close()
        simulator.stop()
    keypad = KeypadSimulator(tmp_path / "k", tmp_path / "s", ["态度不好", "效率低"]).start()
    reader = KeypadPad(str(keypad.path))
    reader.open()
    try:
        reader.reasons = ["态度不好", "效率低"]
        keypad.rate(Level(2), ["效率低"])
        found = None
        for _ in range(20):
            found = reader.read(0.05) or found
        assert found is not None and found.level == 2 and found.tags == ["效率低"]
    finally:
        reader.close()
        keypad.stop()


def test_sim_pad_from_the_command_line(rating_hub, mosquitto, tmp_path, capsys):
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
        assert kiosk.request(TakeTicket(service_id="permit")).ok
    assert main(["sim", "pad", "--window", "3", "--kind", "serial", "--count", "1", "--script", "2:效率低",
                 "--service-seconds", "0", "--folder", str(tmp_path), "--broker", mosquitto.url]) == 0
    out = capsys.readouterr().out
    assert "C001：评价 2 级 效率低" in out
    with rating_hub.queue.lock:
        (rating,) = store.ratings(rating_hub.queue.store.conn)
    assert rating.tags == ["效率低"] and rating.window == 3
