"""The pad protocol codec: golden bytes, and frames found again through noise, truncation and bad checksums."""

from __future__ import annotations

from hallkit.devices.evaluator import codec
from hallkit.devices.evaluator.codec import KeyCode, PadCommand, PadDecoder, PadFrame, crc16, describe, encode
from hypothesis import given, settings
from hypothesis import strategies as st


def test_golden_bytes():
    # CRC-16/MODBUS of "123456789" is 0x4B37 (the standard check value).
    assert crc16(b"123456789") == 0x4B37
    assert encode(codec.poll(1)) == bytes.fromhex("aa55 01 00 01") + crc16(bytes.fromhex("010001")).to_bytes(2, "little")
    frame = encode(codec.key(3, 7, KeyCode.DONE))
    assert frame[:7] == bytes.fromhex("aa55 03 02 82 07 14")
    assert PadDecoder().feed(frame) == [PadFrame(3, PadCommand.KEY, b"\x07\x14")]


def test_text_travels_as_gb18030_and_is_cut_whole():
    frame = codec.show(2, ["1号窗口 张三", "正在办理 A001"])
    assert codec.text_of(frame.payload) == ["1号窗口 张三", "正在办理 A001"]
    long = codec.show(2, ["满" * 500])
    assert len(long.payload) <= codec.MAX_PAYLOAD and set(codec.text_of(long.payload)[0]) == {"满"}
    seconds, reasons = codec.asked(codec.ask(2, 60, ["态度不好", "效率低"]))
    assert (seconds, reasons) == (60, ["态度不好", "效率低"])


def test_frames_in_words():
    assert "key done" in describe(codec.key(1, 5, KeyCode.DONE)).render("en")
    assert "评价 1 级" in describe(codec.rating(1, 6, 1, [1, 2])).render("zh")


frames = st.builds(
    PadFrame,
    address=st.integers(codec.MIN_ADDRESS, codec.MAX_ADDRESS),
    command=st.sampled_from(list(PadCommand)),
    payload=st.binary(max_size=codec.MAX_PAYLOAD),
)


@given(st.lists(frames, max_size=8), st.data())
@settings(max_examples=200, deadline=None)
def test_any_split_gives_the_same_frames(sent, data):
    stream = b"".join(encode(f) for f in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = PadDecoder()
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += decoder.feed(stream[start:end])
    assert got == sent and decoder.discarded == 0


@given(st.lists(st.tuples(st.binary(max_size=30), frames), min_size=1, max_size=6))
@settings(max_examples=300, deadline=None)
def test_noise_between_frames_is_skipped(chunks):
    # One poll cycle per chunk: noise, the answer, then the host's wait runs out. Noise may by
    # chance hold a valid frame; what the pad sent must still come out, in order.
    decoder = PadDecoder()
    got = []
    for noise, frame in chunks:
        got += decoder.feed(noise + encode(frame)) + decoder.flush()
    it = iter(got)
    assert all(any(g == frame for g in it) for _, frame in chunks)


@given(frames, frames, st.integers(min_value=1))
@settings(max_examples=300, deadline=None)
def test_a_truncated_frame_does_not_hide_the_next(first, second, cut):
    # A pad speaks only when polled, so a frame cut short is followed by silence (the host's wait
    # runs out) before the next answer. Without that silence the cut frame's length could swallow
    # the start of the next one, and the CRC would catch it only with odds of 1 in 65536.
    broken = encode(first)[: cut % (len(encode(first)) - 1) + 1]  # at least the first byte, never all
    decoder = PadDecoder()
    assert decoder.feed(broken) + decoder.flush() == []
    assert decoder.feed(encode(second)) == [second]


@given(frames, st.integers(min_value=2), st.integers(1, 255))
@settings(max_examples=300, deadline=None)
def test_a_corrupted_byte_never_gives_a_wrong_frame(frame, where, flip):
    raw = bytearray(encode(frame))
    where = where % (len(raw) - 2) + 2  # not the preamble
    raw[where] ^= flip
    decoder = PadDecoder()
    damaged = decoder.feed(bytes(raw)) + decoder.flush()
    assert frame not in damaged  # CRC-16 catches every error within 16 bits
    assert decoder.discarded > 0
    assert decoder.feed(encode(codec.poll(1))) == [codec.poll(1)]
