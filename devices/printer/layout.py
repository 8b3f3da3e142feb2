"""What goes on a queue ticket, and the ESC/POS bytes that print it.

Pure: ticket data in, bytes out; no printer needed. A ticket, top to bottom::

    hall name (bold, centred, wrapped)
    A001            (five times width and height: 15 mm lines, digits about 11 mm tall)
    service name    (bold, wrapped by display width)
    ----------------
    办理窗口 / 前面等候 / 预计等候 / 取号时间
    [QR: [web] public_url + /t/ + public id]
    扫码查看进度、评价服务
    footer from config
    (feed, cut)

Widths are counted in printer columns (Font A, 12 dots): 32 on 58 mm paper, 48 on
80 mm. A character the printer draws from its Chinese font (two or more bytes in
GB18030, GBK or Big5; East Asian wide in UTF-8) takes two columns, so lines are
wrapped by that width and never split a character.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import datetime
from typing import Self

from hallkit.devices.printer.codec import (
    Align,
    Alignment,
    Bold,
    CharSize,
    ChineseMode,
    Cut,
    EscposCommand,
    Initialize,
    LineFeed,
    Text,
    encode,
    qr_code,
)
from pydantic import BaseModel, ConfigDict, Field

from hallkit.config import HallConfig, TicketLayout, WebSettings
from hallkit.i18n import Lang, text
from hallkit.queue.models import Priority, TicketView

COLUMNS = {58: 32, 80: 48}
"""Font A columns by paper width (384 and 576 printable dots)."""

QR_MODULE_DOTS = {58: 5, 80: 6}
"""QR module size: a phone must read it from arm's length on a 48 mm or 72 mm print line."""

NUMBER_SIZE = 5
"""Magnification of the ticket number: Font A's 24-dot line becomes 120 dots (15 mm at 8 dots/mm),
its digits about 11 mm tall, as halls print them (10–15 mm); "A0001" still fits 58 mm paper."""

CUT_FEED_LINES = 4
"""Blank lines fed before the cut so the footer clears the blade."""

NO_LINE_START = frozenset("，。、；：？！）》」』】〕…,.;:?!)%")
"""Punctuation a Chinese line must not start with (避头点); it stays with the character before."""


class TicketWindow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    name: str


