"""A hall with a pad at each window, a hub with the ratings part, on a real Mosquitto."""

from __future__ import annotations

import pytest
from hallkit.broker.client import read_hall
from hallkit.broker.hub import Hub
from hallkit.broker.parts import hub_parts
from hallkit.broker.ratings import RatingsPart

from hallkit.config import parse_config
from hallkit.testing import HALL_WITH_PADS
from tests.broker.test_hub import wait_for


@pytest.fixture
def pads_config():
    return parse_config(HALL_WITH_PADS)


class Collected:
    """What the hub handed to its record sinks (the uplink outbox), in order."""

    def __init__(self) -> None:
        self.records: list[object] = []

    def __call__(self, _conn, record) -> None:
        self.records.append(record)


@pytest.fixture
def rating_hub(pads_config, mosquitto, tmp_path):
    hub = Hub(pads_config, mosquitto.address, tmp_path / "data", synchronous="normal", parts=hub_parts(pads_config))
    hub.collected = Collected()
    hub.record_sinks.append(hub.collected)
    hub.ratings = next(p for p in hub.parts if isinstance(p, RatingsPart))
    hub.start()
    assert hub.connected
    # The hub publishes its status after subscribing, on the same connection: once the status is
    # on the broker, so are its subscriptions, and a first request cannot overtake them.
    wait_for(lambda: (status := read_hall(mosquitto.address, "test-hall", 1.0).hub) is not None
             and status.state == "online")
    yield hub
    hub.stop()
