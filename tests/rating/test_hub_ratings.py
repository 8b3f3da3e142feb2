"""The hub's rating part on a real Mosquitto: one rating per event, clear refusals, cases, figures."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from hallkit.broker.client import HallClient
from hallkit.contracts.hall import ErrorNotice, PadScreen, Topics
from hallkit.contracts.mqtt import make_client

from hallkit.cli import main
from hallkit.queue.models import CallNext, Complete, TakeTicket
from hallkit.rating import store
from hallkit.rating.models import CaseStep, CaseStepCommand, CaseUpdate, Level, Rating, RatingChannel, RatingSubmission
from hallkit.testing import HALL_WITH_PADS
from tests.broker.test_hub import wait_for

TOPICS = Topics("test-hall")


class Screens:
    """The retained screens of some pads, as they come."""

    def __init__(self, address, devices: list[str]) -> None:
        self.latest: dict[str, PadScreen] = {}
        self.client = make_client(address, "screens-watch")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: [c.subscribe(TOPICS.pad_screen(d), qos=1) for d in devices]
        self.client.connect(address.host, address.port)
        self.client.loop_start()

    def _on_message(self, _c, _u, message: mqtt.MQTTMessage) -> None:
        screen = PadScreen.model_validate_json(message.payload)
        self.latest[message.topic.split("/")[4]] = screen

    def prompt_for(self, device: str, number: str):
        def found():
            screen = self.latest.get(device)
            return screen if screen and screen.prompt and screen.prompt.ticket_number == number else None
        wait_for(lambda: found() is not None)
        return found().prompt

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def screens(mosquitto, rating_hub):
    watch = Screens(mosquitto.address, ["pad-1", "pad-2"])
    yield watch
    watch.close()


def serve(address, device: str, window: int) -> str:
    with HallClient(address, "test-hall", device) as client:
        called = client.request(CallNext(window=window))
        assert called.ok, called.refusal
        assert client.request(Complete(window=window)).ok
    return called.outcome.ticket.number


def take(address, service: str, count: int = 1) -> list[str]:
    with HallClient(address, "test-hall", "kiosk-1") as kiosk:
        return [kiosk.request(TakeTicket(service_id=service)).outcome.ticket.number for _ in range(count)]


def test_a_served_ticket_is_rated_once_and_the_pad_is_told(rating_hub, mosquitto, screens):
    take(mosquitto.address, "pension")
    number = serve(mosquitto.address, "pad-2", 2)
    prompt = screens.prompt_for("pad-2", number)
    assert prompt.staff_name == "李四" and prompt.tags == rating_hub.config.rating.bad_reason_tags
    with HallClient(mosquitto.address, "test-hall", "pad-2") as pad:
        first = RatingSubmission(service_event_id=prompt.service_event_id, channel=RatingChannel.PAD, level=Level(5))
        accepted = pad.rate(first)
        assert accepted.ok and accepted.receipt.ticket_number == number and accepted.receipt.case_id is None
        assert pad.rate(first).receipt == accepted.receipt  # the same request again: the same answer
        again = pad.rate(first.model_copy(update={"request_id": "another-try", "level": Level(1)}))
    assert not again.ok and again.refusal.reason == "rating.already_rated"
    assert f"{number} 号的这次服务已经评价过了" in again.refusal.zh and "already been rated" in again.refusal.en
    wait_for(lambda: screens.latest["pad-2"].prompt is None)  # the prompt leaves the pad once rated
    ratings = [r for r in rating_hub.collected.records if isinstance(r, Rating)]
    assert len(ratings) == 1 and ratings[0].staff_id == "b1" and ratings[0].service_name == "养老保险"
    with rating_hub.queue.lock:
        assert len(list(store.ratings(rating_hub.queue.store.conn))) == 1


def test_refusals_are_clear(rating_hub, mosquitto, screens):
    take(mosquitto.address, "social")
    number = serve(mosquitto.address, "pad-1", 1)
    event_id = screens.prompt_for("pad-1", number).service_event_id
    pad_rating = RatingSubmission(service_event_id=event_id, channel=RatingChannel.PAD, level=Level(4))
    with HallClient(mosquitto.address, "test-hall", "pad-2") as other_pad:
        refused = other_pad.rate(pad_rating)
        assert refused.refusal.reason == "rating.other_window" and "1号窗口" in refused.refusal.zh
        unknown = other_pad.rate(RatingSubmission(service_event_id="nope", channel=RatingChannel.PAD, level=Level(4)))
        assert unknown.refusal.reason == "rating.unknown_event"
        assert other_pad.rate(pad_rating.model_copy(update={"channel": RatingChannel.QR})).refusal.reason \
            == "rating.channel_not_allowed"
    with HallClient(mosquitto.address, "test-hall", "console") as staff:
        refused = staff.rate(pad_rating.model_copy(update={"channel": RatingChannel.KIOSK}))
        assert refused.refusal.reason == "rating.channel_not_allowed" and "代替群众评价" in refused.refusal.zh
    with HallClient(mosquitto.address, "test-hall", "pad-1") as pad:
        tags = pad.rate(pad_rating.model_copy(update={"tags": ["态度不好"]}))
        assert tags.refusal.reason == "rating.tags_only_for_bad"
        assert pad.rate(pad_rating).ok


def test_late_rating_by_the_tickets_qr(rating_hub, mosquitto):
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
        ticket = kiosk.request(TakeTicket(service_id="permit")).outcome.ticket
    serve(mosquitto.address, "console", 3)
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as page:
        late = RatingSubmission(ticket_public_id=ticket.public_id, channel=RatingChannel.QR, level=Level(3))
        assert page.rate(late).ok
        assert page.rate(late.model_copy(update={"request_id": "second"})).refusal.reason == "rating.already_rated"


def test_garbage_on_the_rating_topic_is_refused_and_counted(rating_hub, mosquitto):
    errors: list[ErrorNotice] = []
    got = threading.Event()
    watcher = make_client(mosquitto.address, "errors-watch")
    watcher.on_message = lambda _c, _u, m: (errors.append(ErrorNotice.model_validate_json(m.payload)), got.set())
    watcher.on_subscribe = lambda *_: subscribed.set()
    subscribed = threading.Event()
    watcher.connect(mosquitto.address.host, mosquitto.address.port)
    watcher.subscribe(TOPICS.errors, qos=1)
    watcher.loop_start()
    assert subscribed.wait(5)
    watcher.publish(TOPICS.rating_submit("pad-2"), b"{not json", qos=1)
    assert got.wait(10)
    watcher.publish(TOPICS.rating_submit("ghost"), json.dumps({"v": 1, "device": "ghost"}), qos=1)
    wait_for(lambda: len(errors) >= 2)
    watcher.disconnect()
    watcher.loop_stop()
    assert [e.reason for e in errors[:2]] == ["hub.not_json", "hub.invalid"]
    assert rating_hub.refusals["hub.not_json"] == 1


def test_a_bad_rating_opens_a_case_worked_from_the_command_line(rating_hub, mosquitto, screens, tmp_path, capsys):
    config_file = tmp_path / "hall.toml"
    config_file.write_text(HALL_WITH_PADS, "utf-8")
    data = ["--config", str(config_file), "--data", str(tmp_path / "data")]
    take(mosquitto.address, "pension")
    number = serve(mosquitto.address, "pad-2", 2)
    prompt = screens.prompt_for("pad-2", number)
    with HallClient(mosquitto.address, "test-hall", "pad-2") as pad:
        receipt = pad.rate(RatingSubmission(service_event_id=prompt.service_event_id, channel=RatingChannel.PAD,
                                            level=Level(1), tags=["态度不好", "效率低"], text="等了很久")).receipt
    assert receipt.case_id is not None
    short = receipt.case_id[:8]

    assert main(["cases", *data]) == 0
    out = capsys.readouterr().out
    assert short in out and number in out and "非常不满意" in out and "待核实" in out

    base = ["--broker", mosquitto.url, "--hall", "test-hall"]
    assert main(["cases", "close", short, "--by", "a1", *base]) == 1
    assert "verified" in capsys.readouterr().out  # what may come next
    assert main(["cases", "verify", short, "--by", "a1", "--note", "查看录像属实", *base]) == 0
    assert "verified" in capsys.readouterr().out
    assert main(["cases", "explain", short, "--by", "a1", *base]) == 1
    assert "情况说明" in capsys.readouterr().out
    assert main(["cases", "rectify", short, "--by", "a1", *base, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["update"]["step"] == "rectified"
    assert main(["cases", "callback", short, "--by", "b1", *base]) == 0
    assert main(["cases", "close", short, "--by", "b1", *base]) == 0
    capsys.readouterr()
    assert main(["cases", "verify", "ffffffff", "--by", "b1", *base]) == 1
    assert "没有编号为" in capsys.readouterr().out

    assert main(["cases", *data, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["open"] == 0
    steps = [r.step for r in rating_hub.collected.records if isinstance(r, CaseUpdate)]
    assert steps == [CaseStep.OPENED, CaseStep.VERIFIED, CaseStep.RECTIFIED, CaseStep.CALLED_BACK, CaseStep.CLOSED]

    today = rating_hub.queue.clock().astimezone(rating_hub.config.hall.zone).date()
    assert main(["ratings", "report", "--from", str(today), "--to", str(today), *data, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"]["figures"]["served"] == 1 and report["total"]["figures"]["bad"] == 1
    assert report["total"]["coverage"] == 1.0 and report["total"]["satisfaction_rate"] == 0.0
    assert main(["ratings", "report", "--from", str(today), "--to", str(today), *data]) == 0
    assert "李四" in capsys.readouterr().out


def test_nobody_rated_gives_the_provinces_default(pads_config, mosquitto, tmp_path):
    from hallkit.broker.hub import Hub
    from hallkit.broker.parts import hub_parts
    from hallkit.broker.ratings import RatingsPart

    config = pads_config.model_copy(update={"rating": pads_config.rating.model_copy(
        update={"missing_rating": "very_satisfied", "late_rating_hours": 0})})
    hub = Hub(config, mosquitto.address, tmp_path / "data", synchronous="normal", parts=hub_parts(config))
    hub.start()
    try:
        take(mosquitto.address, "permit", 2)
        serve(mosquitto.address, "console", 3)
        part = next(p for p in hub.parts if isinstance(p, RatingsPart))
        now = hub.queue.clock()
        assert part.sweep(now) == 0  # the pad still waits
        assert part.sweep(now + timedelta(seconds=config.rating.pad_timeout_seconds + 1)) == 1
        with hub.queue.lock:
            (rating,) = store.ratings(hub.queue.store.conn)
        assert rating.channel is RatingChannel.DEFAULT and rating.level is Level.VERY_SATISFIED
    finally:
        hub.stop()


def test_case_steps_only_from_counters(rating_hub, mosquitto):
    with HallClient(mosquitto.address, "test-hall", "pad-2") as pad:
        reply = pad.record_step(CaseStepCommand(case_id="x", step=CaseStep.VERIFIED, by="a1"))
    assert reply.refusal.reason == "case.device_not_allowed"
