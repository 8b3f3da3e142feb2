"""The embedded default broker: amqtt, pure Python, for a hall with nothing installed.

It speaks MQTT 3.1.1 only and is slower than Mosquitto (see
``/docs/deployment.md``); it is the zero-install default for ``hall demo``
and ``hall hub`` without ``--broker``. Production halls run Mosquitto with the
configuration ``hall broker config`` writes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

from amqtt.broker import Broker
from amqtt.session import Session

log = logging.getLogger("hallkit.broker")


class _HallBroker(Broker):
    """amqtt 0.12.1 with one fix.

    When a client connects, amqtt replays retained messages for every topic filter *any*
    client has subscribed to, not only the new client's own (so a kiosk receives retained
    pad screens it never asked for), and it iterates the broker's subscription table while
    doing so, which fails with "dictionary changed size during iteration" when clients
    connect at the same moment. Replaying only the session's own subscriptions fixes the
    first, and the second with it: for other sessions' filters nothing is awaited, so the
    table cannot change under the loop.
    """

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int],
                                                          session: Session) -> None:
        subscribers = self._subscriptions.get(subscription[0], [])
        if any(s.client_id == session.client_id for s, _ in subscribers):
            await super()._publish_retained_messages_for_subscription(subscription, session)


class EmbeddedBroker:
    """An amqtt broker on its own event-loop thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._broker = _HallBroker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
            },
            loop=self._loop,
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
        self._thread.join(timeout)


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0
