"""The ticket printer interface, and its driver for ESC/POS printers.

The driver composes a transport (how bytes travel) with the layout and the status codec
(what the bytes mean); it inherits from neither. Before every ticket it asks the printer
for its real-time status and prints only when the printer says it can.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from hallkit.devices.printer.codec import StatusQuery, encode
from hallkit.devices.printer.layout import TicketComposer, TicketPrint
from hallkit.devices.printer.status import QUERIES, PrinterStatus, decode_status, no_reply, one_way_link
from hallkit.devices.transport import DEFAULT_TIMEOUT, LinkSettings, Transport, TransportError, open_transport

from hallkit.config import TicketLayout

log = logging.getLogger(__name__)

STATUS_QUERY = encode(StatusQuery(n=n) for n in QUERIES)
"""DLE EOT 1, 2 and 4 in one write: one round trip for the three answers."""


class PrintFailed(Exception):
    """The ticket was not printed; ``status`` says why (paper out, offline, write error...)."""

    def __init__(self, status: PrinterStatus) -> None:
        self.status = status
        super().__init__(f"{status.condition.value}: {status.detail}" if status.detail else status.condition.value)


class TicketPrinter(Protocol):
    """What the kiosk and the spooler need from a ticket printer."""

    def status(self) -> PrinterStatus:
        """Ask the printer now; never raises (an unreachable printer is a status)."""
        ...

    def print_ticket(self, ticket: TicketPrint) -> PrinterStatus:
        """Print one ticket if the printer says it can, returning that status.

        Raises:
            PrintFailed: the printer was not ready or the bytes could not be sent.
        """
        ...

    def close(self) -> None: ...


class EscposTicketPrinter:
    """A thermal printer reached by URL, speaking ESC/POS.

    The connection opens on first use and reopens after a failure, so a printer that
    is switched off and on again comes back without restarting the kiosk.

    Args:
        url: where the printer is, e.g. ``tcp://10.0.0.5:9100`` (see :mod:`devices.transport`).
        layout: paper width, encoding and Chinese mode from the hall config.
        status_timeout: seconds to wait for the status reply; silence means offline.
        write_timeout: seconds a ticket may take to leave (a jammed printer stops taking bytes).
    """

    def __init__(self, url: str, layout: TicketLayout, status_timeout: float = DEFAULT_TIMEOUT,
                 write_timeout: float = 5.0) -> None:
        self.url = url
        self.composer = TicketComposer(layout)
        self.status_timeout = status_timeout
        self.write_timeout = write_timeout
        self._transport: Transport | None = None
        # The spooler thread and a CLI or poller may share one printer; one conversation at a time.
        self._lock = threading.Lock()

    def status(self) -> PrinterStatus:
        with self._lock:
            return self._query_status()

    def print_ticket(self, ticket: TicketPrint) -> PrinterStatus:
        data = self.composer.to_bytes(ticket)
        with self._lock:
            status = self._query_status()
            if not status.can_print:
                raise PrintFailed(status)
            assert self._transport is not None  # a printable status means the link is open
            try:
                self._transport.timeout = self.write_timeout
                self._transport.write(data)
            except TransportError as exc:
                self._drop_link()
                raise PrintFailed(no_reply(str(exc))) from exc
            log.debug("printed ticket %s (%d bytes)", ticket.number, len(data))
            return status

    def close(self) -> None:
        with self._lock:
            self._drop_link()

    def _query_status(self) -> PrinterStatus:
        try:
            transport = self._link()
            if not transport.can_read:
                return one_way_link()
            stale = transport.discard_input()
            if stale:
                log.debug("dropped %d late status bytes", len(stale))
            transport.write(STATUS_QUERY)
            reply = transport.read_exactly(len(QUERIES), self.status_timeout)
        except TransportError as exc:
            self._drop_link()
            return no_reply(str(exc))
        status = decode_status(reply)
        if not status.answered:
            # A printer that went silent may have rebooted; a fresh connection finds out.
            self._drop_link()
        return status

    def _link(self) -> Transport:
        if self._transport is None:
            self._transport = open_transport(self.url, LinkSettings(timeout=self.status_timeout))
        return self._transport

    def _drop_link(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
