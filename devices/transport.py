"""Byte links to devices, one kind per URL scheme, shared by the printer, the ID card reader and the pads.

::

    serial:///dev/ttyUSB0?baudrate=9600     a serial or USB-serial port (pyserial)
    tcp://192.168.1.50:9100                 a network device (a printer's raw port 9100)
    file:///dev/usb/lp0                     a device file (Linux usblp); a plain file takes bytes only
    usb://0x0416:0x5011                     USB vendor:product id, through python-escpos (needs pyusb)
    sim://printer, sim://idcard             an in-process simulator, started with the link, stopped with it
    spy:///dev/ttyUSB0, socket://, loop://  pyserial's own URL handlers, passed to it as they are
                                            (spy:// logs the traffic in hex, for field work)

Each transport writes bytes and reads what the device answers within a timeout. The
registry maps a scheme to a (module, class) pair, imported only when a URL uses it; an
unknown scheme is refused with the valid ones listed, and a transport whose optional
dependency is missing says which package to install. What the bytes mean is the device
driver's business (its codec); how to choose a pad kind is :mod:`devices.evaluator.pad`'s.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import select
import socket
import stat
import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Protocol, Self
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import serial

DEFAULT_TIMEOUT = 2.0


class TransportError(Exception):
    """The device cannot be reached or a read or write failed; the message says why."""


class LinkSettings(BaseModel):
    """How patient a link is, and the speed of a serial line when its URL does not say."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, description="seconds to connect, and for one write")
    baudrate: int = Field(9600, gt=0, description="serial speed unless the URL gives ?baudrate=")


class Transport(ABC):
    """An open byte link to one device."""

    can_read: ClassVar[bool] = True
    """Whether the device can answer on this link (False for a plain file)."""

    needs: ClassVar[dict[str, str]] = {}
    """Optional modules this transport imports, each with the package that provides it."""

    def __init__(self, url: str, settings: LinkSettings) -> None:
        self.url = url
        self.timeout = settings.timeout

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Send all of ``data`` or raise :class:`TransportError`."""

    @abstractmethod
    def read(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes: those already waiting, else the first that arrive within ``timeout`` seconds.

        Returns ``b""`` when nothing came.
        """

    @abstractmethod
    def close(self) -> None: ...

    @classmethod
    def missing(cls) -> list[str]:
        """The packages to install before this transport can be used (empty when none is missing)."""
        return [package for module, package in cls.needs.items() if importlib.util.find_spec(module) is None]

    def read_exactly(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes, waiting at most ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        data = b""
        while len(data) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            data += self.read(size - len(data), left)
        return data

    def discard_input(self) -> bytes:
        """Drop bytes already waiting (a late answer to an earlier request), returning them."""
        dropped = b""
        while chunk := self.read(256, 0):
            dropped += chunk
        return dropped

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class TcpTransport(Transport):
    def __init__(self, url: str, settings: LinkSettings) -> None:
        super().__init__(url, settings)
        timeout = settings.timeout
        parts = urlsplit(url)
        if not parts.hostname:
            raise TransportError(f"{url}: no host (write tcp://HOST:9100)")
        try:
            port = parts.port or 9100
        except ValueError as exc:
            raise TransportError(f"{url}: {exc}") from None
        try:
            self._socket = socket.create_connection((parts.hostname, port), timeout=timeout)
        except OSError as exc:
            raise TransportError(f"{parts.hostname}:{port}: {exc.strerror or exc}") from None
        # A ticket is one small write; send it now rather than wait for more.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        try:
            self._socket.settimeout(self.timeout)
            self._socket.sendall(data)
        except OSError as exc:
            raise TransportError(f"write failed: {exc.strerror or exc}") from None

    def read(self, size: int, timeout: float) -> bytes:
        try:
            ready, _, _ = select.select([self._socket], [], [], max(timeout, 0))
            if not ready:
                return b""
            data = self._socket.recv(size)
        except OSError as exc:
            raise TransportError(f"read failed: {exc.strerror or exc}") from None
        if not data:
            raise TransportError("the device closed the connection")
        return data

    def close(self) -> None:
        self._socket.close()


class SerialTransport(Transport):
    """A serial port: ``serial://PATH?baudrate=N``, or any of pyserial's own URLs handed over whole."""

    needs: ClassVar[dict[str, str]] = {"serial": "pyserial"}

    def __init__(self, url: str, settings: LinkSettings) -> None:
        super().__init__(url, settings)
        import serial

        parts = urlsplit(url)
        baudrate = settings.baudrate
        port = url  # pyserial's URL handlers (spy://, socket://, ...) read their own options
        if parts.scheme == "serial":
            port = parts.path
            query = parse_qs(parts.query)
            try:
                baudrate = int(query.get("baudrate", query.get("baud", [str(baudrate)]))[0])
            except ValueError:
                raise TransportError(f"{url}: baudrate must be a number") from None
            if not port:
                raise TransportError(f"{url}: no port (write serial:///dev/ttyUSB0?baudrate=9600)")
        self.port = port
        try:
            self._port: serial.SerialBase = serial.serial_for_url(port, baudrate=baudrate, timeout=0,
                                                                   write_timeout=settings.timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"{port}: {exc}") from None

    def write(self, data: bytes) -> None:
        import serial

        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"write failed: {exc}") from None

    def read(self, size: int, timeout: float) -> bytes:
        import serial

        try:
            waiting = self._port.in_waiting
            if waiting:
                return bytes(self._port.read(min(waiting, size)))
            self._set_timeout(max(timeout, 0))
            first = bytes(self._port.read(1))
            if not first or size == 1:
                return first
            self._set_timeout(0)
            return first + bytes(self._port.read(min(self._port.in_waiting, size - 1)))
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"read failed: {exc}") from None

    def _set_timeout(self, timeout: float) -> None:
        # Setting it reconfigures the port (a system call): only when it changes.
        if self._port.timeout != timeout:
            self._port.timeout = timeout

    def close(self) -> None:
        import serial

        with contextlib.suppress(serial.SerialException, OSError):  # already gone (unplugged): nothing to release
            self._port.close()


