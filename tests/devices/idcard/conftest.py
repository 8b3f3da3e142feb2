"""A simulated reader on a pseudo-terminal and the serial driver on the other end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from hallkit.devices.idcard.reader import ReaderSettings, SerialIdCardReader
from hallkit.devices.idcard.simulator import IdCardSimulator

HASH_KEY = "test-secret-0123456789"
ELDERLY_AGE = 65


@pytest.fixture
def simulator() -> Iterator[IdCardSimulator]:
    with IdCardSimulator() as sim:
        yield sim


@pytest.fixture
def settings(simulator: IdCardSimulator) -> ReaderSettings:
    # Generous reply timeout: the tests share two cores with other workers.
    return ReaderSettings(port=simulator.port, reply_timeout=1.0, retries=2, poll_interval=0.05)


@pytest.fixture
def reader(settings: ReaderSettings) -> Iterator[SerialIdCardReader]:
    with SerialIdCardReader(settings, HASH_KEY, ELDERLY_AGE, today=date.today) as driver:
        yield driver
