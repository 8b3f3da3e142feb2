"""Broker URLs and paho-mqtt clients set up the way the hall needs them.

paho 2.x: callback API version 2 always; MQTT 3.1.1 by default because the
embedded broker speaks nothing newer; automatic reconnect with backoff, which
only works while the network loop runs (``loop_start``).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from pydantic import BaseModel

DEFAULT_PORT = 1883


class BrokerAddress(BaseModel):
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    def as_login(self, username: str, password: str) -> BrokerAddress:
        """The same broker under another login."""
        return self.model_copy(update={"username": username, "password": password})


class BrokerUrlError(ValueError):
    pass


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://[user:pass@]host[:port]`` or ``mqtts://…`` (TLS, default port 8883)."""
    parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    if parsed.scheme not in ("mqtt", "mqtts", "tcp"):
        raise BrokerUrlError(f"broker URL {url!r}: use mqtt://HOST:PORT or mqtts://HOST:PORT")
    if not parsed.hostname:
        raise BrokerUrlError(f"broker URL {url!r} names no host")
    tls = parsed.scheme == "mqtts"
    try:
        port = parsed.port or (8883 if tls else DEFAULT_PORT)
    except ValueError:
        raise BrokerUrlError(f"broker URL {url!r} has a bad port") from None
    return BrokerAddress(
        host=parsed.hostname,
        port=port,
        tls=tls,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
    )


def make_client(
    address: BrokerAddress,
    client_id: str,
    *,
    clean_session: bool = True,
    manual_ack: bool = False,
    will: tuple[str, bytes] | None = None,
    ca_file: str | None = None,
) -> mqtt.Client:
    """A paho client for ``address``; call ``connect_async`` + ``loop_start`` to run it.

    With a login the client id is the login's name, whatever ``client_id`` says: the project's
    brokers allow no other (see :mod:`broker.mosquitto`), so a process holds one connection per
    login (:mod:`broker.link`). ``client_id`` names anonymous clients (a test's bare broker).
    """
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=address.username or client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
        manual_ack=manual_ack,
    )
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    # paho's in-memory queue is not our durability (the SQLite log is); bound it so a long
    # outage cannot eat the hub's memory.
    client.max_queued_messages_set(10_000)
    client.max_inflight_messages_set(100)
    # paho leaves Nagle on: a request and its reply then each wait for a delayed ACK (about 40 ms).
    client.on_socket_open = _no_delay
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
    if will is not None:
        topic, payload = will
        client.will_set(topic, payload, qos=1, retain=True)
    return client


def _no_delay(_client: mqtt.Client, _userdata: object, sock: socket.socket | object) -> None:
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def say_offline(client: mqtt.Client, topic: str, payload: str) -> None:
    """Publish a retained offline status before a clean disconnect, which does not fire the Will.

    Waits briefly for the broker to take it; on a dead link there is nothing to wait for (the
    broker fires the Will then anyway).
    """
    if not client.is_connected():
        return
    info = client.publish(topic, payload, qos=1, retain=True)
    with contextlib.suppress(RuntimeError, ValueError):  # the link went down meanwhile: the Will says it
        info.wait_for_publish(2)
