"""The virtual ticket printer: ESC/POS over TCP, a settable state, tickets drawn as PNG.

It reads what a network printer on port 9100 would read, with the same codec the layout
writes with, answers DLE EOT status queries from its state, and draws every cut
ticket to ``ticket-0001.png``, ``ticket-0002.png`` ... in its output folder.

Its state is set in process (:meth:`PrinterSimulator.change_state`) or over a tiny
HTTP control port, so tests and the demo can take the paper away::

    GET  /state            the state as JSON
    PUT  /state            change some fields, e.g. {"paper": "out"} or {"silent": true}
    GET  /tickets          the tickets printed so far (text lines, QR contents, PNG paths)

While it has no paper, its cover is open, it has an error or it is silent, it throws
away what it is sent (a silent printer does not answer status queries either).
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import socketserver
import threading
import time
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from hallkit.devices.printer.codec import EscposCommand, EscposDecoder, StatusQuery
from hallkit.devices.printer.render import Page, PrintedLine, TicketRenderer
from hallkit.devices.printer.status import PaperLevel, status_reply
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

log = logging.getLogger(__name__)

SHUTDOWN_POLL_SECONDS = 0.05
"""How often the servers look for a stop request: a test's teardown waits this long."""

NEAR_END_TICKETS = 2
"""With ``tickets_left`` set, the paper sensor says "near end" from this many tickets left."""


class PrinterState(BaseModel):
    """What the virtual printer says about itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    paper: Literal[PaperLevel.OK, PaperLevel.NEAR_END, PaperLevel.OUT] = PaperLevel.OK
    cover_open: bool = False
    error: bool = False
    silent: bool = Field(False, description="stops answering and printing, like a hung printer")
    tickets_left: int | None = Field(None, ge=0, description="paper runs out after this many more tickets")

    @property
    def printing(self) -> bool:
        return not (self.silent or self.error or self.cover_open or self.paper is PaperLevel.OUT)


class StateChange(BaseModel):
    """Some fields of :class:`PrinterState`; the others keep their value."""

    model_config = ConfigDict(extra="forbid")

    paper: Literal[PaperLevel.OK, PaperLevel.NEAR_END, PaperLevel.OUT] | None = None
    cover_open: bool | None = None
    error: bool | None = None
    silent: bool | None = None
    tickets_left: int | None = Field(None, ge=0)


class SimulatedTicket(BaseModel):
    """One ticket the virtual printer cut."""

    index: int
    lines: list[PrintedLine]
    qr_codes: list[str]
    png: str | None

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def large_text(self) -> list[str]:
        """Lines printed at double width and height: the ticket number."""
        return [line.text for line in self.lines if line.width >= 2 and line.height >= 2]


TICKETS = TypeAdapter(list[SimulatedTicket])


class PrinterSimulator:
    """A network ESC/POS printer in a thread, with an HTTP control port.

    Args:
        port: TCP port for print data (0 picks a free one; see :attr:`port`).
        control_port: HTTP port for the state (0 picks a free one).
        host: address to listen on.
        out_dir: where cut tickets are saved as PNG; None keeps them in memory only.
        paper_width_mm: 58 or 80.
        encoding: the encoding it reads Chinese text with.
        chinese_mode: whether it starts in Chinese mode (most Chinese-market printers do).
    """

    def __init__(self, port: int = 0, control_port: int = 0, host: str = "127.0.0.1",
                 out_dir: Path | None = None, paper_width_mm: int = 80, encoding: str = "gb18030",
                 chinese_mode: bool = True) -> None:
        self.host = host
        self.out_dir = out_dir
        self.paper_width_mm = paper_width_mm
        self.encoding = encoding
        self.chinese_mode = chinese_mode
        self.status_queries = 0
        self.discarded_bytes = 0
        self._state = PrinterState()
        self._tickets: list[SimulatedTicket] = []
        self._cuts = 0
        # Pages are drawn on their own thread: a real printer answers DLE EOT at once, and
        # drawing a PNG takes far longer than printing the bytes does.
        self._pages: queue.Queue[tuple[int, Page] | None] = queue.Queue()
        self._changed = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._print_server = _PrintServer((host, port), _PrintHandler, self)
        self._control_server = _ControlServer((host, control_port), _ControlHandler, self)
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return self._print_server.server_address[1]

    @property
    def control_port(self) -> int:
        return self._control_server.server_address[1]

    @property
    def url(self) -> str:
        """The printer URL a kiosk would be configured with."""
        return f"tcp://{self.host}:{self.port}"

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.control_port}"

    @property
    def state(self) -> PrinterState:
        return self._state

    def change_state(self, change: StateChange) -> PrinterState:
        """Set the fields ``change`` names; paper set to "ok" with no count is a fresh roll.

        Raises:
            ValidationError: the change leaves an impossible state (e.g. no paper level).
        """
        update = change.model_dump(exclude_unset=True)
        if update.get("paper") is PaperLevel.OK and "tickets_left" not in update:
            update["tickets_left"] = None
        with self._changed:
            self._state = PrinterState.model_validate({**self._state.model_dump(), **update})
            log.info("virtual printer state: %s", self._state.model_dump_json())
            self._changed.notify_all()
            return self._state

    def tickets(self) -> list[SimulatedTicket]:
        """Tickets cut and drawn so far (drawing follows the cut by a moment)."""
        with self._changed:
            return list(self._tickets)

    def wait_for_tickets(self, count: int, timeout: float) -> list[SimulatedTicket]:
        """The tickets once at least ``count`` are cut, or whatever there is after ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._tickets) >= count, timeout)
            return list(self._tickets)

    def start(self) -> Self:
        for server in (self._print_server, self._control_server):
            thread = threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,),
                                      name=f"printer-sim-{type(server).__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        drawer = threading.Thread(target=self._draw_pages, name="printer-sim-drawer", daemon=True)
        drawer.start()
        self._threads.append(drawer)
        return self

    def stop(self) -> None:
        """Stop listening, hang up on clients, and finish drawing every ticket already cut."""
        for server in (self._print_server, self._control_server):
            server.shutdown()
        with self._changed:
            connections = list(self._connections)
        for connection in connections:
            _shut(connection)
        for server in (self._print_server, self._control_server):
            server.server_close()  # waits for the connection threads
        self._pages.put(None)
        for thread in self._threads:
            thread.join(10)
        self._threads.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def serve_connection(self, connection: socket.socket) -> None:
        """Read one client until it hangs up, printing and answering as it goes."""
        # Three one-byte status replies in a row: without this, Nagle holds the later ones back.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._changed:
            self._connections.add(connection)
        # Each connection draws its own page, so two clients never mix their tickets.
        renderer = TicketRenderer(self.paper_width_mm, self.encoding, self.chinese_mode)
        decoder = EscposDecoder()
        try:
            while True:
                try:
                    data = connection.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                for command in decoder.feed(data):
                    self._apply(command, connection, renderer)
            for command in decoder.flush():
                self._apply(command, connection, renderer)
        finally:
            with self._changed:
                self._connections.discard(connection)

    def _apply(self, command: EscposCommand, connection: socket.socket, renderer: TicketRenderer) -> None:
        if isinstance(command, StatusQuery):
            with self._changed:
                self.status_queries += 1
                state = self._state
            if not state.silent:
                reply = status_reply(command.n, state.paper, state.cover_open, state.error)
                try:
                    connection.sendall(bytes((reply,)))
                except OSError:
                    log.debug("status reply not sent: the client left")
            return
        with self._changed:
            if not self._state.printing:
                self.discarded_bytes += len(command.encode())
                return
            page = renderer.feed(command)
            if page is None:
                return
            self._cuts += 1
            self._use_paper()
            self._pages.put((self._cuts, page))

    def _draw_pages(self) -> None:
        while (item := self._pages.get()) is not None:
            index, page = item
            png: str | None = None
            if self.out_dir is not None:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                path = self.out_dir / f"ticket-{index:04d}.png"
                page.draw().save(path)
                png = str(path)
            with self._changed:
                self._tickets.append(SimulatedTicket(index=index, lines=page.lines, qr_codes=page.qr_codes,
                                                     png=png))
                self._changed.notify_all()

    def _use_paper(self) -> None:
        left = self._state.tickets_left
        if left is None:
            return
        left = max(left - 1, 0)
        paper = self._state.paper
        if left == 0:
            paper = PaperLevel.OUT
        elif left <= NEAR_END_TICKETS:
            paper = PaperLevel.NEAR_END
        self._state = self._state.model_copy(update={"tickets_left": left, "paper": paper})


