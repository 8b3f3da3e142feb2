"""Every device's decoder keeps the same contract (devices/framing.py): one test, run on each kind.

GIVEN a few whole frames of the kind on the wire, WHEN they come in one read, a byte at a
time, after junk, cut short or abandoned, THEN the same frames come out and the junk is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hallkit.devices.evaluator import codec as pad
from hallkit.devices.evaluator.codec import KeyCode, PadDecoder
from hallkit.devices.framing import FrameDecoder
from hallkit.devices.idcard.codec import Cmd, Command, IdCardDecoder, Reply, Status, encode_payload
from hallkit.devices.printer.codec import Cut, EscposCommand, EscposDecoder, Initialize, LineFeed, Text, Unknown


@dataclass(frozen=True)
class Kind:
    make: Callable[[], FrameDecoder[Any]]
    frames: list[object]
    wire: list[bytes]
    """The bytes of each frame, in order."""
    junk: bytes
    """Bytes that are no frame of the kind (noise on the line, foreign commands)."""
    junk_frames: list[object]
    """What the decoder hands on for the junk: nothing, or (ESC/POS) the foreign bytes as Unknown."""


ESCPOS: list[EscposCommand] = [Initialize(), Text(data="号".encode("gb18030") + b"A001"), LineFeed(), Cut(partial=True, feed=4)]
IDCARD = [Command.of(Cmd.FIND_CARD).payload(), Reply.of(Status.CARD_FOUND, bytes(4)).payload()]
PAD = [pad.poll(1), pad.key(3, 7, KeyCode.DONE), pad.show(2, ["1号窗口", "A001"])]

KINDS = {
    "escpos": Kind(EscposDecoder, [*ESCPOS], [f.encode() for f in ESCPOS], b"\x00\x07\x11",
                   [Unknown(data=b"\x00"), Unknown(data=b"\x07"), Unknown(data=b"\x11")]),
    "idcard": Kind(IdCardDecoder, [*IDCARD], [encode_payload(p) for p in IDCARD], b"\x00\xaa\xaa\x96junk\xaa", []),
    "pad": Kind(PadDecoder, [*PAD], [pad.encode(f) for f in PAD], b"\x00\x55\xaajunk\xaa", []),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]


def test_the_cases_are_whole(kind: Kind) -> None:
    assert len(kind.wire) == len(kind.frames)


def test_one_read_gives_every_frame(kind: Kind) -> None:
    decoder = kind.make()
    assert decoder.feed(b"".join(kind.wire)) + decoder.flush() == kind.frames
    assert decoder.pending == 0 and decoder.discarded == 0


def test_fed_byte_by_byte_gives_the_same_frames(kind: Kind) -> None:
    decoder = kind.make()
    got = [frame for byte in b"".join(kind.wire) for frame in decoder.feed(bytes((byte,)))]
    assert got + decoder.flush() == kind.frames
    assert decoder.pending == 0 and decoder.discarded == 0


@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_junk_before_the_frames_is_skipped_and_counted(kind: Kind, byte_by_byte: bool) -> None:
    decoder = kind.make()
    stream = kind.junk + b"".join(kind.wire)
    reads = [bytes((byte,)) for byte in stream] if byte_by_byte else [stream]
    got = [frame for read in reads for frame in decoder.feed(read)] + decoder.flush()
    assert got == kind.junk_frames + kind.frames
    assert decoder.discarded == len(kind.junk)


def test_flush_gives_up_a_frame_cut_short(kind: Kind) -> None:
    decoder = kind.make()
    cut = kind.wire[-1][:-1]
    decoder.feed(b"".join(kind.wire[:-1]))
    assert decoder.feed(cut) == []
    assert decoder.pending == len(cut)
    assert kind.frames[-1] not in decoder.flush()
    assert decoder.pending == 0 and decoder.discarded == len(cut)
    assert decoder.feed(b"".join(kind.wire)) + decoder.flush() == kind.frames


def test_reset_forgets_a_partial_frame_without_counting_it(kind: Kind) -> None:
    decoder = kind.make()
    decoder.feed(kind.wire[-1][:-1])
    decoder.reset()
    assert decoder.pending == 0 and decoder.discarded == 0
    assert decoder.feed(b"".join(kind.wire)) + decoder.flush() == kind.frames
