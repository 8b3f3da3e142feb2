"""The hub's own MQTT connection against a real Mosquitto: QoS 1 kept across a broker restart both
ways, acknowledgements only on the link a message came on, one write per cork, refusals in words."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from hallkit.broker.connection import Connection, Incoming
from hallkit.contracts.mqtt import BrokerAddress, make_client

from tests.broker.test_hub import wait_for


class Inbox:
    """What a connection was handed, in order, for the test thread to wait on."""

    def __init__(self) -> None:
        self.messages: list[Incoming] = []
        self.acknowledge_on: Connection | None = None
        """Acknowledge each message as it comes, as the hub does once it is handled (the broker
        sends no more than its in-flight limit, 100, unacknowledged)."""
        self._lock = threading.Lock()

    def __call__(self, messages: list[Incoming]) -> None:
        with self._lock:
            self.messages.extend(messages)
        for message in messages:
            if self.acknowledge_on is not None:
                self.acknowledge_on.ack(message)

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [m.payload for m in self.messages]


def subscribed_connection(address: BrokerAddress, inbox: Inbox, topic: str,
                          ca_file: str | None = None) -> tuple[Connection, threading.Event]:
    granted = threading.Event()
    holder: list[Connection] = []
    connection = Connection(address, "kept-session", inbox, clean_session=False, ca_file=ca_file,
                            on_up=lambda: holder[0].subscribe([(topic, 1)]),
                            on_subscribed=lambda _id, codes: granted.set() if codes == b"\x01" else None)
    holder.append(connection)
    connection.start()
    return connection, granted


def paho_client(address: BrokerAddress, name: str) -> mqtt.Client:
    client = make_client(address, name)
    client.connect(address.host, address.port)
    client.loop_start()
    wait_for(client.is_connected)
    return client


def test_an_unacknowledged_request_comes_again_after_a_broker_restart_and_an_old_ack_is_ignored(mosquitto):
    inbox = Inbox()
    connection, granted = subscribed_connection(mosquitto.address, inbox, "req/#")
    try:
        wait_for(granted.is_set)
        sender = paho_client(mosquitto.address, "sender")
        sender.publish("req/a", b"take 1", qos=1).wait_for_publish(5)
        sender.disconnect()
        sender.loop_stop()
        wait_for(lambda: inbox.payloads() == [b"take 1"])
        first = inbox.messages[0]
        assert first.packet_id is not None
        # Not acknowledged (the hub had not committed it): the broker keeps it through its restart.
        mosquitto.restart()
        wait_for(lambda: len(inbox.payloads()) == 2, timeout=30)
        again = inbox.messages[1]
        assert again.payload == b"take 1" and again.link == first.link + 1 and connection.drops == 1
        connection.ack(first)  # from the old link: must not acknowledge whatever has its id now
        connection.ack(again)
        wait_for(lambda: connection.publish_confirmed("probe", b"after the acks"))
        mosquitto.restart()  # acknowledged now: not sent a third time
        wait_for(connection.is_connected, timeout=30)
        assert connection.publish_confirmed("probe", b"round trip after the restart")
        assert inbox.payloads() == [b"take 1", b"take 1"]
    finally:
        connection.stop()


def test_what_is_published_with_no_broker_goes_out_when_it_returns_the_oldest_given_up_past_the_bound(mosquitto):
    mosquitto.stop()
    connection = Connection(mosquitto.address, "hub-x", Inbox(), max_unacked=3)
    connection.start()
    try:
        for n in range(5):
            connection.publish(f"state/{n}", f"{n}".encode(), retain=True)
        assert connection.dropped == 2 and not connection.is_connected()
        mosquitto.start()
        wait_for(connection.is_connected, timeout=30)
        seen: list[str] = []
        reader = make_client(mosquitto.address, "reader")
        reader.on_message = lambda _c, _u, m: seen.append(f"{m.topic}={m.payload.decode()}")
        reader.on_connect = lambda c, *_: c.subscribe("state/#", 1)
        reader.connect(mosquitto.address.host, mosquitto.address.port)
        reader.loop_start()
        wait_for(lambda: sorted(seen) == ["state/2=2", "state/3=3", "state/4=4"])
        reader.disconnect()
        reader.loop_stop()
    finally:
        connection.stop()


def test_a_corked_burst_arrives_whole_and_in_order(mosquitto):
    seen: list[bytes] = []
    reader = make_client(mosquitto.address, "reader")
    reader.on_message = lambda _c, _u, m: seen.append(m.payload)
    reader.on_connect = lambda c, *_: c.subscribe("burst", 1)
    reader.connect(mosquitto.address.host, mosquitto.address.port)
    reader.loop_start()
    connection = Connection(mosquitto.address, "hub-x", Inbox())
    connection.start()
    try:
        wait_for(connection.is_connected)
        wait_for(lambda: connection.publish_confirmed("burst", b"first") and seen[-1:] == [b"first"])
        with connection.corked():
            for n in range(200):
                connection.publish("burst", str(n).encode())
        wanted = [str(n).encode() for n in range(200)]
        wait_for(lambda: seen[-200:] == wanted)
        wait_for(lambda: not connection._unacked)  # every PUBACK came back
    finally:
        connection.stop()
        reader.disconnect()
        reader.loop_stop()


def test_a_refused_login_says_which_and_why(tmp_path):
    from hallkit.broker.testing import Mosquitto

    broker = Mosquitto(tmp_path / "mosquitto")
    passwords = tmp_path / "mosquitto" / "passwords"
    broker.conf.write_text(broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
                           + f"password_file {passwords}\n")
    passwords.write_text("")
    passwords.chmod(0o600)
    broker.start()
    refusals: list[str] = []

    def give_up(reason: str) -> bool:
        refusals.append(reason)
        return False

    connection = Connection(BrokerAddress(host="127.0.0.1", port=broker.port, username="kiosk-9", password="x"),
                            "kiosk-9", Inbox(), on_refused=give_up)
    try:
        connection.start()
        wait_for(lambda: refusals)
        connection._thread.join(5)
        assert not connection._thread.is_alive()  # told to give up: it did
        assert "refused login kiosk-9" in refusals[0] and "拒绝了登录名 kiosk-9" in refusals[0]
        assert "mqtt://127.0.0.1" in refusals[0] and not connection.is_connected() and connection.drops == 0
    finally:
        connection.stop()
        broker.stop()


def test_over_tls_reads_and_writes_share_the_link(tmp_path):
    """Over TLS one thread reads while another writes the same SSL connection (under the lock)."""
    import getpass

    from hallkit.broker.certificates import ensure_tls
    from hallkit.broker.mosquitto import mosquitto_conf
    from hallkit.broker.testing import Mosquitto

    from hallkit.testing import free_port

    folder = tmp_path / "mosquitto"
    folder.mkdir()
    tls, _ = ensure_tls(folder, "c1", ["127.0.0.1"])
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(mosquitto_conf(folder, port, "127.0.0.1", None, None, tls=tls) + f"user {getpass.getuser()}\n")
    broker = Mosquitto(folder, port, conf).start()
    inbox = Inbox()
    connection, granted = subscribed_connection(
        BrokerAddress(host="127.0.0.1", port=port, tls=True), inbox, "echo", ca_file=str(tls.ca_cert))
    inbox.acknowledge_on = connection
    try:
        wait_for(granted.is_set)
        for n in range(300):
            connection.publish("echo", str(n).encode())
        wait_for(lambda: inbox.payloads() == [str(n).encode() for n in range(300)])
        assert connection.publish_confirmed("echo", b"last") and connection.drops == 0
    finally:
        connection.stop()
        broker.stop()


def test_an_oversized_request_is_dropped_and_acknowledged_not_a_reconnect_loop(mosquitto, caplog):
    """A device's 2 MiB message must not drop the link (the broker would send it again first at
    every reconnect of a kept session): it is acknowledged, dropped, and said."""
    import logging

    inbox = Inbox()
    connection, granted = subscribed_connection(mosquitto.address, inbox, "req/#")
    inbox.acknowledge_on = connection
    try:
        wait_for(granted.is_set)
        sender = paho_client(mosquitto.address, "sender")
        with caplog.at_level(logging.WARNING, logger="hallkit.mqtt"):
            sender.publish("req/big", b"x" * (2 << 20), qos=1).wait_for_publish(10)
            sender.publish("req/after", b"small", qos=1).wait_for_publish(5)
            wait_for(lambda: inbox.payloads() == [b"small"])
        assert "on req/big is over the 1048576-byte limit: dropped" in caplog.text
        assert connection.drops == 0
        # A round trip after the acknowledgements: the broker has read them before it stops.
        assert connection.publish_confirmed("probe", b"after the acknowledgements")
        mosquitto.restart()  # acknowledged: not sent again
        wait_for(connection.is_connected, timeout=30)
        sender.publish("req/last", b"last", qos=1)
        wait_for(lambda: inbox.payloads() == [b"small", b"last"], timeout=30)
        sender.disconnect()
        sender.loop_stop()
    finally:
        connection.stop()


def test_a_handler_that_fails_costs_a_reconnect_not_the_connection(mosquitto):
    failures: list[bytes] = []
    inbox = Inbox()

    def handler(messages: list[Incoming]) -> None:
        if not failures:
            failures.append(messages[0].payload)
            raise RuntimeError("a bug in the hub")
        inbox(messages)

    holder: list[Connection] = []
    connection = Connection(mosquitto.address, "kept-session", handler, clean_session=False,
                            on_up=lambda: holder[0].subscribe([("req/#", 1)]))
    holder.append(connection)
    inbox.acknowledge_on = connection
    connection.start()
    try:
        wait_for(connection.is_connected)
        sender = paho_client(mosquitto.address, "sender")
        sender.publish("req/a", b"take", qos=1).wait_for_publish(5)
        wait_for(lambda: bool(failures))
        # Not acknowledged when the handler failed: the broker sends it again on the new link.
        wait_for(lambda: b"take" in inbox.payloads(), timeout=30)
        assert connection.drops >= 1 and connection._thread.is_alive()
        sender.disconnect()
        sender.loop_stop()
    finally:
        connection.stop()
