"""The embedded default broker: amqtt, pure Python, for a hall with nothing installed.

It speaks MQTT 3.1.1 only and is slower than Mosquitto (see
``/docs/deployment.md``); it is the zero-install default for ``hall demo``
and ``hall hub`` without ``--broker``. Production halls run Mosquitto with the
configuration ``hall broker config`` writes.

It keeps the same rules as that Mosquitto, from the same files: every client logs in
with a password from the ``passwords`` file (no anonymous clients), its client id must
be its login's name, and the ``acl`` file says what it may publish and receive. The
login is checked before amqtt sees the CONNECT, because amqtt 0.12.1 deletes or takes
over the session of a client id before it authenticates the newcomer: a client that
would be refused could otherwise still knock the hub off.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, ListenerConfig
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import BAD_USERNAME_PASSWORD, IDENTIFIER_REJECTED, NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.session import Session
from hallkit.broker.mosquitto import (
    HALL_LOGINS_HEADER,
    Access,
    AclRules,
    Logins,
    hall_users,
    password_matches,
    read_passwords,
    write_hall_access,
    write_logins,
)

from hallkit.config import HallConfig

log = logging.getLogger("hallkit.broker")


@dataclass(frozen=True)
class BrokerAccess:
    """Who may connect, under which client id, and publish or receive what: pure rules, no I/O."""

    passwords: dict[str, str]
    acl: AclRules

    @classmethod
    def from_folder(cls, folder: Path) -> BrokerAccess:
        """The ``passwords`` and ``acl`` files :func:`broker.mosquitto.write_hall_access` wrote there."""
        return cls(read_passwords((folder / "passwords").read_text()), AclRules.parse((folder / "acl").read_text()))

    def refusal(self, username: str | None, password: str | None, client_id: str | None) -> int | None:
        """The CONNACK return code refusing this login, or None when it may connect."""
        hashed = self.passwords.get(username or "")
        if username is None or hashed is None or not password_matches(hashed, password or ""):
            return BAD_USERNAME_PASSWORD if username else NOT_AUTHORIZED
        if client_id != username:
            return IDENTIFIER_REJECTED
        return None

    def allows(self, username: str | None, client_id: str | None, topic: str, action: Action) -> bool:
        if username is None or client_id is None:
            return False
        if action is Action.SUBSCRIBE:
            # Like Mosquitto's acl_file, reads are checked per message; amqtt has no shared subscriptions.
            return not topic.startswith("$share/")
        access = Access.WRITE if action is Action.PUBLISH else Access.READ
        return self.acl.allows(username, client_id, topic, access)


def hall_logins(config: HallConfig, folder: Path, port: int) -> tuple[Logins, BrokerAccess]:
    """A login for the hub and every device of the hall, kept in ``folder`` across runs
    (``credentials.toml``, 0600), and the rules the embedded broker applies with them."""
    folder.mkdir(parents=True, exist_ok=True)
    logins = write_logins(folder, port, hall_users(config), HALL_LOGINS_HEADER)
    write_hall_access(config, folder, logins)
    return logins, BrokerAccess.from_folder(folder)


class _Recorder(ReaderAdapter):
    """Reads from ``inner`` and keeps what it read, to hand the CONNECT on to amqtt afterwards."""

    def __init__(self, inner: ReaderAdapter) -> None:
        self.inner = inner
        self.data = bytearray()

    async def read(self, n: int = -1) -> bytes:
        data = await self.inner.read(n)
        self.data += data
        return data

    def feed_eof(self) -> None:
        self.inner.feed_eof()


class _Replay(ReaderAdapter):
    """First the bytes already read, then the connection."""

    def __init__(self, head: bytes, inner: ReaderAdapter) -> None:
        self.head = head
        self.inner = inner

    async def read(self, n: int = -1) -> bytes:
        if not self.head:
            return await self.inner.read(n)
        if n == -1:
            data, self.head = self.head + await self.inner.read(-1), b""
            return data
        data, self.head = self.head[:n], self.head[n:]
        if len(data) < n:
            data += await self.inner.read(n - len(data))
        return data

    def feed_eof(self) -> None:
        self.inner.feed_eof()


class _HallBroker(Broker):
    """amqtt 0.12.1 with the hall's logins and ACL, and one fix.

    When a client connects, amqtt replays retained messages for every topic filter *any*
    client has subscribed to, not only the new client's own (so a kiosk receives retained
    pad screens it never asked for), and it iterates the broker's subscription table while
    doing so, which fails with "dictionary changed size during iteration" when clients
    connect at the same moment. Replaying only the session's own subscriptions fixes the
    first, and the second with it: for other sessions' filters nothing is awaited, so the
    table cannot change under the loop.
    """

    def __init__(self, config: dict[str, object], loop: asyncio.AbstractEventLoop, access: BrokerAccess) -> None:
        super().__init__(config, loop=loop)
        self.access = access

    async def _client_connected(self, listener_name: str, reader: ReaderAdapter, writer: WriterAdapter) -> None:
        recorder = _Recorder(reader)
        try:
            connect = await ConnectPacket.from_stream(recorder)
        except (AMQTTError, MQTTError, NoDataError, ValueError) as exc:
            log.debug("dropped a connection that sent no valid CONNECT: %s", exc)
            await writer.close()
            return
        code = self.access.refusal(connect.username, connect.password, connect.client_id)
        if code is not None:
            log.warning("refused client id %r, login %r (CONNACK %d)", connect.client_id, connect.username, code)
            await ConnackPacket.build(0, code).to_stream(writer)
            await writer.close()
            return
        await super()._client_connected(listener_name, _Replay(bytes(recorder.data), reader), writer)

    async def _authenticate(self, session: Session, _: ListenerConfig) -> bool:
        return self.access.refusal(session.username, session.password, session.client_id) is None

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        allowed = self.access.allows(session.username, session.client_id, topic, action)
        if not allowed:
            log.info("refused %s %s for %s", action.value, topic, session.client_id)
        return allowed

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int],
                                                          session: Session) -> None:
        subscribers = self._subscriptions.get(subscription[0], [])
        if any(s.client_id == session.client_id for s, _ in subscribers):
            await super()._publish_retained_messages_for_subscription(subscription, session)

    async def start(self) -> None:
        # amqtt makes the future that tells its broadcast loop to end in __init__, on the event loop
        # of the thread that builds the broker, not the loop it runs on: set from there, it never
        # woke the loop, and every shutdown waited out amqtt's 5 s timeout (far longer on a loaded
        # machine, with the loop's tasks half torn down).
        self._broadcast_shutdown_waiter = asyncio.get_running_loop().create_future()
        await super().start()

    async def shutdown(self) -> None:
        # Stop listening first: amqtt closes its listeners last, after cleaning up every session,
        # which clients that keep reconnecting and resending (a hall's uplink) can hold up for
        # minutes, with the port still taken by a broker that is meant to be gone.
        for server in self._servers.values():
            if server.instance is not None:
                server.instance.close()
        await super().shutdown()


STOP_CEILING_SECONDS = 60.0
"""How long stopping waits for the broker's loop to end once told to (it ends within one turn of the
loop unless a callback is stuck)."""


class EmbeddedBroker:
    """An amqtt broker on its own event-loop thread, with the logins and ACL in ``access``."""

    def __init__(self, access: BrokerAccess, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        # No plugins: logins and topics are checked by _HallBroker itself (see there why).
        self._broker = _HallBroker(
            {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}}, "plugins": {}},
            loop=self._loop, access=access,
        )
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        if _port_taken(self.host, self.port):
            raise OSError(f"port {self.port} on {self.host} is already in use (another broker?); "
                          f"pass --broker mqtt://{self.host}:{self.port} to use it")
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError("the embedded broker did not start")
        if self._error is not None:
            raise OSError(f"the embedded broker failed to start: {self._error}")
        log.info("embedded MQTT broker (amqtt, MQTT 3.1.1) listening on %s", self.url)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._broker.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    def stop(self, timeout: float = 5.0) -> None:
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            future.result(timeout)
        except Exception:  # amqtt may wait on clients that never leave; the thread is a daemon
            log.debug("embedded broker shutdown did not finish in %.0f s", timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        # Wait for the loop to really end, however loaded the machine: a loop thread still closing
        # its clients' transports while the interpreter exits races the garbage collector closing
        # the same sockets (an AttributeError traceback from asyncio at exit).
        self._thread.join(STOP_CEILING_SECONDS)
        if self._thread.is_alive():
            log.warning("embedded broker thread still running %.0f s after stop", STOP_CEILING_SECONDS)


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0
