"""The embedded default broker (amqtt) carries the hall's contract on MQTT 3.1.1, with the hall's logins and ACL."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from hallkit.broker.client import HallClient, read_hall
from hallkit.broker.embedded import EmbeddedBroker, hall_logins
from hallkit.broker.hub import Hub
from hallkit.contracts.hall import CommandRequest, DeviceState, DeviceStatus, Topics
from hallkit.contracts.mqtt import BrokerAddress, make_client, parse_broker_url

from hallkit.config import parse_config
from hallkit.queue.models import CallNext, Pause, TakeTicket
from hallkit.testing import HALL_WITH_DEVICES, free_port
from tests.broker.test_hub import wait_for

CROWD = 8
HALL = HALL_WITH_DEVICES + "".join(f'\n[[devices]]\nid = "screen-{i}"\nkind = "display"\n' for i in range(CROWD))
TOPICS = Topics("test-hall")


class Embedded:
    def __init__(self, folder) -> None:
        port = free_port()
        self.config = parse_config(HALL)
        self.logins, access = hall_logins(self.config, folder, port)
        self.broker = EmbeddedBroker(access, port=port)
        self.address = parse_broker_url(self.broker.url)

    def login(self, user: str) -> BrokerAddress:
        return self.address.as_login(user, self.logins.credentials[user])


@pytest.fixture
def embedded(tmp_path):
    broker = Embedded(tmp_path / "broker")
    broker.broker.start()
    yield broker
    broker.broker.stop(timeout=1)  # amqtt waits for clients that never say goodbye


@pytest.fixture
def hub(embedded, tmp_path):
    hub = Hub(embedded.config, embedded.login("hub"), tmp_path / "data", "normal")
    hub.start()
    yield hub
    hub.stop()


def connected(address: BrokerAddress, client_id: str) -> tuple[mqtt.Client, list[str]]:
    """A raw client (not the project's link) and the CONNACK reasons it got."""
    reasons: list[str] = []
    client = make_client(address, client_id)
    client.reconnect_delay_set(30, 60)  # a refused client must not keep knocking during the test
    client.on_connect = lambda c, u, f, reason, p: reasons.append(str(reason))
    client.connect(address.host, address.port)
    client.loop_start()
    wait_for(lambda: bool(reasons), timeout=5)
    return client, reasons


def test_hub_serves_over_the_embedded_broker(embedded, hub):
    with HallClient(embedded.login("kiosk-1"), "test-hall", "kiosk-1") as kiosk:
        reply = kiosk.request(TakeTicket(service_id="social"))
    assert reply.ok and reply.outcome.ticket.number == "A001"
    wait_for(lambda: (q := read_hall(embedded.login("console"), "test-hall", 1.0).queue) is not None
             and q.waiting_total == 1)


def test_anonymous_and_wrong_passwords_are_refused(embedded, hub):
    anonymous, reasons = connected(embedded.address, "anyone")
    assert reasons[0] == "Not authorized" and not anonymous.is_connected()
    wrong, reasons = connected(embedded.address.as_login("console", "nope"), "console")
    assert reasons[0] == "Bad user name or password"
    for client in (anonymous, wrong):
        client.loop_stop()
    assert hub.connected


def test_a_login_cannot_use_another_client_id_nor_knock_the_hub_off(embedded, hub):
    # paho would send the login's name; a hand-made client could send any id: build one.
    address = embedded.login("kiosk-1")
    spoofer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hub", protocol=mqtt.MQTTv311)
    spoofer.username_pw_set(address.username, address.password)
    reasons: list[str] = []
    spoofer.on_connect = lambda c, u, f, reason, p: reasons.append(str(reason))
    spoofer.connect(address.host, address.port)
    spoofer.loop_start()
    wait_for(lambda: bool(reasons), timeout=5)
    spoofer.loop_stop()
    assert reasons[0] == "Client identifier not valid"
    # The hub never noticed: it is connected and still answers.
    assert hub.connected
    with HallClient(embedded.login("console"), "test-hall", "console") as console:
        assert console.request(TakeTicket(service_id="social")).ok


def test_a_device_cannot_forge_statuses_nor_command_as_another(embedded, hub):
    pad = embedded.login("pad-2")
    seen: dict[str, DeviceStatus] = {}
    watcher, _ = connected(embedded.login("console"), "console")
    watcher.on_message = lambda c, u, m: seen.__setitem__(m.topic, DeviceStatus.model_validate_json(m.payload))
    watcher.subscribe([(TOPICS.hub_status, 1), (TOPICS.device_status("kiosk-1"), 1)])
    wait_for(lambda: TOPICS.hub_status in seen)
    forger, _ = connected(pad, "pad-2")
    fake = DeviceStatus(device="hub", state=DeviceState.OFFLINE, session=10**9, kind="hub", version="x")
    forger.publish(TOPICS.hub_status, fake.model_dump_json(), qos=1, retain=True).wait_for_publish(5)
    forger.publish(TOPICS.device_status("kiosk-1"), fake.model_copy(update={"device": "kiosk-1"}).model_dump_json(),
                   qos=1, retain=True).wait_for_publish(5)
    # A pause of window 1 sent on the console's command topic, by pad-2.
    before = hub.accepted + sum(hub.refusals.values())
    pause = CommandRequest(device="console", reply_to=TOPICS.reply("pad-2"), command=Pause(window=1))
    forger.publish(TOPICS.command("console"), pause.model_dump_json(), qos=1).wait_for_publish(5)
    with HallClient(pad, "test-hall", "pad-2") as own:  # pad-2's own request goes through: the link works
        assert own.request(CallNext(window=2)) is not None
    time.sleep(0.5)
    assert hub.accepted + sum(hub.refusals.values()) == before + 1  # only pad-2's own request
    assert seen[TOPICS.hub_status].state is DeviceState.ONLINE
    assert TOPICS.device_status("kiosk-1") not in seen
    view = read_hall(embedded.login("console"), "test-hall", 1.0)
    assert view.hub is not None and view.hub.state is DeviceState.ONLINE
    assert view.queue is not None and not any(w.paused for w in view.queue.windows)
    for client in (watcher, forger):
        client.loop_stop()


def test_a_client_gets_only_the_retained_messages_it_subscribed_to(embedded):
    owner, _ = connected(embedded.login("pad-2"), "pad-2")
    owner.subscribe(TOPICS.device_status("pad-2"), qos=1)
    owner.publish(TOPICS.device_status("pad-2"), b"{}", qos=1, retain=True).wait_for_publish(5)
    received: list[str] = []
    ready = threading.Event()
    other = make_client(embedded.login("display-1"), "display-1")
    other.on_message = lambda c, u, m: received.append(m.topic)
    other.on_subscribe = lambda *_: ready.set()
    other.on_connect = lambda c, *_: c.subscribe(TOPICS.queue_state, qos=1)
    # Several clients connecting at once used to break amqtt's replay of retained messages.
    crowd = [make_client(embedded.login(f"screen-{i}"), f"screen-{i}") for i in range(CROWD)]
    for client in crowd:
        client.connect_async(embedded.address.host, embedded.address.port)
        client.loop_start()
    other.connect(embedded.address.host, embedded.address.port)
    other.loop_start()
    assert ready.wait(5)
    wait_for(lambda: all(c.is_connected() for c in crowd))
    time.sleep(0.5)
    assert received == []  # amqtt 0.12.1 would hand it pad-2's retained status
    for client in (owner, other, *crowd):
        client.loop_stop()


def test_a_stopped_broker_frees_its_port_while_a_client_keeps_sending(tmp_path):
    """amqtt closes its listener last, after every session; a client that keeps publishing (a hall
    resending its uplink) held the port for minutes and a restart on it failed. Now it is free at once."""
    broker = Embedded(tmp_path / "broker")
    broker.broker.start()
    sender = make_client(broker.login("kiosk-1"), "kiosk-1")
    sender.connect(broker.address.host, broker.address.port)
    sender.loop_start()
    sending = threading.Event()
    sending.set()

    def keep_sending() -> None:
        while sending.is_set():
            sender.publish(TOPICS.device_status("kiosk-1"), b"{}", qos=1)
            time.sleep(0.001)

    thread = threading.Thread(target=keep_sending, daemon=True)
    thread.start()
    try:
        broker.broker.stop(timeout=0.5)
        again = EmbeddedBroker(hall_logins(broker.config, tmp_path / "broker", broker.broker.port)[1],
                               port=broker.broker.port)
        again.start()  # raises "port … is already in use" when the old listener still holds it
        again.stop(timeout=1)
    finally:
        sending.clear()
        thread.join(timeout=5)
        sender.loop_stop()
        sender.disconnect()
