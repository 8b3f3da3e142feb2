"""Device URLs to byte links (devices/transport.py): one registry for the printer, the ID card reader and the pads."""

from __future__ import annotations

import os
import time
from datetime import date
from typing import ClassVar

import pytest
from hallkit.devices.idcard.codec import Cmd, Command, IdCardDecoder, Reply, Status, encode
from hallkit.devices.idcard.reader import ReaderSettings, SerialIdCardReader
from hallkit.devices.idcard.simulator import IdCardSimulator
from hallkit.devices.printer.simulator import PrinterSimulator
from hallkit.devices.transport import (
    TRANSPORTS,
    LinkSettings,
    SerialTransport,
    SimTransport,
    Transport,
    TransportError,
    device_url,
    open_transport,
    transport_class,
)

from hallkit.config import Device, DeviceKind


class NeedsAbsentPackage(SerialTransport):
    """A transport whose optional dependency is not installed."""

    needs: ClassVar[dict[str, str]] = {"hallkit_absent_module": "hallkit-absent-package"}


def test_an_unknown_scheme_is_refused_with_the_valid_ones():
    with pytest.raises(TransportError) as refused:
        open_transport("lpt://1")
    message = str(refused.value)
    assert "lpt://1" in message
    assert all(f"{scheme}://" in message for scheme in ("serial", "tcp", "file", "usb", "sim", "spy", "socket"))


def test_a_missing_optional_package_is_named_before_anything_is_opened(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(TRANSPORTS, "needy", (__name__, "NeedsAbsentPackage"))
    with pytest.raises(TransportError, match=r"needy:// needs hallkit-absent-package \(pip install"):
        open_transport("needy:///dev/null")
    assert SerialTransport.missing() == []  # pyserial is installed here


def test_a_simulator_kind_that_does_not_exist_lists_those_that_do():
    with pytest.raises(TransportError, match=r"sim://pad.*sim://printer, sim://idcard"):
        open_transport("sim://pad")


def test_sim_printer_is_a_simulator_of_its_own_stopped_with_the_link():
    with open_transport("sim://printer", LinkSettings(timeout=5)) as link:
        assert isinstance(link, SimTransport) and isinstance(link.simulator, PrinterSimulator)
        link.write(b"\x10\x04\x04")  # DLE EOT 4: paper sensor
        assert link.read_exactly(1, 10) == b"\x12"
        simulator_url = link.simulator.url
    with pytest.raises(TransportError):
        open_transport(simulator_url, LinkSettings(timeout=2))


def test_sim_idcard_answers_the_reader_protocol():
    with open_transport("sim://idcard", LinkSettings(timeout=5)) as link:
        assert isinstance(link, SimTransport) and isinstance(link.simulator, IdCardSimulator)
        link.simulator.place("valid")
        link.write(encode(Command.of(Cmd.FIND_CARD)))
        decoder = IdCardDecoder()
        deadline = time.monotonic() + 10
        found: list[bytes] = []
        while not found and time.monotonic() < deadline:
            found = decoder.feed(link.read(4096, 0.1))
        assert [Reply.parse(payload) for payload in found] == [Reply.of(Status.CARD_FOUND, bytes(4))]


def test_the_reader_takes_a_sim_url_from_the_hall_config():
    device = Device(id="reader-1", kind=DeviceKind.IDCARD, url="sim://idcard")
    settings = ReaderSettings.from_device(device, reply_timeout=2.0)
    with SerialIdCardReader(settings, "test-secret-0123456789", 65, today=date.today) as reader:
        assert reader.card_present() is False  # an empty simulated reader, reached through the registry


def test_pyserial_urls_are_handed_over_whole_and_a_read_returns_what_is_there():
    with open_transport("loop://", LinkSettings(timeout=2)) as link:
        assert isinstance(link, SerialTransport)
        link.write(b"abc")
        started = time.monotonic()
        assert link.read(100, 30) == b"abc"
        assert time.monotonic() - started < 15  # it did not wait for the other 97 bytes
        assert link.read(100, 0) == b""


def test_a_pseudo_terminal_by_bare_path():
    with IdCardSimulator() as simulator:
        url = device_url(simulator.port)
        assert url == f"serial://{simulator.port}"
        with open_transport(url) as link:
            link.write(encode(Command.of(Cmd.SAM_STATUS)))
            decoder = IdCardDecoder()
            deadline = time.monotonic() + 10
            found: list[bytes] = []
            while not found and time.monotonic() < deadline:
                found = decoder.feed(link.read(4096, 0.1))
            assert [Reply.parse(payload) for payload in found] == [Reply.of(Status.OK)]


def test_device_url_leaves_urls_alone_and_makes_paths_absolute():
    assert device_url("serial:///dev/ttyUSB0?baudrate=115200") == "serial:///dev/ttyUSB0?baudrate=115200"
    assert device_url("spy:///dev/ttyUSB0") == "spy:///dev/ttyUSB0"
    assert device_url("reader-link") == f"serial://{os.path.join(os.getcwd(), 'reader-link')}"


def test_every_registered_transport_is_a_transport():
    for scheme in TRANSPORTS:
        assert issubclass(transport_class(f"{scheme}://x"), Transport)
