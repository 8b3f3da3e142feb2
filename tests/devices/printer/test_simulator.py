"""The virtual printer over real TCP: what it draws, what it answers, when it stops printing."""

from __future__ import annotations

import pytest
from hallkit.devices.printer.layout import TicketPrint
from hallkit.devices.printer.printer import EscposTicketPrinter, PrintFailed
from hallkit.devices.printer.simulator import PrinterSimulator, SimulatorControl, StateChange
from hallkit.devices.printer.status import PaperLevel, PrinterCondition

from hallkit.config import TicketLayout
from tests.devices.printer.conftest import LONG_SERVICE, decode_qr, ticket_print


@pytest.mark.parametrize("paper", [58, 80])
def test_printed_ticket_png_has_a_qr_that_decodes_to_the_ticket_url(small_config, tmp_path, paper):
    ticket = ticket_print(small_config, service_name=LONG_SERVICE)
    with PrinterSimulator(out_dir=tmp_path, paper_width_mm=paper) as simulator:
        printer = EscposTicketPrinter(simulator.url, TicketLayout(paper_width_mm=paper))
        printer.print_ticket(ticket)
        printer.close()
        [printed] = simulator.wait_for_tickets(1, timeout=20)
    assert printed.png is not None
    assert decode_qr(printed.png) == "http://hall.local:8090/t/K7P2M9X4QA"
    assert printed.qr_codes == ["http://hall.local:8090/t/K7P2M9X4QA"]
    assert printed.large_text == ["A001"]
    assert printed.lines[0].text == "测试村便民服务站"
    # The wrapped service name reads as one name again.
    assert LONG_SERVICE in "".join(line.text for line in printed.lines)


def test_simulator_answers_status_from_its_state(simulator: PrinterSimulator):
    printer = EscposTicketPrinter(simulator.url, TicketLayout())
    assert printer.status().condition is PrinterCondition.READY
    simulator.change_state(StateChange(paper=PaperLevel.NEAR_END))
    assert printer.status().condition is PrinterCondition.PAPER_LOW
    simulator.change_state(StateChange(paper=PaperLevel.OK, cover_open=True))
    status = printer.status()
    assert (status.condition, status.cover_open) == (PrinterCondition.COVER_OPEN, True)
    printer.close()
    assert simulator.status_queries == 9


def test_no_bytes_go_to_a_printer_without_paper(simulator: PrinterSimulator, small_config):
    simulator.change_state(StateChange(paper=PaperLevel.OUT))
    printer = EscposTicketPrinter(simulator.url, TicketLayout())
    with pytest.raises(PrintFailed) as failure:
        printer.print_ticket(ticket_print(small_config))
    printer.close()
    assert failure.value.status.condition is PrinterCondition.PAPER_OUT
    assert simulator.tickets() == []
    assert simulator.discarded_bytes == 0  # the status query came first; no ticket bytes were sent


def test_paper_runs_out_after_the_tickets_left(simulator: PrinterSimulator, small_config):
    simulator.change_state(StateChange(tickets_left=3))
    printer = EscposTicketPrinter(simulator.url, TicketLayout())
    conditions = []
    for n in range(1, 5):
        try:
            conditions.append(printer.print_ticket(ticket_print(small_config, f"A00{n}")).condition)
        except PrintFailed as failure:
            conditions.append(failure.status.condition)
    printer.close()
    assert conditions == [PrinterCondition.READY, PrinterCondition.PAPER_LOW, PrinterCondition.PAPER_LOW,
                          PrinterCondition.PAPER_OUT]
    assert [t.large_text for t in simulator.wait_for_tickets(3, timeout=20)] == [["A001"], ["A002"], ["A003"]]


def test_control_port_sets_the_state_and_lists_tickets(simulator: PrinterSimulator, small_config):
    control = SimulatorControl(simulator.control_url)
    assert control.change(StateChange(paper=PaperLevel.OUT)).paper is PaperLevel.OUT
    printer = EscposTicketPrinter(simulator.url, TicketLayout())
    assert printer.status().condition is PrinterCondition.PAPER_OUT
    control.change(StateChange(paper=PaperLevel.OK))
    printer.print_ticket(ticket_print(small_config))
    printer.close()
    [ticket] = control.wait_for_tickets(1, timeout=20)
    assert ticket.large_text == ["A001"]


def test_text_outside_chinese_mode_prints_as_code_page_symbols(small_config, tmp_path):
    """GIVEN a printer that does not start in Chinese mode AND a layout that does not send FS &
    THEN GB18030 bytes print as code page 437 symbols: why chinese_mode is a setting."""
    ticket: TicketPrint = ticket_print(small_config)
    with PrinterSimulator(out_dir=tmp_path, chinese_mode=False) as simulator:
        for count, mode in enumerate((False, True), start=1):
            printer = EscposTicketPrinter(simulator.url, TicketLayout(chinese_mode=mode))
            printer.print_ticket(ticket)
            printer.close()
            simulator.wait_for_tickets(count, timeout=20)  # keep the order of the two tickets
        garbled, good = simulator.tickets()
    assert garbled.lines[0].text != "测试村便民服务站"
    assert good.lines[0].text == "测试村便民服务站"
