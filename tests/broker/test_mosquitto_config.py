"""`hall broker config` writes a Mosquitto setup that a real Mosquitto accepts and enforces."""

from __future__ import annotations

import getpass
import time
import tomllib

import paho.mqtt.client as mqtt
import pytest
from hallkit.broker.client import HallClient, HubError
from hallkit.broker.hub import Hub
from hallkit.broker.testing import Mosquitto
from hallkit.contracts.hall import Topics
from hallkit.contracts.mqtt import BrokerAddress, make_client

from hallkit.cli import main
from hallkit.config import parse_config
from hallkit.queue.models import TakeTicket
from hallkit.testing import HALL_WITH_DEVICES, free_port
from tests.broker.test_hub import wait_for


@pytest.fixture
def secured(tmp_path):
    config_file = tmp_path / "hall.toml"
    config_file.write_text(HALL_WITH_DEVICES, "utf-8")
    port = free_port()
    out = tmp_path / "broker"
    assert main(["broker", "config", "--config", str(config_file), "--out", str(out), "--port", str(port),
                 "--bind", "127.0.0.1"]) == 0
    conf = out / "mosquitto.conf"
    text = conf.read_text()
    assert "max_queued_messages 100000" in text and "persistence true" in text and "allow_anonymous false" in text
    conf.write_text(text + f"user {getpass.getuser()}\n")
    broker = Mosquitto(tmp_path / "run", port=port, conf=conf).start()
    credentials = tomllib.loads((out / "credentials.toml").read_text())["credentials"]
    yield broker, credentials
    broker.stop()


def login(broker, credentials, user: str) -> BrokerAddress:
    return BrokerAddress(host="127.0.0.1", port=broker.port, username=user, password=credentials[user])


def test_devices_log_in_and_publish_only_under_their_own_id(secured, tmp_path):
    broker, credentials = secured
    assert set(credentials) >= {"hub", "kiosk-1", "console", "pad-2", "display-1"}
    hub = Hub(parse_config(HALL_WITH_DEVICES), login(broker, credentials, "hub"), tmp_path / "data", "normal")
    hub.start()
    try:
        with HallClient(login(broker, credentials, "kiosk-1"), "test-hall", "kiosk-1") as kiosk:
            assert kiosk.request(TakeTicket(service_id="social")).ok
        # kiosk-1 pretending to be the console: the broker drops it, the hub never sees it.
        spoofer = make_client(login(broker, credentials, "kiosk-1"), "spoof")
        spoofer.connect("127.0.0.1", broker.port)
        spoofer.loop_start()
        before = hub.accepted + sum(hub.refusals.values())
        spoofer.publish(Topics("test-hall").command("console"), b"{}", qos=1).wait_for_publish(5)
        time.sleep(1.0)
        assert hub.accepted + sum(hub.refusals.values()) == before
        spoofer.loop_stop()
        # A wrong password is refused by the broker.
        wrong = BrokerAddress(host="127.0.0.1", port=broker.port, username="kiosk-1", password="nope")
        with pytest.raises(HubError):
            HallClient(wrong, "test-hall", "kiosk-1").connect(timeout=2)
    finally:
        hub.stop()


def test_password_file_format():
    from hallkit.broker.mosquitto import password_line

    line = password_line("kiosk-1", "secret", salt=b"0123456789ab")
    user, rest = line.split(":", 1)
    assert user == "kiosk-1" and rest.startswith("$7$101$")
    assert len(rest.split("$")) == 5


def test_a_device_using_the_hubs_client_id_cannot_knock_it_off(secured, tmp_path):
    broker, credentials = secured
    assert "use_username_as_clientid true" in broker.conf.read_text()
    hub = Hub(parse_config(HALL_WITH_DEVICES), login(broker, credentials, "hub"), tmp_path / "data", "normal")
    hub.start()
    try:
        with HallClient(login(broker, credentials, "console"), "test-hall", "console") as console:
            for client_id in ("hub", "hub-test-hall"):
                # Hand-made: paho through make_client would send the login's own name.
                intruder = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
                address = login(broker, credentials, "kiosk-1")
                intruder.username_pw_set(address.username, address.password)
                intruder.connect("127.0.0.1", broker.port)
                intruder.loop_start()
                wait_for(intruder.is_connected, timeout=5)  # it may log in, as kiosk-1 only
                # The hub is still there and answers every request while the intruder is connected.
                answers = [console.request(TakeTicket(service_id="social")) for _ in range(10)]
                assert all(a.ok for a in answers)
                intruder.disconnect()
                intruder.loop_stop()
        assert hub.connected and hub.client.drops == 0
    finally:
        hub.stop()
