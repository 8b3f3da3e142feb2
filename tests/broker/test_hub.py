"""The hub against a real Mosquitto: requests, replies, counter commands, state, refusals."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from datetime import UTC, date, datetime

import paho.mqtt.client as mqtt
import pytest
from hallkit.broker.client import HallClient, HubError, read_hall
from hallkit.broker.hub import Hub, _public, for_sender, idempotency_key
from hallkit.contracts.hall import ErrorNotice, QueueEventNotice, Topics
from hallkit.contracts.mqtt import make_client

from hallkit.cli import main
from hallkit.config import parse_config
from hallkit.queue.models import (
    CallNext,
    Channel,
    Complete,
    Outcome,
    Pause,
    Priority,
    TakeTicket,
    Ticket,
    TicketCalled,
    TicketIssued,
    TicketView,
    WindowView,
)
from hallkit.store.durable import DurableQueue
from hallkit.testing import HALL_WITH_DEVICES

AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

@pytest.fixture
def hall_config():
    return parse_config(HALL_WITH_DEVICES)


@pytest.fixture
def hub(hall_config, mosquitto, tmp_path):
    hub = Hub(hall_config, mosquitto.address, tmp_path / "data", synchronous="normal")
    hub.start()
    assert hub.connected
    yield hub
    hub.stop()


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_take_ticket_round_trip_and_repeat(hub, mosquitto):
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
        command = TakeTicket(service_id="social")
        first = kiosk.request(command)
        again = kiosk.request(command)
    assert first.ok and first.outcome and first.outcome.ticket
    assert first.outcome.ticket.number == "A001"
    assert again.outcome == first.outcome  # same request id: the same ticket, not a second one
    assert hub.queue.engine.state.counters == {"A": 1}


def test_counter_commands_from_the_command_line(hub, mosquitto, capsys):
    base = ["--broker", mosquitto.url]  # no --hall: found from the hub's retained status
    assert main(["take", "--service", "pension", *base]) == 0
    assert "B001" in capsys.readouterr().out
    assert main(["take", "--service", "social", "--priority", "priority", *base, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"]["ticket"]["number"] == "A001"
    assert main(["call", "--window", "1", *base]) == 0
    assert "A001" in capsys.readouterr().out  # priority first
    assert main(["recall", "--window", "1", *base]) == 0
    assert "A001" in capsys.readouterr().out
    assert main(["skip", "--window", "1", *base]) == 0
    assert "back in the queue" in capsys.readouterr().out
    assert main(["call", "--window", "1", *base]) == 0
    assert main(["transfer", "--window", "1", "--to-window", "3", "--to-service", "permit", *base]) == 0
    capsys.readouterr()
    assert main(["call", "--window", "3", *base]) == 0
    assert main(["done", "--window", "3", *base]) == 0
    assert "completed" in capsys.readouterr().out
    assert main(["pause", "--window", "2", *base]) == 0
    assert main(["call", "--window", "2", *base]) == 1
    assert "paused" in capsys.readouterr().out
    assert main(["resume", "--window", "2", *base]) == 0
    assert main(["staff", "--window", "1", "--staff", "b1", *base]) == 0
    assert "b1" in capsys.readouterr().out
    assert main(["call", "--window", "9", *base]) == 1
    assert "没有9号窗口" in capsys.readouterr().out


def test_status_shows_the_retained_state(hub, mosquitto, capsys):
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
        for _ in range(3):
            kiosk.request(TakeTicket(service_id="pension"))
    wait_for(lambda: (v := read_hall(mosquitto.address, "test-hall", 1.0).queue) is not None and v.waiting_total == 3)
    assert main(["status", "--broker", mosquitto.url, "--hall", "test-hall"]) == 0
    out = capsys.readouterr().out
    assert "hub online" in out and "3 waiting" in out and "养老保险" in out
    assert main(["status", "--broker", mosquitto.url, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["queue"]["waiting_total"] == 3
    assert {w["number"] for w in status["queue"]["windows"]} == {1, 2, 3}


def test_unreachable_broker_is_a_plain_message(capsys):
    assert main(["call", "--window", "1", "--broker", "mqtt://127.0.0.1:1", "--hall", "x"]) == 2
    err = capsys.readouterr().err
    assert "Cannot reach the broker" in err and "Traceback" not in err


def test_thousand_tickets_from_four_concurrent_clients(hub, mosquitto):
    numbers: list[str] = []
    lock = threading.Lock()

    def kiosk(i: int) -> None:
        with HallClient(mosquitto.address, "test-hall", "kiosk-1") as client:
            for n in range(250):
                reply = client.request(TakeTicket(service_id=("social", "pension")[(n + i) % 2]), timeout=20)
                assert reply.ok and reply.outcome and reply.outcome.ticket
                with lock:
                    numbers.append(reply.outcome.ticket.number)

    threads = [threading.Thread(target=kiosk, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(numbers) == 1000 and len(set(numbers)) == 1000
    by_prefix = defaultdict(list)
    for number in numbers:
        by_prefix[number[0]].append(int(number[1:]))
    for seqs in by_prefix.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1))  # gapless


def test_events_and_snapshot_are_published(hub, mosquitto):
    topics = Topics("test-hall")
    notices: list[QueueEventNotice] = []
    listener = make_client(mosquitto.address, "listener")
    listener.on_message = lambda c, u, m: notices.append(QueueEventNotice.model_validate_json(m.payload))
    listener.connect(mosquitto.address.host, mosquitto.address.port)
    listener.loop_start()
    listener.subscribe(topics.events, qos=1)
    time.sleep(0.3)
    with HallClient(mosquitto.address, "test-hall", "console") as console:
        console.request(TakeTicket(service_id="permit", channel="counter"))
        console.request(CallNext(window=3))
        console.request(Complete(window=3))
    wait_for(lambda: len(notices) >= 4)
    listener.loop_stop()
    assert [n.event.type for n in notices][-3:] == ["ticket_issued", "ticket_called", "ticket_completed"]
    assert notices[-2].number == "C001"
    issued = notices[-3].event
    assert isinstance(issued, TicketIssued) and issued.ticket.number == "C001"
    # What every device reads: no QR token, no resident hash, no request id (the key to stored replies).
    with hub.queue.lock:
        (stored,) = [e for _, e in hub.queue.store.events() if isinstance(e, TicketIssued) and e.id == issued.id]
    assert stored.ticket.public_id and stored.request_id
    assert issued.ticket.public_id == "" and issued.ticket.id_hash is None and issued.request_id is None
    assert all(n.event.request_id is None for n in notices)


def test_public_strips_what_only_the_resident_and_the_sender_may_hold():
    ticket = Ticket(id="20261123-A001", public_id="K7P2M9X4QA", number="A001", prefix="A", seq=1,
                    day=date(2026, 11, 23), service_id="social", channel=Channel.KIOSK, priority=Priority.NORMAL,
                    taken_at=AT, id_hash="ab" * 32)
    issued = TicketIssued(at=AT, request_id="kiosk-1/r1", ticket=ticket)
    public = _public(issued)
    assert public.ticket.public_id == "" and public.ticket.id_hash is None and public.request_id is None
    assert public.ticket.model_dump(exclude={"public_id", "id_hash"}) == ticket.model_dump(exclude={"public_id", "id_hash"})
    called = TicketCalled(at=AT, request_id="console/r2", ticket_id=ticket.id, window=1, staff_id="a1")
    assert _public(called) == called.model_copy(update={"request_id": None})
    assert "K7P2M9X4QA" not in public.model_dump_json() and "kiosk-1/r1" not in public.model_dump_json()


def test_only_the_issuing_kiosk_is_given_the_qr_token(hall_config):
    devices = {d.id: d for d in hall_config.devices}
    view = TicketView(ticket_id="20261123-A001", public_id="K7P2M9X4QA", number="A001", service_id="social",
                      service_name="低保申请", state="called", priority="normal", channel="kiosk", taken_at=AT, ahead=0,
                      estimated_wait_minutes=0, windows=[1], window=1)
    window = WindowView(number=1, name="1号窗口", open=True, paused=False, staff_id="a1", ticket=view,
                        served_today=0, mean_service_seconds=None)
    issued = TicketIssued(at=AT, request_id="kiosk-1/r1", ticket=Ticket(
        id=view.ticket_id, public_id=view.public_id, number="A001", prefix="A", seq=1, day=date(2026, 11, 23),
        service_id="social", channel=Channel.KIOSK, priority=Priority.NORMAL, taken_at=AT))
    outcome = Outcome(action="take", events=[issued], ticket=view, window=window)
    take = TakeTicket(service_id="social")
    assert for_sender(outcome, devices["kiosk-1"], take) == outcome  # it prints the ticket
    for device, command in ((devices["console"], take), (devices["console"], CallNext(window=1)),
                            (devices["pad-2"], CallNext(window=2)), (devices["kiosk-1"], CallNext(window=1))):
        hidden = for_sender(outcome, device, command)
        assert "K7P2M9X4QA" not in hidden.model_dump_json(), (device.id, command.action)
        assert hidden.ticket.number == "A001" and hidden.window.ticket.number == "A001"


def test_request_ids_are_keyed_per_device_except_an_appointments_check_in(hall_config):
    devices = {d.id: d for d in hall_config.devices}
    take = TakeTicket(service_id="social", request_id="r1")
    assert idempotency_key(devices["kiosk-1"], take) != idempotency_key(devices["console"], take)
    assert idempotency_key(devices["kiosk-1"], take) == idempotency_key(devices["kiosk-1"], take)
    check_in = TakeTicket(service_id="social", channel=Channel.APPOINTMENT, request_id="appt-0123")
    assert idempotency_key(devices["kiosk-1"], check_in) == idempotency_key(devices["console"], check_in) == "appt-0123"
    # The appointment prefix on any other command is an ordinary, per-device id.
    assert idempotency_key(devices["kiosk-1"], take.model_copy(update={"request_id": "appt-0123"})) != "appt-0123"


def test_a_log_written_before_request_ids_were_keyed_per_device_replays(hall_config, mosquitto, tmp_path):
    old = DurableQueue(hall_config, tmp_path / "data" / "hall.sqlite3", "normal")
    old.execute(TakeTicket(service_id="social", request_id="r1"))  # stored under the bare request id
    old.execute(CallNext(window=1, request_id="r2"))
    old.close()
    hub = Hub(hall_config, mosquitto.address, tmp_path / "data", synchronous="normal")
    hub.start()
    try:
        assert hub.queue.engine.state.counters == {"A": 1}
        with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
            taken = kiosk.request(TakeTicket(service_id="social", request_id="r3"))
            again = kiosk.request(TakeTicket(service_id="social", request_id="r3"))
        assert taken.outcome.ticket.number == "A002" and again.outcome == taken.outcome
        with HallClient(mosquitto.address, "test-hall", "console") as console:
            assert console.request(Complete(window=1)).outcome.events[0].ticket_id.endswith("A001")
    finally:
        hub.stop()


def _raw_client(mosquitto, errors: list[ErrorNotice], replies: list[dict]) -> mqtt.Client:
    topics = Topics("test-hall")
    client = make_client(mosquitto.address, "raw")
    client.message_callback_add(topics.errors, lambda c, u, m: errors.append(ErrorNotice.model_validate_json(m.payload)))
    client.message_callback_add(topics.reply("kiosk-1"), lambda c, u, m: replies.append(json.loads(m.payload)))
    client.connect(mosquitto.address.host, mosquitto.address.port)
    client.loop_start()
    client.subscribe(topics.errors, qos=1)
    client.subscribe(topics.reply("kiosk-1"), qos=1)
    time.sleep(0.3)
    return client


def test_bad_input_is_refused_with_a_reason(hub, mosquitto):
    topics = Topics("test-hall")
    errors: list[ErrorNotice] = []
    replies: list[dict] = []
    client = _raw_client(mosquitto, errors, replies)
    reply_to = topics.reply("kiosk-1")

    def request(device: str, command: dict, reply: str = reply_to) -> str:
        return json.dumps({"v": 1, "msg_id": "m1", "device": device, "reply_to": reply, "command": command})

    cases = [
        (topics.command("kiosk-1"), b"\xff\xfe not json", "hub.not_json"),
        (topics.command("kiosk-1"), b'{"v": 1}', "hub.invalid"),
        (topics.command("kiosk-1"), request("kiosk-1", {"action": "explode", "request_id": "r1"}), "hub.invalid"),
        (topics.command("kiosk-1"), request("pad-2", {"action": "take", "service_id": "social", "request_id": "r2"}),
         "hub.device_mismatch"),
        (topics.command("ghost"), request("ghost", {"action": "take", "service_id": "social", "request_id": "r3"}),
         "hub.unknown_device"),
        (topics.command("kiosk-1"), request("kiosk-1", {"action": "call", "window": 1, "request_id": "r4"}),
         "hub.not_allowed"),
        (topics.command("pad-2"), request("pad-2", {"action": "call", "window": 1, "request_id": "r5"},
                                          topics.reply("pad-2")), "hub.not_allowed"),
        (topics.command("display-1"), request("display-1", {"action": "take", "service_id": "social",
                                                             "request_id": "r6"}, topics.reply("display-1")),
         "hub.not_allowed"),
        (topics.command("kiosk-1"), request("kiosk-1", {"action": "take", "service_id": "social",
                                                         "request_id": "r7"}, "elsewhere/x"), "hub.bad_reply_to"),
        (topics.command("kiosk-1"), request("kiosk-1", {"action": "take", "service_id": "social",
                                                         "request_id": "r8"}, topics.reply("pad-2")), "hub.bad_reply_to"),
    ]
    for topic, payload, _ in cases:
        client.publish(topic, payload, qos=1)
    wait_for(lambda: len(errors) >= len(cases))
    assert [e.reason for e in errors] == [reason for _, _, reason in cases]
    assert all(e.zh and e.en for e in errors)
    # Refusals are answered on the sender's own reply topic, so the sender does not hang; a
    # reply topic that is not its own is refused, and answered on its own.
    wait_for(lambda: {r["request_id"] for r in replies} >= {"r1", "r4", "r7", "r8"})
    assert all(not r["ok"] for r in replies)
    assert sum(hub.refusals.values()) == len(cases)
    # A queue refusal (nothing waiting) is an answer, not an error notice.
    with HallClient(mosquitto.address, "test-hall", "console") as console:
        reply = console.request(CallNext(window=2))
        assert not reply.ok and reply.refusal and reply.refusal.reason == "queue.nothing_waiting"
        assert reply.refusal.zh == "2号窗口暂无等候的群众"
        assert console.request(Pause(window=2)).ok
    client.loop_stop()


def test_request_timeout_when_no_hub(mosquitto):
    with HallClient(mosquitto.address, "nobody", "kiosk-1") as kiosk, \
            pytest.raises(HubError, match="No answer from the hub"):
        kiosk.request(TakeTicket(service_id="social"), timeout=0.5)


def test_a_poison_payload_fails_only_itself(hub, mosquitto):
    """Absurd nesting or numbers are refused as not-JSON; the rest of the burst is served."""
    errors: list[ErrorNotice] = []
    replies: list[dict] = []
    client = _raw_client(mosquitto, errors, replies)
    topics = Topics("test-hall")
    valid = json.dumps({"v": 1, "device": "kiosk-1", "reply_to": topics.reply("kiosk-1"),
                        "command": {"action": "take", "service_id": "social", "request_id": "after-poison"}})
    hub.handle_batch([(topics.command("kiosk-1"), b"[" * 100_000),
                      (topics.command("kiosk-1"), b'{"v": ' + b"9" * 5000 + b"}"),
                      (topics.command("kiosk-1"), valid.encode())])
    wait_for(lambda: len(errors) >= 2 and replies)
    assert [e.reason for e in errors] == ["hub.not_json", "hub.not_json"]
    assert replies[0]["request_id"] == "after-poison" and replies[0]["ok"]
    client.loop_stop()
