"""Time from ticket data to bytes on the wire, per ticket, into the virtual printer over TCP.

Each measurement covers what the kiosk waits for when the hub issues a ticket: build
the printed form from the hub's ticket view, lay it out to ESC/POS bytes, ask the
printer its status (DLE EOT, one round trip) and write the ticket to the socket.
It stops when the last byte is handed to TCP, not when paper comes out.

Run:  .venv/bin/python bench/printer.py [--tickets 300] [--paper 80]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from hallkit.devices.printer.layout import TicketPrint
from hallkit.devices.printer.printer import EscposTicketPrinter
from hallkit.devices.printer.simulator import PrinterSimulator

from hallkit.commands import example_config
from hallkit.config import parse_config
from hallkit.queue.models import Channel, Priority, TicketState, TicketView


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--paper", type=int, choices=(58, 80), default=80)
    args = parser.parse_args()

    config = parse_config(example_config())
    layout = config.ticket.model_copy(update={"paper_width_mm": args.paper})
    service = max(config.services, key=lambda s: len(s.name))  # the longest name wraps the most
    windows = [w.number for w in config.windows_serving(service.id)]
    taken_at = datetime.now(UTC)
    times_ms: list[float] = []
    # Without an output folder the simulator keeps pages in memory: PNG writing is not on the wire path.
    with PrinterSimulator(paper_width_mm=args.paper) as simulator:
        printer = EscposTicketPrinter(simulator.url, layout)
        printer.status()  # connect once, as a running kiosk would be
        for seq in range(1, args.tickets + 1):
            number = f"{service.prefix}{seq:03d}"
            view = TicketView(
                ticket_id=f"bench-{number}", public_id=f"BENCH{seq:05d}", number=number,
                service_id=service.id, service_name=service.name, state=TicketState.WAITING,
                priority=Priority.NORMAL, channel=Channel.KIOSK, taken_at=taken_at, ahead=seq % 40,
                estimated_wait_minutes=seq % 40 * 4.5, windows=windows,
            )
            start = time.perf_counter()
            printer.print_ticket(TicketPrint.from_view(view, config))
            times_ms.append((time.perf_counter() - start) * 1000)
        printer.close()
        printed = len(simulator.wait_for_tickets(args.tickets, timeout=60))

    print(f"ticket data -> bytes on the wire, {args.paper} mm, {args.tickets} tickets "
          f"(status query + layout + TCP write into the virtual printer; {printed} cut)")
    print("per ticket (ms): " + " ".join(f"{t:.2f}" for t in times_ms))
    print(f"p50 {statistics.median(times_ms):.2f} ms   p99 {percentile(times_ms, 0.99):.2f} ms   "
          f"max {max(times_ms):.2f} ms")


if __name__ == "__main__":
    main()
