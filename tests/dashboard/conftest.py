"""A real hall for dashboard tests: Mosquitto, the hub with its parts, the dashboard in a thread."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hallkit.broker.client import HallClient
from hallkit.broker.hub import Hub
from hallkit.broker.parts import hub_parts
from hallkit.dashboard.server import DashboardServer

from hallkit.accounts import Role
from hallkit.config import HallConfig, parse_config
from hallkit.testing import DASHBOARD_HALL, free_port

MANAGER = ("wang", "manager-pass-123")
VIEWER = ("leader", "viewer-pass-456")
SCREENSHOTS = Path(__file__).parents[2] / "var" / "screenshots" / "dashboard"


@pytest.fixture
def hall_config() -> HallConfig:
    return parse_config(DASHBOARD_HALL)


class Hall:
    """The running hall a test drives: hub, dashboard, and a kiosk and counter to act with."""

    def __init__(self, config: HallConfig, hub: Hub, dashboard: DashboardServer, broker_address) -> None:  # noqa: ANN001
        self.config = config
        self.hub = hub
        self.dashboard = dashboard
        self.address = broker_address

    @property
    def url(self) -> str:
        return self.dashboard.url

    def client(self, device: str) -> HallClient:
        return HallClient(self.address, self.config.hall.id, device).connect()


@pytest.fixture
def hall(hall_config, mosquitto, tmp_path) -> Iterator[Hall]:
    data = tmp_path / "data"
    hub = Hub(hall_config, mosquitto.address, data, "normal", parts=hub_parts(hall_config))
    hub.start()
    dashboard = DashboardServer(hall_config, mosquitto.address, data, host="127.0.0.1", port=free_port())
    dashboard.users.add_user(MANAGER[0], Role.MANAGER, MANAGER[1])
    dashboard.users.add_user(VIEWER[0], Role.VIEWER, VIEWER[1])
    dashboard.start()
    deadline = time.monotonic() + 10
    while dashboard.live.snapshot is None and time.monotonic() < deadline:
        time.sleep(0.02)
    yield Hall(hall_config, hub, dashboard, mosquitto.address)
    dashboard.stop()
    hub.stop()


def login(browser, hall: Hall, user: tuple[str, str], width: int = 1600, height: int = 900):  # noqa: ANN201
    """A new page logged in as ``user``, on the live board."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    page.goto(hall.url + "login")
    page.fill("input[name=name]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("button[type=submit]")
    page.wait_for_url(hall.url)
    return page


def shoot(page, name: str) -> Path:  # noqa: ANN001
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
