"""Real-time printer status: DLE EOT replies to :class:`PrinterStatus`, and back.

Pure: no I/O. The driver sends ``DLE EOT 1``, ``DLE EOT 2`` and ``DLE EOT 4`` and hands
the (up to) three reply bytes to :func:`decode_status`; the virtual printer builds its
replies with :func:`status_reply`.

Every valid reply byte has bits 1 and 4 set and bits 0 and 7 clear (``b & 0x93 == 0x12``)::

    n=1 printer     bit 3 offline
    n=2 offline     bit 2 cover open, bit 5 stopped by paper end, bit 6 error
    n=4 paper       bits 2-3 paper near end, bits 5-6 paper end

A missing or malformed reply is never read as "paper OK" (python-escpos 3.1 does
that on silence): the paper level is then unknown and the printer counts as offline.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, computed_field

from hallkit.i18n import Lang, text

QUERIES = (1, 2, 4)
"""The DLE EOT functions asked before each ticket, in the order their replies arrive."""

VALID_MASK = 0x93
VALID_BITS = 0x12
OFFLINE_BIT = 0x08
COVER_OPEN_BIT = 0x04
PAPER_END_STOP_BIT = 0x20
ERROR_BIT = 0x40
NEAR_END_BITS = 0x0C
PAPER_END_BITS = 0x60


class PaperLevel(StrEnum):
    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"
    UNKNOWN = "unknown"


class PrinterCondition(StrEnum):
    """One word for the hall manager, the worst thing that is true first."""

    READY = "ready"
    PAPER_LOW = "paper_low"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    ERROR = "error"
    OFFLINE = "offline"
    UNKNOWN = "unknown"
    """The link is one-way (a plain file): nobody can ask the printer."""


PRINTABLE = frozenset({PrinterCondition.READY, PrinterCondition.PAPER_LOW, PrinterCondition.UNKNOWN})


class PrinterStatus(BaseModel):
    """What the printer said about itself (or that it said nothing)."""

    model_config = ConfigDict(frozen=True)

    condition: PrinterCondition
    answered: bool
    paper: PaperLevel = PaperLevel.UNKNOWN
    cover_open: bool | None = None
    error: bool | None = None
    detail: str = ""
    """Why there is no answer (connection refused, timeout, malformed byte), for the installer."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def can_print(self) -> bool:
        return self.condition in PRINTABLE

    def describe(self, lang: Lang = "zh") -> str:
        """The condition in words, e.g. 缺纸 / paper out."""
        key = f"printer.condition.{self.condition.value}"
        if self.condition is PrinterCondition.OFFLINE and not self.answered:
            key = "printer.condition.no_reply"
        return text(key, lang)

    def bilingual(self, key: str, **params: str) -> str:
        """Message ``key`` with ``{condition}`` in each language's own words, Chinese first."""
        zh = text(key, "zh", condition=self.describe("zh"), **params)
        return f"{zh} / {text(key, 'en', condition=self.describe('en'), **params)}"

    def same_condition(self, other: PrinterStatus | None) -> bool:
        """Equal for reporting: a change of ``detail`` alone is not news."""
        return other is not None and self.model_dump(exclude={"detail"}) == other.model_dump(exclude={"detail"})


class PrinterReport(BaseModel):
    """A printer's status with the printer it is about, as ``hall printer status --json`` prints it."""

    printer: str
    status: PrinterStatus


def is_valid_reply(byte: int) -> bool:
    return byte & VALID_MASK == VALID_BITS


def no_reply(detail: str) -> PrinterStatus:
    """The status of a printer that did not answer in time or could not be reached."""
    return PrinterStatus(condition=PrinterCondition.OFFLINE, answered=False, detail=detail)


def one_way_link() -> PrinterStatus:
    return PrinterStatus(condition=PrinterCondition.UNKNOWN, answered=False, detail="one-way link")


def decode_status(reply: bytes) -> PrinterStatus:
    """The status from the reply bytes to ``DLE EOT 1, 2, 4`` sent together.

    Args:
        reply: what arrived within the timeout, at most three bytes in query order.
    """
    if len(reply) < len(QUERIES):
        return no_reply(f"{len(reply)} of {len(QUERIES)} status bytes before the timeout")
    bad = [b for b in reply[: len(QUERIES)] if not is_valid_reply(b)]
    if bad:
        return no_reply(f"malformed status byte 0x{bad[0]:02x}")
    printer, offline_cause, paper_sensor = reply[:3]
    cover_open = bool(offline_cause & COVER_OPEN_BIT)
    error = bool(offline_cause & ERROR_BIT)
    if paper_sensor & PAPER_END_BITS or offline_cause & PAPER_END_STOP_BIT:
        paper = PaperLevel.OUT
    elif paper_sensor & NEAR_END_BITS:
        paper = PaperLevel.NEAR_END
    else:
        paper = PaperLevel.OK
    if cover_open:
        condition = PrinterCondition.COVER_OPEN
    elif paper is PaperLevel.OUT:
        condition = PrinterCondition.PAPER_OUT
    elif error:
        condition = PrinterCondition.ERROR
    elif printer & OFFLINE_BIT:
        condition = PrinterCondition.OFFLINE
    elif paper is PaperLevel.NEAR_END:
        condition = PrinterCondition.PAPER_LOW
    else:
        condition = PrinterCondition.READY
    return PrinterStatus(condition=condition, answered=True, paper=paper, cover_open=cover_open, error=error)


def status_reply(n: int, paper: PaperLevel, cover_open: bool, error: bool = False) -> int:
    """The byte a printer in this state answers to ``DLE EOT n`` (the simulator's side).

    Paper out, an open cover and an error all take the printer offline, as real ones do.
    """
    out = paper is PaperLevel.OUT
    if n == 1:
        return VALID_BITS | (OFFLINE_BIT if out or cover_open or error else 0)
    if n == 2:
        return (VALID_BITS | (COVER_OPEN_BIT if cover_open else 0) | (PAPER_END_STOP_BIT if out else 0)
                | (ERROR_BIT if error else 0))
    if n == 4:
        if out:
            return VALID_BITS | NEAR_END_BITS | PAPER_END_BITS
        return VALID_BITS | (NEAR_END_BITS if paper is PaperLevel.NEAR_END else 0)
    return VALID_BITS
