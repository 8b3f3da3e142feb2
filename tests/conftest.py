"""Shared fixtures: hall configurations (from :mod:`hallkit.testing`), a Mosquitto per test; one Chromium for every browser test of a run."""

from __future__ import annotations

import pytest

from hallkit.commands import example_config
from hallkit.config import HallConfig, parse_config
from hallkit.testing import SMALL_HALL


@pytest.fixture
def small_config() -> HallConfig:
    return parse_config(SMALL_HALL)


@pytest.fixture
def sample_config() -> HallConfig:
    return parse_config(example_config())


@pytest.fixture
def mosquitto(tmp_path):
    from hallkit.broker.testing import Mosquitto

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
