"""Fixtures of the printer tests: a ticket as the hub would issue it, and a running virtual printer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import cv2
import pytest
from hallkit.devices.printer.layout import TicketPrint
from hallkit.devices.printer.simulator import PrinterSimulator

from hallkit.config import HallConfig
from hallkit.queue.models import Channel, Priority, TicketState, TicketView

LONG_SERVICE = "烈士遗属、因公牺牲军人遗属、病故军人遗属一次性抚恤金的给付"


def decode_qr(png: str | Path) -> str:
    """The QR code in a printed ticket's picture, read by OpenCV as a phone's camera app would.

    OpenCV's classic detector misses about one printed ticket in fifty (3 of 150 random ticket
    URLs, each read by its ArUco-based detector and by the printer's own record of the ESC/POS QR
    command): a phone's reader has more than one way in too, so the second detector is asked
    when the first finds nothing.
    """
    image = cv2.imread(str(png))
    assert image is not None, png
    for detector in (cv2.QRCodeDetector(), cv2.QRCodeDetectorAruco()):
        text, _, _ = detector.detectAndDecode(image)
        if text:
            return text
    return ""


def issued(config: HallConfig, number: str = "A001", service_id: str = "social", ahead: int = 3,
           public_id: str = "K7P2M9X4QA") -> TicketView:
    """A ticket view as the hub answers a take-ticket command."""
    service = config.service(service_id)
    return TicketView(
        ticket_id=f"20261123-{number}", public_id=public_id, number=number, service_id=service_id,
        service_name=service.name, state=TicketState.WAITING, priority=Priority.NORMAL,
        channel=Channel.KIOSK, taken_at=datetime(2026, 11, 23, 2, 5, tzinfo=UTC), ahead=ahead,
        estimated_wait_minutes=ahead * 4.5, windows=[w.number for w in config.windows_serving(service_id)],
    )


def ticket_print(config: HallConfig, number: str = "A001", **changes: object) -> TicketPrint:
    return TicketPrint.from_view(issued(config, number), config).model_copy(update=changes)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[PrinterSimulator]:
    with PrinterSimulator(out_dir=tmp_path / "tickets") as sim:
        yield sim
