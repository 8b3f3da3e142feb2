"""Ratings only by whom the rules allow, on a real Mosquitto: each takeover a hostile device on the
hall's network tried is refused, and the resident can still rate afterwards."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt
import pytest
from hallkit.broker.client import HallClient
from hallkit.broker.ratings import RATING_RIGHTS, may_hand_in
from hallkit.contracts.hall import CommandReply, QueueEventNotice, QueueSnapshot, RatingReply, Topics
from hallkit.contracts.mqtt import make_client

from hallkit.accounts import Role, UserStore
from hallkit.config import Device, DeviceKind, parse_config
from hallkit.queue.models import CallNext, Complete, TakeTicket, TicketView
from hallkit.rating import store
from hallkit.rating.cases import CaseState
from hallkit.rating.models import CaseStep, CaseStepCommand, Level, RatingChannel, RatingSubmission
from hallkit.testing import HALL_WITH_PADS
from tests.broker.test_hub import wait_for

TOPICS = Topics("test-hall")


@pytest.fixture
def pads_config():
    """The rating hall with a second kiosk, the hostile device of these tests."""
    return parse_config(HALL_WITH_PADS + '\n[[devices]]\nid = "kiosk-2"\nkind = "kiosk"\n')


class Sniffer:
    """Every message on the hall's topics (retained ones too), with its topic, as another device sees it."""

    def __init__(self, address, name: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = make_client(address, name)
        self.client.on_message = self._keep
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe(f"{TOPICS.base}/#", qos=1)
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _keep(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [payload for t, payload in self.messages if t == topic]

    def topics_carrying(self, secret: str) -> set[str]:
        with self._lock:
            return {t for t, payload in self.messages if secret.encode() in payload}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def sniffer(mosquitto, rating_hub):
    watch = Sniffer(mosquitto.address, "hostile-sniffer")
    yield watch
    watch.close()


def issue_and_serve(address, window: int = 1) -> TicketView:
    """A resident takes a ticket at kiosk-1 and is served at ``window``; returns the ticket as printed."""
    with HallClient(address, "test-hall", "kiosk-1") as kiosk:
        taken = kiosk.request(TakeTicket(service_id="social" if window == 1 else "permit"))
    assert taken.ok and taken.outcome.ticket.public_id
    with HallClient(address, "test-hall", "console") as console:
        called = console.request(CallNext(window=window))
        assert called.ok and called.outcome.ticket.number == taken.outcome.ticket.number
        assert console.request(Complete(window=window)).ok
    return taken.outcome.ticket


def completed_event_id(sniffer: Sniffer, number: str) -> str:
    """The service event id every device reads on ``evt/ticket_completed``."""
    def found() -> str | None:
        for payload in sniffer.on(TOPICS.event("ticket_completed")):
            notice = QueueEventNotice.model_validate_json(payload)
            if notice.number == number:
                return notice.event.id
        return None
    wait_for(lambda: found() is not None)
    event_id = found()
    assert event_id is not None
    return event_id


def unrated(hub, event_id: str) -> bool:
    with hub.queue.lock:
        event = store.event_by_id(hub.queue.store.conn, event_id)
    return event is not None and event.status == "pending"


def test_a_kiosk_cannot_rate_by_the_service_event_id_every_device_reads(rating_hub, mosquitto, sniffer):
    ticket = issue_and_serve(mosquitto.address, window=1)
    event_id = completed_event_id(sniffer, ticket.number)
    with HallClient(mosquitto.address, "test-hall", "kiosk-2") as hostile:
        for channel in (RatingChannel.KIOSK, RatingChannel.QR):
            refused = hostile.rate(RatingSubmission(service_event_id=event_id, channel=channel, level=Level(1)))
            assert refused.refusal.reason == "rating.by_token_only" and "二维码" in refused.refusal.zh
        as_pad = hostile.rate(RatingSubmission(service_event_id=event_id, channel=RatingChannel.PAD, level=Level(1)))
        assert as_pad.refusal.reason == "rating.channel_not_allowed"
    assert unrated(rating_hub, event_id)
    # The resident, still at window 1, rates on that window's pad.
    with HallClient(mosquitto.address, "test-hall", "pad-1") as pad:
        rated = pad.rate(RatingSubmission(service_event_id=event_id, channel=RatingChannel.PAD, level=Level(5)))
    assert rated.ok and rated.receipt.ticket_number == ticket.number


def test_a_pad_rates_only_its_own_windows_completion(rating_hub, mosquitto, sniffer):
    ticket = issue_and_serve(mosquitto.address, window=1)
    event_id = completed_event_id(sniffer, ticket.number)
    submission = RatingSubmission(service_event_id=event_id, channel=RatingChannel.PAD, level=Level(1))
    for other in ("pad-2", "pad-3"):
        with HallClient(mosquitto.address, "test-hall", other) as pad:
            refused = pad.rate(submission)
        assert refused.refusal.reason == "rating.other_window" and "1号窗口" in refused.refusal.zh
    with HallClient(mosquitto.address, "test-hall", "pad-1") as pad:
        by_token = pad.rate(RatingSubmission(ticket_public_id=ticket.public_id, channel=RatingChannel.PAD,
                                             level=Level(1)))
        assert by_token.refusal.reason == "rating.by_event_only"
        assert unrated(rating_hub, event_id)
        assert pad.rate(submission.model_copy(update={"level": Level(4)})).ok


def test_the_qr_token_is_only_in_the_issuing_kiosks_reply(rating_hub, mosquitto, sniffer):
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
        taken = kiosk.request(TakeTicket(service_id="social"))
    token = taken.outcome.ticket.public_id
    assert token
    with HallClient(mosquitto.address, "test-hall", "console") as console:
        called = console.request(CallNext(window=1))
        # The counter that calls the resident is told the ticket, not its token.
        assert called.outcome.ticket.number == taken.outcome.ticket.number and called.outcome.ticket.public_id == ""
        # The retained queue snapshot shows the ticket called at window 1, without its token.
        def window_ticket() -> TicketView | None:
            snapshots = [QueueSnapshot.model_validate_json(p) for p in sniffer.on(TOPICS.queue_state)]
            return next((w.ticket for s in reversed(snapshots) for w in s.windows if w.number == 1 and w.ticket),
                        None)
        wait_for(lambda: window_ticket() is not None)
        assert window_ticket().number == taken.outcome.ticket.number and window_ticket().public_id == ""
        assert console.request(Complete(window=1)).ok
    event_id = completed_event_id(sniffer, taken.outcome.ticket.number)
    wait_for(lambda: any(b"service_event_id" in p for p in sniffer.on(TOPICS.pad_screen("pad-1"))))
    # Events, snapshots, pad screens, other devices' replies: the token is on none of them.
    assert sniffer.topics_carrying(token) == {TOPICS.reply("kiosk-1")}
    # Later, from a phone, the resident rates by the token on the printed ticket.
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as page:
        rated = page.rate(RatingSubmission(ticket_public_id=token, channel=RatingChannel.QR, level=Level(3)))
    assert rated.ok and rated.receipt.service_event_id == event_id


class RawDevice:
    """A hostile device speaking the contract by hand: it names whatever reply topic it likes."""

    def __init__(self, address, device: str, listen: list[str]) -> None:
        self.device = device
        self.heard: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = make_client(address, f"raw-{device}")
        self.client.on_message = self._keep
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in listen])
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _keep(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.heard.append((message.topic, json.loads(message.payload)))

    def send(self, topic: str, reply_to: str, **body: object) -> None:
        payload = {"v": 1, "device": self.device, "reply_to": reply_to, **body}
        self.client.publish(topic, json.dumps(payload), qos=1)

    def answers(self, topic: str, request_id: str) -> list[dict]:
        with self._lock:
            return [m for t, m in self.heard if t == topic and m.get("request_id") == request_id]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_reply_to_must_be_the_senders_own_topic(rating_hub, mosquitto):
    victim_topics = [TOPICS.reply("kiosk-1"), TOPICS.rating_reply("kiosk-1"), TOPICS.appointment_reply("kiosk-1")]
    hostile = RawDevice(mosquitto.address, "kiosk-2",
                        [*victim_topics, TOPICS.reply("kiosk-2"), TOPICS.rating_reply("kiosk-2")])
    console = RawDevice(mosquitto.address, "console", [TOPICS.rating_reply("console")])
    before = rating_hub.refusals["hub.bad_reply_to"]
    try:
        hostile.send(TOPICS.command("kiosk-2"), TOPICS.reply("kiosk-1"),
                     command={"action": "take", "service_id": "social", "request_id": "steer-1"})
        hostile.send(TOPICS.rating_submit("kiosk-2"), TOPICS.rating_reply("kiosk-1"),
                     submission={"request_id": "steer-2", "ticket_public_id": "nothing", "channel": "qr", "level": 5})
        hostile.send(TOPICS.appointment_query("kiosk-2"), TOPICS.appointment_reply("kiosk-1"),
                     request_id="steer-3", id_hash="0" * 64)
        console.client.publish(TOPICS.case_step("console"), json.dumps(
            {"v": 1, "device": "console", "reply_to": TOPICS.rating_reply("kiosk-1"),
             "step": {"request_id": "steer-4", "case_id": "0" * 32, "step": "verified", "by": "a1"}}), qos=1)
        wait_for(lambda: rating_hub.refusals["hub.bad_reply_to"] >= before + 4)
        # Refused with the reason, told to the sender on its own topic, nothing on the victim's.
        wait_for(lambda: bool(hostile.answers(TOPICS.reply("kiosk-2"), "steer-1")
                              and hostile.answers(TOPICS.rating_reply("kiosk-2"), "steer-2")
                              and console.answers(TOPICS.rating_reply("console"), "steer-4")))
        command = CommandReply.model_validate(hostile.answers(TOPICS.reply("kiosk-2"), "steer-1")[0])
        rating = RatingReply.model_validate(hostile.answers(TOPICS.rating_reply("kiosk-2"), "steer-2")[0])
        step = RatingReply.model_validate(console.answers(TOPICS.rating_reply("console"), "steer-4")[0])
        for refusal in (command.refusal, rating.refusal, step.refusal):
            assert refusal.reason == "hub.bad_reply_to" and "自己的回复主题" in refusal.zh
            assert TOPICS.reply("kiosk-1") in refusal.en or TOPICS.rating_reply("kiosk-1") in refusal.en
        assert rating_hub.queue.engine.state.counters == {}  # no ticket was taken
        # The kiosk's own request is answered as usual, and only its own answers reach its topic.
        with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
            assert kiosk.request(TakeTicket(service_id="social")).ok
        assert not any(m.get("request_id", "").startswith("steer-") for t, m in hostile.heard if t in victim_topics)
    finally:
        hostile.close()
        console.close()


def test_reusing_another_devices_request_id_never_returns_its_answer(rating_hub, mosquitto, sniffer):
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
        resident = kiosk.request(TakeTicket(service_id="social", request_id="kiosk-1-0001"))
    token = resident.outcome.ticket.public_id
    with HallClient(mosquitto.address, "test-hall", "kiosk-2") as hostile:
        copied = hostile.request(TakeTicket(service_id="social", request_id="kiosk-1-0001"))
        assert copied.ok and copied.outcome.ticket.number != resident.outcome.ticket.number
        assert copied.outcome.ticket.public_id != token
    with HallClient(mosquitto.address, "test-hall", "console") as console:
        # A counter's command reusing the kiosk's request id is its own request, not a "reused id".
        called = console.request(CallNext(window=1, request_id="kiosk-1-0001"))
        assert called.ok and called.outcome.ticket.number == resident.outcome.ticket.number
        assert console.request(Complete(window=1)).ok
    assert sniffer.topics_carrying(token) == {TOPICS.reply("kiosk-1")}

    # Ratings: the resident's rating request id, reused by another device, is that device's own request.
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as page:
        rated = page.rate(RatingSubmission(request_id="rate-0001", ticket_public_id=token,
                                           channel=RatingChannel.QR, level=Level(2)))
    assert rated.ok and rated.receipt.case_id
    with HallClient(mosquitto.address, "test-hall", "kiosk-2") as hostile:
        replayed = hostile.rate(RatingSubmission(request_id="rate-0001", ticket_public_id="not-the-token",
                                                 channel=RatingChannel.QR, level=Level(5)))
    assert not replayed.ok and replayed.receipt is None and replayed.refusal.reason == "rating.unknown_event"
    # The resident's own retry still gets the resident's receipt.
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as page:
        again = page.rate(RatingSubmission(request_id="rate-0001", ticket_public_id=token,
                                           channel=RatingChannel.QR, level=Level(2)))
    assert again.receipt == rated.receipt


def _case_of(hub, case_id: str):
    with hub.queue.lock:
        (case,) = store.cases_by_prefix(hub.queue.store.conn, case_id)
    return case


def test_a_case_step_names_a_real_case_and_real_staff(rating_hub, mosquitto, sniffer):
    ticket = issue_and_serve(mosquitto.address, window=1)
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as page:
        rated = page.rate(RatingSubmission(ticket_public_id=ticket.public_id, channel=RatingChannel.QR,
                                           level=Level(1), tags=["态度不好"]))
    case_id = rated.receipt.case_id
    assert case_id

    def step(case: str, by: str) -> CaseStepCommand:
        return CaseStepCommand(case_id=case, step=CaseStep.VERIFIED, by=by, note="查看录像")

    with HallClient(mosquitto.address, "test-hall", "console") as console:
        short = console.record_step(step("0", "anyone"))
        assert short.refusal.reason == "case.id_too_short" and "8" in short.refusal.zh
        nobody = console.record_step(step(case_id, "anyone"))
        assert nobody.refusal.reason == "case.unknown_staff" and "anyone" in nobody.refusal.zh
        missing = console.record_step(step("f" * 32, "a1"))
        assert missing.refusal.reason == "case.unknown"
        assert _case_of(rating_hub, case_id).state is CaseState.OPEN
        # A staff member of the hall, by the id prefix hall cases shows: recorded.
        verified = console.record_step(step(case_id[:8], "a1"))
        assert verified.ok and verified.update.by == "a1"
    # A manager logged in to the dashboard (its accounts are in the hub's data folder) may record steps too.
    accounts = UserStore(rating_hub.data_dir / "dashboard.sqlite3")
    accounts.add_user("wang", Role.MANAGER, "a-long-password")
    accounts.add_user("zhao", Role.VIEWER, "a-long-password")
    accounts.close()
    with HallClient(mosquitto.address, "test-hall", "console") as dashboard:
        viewer = dashboard.record_step(CaseStepCommand(case_id=case_id, step=CaseStep.RECTIFIED, by="zhao"))
        assert viewer.refusal.reason == "case.unknown_staff"
        manager = dashboard.record_step(CaseStepCommand(case_id=case_id, step=CaseStep.RECTIFIED, by="wang"))
        assert manager.ok and manager.update.by == "wang"
    assert _case_of(rating_hub, case_id).state is CaseState.RECTIFIED


def test_the_rating_rights_table_decides_who_rates_how():
    pad = Device(id="pad-9", kind=DeviceKind.PAD, window=2)
    loose_pad = Device(id="pad-x", kind=DeviceKind.PAD)
    kiosk = Device(id="kiosk-9", kind=DeviceKind.KIOSK)
    by_event = RatingSubmission(service_event_id="e1", channel=RatingChannel.PAD, level=Level(5))
    by_token = RatingSubmission(ticket_public_id="K7P2M9X4QA", channel=RatingChannel.QR, level=Level(5))
    assert may_hand_in(pad, by_event) is None and may_hand_in(kiosk, by_token) is None
    assert may_hand_in(loose_pad, by_event).key == "rating.pad_without_window"  # no window: none is its own
    assert may_hand_in(kiosk, by_event.model_copy(update={"channel": RatingChannel.KIOSK})).key == "rating.by_token_only"
    assert may_hand_in(pad, by_token.model_copy(update={"channel": RatingChannel.PAD})).key == "rating.by_event_only"
    for staff in (DeviceKind.COUNTER, DeviceKind.DISPLAY, DeviceKind.PRINTER):
        device = Device(id="staff-1", kind=staff, window=2)
        for submission in (by_event, by_token):
            assert may_hand_in(device, submission).key == "rating.channel_not_allowed"
    # The phone page rates by the token through channel qr, and nothing else.
    web = Device(id="web", kind=DeviceKind.WEB)
    assert may_hand_in(web, by_token) is None
    assert may_hand_in(web, by_token.model_copy(update={"channel": RatingChannel.KIOSK})).key == "rating.channel_not_allowed"
    assert may_hand_in(web, by_event.model_copy(update={"channel": RatingChannel.QR})).key == "rating.by_token_only"
    assert may_hand_in(web, by_event).key == "rating.channel_not_allowed"
    for kind, rights in RATING_RIGHTS.items():
        assert kind in (DeviceKind.PAD, DeviceKind.KIOSK, DeviceKind.WEB) and RatingChannel.DEFAULT not in rights
