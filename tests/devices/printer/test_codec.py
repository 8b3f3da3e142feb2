"""The ESC/POS codec: golden bytes, round trips, streams cut anywhere, foreign bytes."""

from __future__ import annotations

import pytest
from escpos.constants import QR_ECLEVEL_M
from escpos.printer import Dummy
from hallkit.devices.printer.codec import (
    Align,
    Alignment,
    Bold,
    CharSize,
    ChineseMode,
    Cut,
    EscposDecoder,
    Feed,
    Initialize,
    LineFeed,
    QrErrorLevel,
    QrPrint,
    QrStore,
    StatusQuery,
    Text,
    Unknown,
    encode,
    qr_code,
)

GOLDEN = [
    (Initialize(), "1b 40"),
    (ChineseMode(on=True), "1c 26"),
    (ChineseMode(on=False), "1c 2e"),
    (Align(align=Alignment.CENTER), "1b 61 01"),
    (Bold(on=True), "1b 45 01"),
    (CharSize(width=2, height=2), "1d 21 11"),
    (CharSize(width=1, height=2), "1d 21 01"),
    (LineFeed(), "0a"),
    (Feed(lines=3), "1b 64 03"),
    (Cut(partial=True, feed=4), "1d 56 42 04"),
    (Cut(), "1d 56 00"),
    (StatusQuery(n=4), "10 04 04"),
    (QrStore(data=b"ab"), "1d 28 6b 05 00 31 50 30 61 62"),
    (QrPrint(), "1d 28 6b 03 00 31 51 30"),
    (Text(data="号".encode("gb18030")), "ba c5"),
]


@pytest.mark.parametrize(("command", "hex_bytes"), GOLDEN)
def test_golden_bytes(command, hex_bytes):
    """GIVEN a command WHEN encoded THEN it is the documented ESC/POS byte string, and decodes back."""
    assert command.encode() == bytes.fromhex(hex_bytes)
    decoder = EscposDecoder()
    assert decoder.feed(bytes.fromhex(hex_bytes)) + decoder.flush() == [command]
    assert decoder.pending == 0 and decoder.discarded == 0


def test_native_qr_matches_python_escpos():
    """Our GS ( k sequence is byte for byte what python-escpos sends with native=True."""
    url = "http://hall.local/t/K7P2M9X4QA"
    reference = Dummy()
    reference.qr(url, ec=QR_ECLEVEL_M, size=6, native=True)
    assert encode(qr_code(url, 6, QrErrorLevel.M)) == reference.output


def _stream() -> tuple[list, bytes]:
    commands = [Initialize(), ChineseMode(on=True), Align(align=Alignment.CENTER),
                Text(data="便民服务中心".encode("gb18030")), LineFeed(), CharSize(width=2, height=2),
                Text(data=b"A001"), LineFeed(), *qr_code("http://x/t/1", 5), StatusQuery(n=1),
                Cut(partial=True, feed=4)]
    return commands, encode(commands)


def test_stream_fed_byte_by_byte_decodes_the_same():
    """A TCP stream may split anywhere, even inside a Chinese character or a QR block."""
    commands, data = _stream()
    decoder = EscposDecoder()
    got = [command for byte in data for command in decoder.feed(bytes((byte,)))] + decoder.flush()
    assert got == commands  # text is held until it ends, so it is not cut into runs
    assert decoder.pending == 0 and decoder.discarded == 0


def test_foreign_commands_are_kept_as_unknown_and_do_not_become_text():
    data = bytes.fromhex("1b 21 08") + bytes.fromhex("07") + "中".encode("gb18030") + bytes.fromhex("1b 7a")
    decoder = EscposDecoder()
    assert decoder.feed(data) + decoder.flush() == [
        Unknown(data=bytes.fromhex("1b 21 08")), Unknown(data=b"\x07"), Text(data="中".encode("gb18030")),
        Unknown(data=b"\x1b"), Text(data=b"z")]
    assert decoder.discarded == 5  # the bytes outside the subset, handed on as Unknown


def test_incomplete_command_waits_for_more_bytes_and_ends_as_unknown():
    decoder = EscposDecoder()
    assert decoder.feed(bytes.fromhex("1b 40 1d 28 6b 05 00 31")) == [Initialize()]
    assert decoder.pending == 6
    assert decoder.flush() == [Unknown(data=bytes.fromhex("1d 28 6b 05 00 31"))]
    assert decoder.pending == 0 and decoder.discarded == 6
