"""Shared fixtures: hall configurations for tests; one Chromium for every browser test of a run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hallkit.commands import example_config
from hallkit.config import HallConfig, parse_config

SMALL_HALL = """
[hall]
id = "test-hall"
name = "测试村便民服务站"
level = "village"
region_code = "652323100201"

[queue]
max_priority_in_a_row = 2
no_show_requeue = 1

[privacy]
id_hash_key = "test-secret-0123456789"

[[staff]]
id = "a1"
name = "张三"

[[staff]]
id = "b1"
name = "李四"

[[services]]
id = "social"
name = "低保申请"
prefix = "A"
default_service_minutes = 6

[[services]]
id = "pension"
name = "养老保险"
prefix = "B"
default_service_minutes = 4

[[services]]
id = "permit"
name = "建房审批"
prefix = "C"

[[windows]]
number = 1
name = "综合窗口"
services = ["*"]
staff_a = "a1"
staff_b = "b1"

[[windows]]
number = 2
name = "社保窗口"
services = ["pension"]
staff_a = "b1"

[[windows]]
number = 3
name = "审批窗口"
services = ["permit"]
"""

# A Monday morning, 10:00 in Beijing.
MONDAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def small_config() -> HallConfig:
    return parse_config(SMALL_HALL)


@pytest.fixture
def sample_config() -> HallConfig:
    return parse_config(example_config())


@pytest.fixture
def mosquitto(tmp_path):
    from tests.brokers import Mosquitto

    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright; never a downloaded browser. One per session: the
    dashboard's and the phone page's tests share it (two sync Playwrights cannot run at once)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield chromium
        chromium.close()
