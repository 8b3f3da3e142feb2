"""The demo's devices and screens: the virtual ticket printer and the simulated ID-card reader
(with or without windows), and the kiosk and the hall display in their own processes.

``hall demo`` (without ``--headless``) starts the screens beside the hub and the traffic
simulator, so a newcomer can take a ticket at the kiosk, watch it called on the display
and hear it. Cards are placed by typing ``place elderly`` (or ``valid``, ``expired`` …)
and ``remove`` in the demo's terminal.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

from hallkit.broker.mosquitto import Logins
from hallkit.contracts.mqtt import BrokerAddress
from hallkit.devices.idcard.problems import IdCardError
from hallkit.devices.idcard.records import ResidentRecord
from hallkit.devices.idcard.simulator import IdCardSimulator
from hallkit.devices.printer.layout import TicketPrint
from hallkit.devices.printer.simulator import PrinterSimulator
from hallkit.devices.printer.status import PrinterStatus
from hallkit.kiosk.devices import KioskDevices

from hallkit.config import HallConfig

log = logging.getLogger(__name__)


class DemoDevices:
    """The virtual printer (tickets drawn as PNGs) and the card reader, the same with or without windows."""

    def __init__(self, data: Path) -> None:
        self.printer = PrinterSimulator(out_dir=data / "printed-tickets")
        self.idcard = IdCardSimulator()

    def start(self) -> DemoDevices:
        self.printer.start()
        self.idcard.start()
        threading.Thread(target=self._card_orders, name="demo-cards", daemon=True).start()
        print(f"  virtual printer draws tickets into {self.printer.out_dir}")
        print(f"  ID card reader on {self.idcard.port}: type 'place NAME' ({', '.join(self.idcard.card_names)}) "
              "or 'remove', then Enter")
        return self

    def _card_orders(self) -> None:
        for line in sys.stdin:
            match line.split():
                case ["place", name] if name in self.idcard.card_names:
                    self.idcard.place(name)
                case ["remove"]:
                    self.idcard.remove()
                case [_, *_]:
                    print(f"  ID card orders: place {{{','.join(self.idcard.card_names)}}} | remove")

    @property
    def idcard_url(self) -> str:
        return f"serial://{self.idcard.port}"

    def stop(self) -> None:
        self.printer.stop()
        self.idcard.stop()


KIOSK_DEVICE = "kiosk-1"
"""The sample hall's kiosk, whose printer and card reader the demo simulates."""


class HeadlessKiosk:
    """The kiosk without its screen (``--headless``): the same printer and card reader, opened and
    reported to the hub under their own logins as the kiosk would, so the manager's device list
    reads as it does with windows; the simulated residents' tickets print here."""

    def __init__(self, config: HallConfig, devices: DemoDevices, broker: BrokerAddress,
                 logins: Logins | None) -> None:
        # Events come from the devices' own threads; nothing here needs a UI thread.
        self.devices = KioskDevices(config, KIOSK_DEVICE, lambda call: call(), self,
                                    printer_url=devices.printer.url, idcard_url=devices.idcard_url,
                                    broker=broker, logins=logins)

    def start(self) -> HeadlessKiosk:
        self.devices.start()
        return self

    def print_ticket(self, ticket: TicketPrint) -> None:
        # The spooler opens on the devices' worker at start; a ticket taken in that instant goes unprinted.
        if self.devices.spooler is not None:
            self.devices.spooler.submit(ticket)

    def stop(self) -> None:
        self.devices.stop()

    # ---- what the devices tell the kiosk ------------------------------------------------------

    def printer_status(self, status: PrinterStatus) -> None:
        log.info("printer: %s", status.describe("en"))

    def ticket_printed(self, ticket_id: str) -> None:
        log.debug("ticket %s printed", ticket_id)

    def ticket_not_printed(self, ticket_id: str, status: PrinterStatus) -> None:
        print(f"  未出票 ticket not printed: {status.describe('zh')} / {status.describe('en')}", flush=True)

    def card_read(self, record: ResidentRecord) -> None:
        print(f"  已读卡 card read: {record.name_masked} {record.id_masked}"
              f"{' 老年人 elderly' if record.elderly else ''}", flush=True)

    def card_problem(self, error: IdCardError) -> None:
        print(f"  读卡问题 card problem: {error.message.bilingual()}", flush=True)


class DemoScreens:
    def __init__(self, config_path: Path, broker_url: str, logins: Path | None, devices: DemoDevices) -> None:
        self.config_path = config_path
        self.broker_url = broker_url
        self.logins = logins
        self.devices = devices
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> DemoScreens:
        hall = [sys.executable, "-m", "hallkit.cli"]
        common = ["--config", str(self.config_path), "--windowed"]
        # Each screen logs in as its own device; its password comes from the logins file, not the
        # command line (which every user of the machine can read).
        kiosk, display = self._as(KIOSK_DEVICE), self._as("display-1")
        devices = ["--printer", self.devices.printer.url, "--idcard", self.devices.idcard_url]
        # Their own session: Ctrl-C in the demo's terminal is the demo's to handle (it closes them),
        # not a KeyboardInterrupt traceback in each screen.
        self.processes.append(subprocess.Popen([*hall, "kiosk", *common, *kiosk, *devices], start_new_session=True))
        self.processes.append(subprocess.Popen([*hall, "display", *common, *display, "--device", "display-1"],
                                               start_new_session=True))
        print("  kiosk and hall display opened")
        return self

    def _as(self, device: str) -> list[str]:
        if self.logins is None:
            return ["--broker", self.broker_url]
        return ["--broker", self.broker_url.replace("://", f"://{device}@", 1), "--logins", str(self.logins)]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
