"""DLE EOT replies to printer status, including silence and nonsense."""

from __future__ import annotations

import pytest
from hallkit.devices.printer.status import (
    PaperLevel,
    PrinterCondition,
    decode_status,
    status_reply,
)

CASES = [
    # DLE EOT 1, 2, 4 replies           condition                     paper
    ("12 12 12", PrinterCondition.READY, PaperLevel.OK),
    ("12 12 1e", PrinterCondition.PAPER_LOW, PaperLevel.NEAR_END),
    ("1a 32 7e", PrinterCondition.PAPER_OUT, PaperLevel.OUT),  # the out-of-paper capture in the notes
    ("1a 32 72", PrinterCondition.PAPER_OUT, PaperLevel.OUT),
    ("1a 16 12", PrinterCondition.COVER_OPEN, PaperLevel.OK),
    ("1a 52 12", PrinterCondition.ERROR, PaperLevel.OK),
    ("1a 12 12", PrinterCondition.OFFLINE, PaperLevel.OK),
]


@pytest.mark.parametrize(("reply", "condition", "paper"), CASES)
def test_replies(reply, condition, paper):
    status = decode_status(bytes.fromhex(reply))
    assert status.answered
    assert (status.condition, status.paper) == (condition, paper)
    assert status.can_print == (condition in (PrinterCondition.READY, PrinterCondition.PAPER_LOW))


@pytest.mark.parametrize("reply", ["", "12", "12 12"])
def test_silence_is_never_plenty_of_paper(reply):
    """GIVEN fewer than three bytes before the timeout THEN offline, paper unknown, nothing printed."""
    status = decode_status(bytes.fromhex(reply))
    assert not status.answered
    assert status.condition is PrinterCondition.OFFLINE
    assert status.paper is PaperLevel.UNKNOWN
    assert status.cover_open is None
    assert not status.can_print
    assert status.describe("zh") == "打印机无响应"


@pytest.mark.parametrize("reply", ["00 00 00", "12 12 ff", "13 12 12", "92 12 12"])
def test_malformed_reply_is_not_trusted(reply):
    status = decode_status(bytes.fromhex(reply))
    assert not status.answered
    assert "malformed" in status.detail


@pytest.mark.parametrize("paper", [PaperLevel.OK, PaperLevel.NEAR_END, PaperLevel.OUT])
@pytest.mark.parametrize("cover_open", [False, True])
def test_simulator_replies_decode_to_its_state(paper, cover_open):
    """The simulator's side of the codec and the driver's side agree."""
    reply = bytes(status_reply(n, paper, cover_open) for n in (1, 2, 4))
    status = decode_status(reply)
    assert status.paper is paper
    assert status.cover_open is cover_open
    assert status.can_print == (not cover_open and paper is not PaperLevel.OUT)


def test_condition_words_come_from_the_catalogue():
    status = decode_status(bytes.fromhex("1a 32 7e"))
    assert status.describe("zh") == "缺纸"
    assert status.describe("en") == "paper out"