def _shut(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        log.debug("connection already closed")


class _PrintServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], handler: type[socketserver.BaseRequestHandler],
                 simulator: PrinterSimulator) -> None:
        self.simulator = simulator
        super().__init__(address, handler)


class _PrintHandler(socketserver.BaseRequestHandler):
    server: _PrintServer

    def handle(self) -> None:
        self.server.simulator.serve_connection(self.request)


class _ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 simulator: PrinterSimulator) -> None:
        self.simulator = simulator
        super().__init__(address, handler)


class _ControlHandler(BaseHTTPRequestHandler):
    server: _ControlServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        simulator = self.server.simulator
        if self.path == "/state":
            self._reply(HTTPStatus.OK, simulator.state.model_dump_json().encode())
        elif self.path == "/tickets":
            self._reply(HTTPStatus.OK, TICKETS.dump_json(simulator.tickets()))
        else:
            self._reply(HTTPStatus.NOT_FOUND, b'{"error": "use /state or /tickets"}')

    def do_PUT(self) -> None:  # noqa: N802
        if self.path != "/state":
            self._reply(HTTPStatus.NOT_FOUND, b'{"error": "use /state"}')
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            state = self.server.simulator.change_state(StateChange.model_validate_json(body))
        except ValidationError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, json.dumps({"error": str(exc)}).encode())
            return
        self._reply(HTTPStatus.OK, state.model_dump_json().encode())

    do_POST = do_PUT

    def _reply(self, status: HTTPStatus, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (signature of the base)
        log.debug("control: " + format, *args)


class SimulatorControl:
    """A client of the control port, for tests and the demo running the simulator elsewhere."""

    def __init__(self, control_url: str, timeout: float = 5.0) -> None:
        self.control_url = control_url.rstrip("/")
        self.timeout = timeout

    def state(self) -> PrinterState:
        return PrinterState.model_validate_json(self._call("GET", "/state"))

    def change(self, change: StateChange) -> PrinterState:
        body = change.model_dump_json(exclude_unset=True).encode()
        return PrinterState.model_validate_json(self._call("PUT", "/state", body))

    def tickets(self) -> list[SimulatedTicket]:
        """Tickets cut and drawn so far (drawing follows the cut by a moment)."""
        return TICKETS.validate_json(self._call("GET", "/tickets"))

    def wait_for_tickets(self, count: int, timeout: float) -> list[SimulatedTicket]:
        deadline = time.monotonic() + timeout
        tickets = self.tickets()
        while len(tickets) < count and time.monotonic() < deadline:
            time.sleep(0.05)
            tickets = self.tickets()
        return tickets

    def _call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(f"{self.control_url}{path}", data=body, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (local control port)
            return response.read()
