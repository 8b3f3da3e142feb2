"""The GA/T 467 frame codec: golden bytes, byte-by-byte feeding, and streams full of trouble."""

from __future__ import annotations

import pytest
from hallkit.devices.idcard.codec import (
    HEADER_SIZE,
    MAX_LENGTH,
    PREAMBLE,
    Cmd,
    Command,
    IdCardDecoder,
    Reply,
    Status,
    encode,
    encode_payload,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def decode(stream: bytes) -> list[bytes]:
    """The payloads in a whole stream (fed in one read, then flushed)."""
    decoder = IdCardDecoder()
    return decoder.feed(stream) + decoder.flush()

# Frames as published in the vendor protocol copies and driver sources (domain facts §2.3).
GOLDEN_COMMANDS = [
    (Cmd.RESET_SAM, "AA AA AA 96 69 00 03 10 FF EC"),
    (Cmd.SAM_STATUS, "AA AA AA 96 69 00 03 11 FF ED"),
    (Cmd.READ_SAM_ID, "AA AA AA 96 69 00 03 12 FF EE"),
    (Cmd.FIND_CARD, "AA AA AA 96 69 00 03 20 01 22"),
    (Cmd.SELECT_CARD, "AA AA AA 96 69 00 03 20 02 21"),
    (Cmd.READ_BASE, "AA AA AA 96 69 00 03 30 01 32"),
    (Cmd.READ_APPENDED_ADDRESS, "AA AA AA 96 69 00 03 30 03 30"),
    (Cmd.READ_BASE_AND_FINGERPRINT, "AA AA AA 96 69 00 03 30 10 23"),
]
FIND_OK = "AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97"
"""A 华视 100D answering 'find card' with a card present."""


@pytest.mark.parametrize(("command", "wire"), GOLDEN_COMMANDS)
def test_command_frames_match_the_published_bytes(command: Cmd, wire: str) -> None:
    assert encode(Command.of(command)) == bytes.fromhex(wire)
    assert decode(bytes.fromhex(wire)) == [Command.of(command).payload()]


def test_max_rf_frame_command_has_its_published_checksum() -> None:
    assert encode(Command(0x61, 0xFF, b"\x50")) == bytes.fromhex("AA AA AA 96 69 00 04 61 FF 50 CA")


def test_find_card_reply_decodes_to_card_found() -> None:
    decoder = IdCardDecoder()
    (payload,) = decoder.feed(bytes.fromhex(FIND_OK))
    reply = Reply.parse(payload)
    assert reply == Reply(0, 0, Status.CARD_FOUND, bytes(4))
    assert encode(reply) == bytes.fromhex(FIND_OK)
    assert decoder.pending == 0 and decoder.discarded == 0


def test_read_base_reply_header_matches_a_capture() -> None:
    data = (256).to_bytes(2, "big") + (1024).to_bytes(2, "big") + bytes(256 + 1024)
    wire = encode(Reply.of(Status.OK, data))
    assert len(wire) == 1295
    assert wire[:14] == bytes.fromhex("AA AA AA 96 69 05 08 00 00 90 01 00 04 00")


def test_fed_byte_by_byte_after_junk() -> None:
    wire = b"\x00\xaa\x96junk" + bytes.fromhex(FIND_OK) + bytes.fromhex(GOLDEN_COMMANDS[0][1])
    buffer = IdCardDecoder()
    found = [payload for byte in wire for payload in buffer.feed(bytes([byte]))]
    assert [Reply.parse(p).sw3 for p in found[:1]] == [Status.CARD_FOUND]
    assert Command.parse(found[1]) == Command.of(Cmd.RESET_SAM)
    assert buffer.pending == 0
    assert buffer.discarded == 7  # the junk before the first frame


def test_partial_preamble_at_the_end_is_kept_until_the_input_ends() -> None:
    decoder = IdCardDecoder()
    assert decoder.feed(b"noise" + PREAMBLE[:3]) == []
    assert decoder.pending == 3 and decoder.discarded == 5
    assert decoder.flush() == []
    assert decoder.pending == 0 and decoder.discarded == 8


def test_flush_gives_up_a_frame_cut_short() -> None:
    decoder = IdCardDecoder()
    cut = encode(Reply.of(Status.OK, bytes(300)))[:40]
    assert decoder.feed(cut) == []
    assert decoder.pending == 40
    assert decoder.flush() == []
    assert decoder.pending == 0 and decoder.discarded == 40
    assert decoder.feed(bytes.fromhex(FIND_OK)) == [Reply.of(Status.CARD_FOUND, bytes(4)).payload()]


@pytest.mark.parametrize("length", [0, 1, 2, MAX_LENGTH + 1, 0xFFFF])
def test_impossible_length_is_skipped(length: int) -> None:
    good = encode(Command.of(Cmd.FIND_CARD))
    bad = PREAMBLE + length.to_bytes(2, "big") + b"\x20\x01\x00"
    assert decode(bad + good) == [Command.of(Cmd.FIND_CARD).payload()]


def test_wrong_checksum_is_dropped_and_the_next_frame_found() -> None:
    good = encode(Command.of(Cmd.SELECT_CARD))
    broken = bytearray(encode(Command.of(Cmd.FIND_CARD)))
    broken[-1] ^= 0xFF
    decoder = IdCardDecoder()
    assert decoder.feed(bytes(broken) + good) == [Command.of(Cmd.SELECT_CARD).payload()]
    assert decoder.discarded == len(broken)


def test_a_frame_cut_short_gives_way_to_the_next_whole_frame() -> None:
    cut = encode(Reply.of(Status.OK, bytes(300)))[:40]
    good = encode(Reply.of(Status.CARD_FOUND, bytes(4)))
    assert decode(cut + good) == [Reply.of(Status.CARD_FOUND, bytes(4)).payload()]


def test_payload_too_large_for_a_frame_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_payload(bytes(MAX_LENGTH))


# --- properties -------------------------------------------------------------------------

payloads = st.binary(min_size=2, max_size=1400).filter(lambda p: PREAMBLE not in p)
noise = st.binary(max_size=200).filter(lambda b: PREAMBLE not in b)


@given(st.binary(max_size=3000))
def test_random_bytes_never_raise_and_every_byte_is_accounted_for(stream: bytes) -> None:
    decoder = IdCardDecoder()
    found = decoder.feed(stream)
    assert decoder.discarded + decoder.pending + sum(HEADER_SIZE + len(p) + 1 for p in found) == len(stream)
    found += decoder.flush()
    assert decoder.pending == 0
    assert decoder.discarded + sum(HEADER_SIZE + len(p) + 1 for p in found) == len(stream)


@given(st.lists(st.tuples(noise, payloads), max_size=6), noise)
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow], deadline=None)
def test_every_frame_in_noise_is_found(parts: list[tuple[bytes, bytes]], tail: bytes) -> None:
    stream = b"".join(junk + encode_payload(payload) for junk, payload in parts) + tail
    assert decode(stream) == [payload for _, payload in parts]


