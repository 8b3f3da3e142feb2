"""The print worker against the virtual printer: paper out in a burst, silence, duplicates."""

from __future__ import annotations

import threading
from collections.abc import Callable

from hallkit.devices.printer.layout import TicketPrint
from hallkit.devices.printer.printer import EscposTicketPrinter
from hallkit.devices.printer.simulator import PrinterSimulator, StateChange
from hallkit.devices.printer.spooler import TicketSpooler
from hallkit.devices.printer.status import PaperLevel, PrinterCondition, PrinterStatus

from hallkit.config import TicketLayout
from tests.devices.printer.conftest import ticket_print

GENEROUS = 30.0
"""Seconds a test waits for something that takes well under one on an idle machine."""


class Recorder:
    """A listener that keeps everything it is told, as the kiosk and the hub would."""

    def __init__(self) -> None:
        self.statuses: list[PrinterStatus] = []
        self.printed: list[tuple[str, bool]] = []
        self.not_printed: list[tuple[str, PrinterCondition]] = []
        self._changed = threading.Condition()

    def status_changed(self, status: PrinterStatus) -> None:
        with self._changed:
            self.statuses.append(status)
            self._changed.notify_all()

    def ticket_printed(self, ticket: TicketPrint, late: bool) -> None:
        with self._changed:
            self.printed.append((ticket.number, late))
            self._changed.notify_all()

    def ticket_not_printed(self, ticket: TicketPrint, status: PrinterStatus) -> None:
        with self._changed:
            self.not_printed.append((ticket.number, status.condition))
            self._changed.notify_all()

    def wait(self, done: Callable[[], bool], timeout: float = GENEROUS) -> bool:
        with self._changed:
            return self._changed.wait_for(done, timeout)


def spooler_for(simulator: PrinterSimulator, status_timeout: float = 2.0, poll_seconds: float = 10.0) -> TicketSpooler:
    printer = EscposTicketPrinter(simulator.url, TicketLayout(), status_timeout=status_timeout)
    return TicketSpooler(printer, poll_seconds=poll_seconds, retry_seconds=0.1)


def test_paper_out_during_a_burst_leaves_every_ticket_accounted_for_once(simulator, small_config):
    numbers = [f"A{n:03d}" for n in range(1, 11)]
    simulator.change_state(StateChange(tickets_left=3))
    recorder = Recorder()
    spooler = spooler_for(simulator)
    spooler.add_listener(recorder)
    with spooler:
        for number in numbers:
            assert spooler.submit(ticket_print(small_config, number))
        # The kiosk learns about each ticket the printer could not take.
        assert recorder.wait(lambda: len(recorder.not_printed) == 7)
        assert [t.large_text[0] for t in simulator.wait_for_tickets(3, GENEROUS)] == numbers[:3]
        assert [t.number for t in spooler.pending()] == numbers[3:]

        simulator.change_state(StateChange(paper=PaperLevel.OK))  # staff load a new roll
        assert recorder.wait(lambda: len(recorder.printed) == 10)
        printed = simulator.wait_for_tickets(10, timeout=GENEROUS)
    assert [t.large_text[0] for t in printed] == numbers  # each once, in order
    assert recorder.not_printed == [(n, PrinterCondition.PAPER_OUT) for n in numbers[3:]]
    assert recorder.printed == [(n, n in numbers[3:]) for n in numbers]
    assert spooler.pending() == []
    assert simulator.discarded_bytes == 0
    conditions = [s.condition for s in recorder.statuses]
    assert conditions[:3] == [PrinterCondition.READY, PrinterCondition.PAPER_LOW, PrinterCondition.PAPER_OUT]
    assert conditions[-1] is PrinterCondition.READY


def test_a_printer_that_stops_answering_is_reported_offline_within_the_timeout(simulator, small_config):
    recorder = Recorder()
    spooler = spooler_for(simulator, status_timeout=0.5, poll_seconds=0.2)
    spooler.add_listener(recorder)
    with spooler:
        assert recorder.wait(lambda: bool(recorder.statuses))
        assert recorder.statuses[0].condition is PrinterCondition.READY
        simulator.change_state(StateChange(silent=True))
        assert recorder.wait(lambda: recorder.statuses[-1].condition is PrinterCondition.OFFLINE)
        offline = recorder.statuses[-1]
        assert not offline.answered
        assert offline.paper is PaperLevel.UNKNOWN
        assert "timeout" in offline.detail

        # A ticket issued meanwhile is reported at once and printed when the printer answers again.
        spooler.submit(ticket_print(small_config, "B001"))
        assert recorder.wait(lambda: recorder.not_printed == [("B001", PrinterCondition.OFFLINE)])
        simulator.change_state(StateChange(silent=False))
        assert recorder.wait(lambda: recorder.printed == [("B001", True)])
    assert [t.large_text for t in simulator.wait_for_tickets(1, GENEROUS)] == [["B001"]]


def test_the_same_ticket_submitted_twice_prints_once(simulator, small_config):
    recorder = Recorder()
    spooler = spooler_for(simulator)
    spooler.add_listener(recorder)
    ticket = ticket_print(small_config, "C001")
    with spooler:
        assert spooler.submit(ticket)
        assert not spooler.submit(ticket)  # e.g. the hub's message delivered twice
        assert recorder.wait(lambda: len(recorder.printed) == 1)
        assert not spooler.submit(ticket)
        spooler.submit(ticket_print(small_config, "C002"))
        assert recorder.wait(lambda: len(recorder.printed) == 2)
    assert [t.large_text[0] for t in simulator.wait_for_tickets(2, GENEROUS)] == ["C001", "C002"]


class Broken:
    def status_changed(self, status: PrinterStatus) -> None:
        raise RuntimeError("screen gone")

    def ticket_printed(self, ticket: TicketPrint, late: bool) -> None:
        raise RuntimeError("screen gone")

    def ticket_not_printed(self, ticket: TicketPrint, status: PrinterStatus) -> None:
        raise RuntimeError("screen gone")


def test_a_failing_listener_does_not_stop_printing(simulator, small_config):
    recorder = Recorder()
    spooler = spooler_for(simulator)
    spooler.add_listener(Broken())
    spooler.add_listener(recorder)
    with spooler:
        spooler.submit(ticket_print(small_config, "D001"))
        spooler.submit(ticket_print(small_config, "D002"))
        assert recorder.wait(lambda: len(recorder.printed) == 2)


def test_stop_returns_the_tickets_never_printed(simulator, small_config):
    simulator.change_state(StateChange(cover_open=True))
    recorder = Recorder()
    spooler = spooler_for(simulator)
    spooler.add_listener(recorder)
    spooler.start()
    spooler.submit(ticket_print(small_config, "E001"))
    assert recorder.wait(lambda: recorder.not_printed == [("E001", PrinterCondition.COVER_OPEN)])
    assert [t.number for t in spooler.stop()] == ["E001"]
