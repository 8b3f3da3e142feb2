"""Commands for installers and the demo: ``hall printer test|status|sim-state`` and ``hall sim printer``.

Kept light at import time: ``hall --help`` loads every part, so the printer modules
(Pillow, qrcode, pydantic models) are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from hallkit.devices.sim_cli import sim_commands

from hallkit.commandline import CommandFailed, add_json_flag, emit
from hallkit.config import DeviceKind, HallConfig, TicketLayout
from hallkit.i18n import bilingual

if TYPE_CHECKING:
    from hallkit.devices.printer.printer import EscposTicketPrinter
    from hallkit.devices.printer.status import PrinterStatus

ENCODINGS = ("gb18030", "gbk", "big5", "utf-8")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    printer = commands.add_parser("printer", help="ticket printer (取号打印机): test print, status")
    actions = printer.add_subparsers(metavar="ACTION", required=True)

    test = actions.add_parser("test", help="print a sample ticket: Chinese text, large number, QR code, cut")
    _printer_options(test)
    test.add_argument("--paper", type=int, choices=(58, 80), help="paper width in mm (default: config, else 80)")
    test.add_argument("--encoding", choices=ENCODINGS, help="what the printer takes (default: config, else gb18030)")
    test.set_defaults(handler=test_command)

    status = actions.add_parser("status", help="ask the printer its paper, cover and online status")
    _printer_options(status)
    add_json_flag(status)
    status.set_defaults(handler=status_command)

    state = actions.add_parser("sim-state", help="show or change the state of a running virtual printer")
    state.add_argument("--control", default="http://127.0.0.1:9101", help="its control URL")
    state.add_argument("--paper", choices=("ok", "near_end", "out"))
    state.add_argument("--cover", choices=("open", "closed"))
    state.add_argument("--silent", action=argparse.BooleanOptionalAction, default=None,
                       help="stop (or resume) answering, like a hung printer")
    state.add_argument("--tickets-left", type=int, metavar="N", help="run out of paper after N more tickets")
    add_json_flag(state)
    state.set_defaults(handler=sim_state_command)

    sim = sim_commands(commands).add_parser(
        "printer", help="a virtual ESC/POS ticket printer on TCP; draws each ticket to a PNG")
    sim.add_argument("--port", type=int, default=9100, help="print port (default 9100; 0 picks a free one)")
    sim.add_argument("--control-port", type=int, default=9101, help="HTTP port to set its state (default 9101)")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--out", type=Path, default=Path("printed-tickets"), help="folder for the ticket PNGs")
    sim.add_argument("--paper", type=int, choices=(58, 80), default=80, help="paper width in mm")
    sim.add_argument("--encoding", choices=ENCODINGS, default="gb18030")
    sim.set_defaults(handler=sim_command)


def _printer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--printer", metavar="URL",
                        help="tcp://HOST:9100, serial:///dev/ttyUSB0?baudrate=9600, usb://0x0416:0x5011 "
                             "or file:///dev/usb/lp0 (default: the printer in --config)")
    parser.add_argument("--config", type=Path, help="hall configuration: ticket layout and the printer's URL")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the printer to answer")


def _target(args: argparse.Namespace) -> tuple[str, TicketLayout, HallConfig | None]:
    from hallkit.commands import load_or_fail

    config = load_or_fail(args.config) if args.config else None
    url = args.printer
    if url is None and config is not None:
        url = next((d.url for d in config.devices if d.kind is DeviceKind.PRINTER and d.url), None)
    if not url:
        raise CommandFailed("give --printer URL, or --config with a printer device that has a url")
    layout = config.ticket if config is not None else TicketLayout()
    return url, layout, config


def _open(url: str, layout: TicketLayout, timeout: float) -> EscposTicketPrinter:
    from hallkit.devices.printer.printer import EscposTicketPrinter
    from hallkit.devices.transport import TransportError, transport_class

    try:
        transport_class(url)
    except TransportError as exc:
        raise CommandFailed(bilingual("printer.cli.bad_url", reason=str(exc))) from None
    return EscposTicketPrinter(url, layout, status_timeout=timeout)


def _unreachable(url: str, status: PrinterStatus) -> CommandFailed:
    return CommandFailed(bilingual("printer.cli.unreachable", url=url, reason=status.detail or status.describe("en")))


def test_command(args: argparse.Namespace) -> int:
    from hallkit.devices.printer.layout import sample_ticket
    from hallkit.devices.printer.printer import PrintFailed

    url, layout, config = _target(args)
    changes = {key: value for key, value in (("paper_width_mm", args.paper), ("encoding", args.encoding)) if value}
    printer = _open(url, layout.model_copy(update=changes), args.timeout)
    ticket = sample_ticket(config)
    try:
        printer.print_ticket(ticket)
    except PrintFailed as failure:
        if not failure.status.answered:
            raise _unreachable(url, failure.status) from None
        raise CommandFailed(failure.status.bilingual("printer.cli.not_ready")) from None
    finally:
        printer.close()
    print(bilingual("printer.cli.printed", number=ticket.number))
    return 0


def status_command(args: argparse.Namespace) -> int:
    from hallkit.devices.printer.status import PrinterCondition, PrinterReport

    url, layout, _ = _target(args)
    printer = _open(url, layout, args.timeout)
    try:
        status = printer.status()
    finally:
        printer.close()
    unreachable = status.condition is PrinterCondition.OFFLINE and not status.answered
    if unreachable and not args.json:
        raise _unreachable(url, status)
    human = status.bilingual("printer.cli.status", url=url)
    emit(args, PrinterReport(printer=url, status=status), human)
    return 1 if unreachable else 0


def sim_state_command(args: argparse.Namespace) -> int:
    from urllib.error import URLError

    from hallkit.devices.printer.simulator import SimulatorControl, StateChange

    control = SimulatorControl(args.control)
    asked = (("paper", args.paper), ("cover_open", None if args.cover is None else args.cover == "open"),
             ("silent", args.silent), ("tickets_left", args.tickets_left))
    change = StateChange.model_validate({name: value for name, value in asked if value is not None})
    try:
        state = control.change(change) if change.model_fields_set else control.state()
    except (URLError, OSError) as exc:
        raise CommandFailed(bilingual("printer.cli.unreachable", url=args.control, reason=str(exc))) from None
    emit(args, state, state.model_dump_json())
    return 0


def sim_command(args: argparse.Namespace) -> int:
    from hallkit.devices.printer.simulator import PrinterSimulator

    try:
        simulator = PrinterSimulator(port=args.port, control_port=args.control_port, host=args.host,
                                     out_dir=args.out, paper_width_mm=args.paper, encoding=args.encoding)
    except OSError as exc:
        raise CommandFailed(f"cannot listen on {args.host}:{args.port}/{args.control_port}: {exc}") from None
    stop = threading.Event()
    # Stop cleanly on SIGTERM too (the demo and the tests end it that way).
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with simulator:
        print(bilingual("printer.cli.sim_listening", port=simulator.port, control=simulator.control_port,
                        out=args.out.resolve()), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


