"""Draws what an ESC/POS printer would print, for the virtual printer.

Fed decoded commands one by one, it keeps the printer's modes (alignment, size, bold,
Chinese mode), lays text out in print lines the way a thermal printer does (24-dot
lines, Chinese characters 24 dots wide, magnified by ``GS !``), draws native QR codes,
and hands back a page at each cut: the lines as text (for tests) and a picture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path

import qrcode
from hallkit.devices.printer.codec import (
    Align,
    Alignment,
    Bold,
    CharSize,
    ChineseMode,
    Cut,
    EscposCommand,
    Feed,
    Initialize,
    LineFeed,
    QrErrorCorrection,
    QrErrorLevel,
    QrModuleSize,
    QrPrint,
    QrStore,
    Text,
)
from hallkit.devices.printer.layout import char_columns
from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel, ConfigDict

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
"""The CJK font scripts/bootstrap.sh installs (fonts-wqy-microhei)."""

PRINT_DOTS = {58: 384, 80: 576}
"""Printable width in dots (203 dpi) by paper width."""

PAPER_MARGIN = 24
"""White paper either side of the print area and at the top, in dots."""

LINE_DOTS = 24
LINE_GAP = 6
"""Font A is 24 dots high; the default line spacing adds about 6 dots between lines."""

TEXT_ENCODINGS = frozenset({"gb18030", "gbk", "big5"})
"""Encodings the printer reads only in Chinese mode; outside it, bytes are code page 437."""

_QR_LEVELS = {
    QrErrorLevel.L: qrcode.constants.ERROR_CORRECT_L,
    QrErrorLevel.M: qrcode.constants.ERROR_CORRECT_M,
    QrErrorLevel.Q: qrcode.constants.ERROR_CORRECT_Q,
    QrErrorLevel.H: qrcode.constants.ERROR_CORRECT_H,
}


class PrintedLine(BaseModel):
    """One line as printed: its text and how it looked."""

    model_config = ConfigDict(frozen=True)

    text: str
    width: int = 1
    height: int = 1
    bold: bool = False
    align: Alignment = Alignment.LEFT


RowDrawing = Callable[[], Image.Image]
"""One print row, drawn only when a picture is wanted (drawing is slow; status replies must not wait)."""


@dataclass
class Page:
    """Everything printed between two cuts."""

    lines: list[PrintedLine]
    qr_codes: list[str]
    rows: list[RowDrawing]
    dots: int

    def draw(self) -> Image.Image:
        """The ticket as it would come out of the printer, with white paper around the print."""
        rows = [draw() for draw in self.rows]
        height = sum(r.height for r in rows) + 2 * PAPER_MARGIN
        image = Image.new("L", (self.dots + 2 * PAPER_MARGIN, height), 255)
        y = PAPER_MARGIN
        for row in rows:
            image.paste(row, (PAPER_MARGIN, y))
            y += row.height
        return image


@dataclass
class _Glyph:
    char: str
    width: int
    height: int
    bold: bool
    wide_font: bool


@dataclass
class _Modes:
    align: Alignment = Alignment.LEFT
    width: int = 1
    height: int = 1
    bold: bool = False


@dataclass
class _PageBuilder:
    lines: list[PrintedLine] = field(default_factory=list)
    qr_codes: list[str] = field(default_factory=list)
    rows: list[RowDrawing] = field(default_factory=list)


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size)


class TicketRenderer:
    """Turns a printer's command stream into pages.

    Args:
        paper_width_mm: 58 or 80.
        encoding: what the printer decodes text with in Chinese mode.
        chinese_mode: whether it starts in Chinese mode (most Chinese-market printers do).
    """

    def __init__(self, paper_width_mm: int, encoding: str, chinese_mode: bool = True) -> None:
        self.dots = PRINT_DOTS[paper_width_mm]
        self.encoding = encoding
        self.chinese_mode_default = chinese_mode
        self.chinese_mode = chinese_mode
        self._modes = _Modes()
        self._line: list[_Glyph] = []
        self._page = _PageBuilder()
        self._qr_data = b""
        self._qr_dots = 3
        self._qr_level = QrErrorLevel.L

    def feed(self, command: EscposCommand) -> Page | None:
        """Apply one command; returns the finished page when the command is a cut."""
        match command:
            case Initialize():
                self._modes = _Modes()
                self.chinese_mode = self.chinese_mode_default
            case ChineseMode(on=on):
                self.chinese_mode = on
            case Align(align=align):
                self._modes.align = align
            case Bold(on=on):
                self._modes.bold = on
            case CharSize(width=width, height=height):
                self._modes.width, self._modes.height = width, height
            case Text(data=data):
                self._add_text(self._decode(data))
            case LineFeed():
                self._end_line()
            case Feed(lines=lines):
                self._end_line(blank_if_empty=False)
                self._blank(lines)
            case QrModuleSize(dots=dots):
                self._qr_dots = dots
            case QrErrorCorrection(level=level):
                self._qr_level = level
            case QrStore(data=data):
                self._qr_data = data
            case QrPrint():
                self._print_qr()
            case Cut(feed=lines):
                self._end_line(blank_if_empty=False)
                self._blank(lines)
                return self._cut()
        return None

    def _decode(self, data: bytes) -> str:
        if self.encoding in TEXT_ENCODINGS and not self.chinese_mode:
            return data.decode("cp437")
        return data.decode(self.encoding, errors="replace")

    def _add_text(self, content: str) -> None:
        modes = self._modes
        wide = self.chinese_mode or self.encoding not in TEXT_ENCODINGS
        self._line += [_Glyph(c, modes.width, modes.height, modes.bold, wide) for c in content]

    def _glyph_dots(self, glyph: _Glyph) -> int:
        # The same column rule as the layout: a character from the Chinese font is two columns.
        columns = char_columns(glyph.char, self.encoding) if glyph.wide_font else 1
        return LINE_DOTS // 2 * columns * glyph.width

    def _end_line(self, blank_if_empty: bool = True) -> None:
        glyphs, self._line = self._line, []
        if not glyphs:
            if blank_if_empty:
                self._blank(1)
            return
        # The printer wraps a line that is too long for the paper; so does the picture.
        row: list[_Glyph] = []
        used = 0
        for glyph in glyphs:
            size = self._glyph_dots(glyph)
            if used + size > self.dots and row:
                self._draw_row(row)
                row, used = [], 0
            row.append(glyph)
            used += size
        self._draw_row(row)
        first = glyphs[0]
        self._page.lines.append(PrintedLine(text="".join(g.char for g in glyphs), width=first.width,
                                            height=first.height, bold=first.bold, align=self._modes.align))

    def _draw_row(self, glyphs: list[_Glyph]) -> None:
        widths = [self._glyph_dots(g) for g in glyphs]
        self._page.rows.append(partial(_text_row, self.dots, glyphs, widths, self._offset(sum(widths))))

    def _offset(self, used: int) -> int:
        free = max(self.dots - used, 0)
        if self._modes.align is Alignment.CENTER:
            return free // 2
        return free if self._modes.align is Alignment.RIGHT else 0

    def _blank(self, lines: int) -> None:
        if lines:
            self._page.rows.append(partial(Image.new, "L", (self.dots, lines * (LINE_DOTS + LINE_GAP)), 255))

    def _print_qr(self) -> None:
        if not self._qr_data:
            return
        content = self._qr_data.decode("utf-8", errors="replace")
        code = qrcode.QRCode(box_size=self._qr_dots, border=0, error_correction=_QR_LEVELS[self._qr_level])
        code.add_data(content)
        code.make(fit=True)
        side = code.modules_count * self._qr_dots
        self._page.rows.append(partial(_qr_row, self.dots, code, self._offset(side)))
        self._page.qr_codes.append(content)

    def _cut(self) -> Page:
        built, self._page = self._page, _PageBuilder()
        return Page(lines=built.lines, qr_codes=built.qr_codes, rows=built.rows, dots=self.dots)


def _text_row(dots: int, glyphs: list[_Glyph], widths: list[int], left: int) -> Image.Image:
    height = max(g.height for g in glyphs) * LINE_DOTS
    row = Image.new("L", (dots, height + LINE_GAP), 255)
    x = left
    for glyph, width in zip(glyphs, widths, strict=True):
        cell = _draw_glyph(glyph, width // glyph.width)
        cell = cell.resize((width, glyph.height * LINE_DOTS), Image.Resampling.LANCZOS)
        row.paste(cell, (x, height - cell.height))
        x += width
    return row


def _draw_glyph(glyph: _Glyph, cell_width: int) -> Image.Image:
    cell = Image.new("L", (cell_width, LINE_DOTS), 255)
    draw = ImageDraw.Draw(cell)
    font = _font(LINE_DOTS - 2)
    left = (cell_width - font.getlength(glyph.char)) / 2
    for dx in (0, 1) if glyph.bold else (0,):
        draw.text((left + dx, LINE_DOTS - 4), glyph.char, font=font, fill=0, anchor="ls")
    return cell


def _qr_row(dots: int, code: qrcode.QRCode, left: int) -> Image.Image:
    picture = code.make_image().get_image().convert("L")
    row = Image.new("L", (dots, picture.height), 255)
    row.paste(picture, (left, 0))
    return row
