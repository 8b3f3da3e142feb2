"""A seeded county database and the console on it, in a thread, with one login per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import psycopg
import pytest
from hallkit.county.schema import migrate
from hallkit.county.testing import seed
from hallkit.county.web.accounts import Account, Accounts, ConsoleRole
from hallkit.county.web.server import ConsoleServer

from hallkit.testing import free_port
from tests.upstream.conftest import county_broker, county_db  # noqa: F401  # fixtures

ADMIN = ("county-admin", "admin-pass-123")
VIEWER = ("county-viewer", "viewer-pass-123")
LEADER = ("xinghua-leader", "leader-pass-123")  # 兴华镇: xinghua and xinghua-shimen, not dafeng


@dataclass
class RunningConsole:
    server: ConsoleServer
    dsn: str
    month: date

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def seeded_db(county_db) -> tuple[str, date]:  # noqa: F811
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        month = seed(conn)
    return county_db, month


@pytest.fixture
def console(seeded_db, tmp_path) -> Iterator[RunningConsole]:
    dsn, month = seeded_db
    server = ConsoleServer(dsn, tmp_path / "console", port=free_port())
    accounts = Accounts(server.users)
    accounts.add(Account(name=ADMIN[0], role=ConsoleRole.ADMIN), ADMIN[1])
    accounts.add(Account(name=VIEWER[0], role=ConsoleRole.VIEWER), VIEWER[1])
    accounts.add(Account(name=LEADER[0], role=ConsoleRole.LEADER, townships=("兴华镇",)), LEADER[1])
    server.start()
    yield RunningConsole(server, dsn, month)
    server.stop()
