"""The text block, the ID number check, validity dates, and what may leave the reader module."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hallkit.devices.idcard import idnumber
from hallkit.devices.idcard.nations import NATIONS, nation_name
from hallkit.devices.idcard.photo import CardPhoto, NoPhotoDecoder
from hallkit.devices.idcard.problems import IdCardError, Problem
from hallkit.devices.idcard.records import (
    TEXT_SIZE,
    CardHolder,
    CardKind,
    CardRules,
    Gender,
    encode_text_block,
    parse_text_block,
)
from hallkit.devices.idcard.simulator import sim_cards
from hypothesis import given
from hypothesis import strategies as st

from hallkit.privacy import id_hash

TODAY = date(2026, 11, 23)
KEY = "test-secret-0123456789"
CARDS = {card.name: card for card in sim_cards(TODAY)}


def test_check_character_of_a_published_number() -> None:
    assert idnumber.check_character("11010519491231002") == "X"
    assert idnumber.is_valid("11010519491231002X")
    assert idnumber.is_valid("11010519491231002x")
    assert not idnumber.is_valid("110105194912310021")


def test_weights_are_the_standard_ones() -> None:
    assert idnumber.WEIGHTS == (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@given(st.dates(date(1900, 1, 1), date(2030, 12, 31)), st.integers(0, 999), st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_error_is_caught(birth: date, sequence: int, where: int, shift: int) -> None:
    number = idnumber.compose("652323", birth, sequence)
    assert idnumber.is_valid(number)
    damaged = number[:where] + str((int(number[where]) + shift) % 10) + number[where + 1 :]
    assert not idnumber.is_valid(damaged)


def test_nation_table_is_complete() -> None:
    assert len(NATIONS) == 58
    assert [nation_name(f"{n:02d}") is not None for n in range(1, 57)] == [True] * 56
    assert nation_name("46") == "德昂"
    assert nation_name("98") == "外国血统中国籍人士"
    assert nation_name("57") is None


@pytest.mark.parametrize("name", ["valid", "elderly", "expired", "foreign", "bad-checksum"])
def test_text_block_round_trip(name: str) -> None:
    holder = CARDS[name].holder
    block = encode_text_block(holder)
    assert len(block) == TEXT_SIZE
    parsed = parse_text_block(block, CardRules(), holder.photo)
    assert parsed == holder


def test_resident_fields_sit_at_their_offsets() -> None:
    block = encode_text_block(CARDS["elderly"].holder)
    assert block[0:6].decode("utf-16-le") == "马秀兰"
    assert block[30:32].decode("utf-16-le") == "2"
    assert block[32:36].decode("utf-16-le") == "03"
    assert block[204:208].decode("utf-16-le") == "长期"
    assert block[248:250] == b" \x00"
    assert parse_text_block(block, CardRules()).nation == "回"


def test_foreign_card_is_told_by_its_marker() -> None:
    block = encode_text_block(CARDS["foreign"].holder)
    assert block[248:250].decode("utf-16-le") == "I"
    holder = parse_text_block(block, CardRules())
    assert holder.kind is CardKind.FOREIGN_PERMANENT
    assert (holder.latin_name, holder.nationality, holder.name) == ("SMITH JOHN", "USA", "史密斯")


def test_permit_is_refused_unless_the_hall_accepts_its_unconfirmed_layout() -> None:
    block = encode_text_block(CARDS["permit"].holder)
    with pytest.raises(IdCardError) as refused:
        parse_text_block(block, CardRules())
    assert refused.value.problem is Problem.UNCONFIRMED_LAYOUT
    holder = parse_text_block(block, CardRules(accept_permit=True))
    assert holder.kind is CardKind.PERMIT and holder.id_number.startswith("810000")


def test_2023_foreign_card_and_unknown_markers_are_refused_clearly() -> None:
    with pytest.raises(IdCardError) as refused:
        parse_text_block(encode_text_block(CARDS["foreign-2023"].holder), CardRules())
    assert refused.value.problem is Problem.FOREIGN_2023
    with pytest.raises(IdCardError) as unknown:
        parse_text_block(encode_text_block(CARDS["valid"].holder, marker="Q"), CardRules())
    assert unknown.value.problem is Problem.UNKNOWN_LAYOUT
    assert "Q" in unknown.value.render("en")


def test_damaged_dates_are_refused() -> None:
    block = bytearray(encode_text_block(CARDS["valid"].holder))
    block[36:52] = "19801332".encode("utf-16-le")
    with pytest.raises(IdCardError) as refused:
        parse_text_block(bytes(block), CardRules())
    assert refused.value.problem is Problem.BAD_DATA


def test_expired_card_is_refused_with_its_date() -> None:
    holder = CARDS["expired"].holder
    with pytest.raises(IdCardError) as refused:
        holder.check(TODAY)
    assert refused.value.problem is Problem.EXPIRED
    assert holder.valid_until is not None
    assert holder.valid_until.isoformat() in refused.value.render("zh")
    assert "过期" in refused.value.render("zh")


def test_validity_ends_at_the_end_of_its_last_day() -> None:
    holder = replace(CARDS["valid"].holder, valid_until=TODAY)
    holder.check(TODAY)
    with pytest.raises(IdCardError):
        holder.check(TODAY + timedelta(days=1))


def test_long_term_card_never_expires() -> None:
    CARDS["elderly"].holder.check(date(2199, 1, 1))


def test_card_not_yet_valid_is_refused() -> None:
    holder = replace(CARDS["valid"].holder, valid_from=TODAY + timedelta(days=3))
    with pytest.raises(IdCardError) as refused:
        holder.check(TODAY)
    assert refused.value.problem is Problem.NOT_YET_VALID


def test_bad_check_character_is_refused() -> None:
    with pytest.raises(IdCardError) as refused:
        CARDS["bad-checksum"].holder.check(TODAY)
    assert refused.value.problem is Problem.BAD_NUMBER


@pytest.mark.parametrize(("years", "elderly"), [(64, False), (65, True), (80, True)])
def test_elderly_from_the_configured_age(years: int, elderly: bool) -> None:
    birth = TODAY.replace(year=TODAY.year - years)  # birthday today
    holder = replace(CARDS["valid"].holder, birth=birth, id_number=idnumber.compose("652323", birth, 5))
    record = holder.to_record(KEY, 65, TODAY)
    assert (record.age, record.elderly) == (years, elderly)
    assert holder.to_record(KEY, 65, TODAY - timedelta(days=1)).age == years - 1


def test_record_holds_nothing_that_identifies_alone(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for card in CARDS.values():
        holder = card.holder
        record = holder.to_record(KEY, 65, TODAY)
        logging.getLogger("test").info("read %s -> %s", holder, record)
        text = record.model_dump_json() + repr(record) + str(holder) + repr(holder)
        assert holder.id_number not in text
        assert holder.id_number[6:14] not in text  # not even the birth date part
        assert holder.display_name not in text
        if holder.address:
            assert holder.address not in text
        assert record.id_hash == id_hash(KEY, holder.id_number)
        assert record.id_masked == holder.id_number[:6] + "*" * (len(holder.id_number) - 10) + holder.id_number[-4:]
    for card in CARDS.values():
        assert card.holder.id_number not in caplog.text
        assert card.holder.display_name not in caplog.text


def test_record_shape_is_fixed() -> None:
    record = CARDS["valid"].holder.to_record(KEY, 65, TODAY)
    assert set(record.model_dump()) == {"card", "id_masked", "name_masked", "gender", "age", "elderly", "id_hash"}
    assert record.name_masked == "王**"
    assert record.gender is Gender.MALE


def test_photo_stays_opaque() -> None:
    photo = CardPhoto(b"\x01" * 1024)
    assert repr(photo) == "<CardPhoto WLT, 1024 bytes>"
    with pytest.raises(NoPhotoDecoder):
        photo.decode(None)

    class Licensed:  # stands in for the vendor's library, which is not ours to test
        def decode(self, wlt: bytes) -> bytes:
            return b"BM" + wlt[:4]

    assert photo.decode(Licensed()) == b"BM\x01\x01\x01\x01"


def test_card_holder_is_not_a_model_that_could_be_serialised() -> None:
    assert not hasattr(CardHolder, "model_dump_json")
