"""A PostgreSQL database of its own for each test (tests run in parallel), and a county broker."""

from __future__ import annotations

import os
from uuid import uuid4

import psycopg
import pytest

ADMIN_DSN = os.environ.get("HALLKIT_TEST_PG", "postgresql://hallkit:hallkit@127.0.0.1:5432/postgres")
"""A login that may create databases; scripts/bootstrap.sh makes it."""


def database_dsn(name: str) -> str:
    return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


@pytest.fixture
def county_db():
    name = f"hallkit_test_{uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]  # a name we made, not input
    yield database_dsn(name)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture
def county_broker(tmp_path):
    from tests.brokers import Mosquitto

    broker = Mosquitto(tmp_path / "county-broker").start()
    yield broker
    broker.stop()


@pytest.fixture
def hall_broker(tmp_path):
    from tests.brokers import Mosquitto

    broker = Mosquitto(tmp_path / "hall-broker").start()
    yield broker
    broker.stop()
