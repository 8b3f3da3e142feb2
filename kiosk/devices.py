"""The devices at one kiosk: ticket printer, ID-card reader, document camera; none on the UI thread.

Opening a serial port or asking a printer can take seconds, so :class:`KioskDevices`
opens everything on a worker thread, prints through the spooler's own thread, reads
cards on the card watcher's thread and scans on the worker. Everything it tells the
kiosk goes through ``deliver`` to the UI thread, as :class:`DeviceEvents` calls.
Only a :class:`ResidentRecord` (masked, keyed hash) leaves the card thread: the full
card holder is dropped as soon as the record is made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from hallkit.broker.mosquitto import Logins
from hallkit.broker.presence import DevicePresence
from hallkit.contracts.hall import Refusal
from hallkit.contracts.mqtt import BrokerAddress
from hallkit.devices.idcard.problems import IdCardError
from hallkit.devices.idcard.reader import CardRead, CardWatcher, SerialIdCardReader
from hallkit.devices.idcard.records import ResidentRecord
from hallkit.devices.printer.layout import TicketPrint, sample_ticket
from hallkit.devices.printer.printer import EscposTicketPrinter
from hallkit.devices.printer.spooler import TicketSpooler
from hallkit.devices.printer.status import PrinterCondition, PrinterStatus
from hallkit.devices.scanner.camera import DocCamera, DocumentCaptured, ScannerError, Usability
from hallkit.devices.scanner.folder import WatchedFolder
from hallkit.devices.scanner.hooks import DocumentScanner, SaveToFolder, ScanHooks
from hallkit.devices.scanner.simulator import SimulatedDocCamera
from hallkit.devices.scanner.uvc import UvcCamera
from hallkit.kiosk.hub import Deliver

from hallkit.config import Device, DeviceKind, HallConfig
from hallkit.i18n import Message

log = logging.getLogger(__name__)


class DeviceEvents(Protocol):
    """What the kiosk hears from its devices, always on the UI thread."""

    def printer_status(self, status: PrinterStatus) -> None: ...

    def ticket_printed(self, ticket_id: str) -> None: ...

    def ticket_not_printed(self, ticket_id: str, status: PrinterStatus) -> None: ...

    def card_read(self, record: ResidentRecord) -> None: ...

    def card_problem(self, error: IdCardError) -> None: ...


def open_camera(url: str) -> DocCamera:
    """The document camera of a ``[[devices]]`` scanner URL.

    ``sim://`` renders test pages; ``folder:///var/scans/in`` takes the files a vendor tool
    drops there; ``uvc:///dev/video0`` (or a bare ``/dev/video0``) captures with OpenCV.
    """
    parts = urlsplit(url)
    if parts.scheme == "sim":
        return SimulatedDocCamera()
    if parts.scheme == "folder":
        return WatchedFolder(Path(parts.path))
    if parts.scheme in ("uvc", ""):
        return UvcCamera(parts.path or "/dev/video0")
    raise ValueError(f"scanner URL {url!r}: use sim://, folder:///PATH or uvc:///dev/videoN")


class KioskDevices:
    """Opens and runs the devices attached to ``device_id`` in the hall configuration.

    Args:
        config: the hall configuration (devices, ticket layout, privacy key).
        device_id: the kiosk; printers, readers and scanners name it as their ``kiosk``.
        deliver: how events get to the UI thread.
        events: who hears about prints and cards.
        printer_url: overrides the configured printer URL (the demo's virtual printer).
        idcard_url: overrides the configured reader URL (the demo's simulated reader).
        broker: the hall broker, under the kiosk's login, for the devices' status.
        logins: the printer's and reader's logins: each device's status goes out under its own.
    """

    def __init__(self, config: HallConfig, device_id: str, deliver: Deliver, events: DeviceEvents,
                 printer_url: str | None = None, idcard_url: str | None = None,
                 broker: BrokerAddress | None = None, logins: Logins | None = None) -> None:
        self.config = config
        self._broker = broker
        self._logins = logins
        self._deliver = deliver
        self._events = events
        attached = [d for d in config.devices if d.kiosk == device_id]
        self.kiosk_device = next((d for d in config.devices if d.id == device_id), None)
        self.printer_device = _url_override(_first(attached, DeviceKind.PRINTER), printer_url, "printer")
        self.idcard_device = _url_override(_first(attached, DeviceKind.IDCARD), idcard_url, "idcard")
        self.scanner_device = _first(attached, DeviceKind.SCANNER)
        self.spooler: TicketSpooler | None = None
        self.watcher: CardWatcher | None = None
        self.scanner: DocumentScanner | None = None
        self.reader_problem: Message | None = None
        self.scanner_state: Usability | None = None
        """Why the card reader could not be opened (shown on the maintenance screen)."""
        self._presences: list[DevicePresence] = []
        self._kiosk_presence: DevicePresence | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="kiosk-devices")
        self._test_prints = 0

    # ---- life cycle: all opening happens on the worker --------------------------------------

    def start(self) -> None:
        # The kiosk's status owns the kiosk login's Will, so it joins that connection before the
        # kiosk's other parts (its feed, its hub requests) do.
        self._kiosk_presence = self._presence(self.kiosk_device) if self.kiosk_device is not None else None
        self._worker.submit(self._open)

    def stop(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
        if self.watcher is not None:
            self.watcher.stop()
        if self.spooler is not None:
            self.spooler.stop(timeout=3)
        if self.scanner is not None:
            self.scanner.camera.close()
        for presence in self._presences:
            presence.stop()

    def _presence(self, device: Device) -> DevicePresence | None:
        """The device's status on the hall broker, so the manager sees it (None without a broker or login)."""
        if self._broker is None:
            return None
        broker = self._broker
        if broker.username is not None and device.id != broker.username:
            password = self._logins.password(device.id) if self._logins is not None else None
            if password is None:
                log.warning("no login for %s (hall kiosk --logins FILE): its status is not published", device.id)
                return None
            broker = broker.as_login(device.id, password)
        presence = DevicePresence(broker, self.config.hall.id, device.id, device.kind.value).start()
        self._presences.append(presence)
        return presence

    def _open(self) -> None:
        if (presence := self._kiosk_presence) is not None:
            presence.update({"printer": self.printer_device.id if self.printer_device else None,
                             "idcard": self.idcard_device.id if self.idcard_device else None}, [])
        if self.printer_device is not None and self.printer_device.url:
            printer = EscposTicketPrinter(self.printer_device.url, self.config.ticket, status_timeout=1.0)
            self.spooler = TicketSpooler(printer, retry_seconds=5.0)
            self.spooler.add_listener(_PrinterRelay(self._deliver, self._events,
                                                    self._presence(self.printer_device)))
            self.spooler.start()
        if self.idcard_device is not None and self.idcard_device.url:
            try:
                reader = SerialIdCardReader.for_hall(self.config, self.idcard_device)
            except IdCardError as error:
                log.warning("card reader %s: %s", self.idcard_device.url, error)
                self.reader_problem = error.message
                if (presence := self._presence(self.idcard_device)) is not None:
                    presence.update({"url": self.idcard_device.url}, [Refusal.of(error.message)])
            else:
                if (presence := self._presence(self.idcard_device)) is not None:
                    presence.update({"url": self.idcard_device.url}, [])
                self.watcher = CardWatcher(reader, poll_interval=0.3)
                self.watcher.add_listener(_CardRelay(self.config, self._deliver, self._events))
                self.watcher.start()
        if self.scanner_device is not None:
            hooks = ScanHooks()
            hooks.on_page(SaveToFolder(Path(self.config.kiosk.scan_folder)))
            camera = open_camera(self.scanner_device.url)
            self.scanner_state = camera.is_usable()  # may probe the hardware: here, not on the UI thread
            self.scanner = DocumentScanner(camera, self.scanner_device.id, hooks)

    # ---- what the kiosk asks for ---------------------------------------------------------------

    def print_ticket(self, ticket: TicketPrint) -> bool:
        """Queue a ticket; False when there is no printer (the kiosk then shows the number to photograph)."""
        if self.spooler is None:
            return False
        self.spooler.submit(ticket)  # only takes a lock: safe on the UI thread
        return True

    def test_print(self) -> bool:
        if self.spooler is None:
            return False
        self._test_prints += 1
        sample = sample_ticket(self.config, datetime.now(self.config.hall.zone))
        # The spooler prints each ticket id once; every test page needs its own.
        self.spooler.submit(sample.model_copy(update={"ticket_id": f"test-{datetime.now():%H%M%S}-{self._test_prints}"}))
        return True

    def scan(self, service_id: str, done: Callable[[DocumentCaptured | ScannerError], None]) -> None:
        """Capture one page for ``service_id`` and run the hooks; ``done`` runs on the UI thread."""
        def work() -> None:
            assert self.scanner is not None
            result: DocumentCaptured | ScannerError
            try:
                result = self.scanner.scan(service_id, pages=1, timeout=20.0)
            except ScannerError as error:
                result = error
            self._deliver(lambda: done(result))

        self._worker.submit(work)

    @property
    def printer_status(self) -> PrinterStatus | None:
        return self.spooler.status if self.spooler is not None else None


def _first(devices: list[Device], kind: DeviceKind) -> Device | None:
    return next((d for d in devices if d.kind is kind), None)


def _url_override(device: Device | None, url: str | None, name: str) -> Device | None:
    if url is None:
        return device
    if device is None:
        return Device(id=name, kind=DeviceKind(name), url=url)
    return device.model_copy(update={"url": url})


class _PrinterRelay:
    """Spooler thread → UI thread, and → the printer's device status for the hall manager."""

    def __init__(self, deliver: Deliver, events: DeviceEvents, presence: DevicePresence | None) -> None:
        self._deliver = deliver
        self._events = events
        self._presence = presence

    def status_changed(self, status: PrinterStatus) -> None:
        if self._presence is not None:
            problems = [] if status.condition is PrinterCondition.READY else [Refusal(
                reason=f"printer.condition.{status.condition.value}", zh=status.describe("zh"),
                en=status.describe("en"))]
            self._presence.update({"paper": status.paper.value, "condition": status.condition.value,
                                   "cover_open": status.cover_open}, problems)
        self._deliver(lambda: self._events.printer_status(status))

    def ticket_printed(self, ticket: TicketPrint, late: bool) -> None:
        self._deliver(lambda: self._events.ticket_printed(ticket.ticket_id))

    def ticket_not_printed(self, ticket: TicketPrint, status: PrinterStatus) -> None:
        self._deliver(lambda: self._events.ticket_not_printed(ticket.ticket_id, status))


class _CardRelay:
    """Card watcher thread → UI thread, with the card holder reduced to a record on the way."""

    def __init__(self, config: HallConfig, deliver: Deliver, events: DeviceEvents) -> None:
        self._config = config
        self._deliver = deliver
        self._events = events

    def card_read(self, read: CardRead) -> None:
        today = datetime.now(self._config.hall.zone).date()
        record = read.holder.to_record(self._config.privacy.id_hash_key, self._config.queue.elderly_age, today)
        self._deliver(lambda: self._events.card_read(record))

    def card_problem(self, error: IdCardError) -> None:
        self._deliver(lambda: self._events.card_problem(error))
