"""`hall county broker-config`: a real Mosquitto with it lets each hall write only its own uplink."""

from __future__ import annotations

import getpass
import threading
import time
import tomllib

from broker.mqtt import BrokerAddress, make_client
from county.contract import INGEST_FILTERS, UpKind, UpTopics, shared
from hallkit.cli import main
from tests.broker.test_hub import wait_for
from tests.brokers import Mosquitto, free_port


def test_halls_write_only_their_own_uplink_and_nothing_is_capped(tmp_path):
    port = free_port()
    out = tmp_path / "county-broker"
    assert main(["county", "broker-config", "--county", "c1", "--hall", "h1", "--hall", "h2", "--out", str(out),
                 "--port", str(port), "--bind", "127.0.0.1"]) == 0
    conf = out / "mosquitto.conf"
    text = conf.read_text()
    assert "max_queued_messages 0" in text and "max_queued_bytes 0" in text
    conf.write_text(text + f"user {getpass.getuser()}\n")
    broker = Mosquitto(tmp_path / "run", port=port, conf=conf).start()
    logins = tomllib.loads((out / "credentials.toml").read_text())["credentials"]

    def login(user: str) -> BrokerAddress:
        return BrokerAddress(host="127.0.0.1", port=port, username=user, password=logins[user])

    received: list[str] = []
    subscribed = threading.Event()
    ingest = make_client(login("ingest"), "county-ingest-test")
    ingest.on_message = lambda c, u, m: received.append(m.topic)
    ingest.on_subscribe = lambda *_: subscribed.set()
    ingest.on_connect = lambda c, *_: c.subscribe([(shared(f), 1) for f in INGEST_FILTERS])
    ingest.connect("127.0.0.1", port)
    ingest.loop_start()
    assert subscribed.wait(5)
    own, foreign = UpTopics("c1", "h1").up(UpKind.RATING), UpTopics("c1", "h2").up(UpKind.RATING)

    def connected_as(user: str, client_id: str):
        client = make_client(login(user), client_id)
        client.connect("127.0.0.1", port)
        client.loop_start()
        wait_for(client.is_connected, timeout=5)  # its own login works
        return client

    # h1 pretending to be h2: the broker drops it (and may drop h1's connection with it).
    spoofer = connected_as("h1", "h1-spoofing")
    spoofer.publish(foreign, b"{}", qos=1)
    time.sleep(0.5)
    spoofer.loop_stop()
    hall = connected_as("h1", "h1-forwarder")
    try:
        hall.publish(own, b"{}", qos=1).wait_for_publish(5)
        wait_for(lambda: own in received)
        time.sleep(0.5)
        assert received == [own]
    finally:
        hall.loop_stop()
        ingest.loop_stop()
        broker.stop()