class TicketPrint(BaseModel):
    """Everything printed on one ticket, and nothing personal: no name, no ID number."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: str = Field(description="the hub's ticket id; the spooler prints each id once")
    number: str
    hall_name: str
    service_name: str
    priority: Priority = Priority.NORMAL
    windows: list[TicketWindow]
    ahead: int = Field(ge=0)
    wait_minutes: int = Field(ge=0)
    taken_at: datetime = Field(description="local time of the hall")
    qr_url: str
    footer: str = ""

    @classmethod
    def from_view(cls, view: TicketView, config: HallConfig) -> Self:
        """The printed form of a ticket the hub just issued."""
        return cls(
            ticket_id=view.ticket_id,
            number=view.number,
            hall_name=config.hall.name,
            service_name=view.service_name,
            priority=view.priority,
            windows=[TicketWindow(number=n, name=config.window(n).name) for n in view.windows],
            ahead=view.ahead,
            wait_minutes=math.ceil(view.estimated_wait_minutes),
            taken_at=view.taken_at.astimezone(config.hall.zone),
            qr_url=config.web.ticket_url(view.public_id),
            footer=config.ticket.footer,
        )


def sample_ticket(config: HallConfig | None = None, when: datetime | None = None) -> TicketPrint:
    """The ticket ``hall printer test`` prints: real layout, made-up queue."""
    moment = when or datetime.now().astimezone()
    if config is None:
        return TicketPrint(
            ticket_id="test", number="A001", hall_name=text("printer.sample.hall"),
            service_name=text("printer.sample.service"),
            windows=[TicketWindow(number=1, name=text("printer.sample.window"))],
            ahead=3, wait_minutes=15, taken_at=moment,
            qr_url=WebSettings().ticket_url("TEST000001"), footer=TicketLayout().footer,
        )
    service = config.services[0]
    return TicketPrint(
        ticket_id="test", number=f"{service.prefix}001", hall_name=config.hall.name,
        service_name=service.name,
        windows=[TicketWindow(number=w.number, name=w.name) for w in config.windows_serving(service.id)],
        ahead=3, wait_minutes=15, taken_at=moment.astimezone(config.hall.zone),
        qr_url=config.web.ticket_url("TEST000001"), footer=config.ticket.footer,
    )


class TicketComposer:
    """Turns a :class:`TicketPrint` into ESC/POS commands and bytes for one paper and encoding."""

    def __init__(self, layout: TicketLayout, lang: Lang = "zh") -> None:
        self.layout = layout
        self.lang = lang
        self.columns = COLUMNS[layout.paper_width_mm]

    def to_bytes(self, ticket: TicketPrint) -> bytes:
        return encode(self.commands(ticket))

    def commands(self, ticket: TicketPrint) -> list[EscposCommand]:
        out: list[EscposCommand] = [Initialize()]
        if self.layout.chinese_mode:
            # Many printers start in Chinese mode, but not all; say it rather than hope.
            out.append(ChineseMode(on=True))
        out.append(Align(align=Alignment.CENTER))
        out += [Bold(on=True), *self._lines(ticket.hall_name, self.columns), Bold(on=False)]
        out.append(LineFeed())
        out += [CharSize(width=NUMBER_SIZE, height=NUMBER_SIZE),
                *self._lines(ticket.number, self.columns // NUMBER_SIZE), CharSize(width=1, height=1)]
        if ticket.priority is not Priority.NORMAL:
            out += self._lines(self._say(f"printer.ticket.priority_{ticket.priority.value}"), self.columns)
        # Bold, not enlarged: the number must stay the one thing that stands out.
        out += [Bold(on=True), *self._lines(ticket.service_name, self.columns), Bold(on=False)]
        out += self._lines("-" * self.columns, self.columns)
        out.append(Align(align=Alignment.LEFT))
        for line, indent in self._details(ticket):
            out += self._lines(line, self.columns, indent)
        out += [LineFeed(), Align(align=Alignment.CENTER)]
        out += qr_code(ticket.qr_url, QR_MODULE_DOTS[self.layout.paper_width_mm])
        out.append(LineFeed())
        out += self._lines(self._say("printer.ticket.scan"), self.columns)
        if ticket.footer:
            out += self._lines(ticket.footer, self.columns)
        out.append(Cut(partial=True, feed=CUT_FEED_LINES))
        return out

    def _details(self, ticket: TicketPrint) -> list[tuple[str, int]]:
        """The detail lines, each with the indent its continuation lines take."""
        lines = self._windows(ticket.windows)
        if ticket.ahead:
            lines.append((self._say("printer.ticket.ahead", ahead=ticket.ahead), 0))
            lines.append((self._say("printer.ticket.wait", minutes=max(ticket.wait_minutes, 1)), 0))
        else:
            lines.append((self._say("printer.ticket.none_ahead"), 0))
        lines.append((self._say("printer.ticket.taken_at", time=f"{ticket.taken_at:%Y-%m-%d %H:%M}"), 0))
        return lines

    def _windows(self, windows: list[TicketWindow]) -> list[tuple[str, int]]:
        """The windows on one line if they fit, else one window a line under the label; a name too
        long for its line goes on under itself (a hanging indent the width of the label)."""
        label = self._say("printer.ticket.windows_label")
        names = [self._say("printer.ticket.window", number=w.number, name=w.name) for w in windows]
        one_line = label + self._say("printer.ticket.window_separator").join(names)
        indent = display_width(label, self.layout.encoding)
        if display_width(one_line, self.layout.encoding) <= self.columns:
            return [(one_line, indent)]
        return [((label if i == 0 else " " * indent) + name, indent) for i, name in enumerate(names)]

    def _say(self, key: str, **params: object) -> str:
        return text(key, self.lang, **params)

    def _lines(self, content: str, columns: int, indent: int = 0) -> list[EscposCommand]:
        """``content`` wrapped to ``columns`` (continuation lines indented), each encoded and ended with LF."""
        out: list[EscposCommand] = []
        for line in wrap(content, columns, self.layout.encoding, indent):
            if line:
                out.append(Text(data=self.encode_text(line)))
            out.append(LineFeed())
        return out

    def encode_text(self, line: str) -> bytes:
        # A character the printer's encoding lacks prints as "?", never as a crash at the kiosk.
        return line.encode(self.layout.encoding, errors="replace")


def char_columns(char: str, encoding: str) -> int:
    """Printer columns one character takes: 2 when it comes from the Chinese font."""
    if encoding == "utf-8":
        return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    try:
        return 2 if len(char.encode(encoding)) > 1 else 1
    except UnicodeEncodeError:
        return 1  # printed as a one-column "?"


def display_width(line: str, encoding: str) -> int:
    return sum(char_columns(c, encoding) for c in line)


def wrap(content: str, columns: int, encoding: str, indent: int = 0) -> list[str]:
    """Split ``content`` into lines of at most ``columns`` printer columns.

    Breaks between characters only, at a space when one is in the second half of the
    line, counted in columns (so "投诉电话 12345" stays whole); a closing punctuation mark
    never starts a line (the character before it moves down with it). Lines after the
    first of a paragraph start with ``indent`` spaces (a hanging indent). Explicit
    newlines are kept.
    """
    lines: list[str] = []
    lead = [" "] * min(indent, columns // 2)
    for paragraph in content.split("\n"):
        current: list[str] = []
        first = len(lines)
        for char in paragraph:
            size = char_columns(char, encoding)
            if display_width("".join(current), encoding) + size > columns and current:
                current = _break(current, char, lines, columns, encoding)
                current = lead + current if len(lines) > first else current
                if char == " " and current == lead:
                    continue  # a space at the break is dropped, not printed at the start of a line
            current.append(char)
        lines.append("".join(current))
    return lines


def _break(current: list[str], char: str, lines: list[str], columns: int, encoding: str) -> list[str]:
    """End the line in ``current`` before ``char``; returns what starts the next line."""
    space = "".join(current).rfind(" ")
    if space > 0 and display_width("".join(current[:space]), encoding) >= columns // 2 \
            and "".join(current[:space]).strip():
        lines.append("".join(current[:space]).rstrip())
        return current[space + 1 :]
    if char in NO_LINE_START and len(current) > 1:
        lines.append("".join(current[:-1]))
        return current[-1:]
    lines.append("".join(current))
    return []
