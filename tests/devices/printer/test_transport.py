"""Printer URLs to connections (the registry itself: tests/devices/test_transport.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hallkit.devices.printer.layout import TicketComposer
from hallkit.devices.printer.printer import EscposTicketPrinter
from hallkit.devices.printer.status import PrinterCondition
from hallkit.devices.transport import LinkSettings, TcpTransport, TransportError, open_transport

from hallkit.config import TicketLayout
from tests.devices.printer.conftest import ticket_print


@pytest.mark.parametrize("url", ["lpt://1", "http://printer", "/dev/usb/lp0"])
def test_unknown_scheme_names_the_valid_ones(url):
    with pytest.raises(TransportError, match=r"use one of serial://, tcp://, file://, usb://, sim://"):
        open_transport(url)


@pytest.mark.parametrize(("url", "message"), [
    ("tcp://:9100", "no host"),
    ("usb://0x0416", "usb://"),
    ("serial:///dev/ttyUSB0?baudrate=fast", "baudrate must be a number"),
    ("serial:///dev/hallkit-no-such-port", "hallkit-no-such-port"),
])
def test_bad_addresses_say_what_is_wrong(url, message):
    with pytest.raises(TransportError, match=message):
        open_transport(url, LinkSettings(timeout=1))


def test_tcp_transport_talks_to_the_simulator(simulator):
    with open_transport(simulator.url) as link:
        assert isinstance(link, TcpTransport)
        link.write(b"\x10\x04\x04")
        assert link.read_exactly(1, 5) == b"\x12"


def test_a_plain_file_takes_the_ticket_bytes_without_status(tmp_path: Path, small_config):
    target = tmp_path / "ticket.bin"
    printer = EscposTicketPrinter(f"file://{target}", TicketLayout())
    ticket = ticket_print(small_config)
    assert printer.status().condition is PrinterCondition.UNKNOWN
    printer.print_ticket(ticket)  # a one-way link cannot be asked; it prints and says "unknown"
    printer.close()
    assert target.read_bytes() == TicketComposer(TicketLayout()).to_bytes(ticket)
