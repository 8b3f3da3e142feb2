"""A PostgreSQL database of its own for each test (tests run in parallel), and a county broker."""

from __future__ import annotations

import pytest
from hallkit.county.testing import fresh_database


@pytest.fixture
def county_db():
    with fresh_database() as dsn:
        yield dsn


@pytest.fixture
def county_broker(tmp_path):
    from hallkit.broker.testing import Mosquitto

    broker = Mosquitto(tmp_path / "county-broker").start()
    yield broker
    broker.stop()


@pytest.fixture
def hall_broker(tmp_path):
    from hallkit.broker.testing import Mosquitto

    broker = Mosquitto(tmp_path / "hall-broker").start()
    yield broker
    broker.stop()
