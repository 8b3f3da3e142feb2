"""One console: its connection pool, its logins and the web server, started and stopped together.

Used by ``hall county web`` (in the foreground) and the tests and bench (in a thread).
"""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import uvicorn
from hallkit.county.schema import migrate
from hallkit.county.web.accounts import open_users
from hallkit.county.web.app import Console, Pool
from hallkit.dashboard.web import local_url, serve_in_background, stop_serving

from hallkit.commandline import listening_socket


class ConsoleServer:
    def __init__(self, dsn: str, data: Path, host: str = "127.0.0.1", port: int = 8090, county_name: str = "",
                 tls: tuple[Path, Path] | None = None) -> None:
        with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
            migrate(conn)  # the summaries the pages read exist before the first page
        self.host = host
        self.port = port
        self.tls = tls
        self.pool = Pool(dsn)
        self.users = open_users(data)
        self.console = Console(self.pool, self.users, county_name)
        self.server = uvicorn.Server(uvicorn.Config(self.console.app(), host=host, port=port, log_level="warning",
                                                    access_log=False, lifespan="off",
                                                    ssl_certfile=tls[0] if tls else None,
                                                    ssl_keyfile=tls[1] if tls else None))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return local_url(self.host, self.port, bool(self.tls)) + "/"

    def run(self) -> None:
        """In the foreground until Ctrl-C or SIGTERM (uvicorn handles both)."""
        try:
            self.server.run(sockets=[listening_socket(self.host, self.port)])
        finally:
            self.close()

    def start(self, wait: float = 10.0) -> ConsoleServer:
        try:
            sock = listening_socket(self.host, self.port)
        except OSError:
            self.close()
            raise
        self._thread = serve_in_background(self.server, "county console", sock, wait=wait)
        return self

    def stop(self) -> None:
        stop_serving(self.server, self._thread)
        self.close()

    def close(self) -> None:
        self.pool.close()
        self.users.close()
