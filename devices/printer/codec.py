"""The ESC/POS commands a queue ticket uses, as values, and their bytes in both directions.

Pure: no I/O, threads or clock. The layout encodes with it; the virtual printer decodes
with it, so both sides speak exactly the same subset.

Byte forms (hex; ``n`` one byte, ``pL pH`` a little-endian length)::

    ESC @          1B 40                 initialise (clears size, bold, alignment)
    FS &  / FS .   1C 26 / 1C 2E         Chinese (Kanji) mode on / off
    ESC a n        1B 61 n               align: 0 left, 1 centre, 2 right (or '0'..'2')
    ESC E n        1B 45 n               bold on (bit 0 set) / off
    GS ! n         1D 21 n               size: width = high nibble + 1, height = low nibble + 1
    ESC d n        1B 64 n               print and feed n lines
    LF             0A                    print the line
    GS ( k pL pH cn fn [m] [data]        2D code; cn 31 = QR; fn 41 model, 43 module size,
                   1D 28 6B ...          45 error level, 50 store data (m = 30), 51 print (m = 30)
    GS V m [n]     1D 56 m [n]           cut: m 0/30 full, 1/31 partial, 41/42 feed n then cut
    DLE EOT n      10 04 n               real-time status query (see ``status``)
    text           bytes >= 0x20         characters in the printer's encoding

:class:`EscposDecoder` reads them back. Everything else is decoded as :class:`Unknown`
so a stream with foreign commands still parses: known fixed-length commands are
skipped whole, any other control byte is skipped alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Annotated, Literal

from hallkit.devices.framing import BufferedDecoder, Scan
from pydantic import BaseModel, ConfigDict, Field

ESC = 0x1B
GS = 0x1D
FS = 0x1C
DLE = 0x10
EOT = 0x04
LF = 0x0A

QR_CN = 0x31
"""``cn`` of ``GS ( k`` for QR codes."""


class Alignment(IntEnum):
    LEFT = 0
    CENTER = 1
    RIGHT = 2


class QrErrorLevel(IntEnum):
    """QR error correction, as sent: '0' L (7 %), '1' M (15 %), '2' Q (25 %), '3' H (30 %)."""

    L = 48
    M = 49
    Q = 50
    H = 51


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Initialize(_Command):
    kind: Literal["init"] = "init"

    def encode(self) -> bytes:
        return bytes((ESC, 0x40))


class ChineseMode(_Command):
    kind: Literal["chinese_mode"] = "chinese_mode"
    on: bool

    def encode(self) -> bytes:
        return bytes((FS, 0x26 if self.on else 0x2E))


class Align(_Command):
    kind: Literal["align"] = "align"
    align: Alignment

    def encode(self) -> bytes:
        return bytes((ESC, 0x61, self.align))


class Bold(_Command):
    kind: Literal["bold"] = "bold"
    on: bool

    def encode(self) -> bytes:
        return bytes((ESC, 0x45, 1 if self.on else 0))


class CharSize(_Command):
    """Character magnification: 1 is normal, 2 is double (the ticket number)."""

    kind: Literal["size"] = "size"
    width: int = Field(1, ge=1, le=8)
    height: int = Field(1, ge=1, le=8)

    def encode(self) -> bytes:
        return bytes((GS, 0x21, (self.width - 1) << 4 | (self.height - 1)))


class Text(_Command):
    """Characters already encoded in the printer's encoding; the reader decodes them."""

    kind: Literal["text"] = "text"
    data: bytes = Field(min_length=1)

    def encode(self) -> bytes:
        return self.data


class LineFeed(_Command):
    kind: Literal["lf"] = "lf"

    def encode(self) -> bytes:
        return bytes((LF,))


class Feed(_Command):
    kind: Literal["feed"] = "feed"
    lines: int = Field(ge=0, le=255)

    def encode(self) -> bytes:
        return bytes((ESC, 0x64, self.lines))


class QrModel(_Command):
    kind: Literal["qr_model"] = "qr_model"
    model: int = Field(2, ge=1, le=3)

    def encode(self) -> bytes:
        return _qr(0x41, bytes((0x30 + self.model, 0)))


class QrModuleSize(_Command):
    kind: Literal["qr_size"] = "qr_size"
    dots: int = Field(ge=1, le=16)

    def encode(self) -> bytes:
        return _qr(0x43, bytes((self.dots,)))


class QrErrorCorrection(_Command):
    kind: Literal["qr_ec"] = "qr_ec"
    level: QrErrorLevel

    def encode(self) -> bytes:
        return _qr(0x45, bytes((self.level,)))


class QrStore(_Command):
    kind: Literal["qr_store"] = "qr_store"
    data: bytes = Field(min_length=1, max_length=7089)

    def encode(self) -> bytes:
        return _qr(0x50, b"0" + self.data)


class QrPrint(_Command):
    kind: Literal["qr_print"] = "qr_print"

    def encode(self) -> bytes:
        return _qr(0x51, b"0")


class Cut(_Command):
    """Cut the paper, after feeding ``feed`` lines so the last line clears the blade."""

    kind: Literal["cut"] = "cut"
    partial: bool = False
    feed: int = Field(0, ge=0, le=255)

    def encode(self) -> bytes:
        if self.feed:
            return bytes((GS, 0x56, 0x42 if self.partial else 0x41, self.feed))
        return bytes((GS, 0x56, 0x01 if self.partial else 0x00))


class StatusQuery(_Command):
    kind: Literal["status_query"] = "status_query"
    n: int = Field(ge=1, le=4)

    def encode(self) -> bytes:
        return bytes((DLE, EOT, self.n))


class Unknown(_Command):
    """Bytes outside the ticket's subset, kept so nothing is silently lost."""

    kind: Literal["unknown"] = "unknown"
    data: bytes

    def encode(self) -> bytes:
        return self.data


EscposCommand = Annotated[
    Initialize | ChineseMode | Align | Bold | CharSize | Text | LineFeed | Feed | QrModel
    | QrModuleSize | QrErrorCorrection | QrStore | QrPrint | Cut | StatusQuery | Unknown,
    Field(discriminator="kind"),
]


def encode(commands: Iterable[EscposCommand]) -> bytes:
    """The bytes of ``commands`` in order."""
    return b"".join(command.encode() for command in commands)


def qr_code(content: str, module_dots: int, level: QrErrorLevel = QrErrorLevel.M) -> list[EscposCommand]:
    """The five ``GS ( k`` commands that store and print one QR code (UTF-8 content, model 2)."""
    return [
        QrModel(model=2),
        QrModuleSize(dots=module_dots),
        QrErrorCorrection(level=level),
        QrStore(data=content.encode("utf-8")),
        QrPrint(),
    ]


def _qr(fn: int, params: bytes) -> bytes:
    length = len(params) + 2
    return bytes((GS, 0x28, 0x6B, length & 0xFF, length >> 8, QR_CN, fn)) + params


# Commands outside the subset whose length is fixed: skipped whole as Unknown so their
# parameter byte is not read as text. Keyed by (prefix, command byte).
_FIXED_LENGTHS: dict[tuple[int, int], int] = {
    (ESC, 0x21): 3,  # ESC ! n   print mode
    (ESC, 0x2D): 3,  # ESC - n   underline
    (ESC, 0x32): 2,  # ESC 2     default line spacing
    (ESC, 0x33): 3,  # ESC 3 n   line spacing
    (ESC, 0x4A): 3,  # ESC J n   feed dots
    (ESC, 0x4D): 3,  # ESC M n   font
    (ESC, 0x74): 3,  # ESC t n   code page
    (ESC, 0x7B): 3,  # ESC { n   upside down
    (GS, 0x42): 3,  # GS B n    reverse
    (GS, 0x4C): 4,  # GS L nL nH left margin
    (GS, 0x57): 4,  # GS W nL nH print width
    (FS, 0x21): 3,  # FS ! n    Kanji print mode
    (FS, 0x43): 3,  # FS C n    Kanji code system
}


class EscposDecoder(BufferedDecoder[EscposCommand]):
    """ESC/POS commands out of a byte stream (the virtual printer's side); see :mod:`devices.framing`.

    ESC/POS has no envelope to resynchronise on: every byte is text or starts a command. Bytes
    outside the ticket's subset come out as :class:`Unknown` so nothing is silently lost, and
    count as :attr:`discarded`. Text is held back until a control byte or :meth:`flush` ends it,
    since a multi-byte character may be split across reads; a command cut short by the end of
    the stream comes out of :meth:`flush` as :class:`Unknown`.
    """

    def scan(self, buffer: bytes, final: bool) -> Scan[EscposCommand]:
        commands: list[EscposCommand] = []
        pos = 0
        unknown = 0
        size = len(buffer)
        while pos < size:
            byte = buffer[pos]
            if byte >= 0x20:
                end = pos
                while end < size and buffer[end] >= 0x20:
                    end += 1
                if end == size and not final:
                    break  # a multi-byte character may be split across reads
                commands.append(Text(data=buffer[pos:end]))
                pos = end
                continue
            decoded = _decode_control(buffer, pos)
            if decoded is None:
                if not final:
                    break
                decoded = Unknown(data=buffer[pos:]), size - pos
            command, length = decoded
            if isinstance(command, Unknown):
                unknown += length
            commands.append(command)
            pos += length
        return Scan(commands, pos, unknown)


def _decode_control(buffer: bytes, pos: int) -> tuple[EscposCommand, int] | None:
    """One command starting with a control byte at ``pos``, or None when it is incomplete."""
    rest = len(buffer) - pos
    byte = buffer[pos]
    if byte == LF:
        return LineFeed(), 1
    if byte not in (ESC, GS, FS, DLE):
        return Unknown(data=buffer[pos : pos + 1]), 1
    if rest < 2:
        return None
    second = buffer[pos + 1]
    key = (byte, second)
    if key == (ESC, 0x40):
        return Initialize(), 2
    if key in ((FS, 0x26), (FS, 0x2E)):
        return ChineseMode(on=second == 0x26), 2
    if key == (GS, 0x28):
        if rest < 3:
            return None
        if buffer[pos + 2] == 0x6B:
            return _decode_2d(buffer, pos)
    if key == (GS, 0x56):
        return _decode_cut(buffer, pos)
    if key in _FIXED_LENGTHS:
        length = _FIXED_LENGTHS[key]
        return (Unknown(data=buffer[pos : pos + length]), length) if rest >= length else None
    if key not in ((ESC, 0x61), (ESC, 0x45), (ESC, 0x64), (GS, 0x21), (DLE, EOT)):
        return Unknown(data=buffer[pos : pos + 1]), 1
    if rest < 3:
        return None
    n = buffer[pos + 2]
    if key == (ESC, 0x61):
        value = n - 48 if 48 <= n <= 50 else n
        return Align(align=Alignment(value) if value <= 2 else Alignment.LEFT), 3
    if key == (ESC, 0x45):
        return Bold(on=bool(n & 1)), 3
    if key == (ESC, 0x64):
        return Feed(lines=n), 3
    if key == (GS, 0x21):
        return CharSize(width=min((n >> 4) + 1, 8), height=min((n & 0x0F) + 1, 8)), 3
    if 1 <= n <= 4:
        return StatusQuery(n=n), 3
    return Unknown(data=buffer[pos : pos + 3]), 3


def _decode_cut(buffer: bytes, pos: int) -> tuple[EscposCommand, int] | None:
    rest = len(buffer) - pos
    if rest < 3:
        return None
    m = buffer[pos + 2]
    if m in (0x00, 0x30, 0x01, 0x31):
        return Cut(partial=m in (0x01, 0x31)), 3
    if m in (0x41, 0x42):
        if rest < 4:
            return None
        return Cut(partial=m == 0x42, feed=buffer[pos + 3]), 4
    return Unknown(data=buffer[pos : pos + 3]), 3


def _decode_2d(buffer: bytes, pos: int) -> tuple[EscposCommand, int] | None:
    if len(buffer) - pos < 5:
        return None
    length = buffer[pos + 3] | buffer[pos + 4] << 8
    total = 5 + length
    if len(buffer) - pos < total:
        return None
    whole = buffer[pos : pos + total]
    if length < 2 or whole[5] != QR_CN:
        return Unknown(data=whole), total
    fn, params = whole[6], whole[7:]
    command: EscposCommand | None = None
    if fn == 0x41 and len(params) == 2 and 0x31 <= params[0] <= 0x33:
        command = QrModel(model=params[0] - 0x30)
    elif fn == 0x43 and len(params) == 1 and 1 <= params[0] <= 16:
        command = QrModuleSize(dots=params[0])
    elif fn == 0x45 and len(params) == 1 and params[0] in set(QrErrorLevel):
        command = QrErrorCorrection(level=QrErrorLevel(params[0]))
    elif fn == 0x50 and len(params) >= 2 and params[0] == 0x30:
        command = QrStore(data=params[1:])
    elif fn == 0x51 and params == b"0":
        command = QrPrint()
    return (command or Unknown(data=whole)), total
