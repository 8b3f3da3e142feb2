"""One console: its connection pool, its logins and the web server, started and stopped together.

Used by ``hall county web`` (in the foreground) and the tests and bench (in a thread).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import uvicorn
from hallkit.county.schema import migrate
from hallkit.county.web.accounts import open_users
from hallkit.county.web.app import Console, Pool


class ConsoleServer:
    def __init__(self, dsn: str, data: Path, host: str = "127.0.0.1", port: int = 8090, county_name: str = "") -> None:
        with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
            migrate(conn)  # the summaries the pages read exist before the first page
        self.host = host
        self.port = port
        self.pool = Pool(dsn)
        self.users = open_users(data)
        self.console = Console(self.pool, self.users, county_name)
        self.server = uvicorn.Server(uvicorn.Config(self.console.app(), host=host, port=port, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        """In the foreground until Ctrl-C or SIGTERM (uvicorn handles both)."""
        try:
            self.server.run()
        finally:
            self.close()

    def start(self, wait: float = 10.0) -> ConsoleServer:
        self._thread = threading.Thread(target=self.server.run, name="county-console-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + wait
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise OSError(f"the county console did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.close()

    def close(self) -> None:
        self.pool.close()
        self.users.close()
