"""The embedded default broker (amqtt) carries the hall's contract on MQTT 3.1.1."""

from __future__ import annotations

import threading
import time

import pytest

from broker.client import HallClient, read_hall
from broker.embedded import EmbeddedBroker
from broker.hub import Hub
from broker.mqtt import make_client, parse_broker_url
from hallkit.config import parse_config
from hallkit.queue.models import TakeTicket
from tests.broker.test_hub import HALL_WITH_DEVICES, wait_for
from tests.brokers import free_port


@pytest.fixture
def embedded():
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    yield broker
    broker.stop(timeout=1)  # amqtt waits for clients that never say goodbye


def test_hub_serves_over_the_embedded_broker(embedded, tmp_path):
    address = parse_broker_url(embedded.url)
    hub = Hub(parse_config(HALL_WITH_DEVICES), address, tmp_path / "data", "normal")
    hub.start()
    try:
        with HallClient(address, "test-hall", "kiosk-1") as kiosk:
            reply = kiosk.request(TakeTicket(service_id="social"))
        assert reply.ok and reply.outcome.ticket.number == "A001"
        wait_for(lambda: (q := read_hall(address, "test-hall", 1.0).queue) is not None and q.waiting_total == 1)
    finally:
        hub.stop()


def test_a_client_gets_only_the_retained_messages_it_subscribed_to(embedded):
    address = parse_broker_url(embedded.url)
    owner = make_client(address, "owner")
    owner.connect(address.host, address.port)
    owner.loop_start()
    owner.subscribe("hall/v1/x/dev/pad-1/screen", qos=1)
    owner.publish("hall/v1/x/dev/pad-1/screen", b"screen", qos=1, retain=True).wait_for_publish(5)
    received: list[str] = []
    ready = threading.Event()
    other = make_client(address, "other")
    other.on_message = lambda c, u, m: received.append(m.topic)
    other.on_subscribe = lambda *_: ready.set()
    other.on_connect = lambda c, *_: c.subscribe("hall/v1/x/state/queue", qos=1)
    # Several clients connecting at once used to break amqtt's replay of retained messages.
    crowd = [make_client(address, f"crowd-{i}") for i in range(8)]
    for client in crowd:
        client.connect_async(address.host, address.port)
        client.loop_start()
    other.connect(address.host, address.port)
    other.loop_start()
    assert ready.wait(5)
    time.sleep(0.5)
    assert received == []  # amqtt 0.12.1 would hand it the pad's retained screen
    assert all(c.is_connected() for c in crowd)
    for client in (owner, other, *crowd):
        client.loop_stop()