@given(st.lists(payloads, min_size=1, max_size=4), st.data())
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow], deadline=None)
def test_frames_split_across_reads_are_found(frames: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(encode_payload(p) for p in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    buffer = IdCardDecoder()
    found: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        found += buffer.feed(stream[start:end])
    assert found == frames
    assert buffer.pending == 0


@given(payloads, payloads, st.data())
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow], deadline=None)
def test_truncated_frame_then_good_frame(lost: bytes, good: bytes, data: st.DataObject) -> None:
    wire = encode_payload(lost)
    cut = wire[: data.draw(st.integers(0, len(wire) - 1))]
    assert decode(cut + encode_payload(good))[-1:] == [good]


@given(payloads, payloads, st.data())
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow], deadline=None)
def test_corrupted_frame_is_dropped_and_neighbours_survive(
    before: bytes, after: bytes, data: st.DataObject
) -> None:
    victim = bytearray(encode_payload(data.draw(payloads)))
    # Damage a byte of the length, payload or checksum (not the preamble, which only hides the frame).
    where = data.draw(st.integers(len(PREAMBLE), len(victim) - 1))
    victim[where] ^= data.draw(st.integers(1, 255))
    stream = encode_payload(before) + bytes(victim) + encode_payload(after)
    found = decode(stream)
    assert found[0] == before
    assert found[-1] == after


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=10))
def test_any_stream_in_any_chunks_never_raises(stream: bytes, cuts: list[int]) -> None:
    buffer = IdCardDecoder()
    edges = sorted({0, len(stream), *[c for c in cuts if c < len(stream)]})
    for start, end in zip(edges, edges[1:], strict=False):
        buffer.feed(stream[start:end])
    assert buffer.pending <= len(stream)
