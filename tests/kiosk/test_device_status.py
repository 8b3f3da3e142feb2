"""The kiosk's printer and card reader show up as device status on the hall broker (no Kivy needed)."""

from __future__ import annotations

from hallkit.broker.client import read_hall
from hallkit.devices.printer.simulator import PrinterSimulator, StateChange
from hallkit.devices.printer.status import PaperLevel
from hallkit.kiosk.devices import KioskDevices

from hallkit.config import parse_config
from hallkit.testing import HALL_WITH_DEVICES
from tests.broker.test_hub import wait_for

CONFIG = HALL_WITH_DEVICES + """
[[devices]]
id = "printer-1"
kind = "printer"
url = "tcp://127.0.0.1:1"
kiosk = "kiosk-1"

[[devices]]
id = "idcard-1"
kind = "idcard"
url = "serial:///dev/nonexistent-reader"
kiosk = "kiosk-1"
"""


class _Quiet:
    """The kiosk screen's side of device events: not under test here."""

    def printer_status(self, status) -> None: ...
    def ticket_printed(self, ticket_id) -> None: ...
    def ticket_not_printed(self, ticket_id, status) -> None: ...
    def card_read(self, record) -> None: ...
    def card_problem(self, error) -> None: ...


def test_printer_paper_and_reader_fault_reach_the_hall_broker(mosquitto, tmp_path):
    config = parse_config(CONFIG)
    with PrinterSimulator(out_dir=tmp_path / "tickets") as printer:
        devices = KioskDevices(config, "kiosk-1", lambda f: f(), _Quiet(), printer_url=printer.url,
                               broker=mosquitto.address)
        devices.start()
        try:
            def status(device: str):
                return read_hall(mosquitto.address, "test-hall", 0.5).devices.get(device)

            wait_for(lambda: (s := status("printer-1")) is not None and s.detail.get("paper") == "ok", 20)
            assert status("kiosk-1").state == "online"
            reader = status("idcard-1")
            assert reader.state == "online" and reader.problems  # the reader could not be opened: said in words
            assert reader.problems[0].zh and reader.problems[0].en
            printer.change_state(StateChange(paper=PaperLevel.OUT))
            wait_for(lambda: status("printer-1").detail.get("paper") == "out", 20)
            assert status("printer-1").problems[0].zh  # e.g. 缺纸
        finally:
            devices.stop()
        wait_for(lambda: status("printer-1").state == "offline")
