"""One dashboard: the live MQTT view, the account store and the web server, started and stopped together.

Used by ``hall dashboard`` (in the foreground), ``hall demo`` and the tests (in a thread).
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

import uvicorn
from hallkit.contracts.mqtt import BrokerAddress
from hallkit.dashboard.app import Dashboard
from hallkit.dashboard.live import LiveHall
from hallkit.dashboard.stats import EventLog
from hallkit.dashboard.web import local_url, serve_in_background, stop_serving

from hallkit.accounts import ACCOUNTS_FILE, UserStore
from hallkit.commandline import listening_socket
from hallkit.config import HallConfig

log = logging.getLogger("hallkit.dashboard")

DEFAULT_DEVICE = "dashboard"
"""The dashboard's device id: it publishes its status and alerts under it and sends case steps as it."""


def users_at(config: HallConfig, data: Path) -> UserStore:
    settings = config.dashboard
    return UserStore(data / ACCOUNTS_FILE, settings.session_hours, settings.max_failed_logins,
                     settings.lockout_minutes)


class DashboardServer:
    def __init__(self, config: HallConfig, broker: BrokerAddress, data: Path, host: str | None = None,
                 port: int | None = None, device: str = DEFAULT_DEVICE, tls: tuple[Path, Path] | None = None) -> None:
        self.config = config
        self.host = host or config.dashboard.host
        self.port = port if port is not None else config.dashboard.port
        self.tls = tls
        if device not in {d.id for d in config.devices}:
            log.warning("device %r is not in the hall configuration: the hub will refuse its case steps "
                        "(add [[devices]] id = %r, kind = \"counter\")", device, device)
        self.live = LiveHall(config, broker, EventLog(data / "hall.sqlite3"), device)
        self.users = users_at(config, data)
        self.app = Dashboard(config, self.live, self.users).app()
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", access_log=False, lifespan="on",
            ssl_certfile=tls[0] if tls else None, ssl_keyfile=tls[1] if tls else None))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return local_url(self.host, self.port, bool(self.tls)) + "/"

    def run(self) -> None:
        """In the foreground until Ctrl-C or SIGTERM (uvicorn handles both)."""
        # The port first: a dashboard that cannot listen has not joined the broker, so it cannot
        # displace the running one's connection nor say "offline" in its name.
        sock = listening_socket(self.host, self.port)
        self.live.start()
        try:
            self.server.run(sockets=[sock])
        finally:
            self.close()

    def start(self, wait: float = 10.0) -> DashboardServer:
        """In a thread, for the demo and tests; returns once the port answers."""
        sock = listening_socket(self.host, self.port)
        self.live.start()
        self._thread = serve_in_background(self.server, "dashboard", sock, wait)
        return self

    def stop(self) -> None:
        stop_serving(self.server, self._thread)
        self.close()

    def close(self) -> None:
        self.live.stop()
        self.users.close()


def free_port(start: int) -> int:
    """The first free port at or after ``start`` (the demo must not fail because 8080 is taken)."""
    for candidate in range(start, start + 100):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", candidate))
            except OSError:
                continue
            return candidate
    raise OSError(f"no free port between {start} and {start + 99}")
