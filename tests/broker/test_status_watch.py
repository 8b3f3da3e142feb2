"""The hub reads device statuses on a connection and login of their own (its requests never wait
behind a flood of them), through broker restarts, and falls back to its request connection on a
broker configured before that login existed."""

from __future__ import annotations

import getpass
import logging
import time

import paho.mqtt.client as mqtt
import pytest
from hallkit.broker.hub import Hub
from hallkit.broker.mosquitto import HUB_STATUS_USER, hub_status_password
from hallkit.broker.testing import Mosquitto
from hallkit.contracts.hall import DeviceState, DeviceStatus, Topics
from hallkit.contracts.mqtt import BrokerAddress, make_client
from hallkit.contracts.uplink import DeviceTelemetry
from hallkit.uplink.outbox import Outbox
from hallkit.uplink.testing import hall_config, hall_toml, unreachable_url

from hallkit.cli import main
from hallkit.testing import free_port
from tests.broker.test_hub import wait_for

TOPICS = Topics("test-hall")


def publish_status(address: BrokerAddress, device: str, paper: str) -> None:
    client = make_client(address, device)
    client.connect(address.host, address.port)
    client.loop_start()
    status = DeviceStatus(device=device, state=DeviceState.ONLINE, session=1, kind="printer", version="1",
                          detail={"paper": paper})
    client.publish(TOPICS.device_status(device), status.model_dump_json(), qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def papers(hub: Hub) -> list[str]:
    with hub.queue.lock:
        found = hub.queue.store.conn.execute("SELECT body FROM outbox WHERE kind = 'telemetry' ORDER BY seq").fetchall()
    return [DeviceTelemetry.model_validate_json(body).paper or "" for (body,) in found]


def telemetry_hub(address: BrokerAddress, data, lockout: float = 30.0) -> Hub:
    config = hall_config(unreachable_url())
    assert config.upstream is not None
    return Hub(config, address, data, "normal", parts=[Outbox(config, config.upstream)], lockout=lockout)


@pytest.fixture
def secured(tmp_path):
    """Mosquitto with the configuration `hall broker config` writes, and the logins it made."""
    config_file = tmp_path / "hall.toml"
    config_file.write_text(hall_toml(unreachable_url()), "utf-8")
    out = tmp_path / "broker"
    port = free_port()
    assert main(["broker", "config", "--config", str(config_file), "--out", str(out), "--port", str(port),
                 "--bind", "127.0.0.1"]) == 0
    conf = out / "mosquitto.conf"
    conf.write_text(conf.read_text() + f"user {getpass.getuser()}\n")
    broker = Mosquitto(tmp_path / "run", port=port, conf=conf).start()
    yield broker, out
    broker.stop()


def login(broker: Mosquitto, out, user: str) -> BrokerAddress:
    return BrokerAddress(host="127.0.0.1", port=broker.port, username=user,
                         password=(out / "secrets" / user).read_text().strip())


def test_statuses_come_on_the_hubs_read_only_status_login(secured, tmp_path):
    broker, out = secured
    hub = telemetry_hub(login(broker, out, "hub"), tmp_path / "data")
    hub.start()
    try:
        wait_for(hub.status_watch.subscribed.is_set)
        publish_status(login(broker, out, "printer-1"), "printer-1", "near_end")
        wait_for(lambda: papers(hub)[-1:] == ["near_end"])
        assert "as hub-status" in (tmp_path / "run" / "mosquitto.log").read_text()
    finally:
        hub.stop()
    # The login reads statuses and nothing else: not the queue, not requests.
    address = BrokerAddress(host="127.0.0.1", port=broker.port, username=HUB_STATUS_USER,
                            password=hub_status_password(login(broker, out, "hub").password or ""))
    seen: list[str] = []
    reader = make_client(address, HUB_STATUS_USER)
    reader.on_message = lambda _c, _u, message: seen.append(message.topic)
    reader.connect(address.host, address.port)
    reader.loop_start()
    reader.subscribe("hall/#", 0)
    publish_status(login(broker, out, "printer-1"), "printer-1", "out")
    wait_for(lambda: TOPICS.device_status("printer-1") in seen)
    assert all(topic.endswith("/status") and "/dev/" in topic for topic in seen), seen
    reader.disconnect()
    reader.loop_stop()


def test_a_broker_without_the_status_login_still_brings_statuses_and_says_why(secured, tmp_path, caplog):
    broker, out = secured
    passwords = out / "passwords"
    passwords.write_text("".join(line + "\n" for line in passwords.read_text().splitlines()
                                 if not line.startswith(f"{HUB_STATUS_USER}:")))
    broker.restart()
    hub = telemetry_hub(login(broker, out, "hub"), tmp_path / "data")
    with caplog.at_level(logging.WARNING, logger="hallkit.hub"):
        hub.start()
        try:
            wait_for(lambda: "share the request connection" in caplog.text)
            assert "refused login hub-status" in caplog.text
            wait_for(lambda: hub.connected)
            publish_status(login(broker, out, "printer-1"), "printer-1", "out")
            wait_for(lambda: papers(hub)[-1:] == ["out"])
        finally:
            hub.stop()


def test_statuses_keep_coming_after_the_broker_restarts(mosquitto, tmp_path):
    hub = telemetry_hub(mosquitto.address, tmp_path / "data")
    hub.start()
    try:
        wait_for(hub.status_watch.subscribed.is_set)
        publish_status(mosquitto.address, "printer-1", "ok")
        wait_for(lambda: papers(hub)[-1:] == ["ok"])
        mosquitto.restart()
        wait_for(hub.status_watch.subscribed.is_set, timeout=30)
        publish_status(mosquitto.address, "printer-1", "out")
        wait_for(lambda: papers(hub)[-1:] == ["out"], timeout=30)
    finally:
        hub.stop()
    assert not hub.status_watch.subscribed.is_set()


def test_garbage_from_the_broker_drops_the_link_not_the_hub(tmp_path, caplog):
    """A 'broker' that answers the status login with bytes that are no MQTT: the watch says so
    and tries again; nothing raises out of it."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(1024)
        conn.sendall(b"\x20\xff\xff\xff\xff\x01")  # CONNACK with a five-byte length
        accepted.set()
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    from hallkit.broker.status_watch import StatusWatch

    refused: list[str] = []
    watch = StatusWatch(BrokerAddress(host="127.0.0.1", port=port), "hub-x-status", ["hall/#"],
                        on_statuses=lambda _n: None, on_refused=refused.append)
    with caplog.at_level(logging.WARNING, logger="hallkit.hub.statuses"):
        watch.start()
        wait_for(accepted.is_set)
        wait_for(lambda: "remaining length longer than four bytes" in caplog.text)
        watch.stop()
    server.close()
    assert refused == [] and not watch.subscribed.is_set()
    assert mqtt.topic_matches_sub("hall/#", "hall/v1/x")  # the filter the watch was given is a real one


def test_the_embedded_broker_lets_the_hub_watch_statuses_under_its_status_login(tmp_path):
    from hallkit.broker.embedded import EmbeddedBroker, hall_logins
    from hallkit.contracts.mqtt import parse_broker_url

    config = hall_config(unreachable_url())
    port = free_port()
    logins, access = hall_logins(config, tmp_path / "broker", port)
    broker = EmbeddedBroker(access, port=port)
    broker.start()
    address = parse_broker_url(broker.url)
    assert config.upstream is not None
    hub = Hub(config, address.as_login("hub", logins.credentials["hub"]), tmp_path / "data", "normal",
              parts=[Outbox(config, config.upstream)])
    hub.start()
    try:
        wait_for(hub.status_watch.subscribed.is_set)
        publish_status(address.as_login("printer-1", logins.credentials["printer-1"]), "printer-1", "near_end")
        wait_for(lambda: papers(hub)[-1:] == ["near_end"])
    finally:
        hub.stop()
        broker.stop(timeout=1)


def test_a_flooding_device_is_muted_and_the_others_are_still_heard(mosquitto, tmp_path):
    import socket

    from hallkit.broker import wire

    hub = telemetry_hub(mosquitto.address, tmp_path / "data")
    hub.start()
    try:
        wait_for(hub.status_watch.subscribed.is_set)
        topic = TOPICS.device_status("display-1")
        flood = b"".join(wire.publish(topic, DeviceStatus(
            device="display-1", state=DeviceState.ONLINE, session=1, kind="display", version="1",
            detail={"paper": str(n)}).model_dump_json().encode(), retain=True) for n in range(3000))
        with socket.create_connection(("127.0.0.1", mosquitto.port)) as sock:
            sock.sendall(wire.connect("display-1", 60))
            sock.recv(4)
            sock.sendall(flood)
            wait_for(lambda: hub.status_watch.mutes >= 1)
            publish_status(mosquitto.address, "printer-1", "near_end")  # while display-1 is held back
            # The hub's status names it (for `hall status` and the dashboard's alert) for a minute.
            assert hub.status_watch.flooding(time.monotonic()) == ["display-1"]
            wait_for(lambda: "near_end" in papers(hub), timeout=5)
            sock.sendall(wire.DISCONNECT)
        wait_for(lambda: papers(hub)[-1:] in (["2999"], ["near_end"]) and "2999" in papers(hub), timeout=15)
        # This broker has no dynamic-security plugin: the hub's request to disconnect display-1 went
        # nowhere, and cost the hub nothing.
        assert hub.disconnects["display-1"] >= 1 and hub.client.drops == 0 and hub.connected
    finally:
        hub.stop()


def flood(broker: Mosquitto, device: BrokerAddress, count: int) -> int:
    """``device`` logs in and sends ``count`` statuses at QoS 1 in one go; the PUBACKs it read
    before the broker ended the connection (or all of them)."""
    import socket

    from hallkit.broker import wire

    assert device.username is not None
    topic = TOPICS.device_status(device.username)
    packets = b"".join(wire.publish(topic, DeviceStatus(
        device=device.username, state=DeviceState.ONLINE, session=1, kind="display", version="1",
        detail={"paper": str(n)}).model_dump_json().encode(), n % 65535 + 1, retain=True) for n in range(count))
    acknowledged = 0
    with socket.create_connection(("127.0.0.1", broker.port)) as sock:
        sock.sendall(wire.connect(device.username, 60, device.username, device.password))
        assert sock.recv(4) == bytes((0x20, 2, 0, 0))
        try:
            sock.sendall(packets)
            while chunk := sock.recv(65536):  # PUBACKs, until the broker closes the connection
                acknowledged += len(chunk) // 4
        except ConnectionError:
            pass  # reset by the broker with the flood still unread: the same answer
    return acknowledged


def logs_in(broker: Mosquitto, device: BrokerAddress) -> bool:
    import socket

    from hallkit.broker import wire

    with socket.create_connection(("127.0.0.1", broker.port)) as sock:
        sock.sendall(wire.connect(device.username or "", 60, device.username, device.password))
        accepted = sock.recv(4) == bytes((0x20, 2, 0, 0))
        if accepted:
            sock.sendall(wire.DISCONNECT)
        return accepted


def plugin_logins(out) -> list[object]:
    import json

    return json.loads((out / "dynamic-security.json").read_text())["clients"]


def test_the_hall_broker_keeps_a_flooding_device_out_a_while_then_lets_it_in(secured, tmp_path):
    """With the configuration `hall broker config` writes, the broker ends the flooding device's
    connection at the hub's request, long before its flood is through, and refuses its own
    password while the hub keeps it out; then the device logs in again, the plugin keeps no login
    behind, and the hub never lost its own connections."""
    broker, out = secured
    hub = telemetry_hub(login(broker, out, "hub"), tmp_path / "data", lockout=3.0)
    hub.start()
    try:
        wait_for(lambda: hub.connected and hub.status_watch.subscribed.is_set())
        device = login(broker, out, "display-1")
        acknowledged = flood(broker, device, 20_000)
        assert acknowledged < 20_000, acknowledged  # cut off (often before a single PUBACK is read)
        assert hub.disconnects["display-1"] == 1
        assert "display-1 been disconnected by administrative action" in (broker.folder / "mosquitto.log").read_text()
        assert not logs_in(broker, device)  # kept out: its own password refused
        assert logs_in(broker, login(broker, out, "printer-1"))  # nobody else
        wait_for(lambda: logs_in(broker, device), timeout=20)
        wait_for(lambda: plugin_logins(out) == [])
        publish_status(device, "display-1", "calm")
        wait_for(lambda: papers(hub)[-1:] == ["calm"], timeout=15)
        assert hub.client.drops == 0 and hub.status_watch.connection.drops == 0
    finally:
        hub.stop()


def test_a_hub_that_stops_lets_in_the_device_it_kept_out_and_one_that_died_does_at_its_start(secured, tmp_path):
    broker, out = secured
    device = login(broker, out, "display-1")
    hub = telemetry_hub(login(broker, out, "hub"), tmp_path / "data", lockout=600.0)
    hub.start()
    try:
        wait_for(lambda: hub.connected and hub.status_watch.subscribed.is_set())
        flood(broker, device, 20_000)
        wait_for(lambda: not logs_in(broker, device))
    finally:
        hub.stop()
    assert logs_in(broker, device) and plugin_logins(out) == []  # a clean stop keeps no one out
    # A hub killed while it kept a device out: the lock-out stays in the plugin until a hub starts.
    from hallkit.broker.mosquitto import DYNSEC_CONTROL, lock_out_login

    admin = make_client(login(broker, out, "hub"), "hub")
    admin.connect("127.0.0.1", broker.port)
    admin.loop_start()
    admin.publish(DYNSEC_CONTROL, lock_out_login("display-1"), qos=1).wait_for_publish(5)
    admin.disconnect()
    admin.loop_stop()
    wait_for(lambda: not logs_in(broker, device))
    hub = telemetry_hub(login(broker, out, "hub"), tmp_path / "data")
    hub.start()
    try:
        wait_for(lambda: logs_in(broker, device))
        assert plugin_logins(out) == []
    finally:
        hub.stop()


def test_a_chatty_hall_does_not_make_the_broker_drop_the_watch(mosquitto):
    """The broker drops a client it has heard nothing from in 1.5 keep-alives, however much it sends
    it: the watch pings on what it sent, not on what it heard."""
    from hallkit.broker.status_watch import StatusWatch

    heard: list[str] = []
    watch = StatusWatch(mosquitto.address, "hub-test-hall-status", [TOPICS.device_status("printer-1")],
                        on_statuses=heard.extend, on_refused=lambda _r: None, keepalive=2)
    watch.start()
    try:
        wait_for(watch.subscribed.is_set)
        client = make_client(mosquitto.address, "printer-1")
        client.connect(mosquitto.address.host, mosquitto.address.port)
        client.loop_start()
        started = time.monotonic()
        while time.monotonic() - started < 7:  # well past 1.5 keep-alives, a status every 0.25 s
            client.publish(TOPICS.device_status("printer-1"), b"{}", qos=0).wait_for_publish(5)
            time.sleep(0.25)
        client.loop_stop()
        assert len(heard) >= 10
        log = (mosquitto.folder / "mosquitto.log").read_text()
        assert "hub-test-hall-status" in log and "exceeded timeout" not in log, log
        assert watch.subscribed.is_set()
    finally:
        watch.stop()