class FileTransport(Transport):
    """A device file such as ``/dev/usb/lp0`` (read and write), or a plain file (bytes only)."""

    def __init__(self, url: str, settings: LinkSettings) -> None:
        super().__init__(url, settings)
        path = urlsplit(url).path
        if not path:
            raise TransportError(f"{url}: no path (write file:///dev/usb/lp0)")
        try:
            device = os.path.exists(path) and stat.S_ISCHR(os.stat(path).st_mode)
            flags = os.O_RDWR | os.O_NONBLOCK if device else os.O_WRONLY | os.O_CREAT | os.O_APPEND
            self._fd = os.open(path, flags | os.O_NOCTTY, 0o644)
        except OSError as exc:
            raise TransportError(f"{path}: {exc.strerror or exc}") from None
        self._device = device

    @property
    def can_read(self) -> bool:  # type: ignore[override]
        return self._device

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + self.timeout
        try:
            while view:
                if self._device:
                    # usblp is non-blocking here: wait for room, never past the timeout.
                    _, ready, _ = select.select([], [self._fd], [], max(deadline - time.monotonic(), 0))
                    if not ready:
                        raise TransportError("write timed out")
                view = view[os.write(self._fd, view):]
        except BlockingIOError:
            raise TransportError("write timed out") from None
        except OSError as exc:
            raise TransportError(f"write failed: {exc.strerror or exc}") from None

    def read(self, size: int, timeout: float) -> bytes:
        if not self._device:
            return b""
        try:
            ready, _, _ = select.select([self._fd], [], [], max(timeout, 0))
            return os.read(self._fd, size) if ready else b""
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise TransportError(f"read failed: {exc.strerror or exc}") from None

    def close(self) -> None:
        os.close(self._fd)


class UsbTransport(Transport):
    """A USB printer by vendor and product id, through python-escpos's USB connection (and libusb)."""

    needs: ClassVar[dict[str, str]] = {"usb": "pyusb", "escpos": "python-escpos"}

    def __init__(self, url: str, settings: LinkSettings) -> None:
        super().__init__(url, settings)
        timeout = settings.timeout
        from escpos.printer import Usb

        ids = urlsplit(url).netloc.split(":")
        try:
            vendor, product = (int(part, 16) for part in ids)
        except ValueError:
            raise TransportError(f"{url}: write usb://VENDOR:PRODUCT in hex, e.g. usb://0x0416:0x5011") from None
        from escpos.exceptions import Error as EscposError

        try:
            self._printer = Usb(vendor, product, timeout=int(timeout * 1000))
            self._printer.open()
        except (EscposError, OSError) as exc:
            raise TransportError(f"USB {vendor:04x}:{product:04x}: {exc}") from None

    def write(self, data: bytes) -> None:
        import usb.core

        try:
            self._printer._raw(data)
        except usb.core.USBError as exc:
            raise TransportError(f"write failed: {exc}") from None

    def read(self, size: int, timeout: float) -> bytes:
        import usb.core

        # python-escpos's _read() has no timeout; ask pyusb directly, in milliseconds.
        device = self._printer.device
        try:
            return bytes(device.read(self._printer.in_ep, size, max(int(timeout * 1000), 1)))
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as exc:
            raise TransportError(f"read failed: {exc}") from None

    def close(self) -> None:
        self._printer.close()


