"""`hall county broker-config`: on a real Mosquitto each hall writes only its own uplink and reads only its
own receipts, only ingest logins take shares of the uplink, and nobody can displace another login."""

from __future__ import annotations

import getpass
import time
import tomllib

import paho.mqtt.client as mqtt
import pytest
from hallkit.broker.testing import Mosquitto
from hallkit.contracts.mqtt import BrokerAddress, make_client
from hallkit.contracts.uplink import INGEST_FILTERS, UpKind, UpTopics, shared

from hallkit.cli import main
from hallkit.testing import free_port
from tests.broker.test_hub import wait_for


class County:
    def __init__(self, tmp_path) -> None:
        self.port = free_port()
        out = tmp_path / "county-broker"
        assert main(["county", "broker-config", "--county", "c1", "--hall", "h1", "--hall", "h2", "--out", str(out),
                     "--port", str(self.port), "--bind", "127.0.0.1", "--workers", "2"]) == 0
        conf = out / "mosquitto.conf"
        text = conf.read_text()
        assert "max_queued_messages 0" in text and "max_queued_bytes 0" in text
        conf.write_text(text + f"user {getpass.getuser()}\n")
        self.broker = Mosquitto(tmp_path / "run", port=self.port, conf=conf).start()
        self.logins = tomllib.loads((out / "credentials.toml").read_text())["credentials"]
        self.clients: list[mqtt.Client] = []

    def login(self, user: str) -> BrokerAddress:
        return BrokerAddress(host="127.0.0.1", port=self.port, username=user, password=self.logins[user])

    def connect(self, user: str, client_id: str | None = None, topics: list[str] = ()) -> Session:
        """``user`` connecting as ``client_id`` (hand-made: paho through make_client always sends the login)."""
        session = Session(self.login(user), client_id or user)
        self.clients.append(session.client)
        session.start(topics)
        return session

    def stop(self) -> None:
        for client in self.clients:
            client.loop_stop()
        self.broker.stop()


class Session:
    def __init__(self, address: BrokerAddress, client_id: str) -> None:
        self.address = address
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(address.username, address.password)
        self.client.reconnect_delay_set(30, 60)  # a displaced or refused client must not come straight back
        self.connacks: list[str] = []
        self.subacks: list[int] = []
        self.received: list[str] = []
        self.client.on_connect = lambda c, u, f, reason, p: self.connacks.append(str(reason))
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subacks.extend(int(x.value) for x in codes)
        self.client.on_message = lambda c, u, m: self.received.append(m.topic)

    def start(self, topics: list[str]) -> None:
        self.client.connect(self.address.host, self.address.port)
        self.client.loop_start()
        wait_for(lambda: bool(self.connacks), timeout=5)
        for topic in topics:
            count = len(self.subacks)
            self.client.subscribe(topic, 1)
            wait_for(lambda count=count: len(self.subacks) > count, timeout=5)


@pytest.fixture
def county(tmp_path):
    county = County(tmp_path)
    yield county
    county.stop()


def test_halls_write_only_their_own_uplink_and_nothing_is_capped(county):
    ingest = county.connect("ingest-1", topics=[shared(f) for f in INGEST_FILTERS])
    assert ingest.subacks == [1, 1]
    own, foreign = UpTopics("c1", "h1").up(UpKind.RATING), UpTopics("c1", "h2").up(UpKind.RATING)
    spoofer = county.connect("h1")
    spoofer.client.publish(foreign, b"{}", qos=1)  # h1 pretending to be h2: dropped (its connection may go too)
    time.sleep(0.5)
    spoofer.client.loop_stop()
    hall = county.connect("h1")
    hall.client.publish(own, b"{}", qos=1).wait_for_publish(5)
    wait_for(lambda: own in ingest.received)
    time.sleep(0.5)
    assert ingest.received == [own]


def test_a_hall_cannot_take_a_share_of_the_uplink_nor_read_it(county):
    workers = [county.connect(f"ingest-{n}", topics=[shared(f) for f in INGEST_FILTERS]) for n in (1, 2)]
    hijacker = county.connect("h2", topics=[shared(INGEST_FILTERS[0]), INGEST_FILTERS[0],
                                            shared(INGEST_FILTERS[0], "other")])
    assert hijacker.subacks == [0x80, 0x80, 0x80]  # refused in the SUBACK, not silently starved
    sender = county.connect("h1")
    up = UpTopics("c1", "h1").up(UpKind.RATING)
    for _ in range(40):
        sender.client.publish(up, b"{}", qos=1).wait_for_publish(5)
    wait_for(lambda: sum(len(w.received) for w in workers) == 40)
    time.sleep(0.5)
    assert sum(len(w.received) for w in workers) == 40 and hijacker.received == []


def test_nobody_displaces_another_login(county):
    ingest = county.connect("ingest-1", topics=[shared(f) for f in INGEST_FILTERS])
    h1 = county.connect("h1")
    for client_id in ("ingest-1", "h1", "county-ingest-1", "hall-h1"):
        intruder = county.connect("h2", client_id)
        assert intruder.connacks[0] == "Not authorized"
    assert ingest.client.is_connected() and h1.client.is_connected()
    # The login's own client id is the only one it may use, and paho sends exactly that.
    assert make_client(county.login("h2"), "anything")._client_id == b"h2"
    up = UpTopics("c1", "h1").up(UpKind.RATING)
    h1.client.publish(up, b"{}", qos=1).wait_for_publish(5)
    wait_for(lambda: up in ingest.received)


def test_only_ingest_writes_receipts_and_a_hall_reads_only_its_own(county):
    ingest = county.connect("ingest-1")
    h1 = county.connect("h1", topics=[UpTopics("c1", "h1").receipt])
    h2 = county.connect("h2", topics=[UpTopics("c1", "h2").receipt, UpTopics("c1", "h1").receipt])
    assert h1.subacks == [1] and h2.subacks == [1, 0x80]
    forger = county.connect("h2", topics=[])  # displaces h2's own session: its login, its client id
    forger.client.publish(UpTopics("c1", "h1").receipt, b"forged", qos=1)
    time.sleep(0.5)
    forger.client.loop_stop()
    h2 = county.connect("h2", topics=[UpTopics("c1", "h2").receipt])
    ingest.client.publish(UpTopics("c1", "h1").receipt, b"{}", qos=1).wait_for_publish(5)
    ingest.client.publish(UpTopics("c1", "h2").receipt, b"{}", qos=1).wait_for_publish(5)
    wait_for(lambda: h1.received and h2.received)
    time.sleep(0.5)
    assert h1.received == [UpTopics("c1", "h1").receipt]
    assert h2.received == [UpTopics("c1", "h2").receipt]
