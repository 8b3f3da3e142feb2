"""One phone-page process: the hall link and the web server, started and stopped together.

Used by ``hall web`` (in the foreground), ``hall demo``, the tests and ``bench/web.py`` (in a thread).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import uvicorn
from hallkit.contracts.mqtt import BrokerAddress
from hallkit.dashboard.web import local_url, serve_in_background, stop_serving
from hallkit.web.app import PhonePage
from hallkit.web.live import PhoneHall

from hallkit.commandline import listening_socket
from hallkit.config import DeviceKind, HallConfig

log = logging.getLogger("hallkit.web")


class WebServer:
    def __init__(self, config: HallConfig, broker: BrokerAddress, data: Path, host: str | None = None,
                 port: int | None = None, tls: tuple[Path, Path] | None = None) -> None:
        self.config = config
        settings = config.web
        self.host = host or settings.host
        self.port = port if port is not None else settings.port
        self.tls = tls
        known = {d.id: d.kind for d in config.devices}
        if known.get(settings.device) is not DeviceKind.WEB:
            log.warning("device %r is not a [[devices]] entry of kind web: the hub will refuse its ratings "
                        "(add [[devices]] id = %r, kind = \"web\")", settings.device, settings.device)
        self.hall = PhoneHall(config, broker, data)
        self.app = PhonePage(config, self.hall).app()
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", access_log=False, lifespan="on",
            # The phone's own address, for the limits, only from proxies the hall trusts.
            proxy_headers=bool(settings.trusted_proxies), forwarded_allow_ips=settings.trusted_proxies or None,
            timeout_keep_alive=30, ssl_certfile=tls[0] if tls else None, ssl_keyfile=tls[1] if tls else None))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return local_url(self.host, self.port, bool(self.tls))

    def run(self) -> None:
        """In the foreground until Ctrl-C or SIGTERM (uvicorn handles both)."""
        # The port first: a second phone page that cannot listen never joins the broker as the first.
        sock = listening_socket(self.host, self.port)
        self.hall.start()
        try:
            self.server.run(sockets=[sock])
        finally:
            self.hall.stop()

    def start(self, wait: float = 10.0) -> WebServer:
        """In a thread, for the demo, tests and bench; returns once the port answers."""
        sock = listening_socket(self.host, self.port)
        self.hall.start()
        self._thread = serve_in_background(self.server, "phone page", sock, wait)
        return self

    def stop(self) -> None:
        stop_serving(self.server, self._thread)
        self.hall.stop()