class SimulatedDevice(Protocol):
    """A simulator that :class:`SimTransport` can start, reach at its URL, and stop."""

    @property
    def url(self) -> str:
        """Where a real transport reaches it (``tcp://…``, ``serial://…``)."""
        ...

    def start(self) -> object: ...

    def stop(self) -> None: ...


SIMULATORS: dict[str, tuple[str, str]] = {
    "printer": ("hallkit.devices.printer.simulator", "PrinterSimulator"),
    "idcard": ("hallkit.devices.idcard.simulator", "IdCardSimulator"),
}
"""``sim://KIND`` to the (module, class) of a simulator that runs in process."""


class SimTransport(Transport):
    """``sim://KIND``: a simulator of its own, started in this process, reached over its real transport.

    :attr:`simulator` is there to control it (place a card, take the paper away).
    """

    def __init__(self, url: str, settings: LinkSettings) -> None:
        super().__init__(url, settings)
        kind = urlsplit(url).netloc
        entry = SIMULATORS.get(kind)
        if entry is None:
            there = ", ".join(f"sim://{name}" for name in SIMULATORS)
            raise TransportError(f"{url}: no simulator of {kind!r} runs in process; there is {there}")
        module, name = entry
        self.simulator: SimulatedDevice = getattr(importlib.import_module(module), name)()
        self.simulator.start()
        try:
            self._link = open_transport(self.simulator.url, settings)
        except TransportError:
            self.simulator.stop()
            raise

    @property
    def can_read(self) -> bool:  # type: ignore[override]
        return self._link.can_read

    def write(self, data: bytes) -> None:
        self._link.write(data)

    def read(self, size: int, timeout: float) -> bytes:
        return self._link.read(size, timeout)

    def close(self) -> None:
        self._link.close()
        self.simulator.stop()


_HERE = __name__

TRANSPORTS: dict[str, tuple[str, str]] = {
    "serial": (_HERE, "SerialTransport"),
    "tcp": (_HERE, "TcpTransport"),
    "file": (_HERE, "FileTransport"),
    "usb": (_HERE, "UsbTransport"),
    "sim": (_HERE, "SimTransport"),
}
"""URL scheme to the (module, class) of its transport, imported when a URL uses it."""

PYSERIAL_SCHEMES = ("spy", "socket", "loop", "rfc2217", "alt", "hwgrep")
"""pyserial's own URL handlers: a :class:`SerialTransport` hands such a URL to pyserial whole."""


def transport_class(url: str) -> type[Transport]:
    """The transport a URL names.

    Raises:
        TransportError: unknown scheme; the message lists the valid ones.
    """
    scheme = urlsplit(url).scheme
    entry = TRANSPORTS.get(scheme) or (TRANSPORTS["serial"] if scheme in PYSERIAL_SCHEMES else None)
    if entry is None:
        valid = ", ".join(f"{name}://" for name in TRANSPORTS)
        pyserial = ", ".join(f"{name}://" for name in PYSERIAL_SCHEMES)
        raise TransportError(f"unknown device address {url!r}: use one of {valid} (or pyserial's {pyserial})")
    module, name = entry
    kind: type[Transport] = getattr(importlib.import_module(module), name)
    return kind


def open_transport(url: str, settings: LinkSettings | None = None) -> Transport:
    """Open the link a device URL names.

    Raises:
        TransportError: unknown scheme, missing package, bad URL, or the device cannot be reached.
    """
    kind = transport_class(url)
    if missing := kind.missing():
        scheme = urlsplit(url).scheme
        raise TransportError(f"{scheme}:// needs {', '.join(missing)} (pip install {' '.join(missing)})")
    return kind(url, settings or LinkSettings())


def device_url(port: str) -> str:
    """A bare device path (``/dev/ttyUSB0``, a pseudo-terminal) as a ``serial://`` URL; a URL as it is."""
    if "://" in port:
        return port
    return f"serial://{os.path.abspath(port)}"
