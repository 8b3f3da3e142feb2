"""Connections to a printer, one kind per URL scheme.

::

    tcp://192.168.1.50:9100                 network printer (raw port 9100)
    serial:///dev/ttyUSB0?baudrate=9600     serial or USB-serial; any pyserial port
    usb://0x0416:0x5011                     USB vendor:product id, through python-escpos (needs pyusb)
    file:///dev/usb/lp0                     a device file (Linux usblp); a plain file takes bytes only

Each transport writes bytes and reads what the printer answers within a timeout. The
registry maps a scheme to a class; an unknown scheme is refused with the valid ones.
"""

from __future__ import annotations

import os
import select
import socket
import stat
import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import ClassVar, Self
from urllib.parse import parse_qs, urlsplit

DEFAULT_TIMEOUT = 2.0


class TransportError(Exception):
    """The printer cannot be reached or a read or write failed; the message says why."""


class Transport(ABC):
    """An open byte link to one printer."""

    reads_status: ClassVar[bool] = True
    """Whether the printer can answer on this link (False for a plain file)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Send all of ``data`` or raise :class:`TransportError`."""

    @abstractmethod
    def read(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes that arrive within ``timeout`` seconds (possibly none)."""

    @abstractmethod
    def close(self) -> None: ...

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
        """Drop bytes already waiting (a late answer to an earlier query), returning them."""
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
    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(url, timeout)
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
            raise TransportError("the printer closed the connection")
        return data

    def close(self) -> None:
        self._socket.close()


class SerialTransport(Transport):
    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(url, timeout)
        import serial  # pyserial is only needed by installs with a serial printer

        parts = urlsplit(url)
        query = parse_qs(parts.query)
        try:
            baudrate = int(query.get("baudrate", query.get("baud", ["9600"]))[0])
        except ValueError:
            raise TransportError(f"{url}: baudrate must be a number") from None
        if not parts.path:
            raise TransportError(f"{url}: no port (write serial:///dev/ttyUSB0?baudrate=9600)")
        try:
            self._port = serial.serial_for_url(parts.path, baudrate=baudrate, timeout=0,
                                               write_timeout=timeout)
        except (serial.SerialException, ValueError) as exc:
            raise TransportError(f"{parts.path}: {exc}") from None

    def write(self, data: bytes) -> None:
        import serial

        try:
            self._port.write(data)
            self._port.flush()
        except serial.SerialException as exc:
            raise TransportError(f"write failed: {exc}") from None

    def read(self, size: int, timeout: float) -> bytes:
        import serial

        try:
            self._port.timeout = max(timeout, 0)
            return bytes(self._port.read(size))
        except serial.SerialException as exc:
            raise TransportError(f"read failed: {exc}") from None

    def close(self) -> None:
        self._port.close()


class FileTransport(Transport):
    """A device file such as ``/dev/usb/lp0`` (read and write), or a plain file (bytes only)."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(url, timeout)
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
    def reads_status(self) -> bool:  # type: ignore[override]
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
    """A USB printer by vendor and product id, through python-escpos's USB connection."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(url, timeout)
        from escpos.printer import Usb

        if not Usb.is_usable():
            raise TransportError("usb:// needs the pyusb package (pip install pyusb) and libusb")
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


TRANSPORTS: dict[str, type[Transport]] = {
    "tcp": TcpTransport,
    "serial": SerialTransport,
    "usb": UsbTransport,
    "file": FileTransport,
}
"""URL scheme to transport class."""


def open_transport(url: str, timeout: float = DEFAULT_TIMEOUT) -> Transport:
    """Open the connection a printer URL names.

    Raises:
        TransportError: unknown scheme (the message lists the valid ones), bad URL,
            or the printer cannot be reached.
    """
    scheme = urlsplit(url).scheme
    kind = TRANSPORTS.get(scheme)
    if kind is None:
        valid = ", ".join(f"{name}://" for name in TRANSPORTS)
        raise TransportError(f"unknown printer address {url!r}: use one of {valid}")
    return kind(url, timeout)
