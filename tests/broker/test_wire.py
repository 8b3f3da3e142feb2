"""The status watcher's MQTT 3.1.1 packets: split out of a stream however it is cut."""

from __future__ import annotations

import pytest
from hallkit.broker import wire


def stream() -> bytes:
    return b"".join([
        bytes((0x20, 2, 0, 0)),  # CONNACK, accepted
        bytes((0x90, 3, 0, 1, 0)),  # SUBACK, QoS 0 granted
        wire.publish("hall/v1/h/dev/display-1/status", b'{"paper":"1"}'),
        wire.publish("hall/v1/h/dev/kiosk-1/status", b"x" * 300, packet_id=9),  # two length bytes, an id
        wire.publish("hall/v1/h/dev/big/status", b"y" * 20_000),  # three length bytes
        bytes((0xD0, 0)),  # PINGRESP
    ])


def test_a_stream_cut_at_every_byte_gives_the_same_packets():
    whole = wire.PacketSplitter().feed(stream())
    splitter = wire.PacketSplitter()
    one_by_one = [packet for i in range(len(stream())) for packet in splitter.feed(stream()[i:i + 1])]
    assert one_by_one == whole
    assert [p.kind for p in whole] == [2, 9, 3, 3, 3, 13]
    assert wire.connack_code(whole[0]) == wire.ConnackCode.ACCEPTED and wire.suback_codes(whole[1]) == b"\x00"
    assert [wire.read_publish(p) for p in whole[2:5]] == [
        ("hall/v1/h/dev/display-1/status", b'{"paper":"1"}', None),
        ("hall/v1/h/dev/kiosk-1/status", b"x" * 300, 9),
        ("hall/v1/h/dev/big/status", b"y" * 20_000, None)]


def test_lengths_are_framed_as_the_standard_says():
    assert [wire.remaining_length(n) for n in (0, 127, 128, 16_383, 16_384, 268_435_455)] == [
        b"\x00", b"\x7f", b"\x80\x01", b"\xff\x7f", b"\x80\x80\x01", b"\xff\xff\xff\x7f"]
    with pytest.raises(wire.WireError):
        wire.remaining_length(268_435_456)
    assert wire.connect("hub-status", 30, "hub-status", "pw") == (
        b"\x10\x26\x00\x04MQTT\x04\xc2\x00\x1e\x00\x0ahub-status\x00\x0ahub-status\x00\x02pw")
    assert wire.subscribe(1, [("a/+", 0)]) == b"\x82\x08\x00\x01\x00\x03a/+\x00"
    assert wire.subscribe(2, [("a", 0), ("bc", 1)]) == b"\x82\x0b\x00\x02\x00\x01a\x00\x00\x02bc\x01"
    assert wire.unsubscribe(3, ["a/b"]) == b"\xa2\x07\x00\x03\x00\x03a/b"


def test_a_length_of_five_bytes_is_refused():
    with pytest.raises(wire.WireError):
        wire.PacketSplitter().feed(b"\x30\xff\xff\xff\xff\x01")


def test_an_oversized_publish_is_named_and_dropped_as_it_comes_not_buffered():
    big = wire.publish("hall/v1/h/cmd/kiosk-1", b"z" * 5_000, packet_id=77)
    after = wire.publish("hall/v1/h/cmd/kiosk-1", b"small", packet_id=78)
    splitter = wire.PacketSplitter(max_packet=1_000)
    out = [packet for i in range(0, len(big + after), 700) for packet in splitter.feed((big + after)[i:i + 700])]
    assert [(p.kind, p.oversized) for p in out] == [(3, len(big) - 3), (3, 0)]  # 3: the fixed header's bytes
    assert wire.read_publish(out[0]) == ("hall/v1/h/cmd/kiosk-1", b"", 77)  # enough to acknowledge it
    assert wire.read_publish(out[1]) == ("hall/v1/h/cmd/kiosk-1", b"small", 78)
    assert len(splitter._buffer) == 0  # nothing of it kept


def test_refusals_read_in_words_and_a_short_publish_is_an_error():
    assert wire.connack_reason(5) == "not authorised" and wire.connack_reason(4) == "bad username or password"
    assert wire.connack_reason(77) == "code 77"
    with pytest.raises(wire.WireError):
        wire.read_publish(wire.Packet(3, 0, b"\x00\x09abc"))
    with pytest.raises(wire.WireError):
        wire.read_publish(wire.Packet(3, 0, b"\x00\x02\xff\xfe"))


def test_a_flooding_device_is_muted_for_a_while_and_heard_again():
    from hallkit.broker.flood import FloodGate

    gate = FloodGate(limit=20, window=1.0, mute_for=2.0)
    assert not gate.heard("display-1", 15, now=10.0) and not gate.heard("kiosk-1", 1, now=10.0)
    assert gate.heard("display-1", 6, now=10.5)  # 21 within a second: muted
    assert not gate.heard("display-1", 500, now=10.6)  # still arriving: not muted twice
    assert gate.muted == ["display-1"] and gate.wait(11.0) == 1.5 and gate.due(12.0) == []
    assert gate.due(12.5) == ["display-1"] and gate.wait(12.5) is None
    assert not gate.heard("display-1", 20, now=12.6)  # heard afresh: a new count
    assert not gate.heard("kiosk-1", 20, now=12.7)  # 21 over 2.7 s: no flood
