"""A real hall for the phone page: Mosquitto, the hub with its parts, the dashboard and ``hall web``."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hallkit.broker.client import HallClient
from hallkit.broker.hub import Hub
from hallkit.broker.parts import hub_parts
from hallkit.dashboard.server import DashboardServer
from hallkit.devices.printer.layout import TicketPrint
from hallkit.devices.printer.printer import EscposTicketPrinter
from hallkit.devices.printer.simulator import PrinterSimulator
from hallkit.web.server import WebServer

from hallkit.accounts import Role
from hallkit.config import HallConfig, parse_config
from hallkit.queue.models import TakeTicket, TicketView
from hallkit.testing import WEB_HALL, free_port
from tests.dashboard.conftest import MANAGER, VIEWER
from tests.devices.printer.conftest import decode_qr

SCREENSHOTS = (Path(__file__).parents[2] / "docs" / "screenshots" if os.environ.get("HALLKIT_DOCS_SCREENSHOTS")
               else Path(tempfile.gettempdir()) / "hallkit-screenshots")
"""docs/screenshots only when asked (HALLKIT_DOCS_SCREENSHOTS=1, as scripts/screenshots.py sets it): a
test run leaves the checkout as it found it."""


def web_config(port: int, web: str = "", rating: str = "", upstream: str = "") -> HallConfig:
    text = WEB_HALL.format(public_url=f"http://127.0.0.1:{port}", web=web, rating=rating)
    return parse_config(text + upstream)


@dataclass
class PhoneRig:
    config: HallConfig
    hub: Hub
    web: WebServer
    dashboard: DashboardServer | None
    address: object
    data: Path

    @property
    def url(self) -> str:
        return self.web.url

    def client(self, device: str) -> HallClient:
        """A device's connection, to use as ``with rig.client(...) as c`` (which connects it, once)."""
        return HallClient(self.address, self.config.hall.id, device)  # type: ignore[arg-type]


def start_rig(config: HallConfig, mosquitto, data: Path, port: int, dashboard: bool = False) -> PhoneRig:  # noqa: ANN001
    hub = Hub(config, mosquitto.address, data, "normal", parts=hub_parts(config))
    hub.start()
    board = None
    if dashboard:
        board = DashboardServer(config, mosquitto.address, data, host="127.0.0.1", port=free_port())
        board.users.add_user(MANAGER[0], Role.MANAGER, MANAGER[1])
        board.users.add_user(VIEWER[0], Role.VIEWER, VIEWER[1])
        board.start()
    web = WebServer(config, mosquitto.address, data, host="127.0.0.1", port=port).start()
    deadline = time.monotonic() + 10
    while not web.hall.connected and time.monotonic() < deadline:
        time.sleep(0.02)
    return PhoneRig(config, hub, web, board, mosquitto.address, data)


def stop_rig(rig: PhoneRig) -> None:
    rig.web.stop()
    if rig.dashboard is not None:
        rig.dashboard.stop()
    rig.hub.stop()


@pytest.fixture
def rig(mosquitto, tmp_path) -> Iterator[PhoneRig]:
    port = free_port()
    rig = start_rig(web_config(port), mosquitto, tmp_path / "data", port)
    yield rig
    stop_rig(rig)


def take(rig: PhoneRig, service: str = "social") -> TicketView:
    """A ticket as the kiosk takes it: the only reply that carries its QR token."""
    with rig.client("kiosk-1") as kiosk:
        reply = kiosk.request(TakeTicket(service_id=service))
    assert reply.ok and reply.outcome and reply.outcome.ticket
    return reply.outcome.ticket


def printed_qr(config: HallConfig, ticket: TicketView, folder: Path) -> str:
    """Print the ticket on the virtual printer, as the kiosk does, and read its QR code back from the picture."""
    with PrinterSimulator(out_dir=folder) as simulator:
        printer = EscposTicketPrinter(simulator.url, config.ticket)
        printer.print_ticket(TicketPrint.from_view(ticket, config))
        printer.close()
        [printed] = simulator.wait_for_tickets(1, timeout=20)
    assert printed.png is not None
    return decode_qr(printed.png)


def form_csrf(html: str) -> tuple[str, str]:
    """The CSRF token and form id of a rendered rating form."""
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    form_id = re.search(r'name="form_id" value="([^"]+)"', html)
    assert csrf and form_id, html[:2000]
    return csrf.group(1), form_id.group(1)


def wait_until(predicate, timeout: float = 15.0, what: str = "condition", every: float = 0.2) -> None:  # noqa: ANN001
    """Poll ``predicate`` (gently: the page limits requests per address) until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"{what} not met in {timeout} s")


def http(rig: PhoneRig) -> httpx.Client:
    return httpx.Client(base_url=rig.url, follow_redirects=False, timeout=10)
