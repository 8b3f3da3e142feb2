"""The print worker: every issued ticket is printed once, or reported as not printed.

The hub issues a ticket whether or not there is paper. The spooler keeps tickets in
order and prints them from one background thread:

- a ticket that cannot be printed now (paper out, cover open, offline, write error)
  stays queued and is reported once through ``ticket_not_printed``, right away, so the
  kiosk shows the number and QR on screen instead;
- the printer is asked again every ``retry_seconds`` while tickets wait, and every
  ``poll_seconds`` when idle, so "paper low" is published before paper runs out;
- when the printer recovers the queued tickets print in order, each exactly once
  (an id already submitted is ignored, so a duplicate hub message cannot print twice).

A ticket whose bytes were all accepted by the link counts as printed. A link that
breaks in the middle of a ticket leaves it queued: it is printed again in full, which
may follow a torn half; it is never dropped.

Listeners are called from the worker thread; a listener that raises is logged and the
worker carries on.
"""

from __future__ import annotations

import logging
import operator
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

from hallkit.devices.printer.layout import TicketPrint
from hallkit.devices.printer.printer import PrintFailed, TicketPrinter
from hallkit.devices.printer.status import PrinterStatus

from hallkit.i18n import bilingual

log = logging.getLogger(__name__)


class PrinterListener(Protocol):
    """Told what happens at the printer: the hub publishes it, the kiosk shows it."""

    def status_changed(self, status: PrinterStatus) -> None:
        """The printer's condition changed (also called once with the first status)."""
        ...

    def ticket_printed(self, ticket: TicketPrint, late: bool) -> None:
        """The ticket left for the printer; ``late`` when it was reported as not printed before."""
        ...

    def ticket_not_printed(self, ticket: TicketPrint, status: PrinterStatus) -> None:
        """The ticket could not be printed now; it stays queued and prints on recovery."""
        ...


class TicketSpooler:
    """Queues tickets for one printer and prints them from a background thread.

    Args:
        printer: the printer to print on (it asks its status before each ticket).
        poll_seconds: how often an idle printer is asked its status.
        retry_seconds: how often a printer that failed is tried again while tickets wait.
    """

    def __init__(self, printer: TicketPrinter, poll_seconds: float = 10.0, retry_seconds: float = 2.0) -> None:
        self.printer = printer
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self._listeners: list[PrinterListener] = []
        self._queue: deque[TicketPrint] = deque()
        self._submitted: set[str] = set()
        self._reported: set[str] = set()
        self._status: PrinterStatus | None = None
        self._next_attempt = 0.0
        self._stopping = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add_listener(self, listener: PrinterListener) -> None:
        self._listeners.append(listener)

    @property
    def status(self) -> PrinterStatus | None:
        """The last status the printer gave, None before the first question."""
        return self._status

    def pending(self) -> list[TicketPrint]:
        """Tickets not printed yet, oldest first."""
        with self._wake:
            return list(self._queue)

    def submit(self, ticket: TicketPrint) -> bool:
        """Queue a ticket for printing; False when this ticket id was submitted before."""
        with self._wake:
            if ticket.ticket_id in self._submitted:
                log.info("ticket %s already submitted; not printing it twice", ticket.number)
                return False
            self._submitted.add(ticket.ticket_id)
            self._queue.append(ticket)
            # Try now even after a failure: the kiosk must learn at once if this one cannot print.
            self._next_attempt = 0.0
            self._wake.notify()
            return True

    def start(self) -> Self:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="ticket-spooler", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> list[TicketPrint]:
        """Stop the worker and close the printer; returns the tickets that were never printed."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.printer.close()
        return self.pending()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        next_poll = 0.0
        while True:
            with self._wake:
                while not self._stopping:
                    now = time.monotonic()
                    if self._queue and now >= self._next_attempt:
                        break
                    if now >= next_poll:
                        break
                    due = min(next_poll, self._next_attempt) if self._queue else next_poll
                    self._wake.wait(due - now)
                if self._stopping:
                    return
                ticket = self._queue[0] if self._queue and time.monotonic() >= self._next_attempt else None
            if ticket is None:
                self._publish(self.printer.status())
            else:
                self._print(ticket)
            next_poll = time.monotonic() + self.poll_seconds

    def _print(self, ticket: TicketPrint) -> None:
        try:
            status = self.printer.print_ticket(ticket)
        except PrintFailed as failure:
            self._publish(failure.status)
            with self._wake:
                self._next_attempt = time.monotonic() + self.retry_seconds
                unreported = [t for t in self._queue if t.ticket_id not in self._reported]
                self._reported.update(t.ticket_id for t in unreported)
            for waiting in unreported:
                log.warning(failure.status.bilingual("printer.spool.not_printed", number=waiting.number))
                self._tell(operator.methodcaller("ticket_not_printed", waiting, failure.status))
            return
        with self._wake:
            self._queue.popleft()
            late = ticket.ticket_id in self._reported
            self._reported.discard(ticket.ticket_id)
        if late:
            log.info(bilingual("printer.spool.printed_late", number=ticket.number))
        self._publish(status)
        self._tell(lambda listener: listener.ticket_printed(ticket, late))

    def _publish(self, status: PrinterStatus) -> None:
        if status.same_condition(self._status):
            return
        self._status = status
        log.info("printer %s", status.describe("en") + (f" ({status.detail})" if status.detail else ""))
        self._tell(lambda listener: listener.status_changed(status))

    def _tell(self, call: Callable[[PrinterListener], None]) -> None:
        for listener in list(self._listeners):
            try:
                call(listener)
            except Exception:  # a broken screen callback must not stop the printing
                log.exception("printer listener %r failed", listener)
