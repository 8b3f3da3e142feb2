"""The card's 256-byte text block, the full card holder kept in memory, and the record that leaves.

The text block is UCS-2 little-endian, padded with spaces. Its layout depends
on the card type, told by the character at byte 248:

=========  ===============================================  ==========================
marker     card                                             layout
=========  ===============================================  ==========================
space      resident ID card (居民身份证, GA 490)              confirmed
``I``      foreign permanent resident card, 2017 issue      secondary sources agree
``J``      residence permit, Hong Kong/Macao/Taiwan         reported, not confirmed:
                                                            read only if
                                                            :attr:`CardRules.accept_permit`
``Y``      foreign permanent resident card, 2023 issue      unknown: refused
=========  ===============================================  ==========================

Two kinds of object come out of a read. :class:`CardHolder` is the full
record (name, number, address, photo): it stays in the kiosk process, never
pickles into JSON and masks itself in ``repr``. :class:`ResidentRecord` is what
leaves the reader module: masked number and name, age, gender, a keyed hash
of the number and the elderly flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from hallkit.devices.idcard import idnumber
from hallkit.devices.idcard.nations import nation_name
from hallkit.devices.idcard.photo import CardPhoto
from hallkit.devices.idcard.problems import IdCardError, Problem
from pydantic import BaseModel, ConfigDict, Field

from hallkit.privacy import id_hash, mask_id, mask_name

TEXT_SIZE = 256
MARKER_OFFSET = 248
LONG_TERM = "长期"
"""Written instead of an end date on cards that do not expire (holders aged 46 and over)."""


class CardKind(StrEnum):
    RESIDENT = "resident"
    FOREIGN_PERMANENT = "foreign-permanent"
    PERMIT = "hk-macao-taiwan-permit"
    FOREIGN_PERMANENT_2023 = "foreign-permanent-2023"


class Gender(StrEnum):
    """GB/T 2261.1 sex codes as written on the card."""

    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"
    UNSPECIFIED = "unspecified"


_GENDER_CODES = (("1", Gender.MALE), ("2", Gender.FEMALE), ("0", Gender.UNKNOWN), ("9", Gender.UNSPECIFIED))


def _gender(code: str) -> Gender:
    for written, gender in _GENDER_CODES:
        if code == written:
            return gender
    raise IdCardError(Problem.BAD_DATA, field="gender")


def _gender_code(gender: Gender) -> str:
    return next(written for written, each in _GENDER_CODES if each is gender)


class CardRules(BaseModel):
    """Card types whose layout is not confirmed are settings, not assumptions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accept_permit: bool = Field(
        False,
        description="read Hong Kong/Macao/Taiwan residence permits with the resident layout; their "
        "marker 'J' and layout are reported by vendors but not confirmed from the standard",
    )
    permit_marker: str = Field("J", min_length=1, max_length=1)
    foreign_2023_marker: str = Field(
        "Y", min_length=1, max_length=1, description="recognised only to refuse it by name: layout unknown"
    )


@dataclass(frozen=True, slots=True, repr=False)
class CardHolder:
    """Everything read from a card. Kept in kiosk memory only; drop it when the ticket is out.

    ``valid_until`` is None for a card marked 长期 (no end date).
    """

    kind: CardKind
    name: str
    gender: Gender
    birth: date
    id_number: str
    valid_from: date
    valid_until: date | None
    nation_code: str = ""
    address: str = ""
    issuer: str = ""
    latin_name: str = ""
    nationality: str = ""
    photo: CardPhoto | None = None
    appended_addresses: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:
        return (f"CardHolder({self.kind.value}, {mask_name(self.display_name)}, "
                f"{mask_id(self.id_number)})")

    __str__ = __repr__

    @property
    def display_name(self) -> str:
        """The Chinese name, or the Latin one on a foreign card without a Chinese name."""
        return self.name or self.latin_name

    @property
    def nation(self) -> str | None:
        return nation_name(self.nation_code)

    def age(self, today: date) -> int:
        """Whole years since birth, on ``today``."""
        had_birthday = (today.month, today.day) >= (self.birth.month, self.birth.day)
        return today.year - self.birth.year - (0 if had_birthday else 1)

    def check(self, today: date) -> None:
        """Refuse a card that is not valid on ``today`` or whose number fails its check.

        Raises:
            IdCardError: EXPIRED, NOT_YET_VALID or BAD_NUMBER.
        """
        if self.kind is not CardKind.FOREIGN_PERMANENT and not idnumber.is_valid(self.id_number):
            raise IdCardError(Problem.BAD_NUMBER)
        if self.kind is CardKind.FOREIGN_PERMANENT and not _is_foreign_2017_number(self.id_number):
            raise IdCardError(Problem.BAD_NUMBER)
        if today < self.valid_from:
            raise IdCardError(Problem.NOT_YET_VALID, date=self.valid_from.isoformat())
        if self.valid_until is not None and today > self.valid_until:
            raise IdCardError(Problem.EXPIRED, date=self.valid_until.isoformat())

    def to_record(self, hash_key: str, elderly_age: int, today: date) -> ResidentRecord:
        """The record that may leave the reader module."""
        age = self.age(today)
        return ResidentRecord(
            card=self.kind,
            id_masked=mask_id(self.id_number),
            name_masked=mask_name(self.display_name),
            gender=self.gender,
            age=age,
            elderly=age >= elderly_age,
            id_hash=id_hash(hash_key, self.id_number),
        )


def _is_foreign_2017_number(number: str) -> bool:
    # 15 characters: 3-letter nationality code, then digits; no published check character.
    return len(number) == 15 and number[:3].isalpha() and number[3:].isdigit()


class ResidentRecord(BaseModel):
    """What the hall may know of a resident who placed a card: nothing that identifies them alone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    card: CardKind
    id_masked: str = Field(description="first 6 and last 4 characters of the number")
    name_masked: str = Field(description="surname and stars")
    gender: Gender
    age: int = Field(ge=0)
    elderly: bool = Field(description="at or above the hall's elderly age: a priority ticket without asking")
    id_hash: str = Field(description="HMAC-SHA256 of the number with the hall's secret, for matching visits")


def _field(block: bytes, offset: int, size: int) -> str:
    return block[offset : offset + size].decode("utf-16-le", "replace").strip(" \x00")


def _date(text: str, name: str) -> date:
    if len(text) != 8 or not text.isdigit():
        raise IdCardError(Problem.BAD_DATA, field=name)
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise IdCardError(Problem.BAD_DATA, field=name) from None


def _end_date(text: str) -> date | None:
    return None if text == LONG_TERM else _date(text, "valid_until")


def card_kind(block: bytes, rules: CardRules) -> CardKind:
    """The card type from the marker at byte 248, refusing unknown or unconfirmed layouts.

    Raises:
        IdCardError: UNKNOWN_LAYOUT, UNCONFIRMED_LAYOUT or BAD_DATA.
    """
    if len(block) != TEXT_SIZE:
        raise IdCardError(Problem.BAD_DATA, field="text")
    marker = _field(block, MARKER_OFFSET, 2)
    if marker == "":
        return CardKind.RESIDENT
    if marker == "I":
        return CardKind.FOREIGN_PERMANENT
    if marker == rules.permit_marker:
        if not rules.accept_permit:
            raise IdCardError(Problem.UNCONFIRMED_LAYOUT)
        return CardKind.PERMIT
    if marker == rules.foreign_2023_marker:
        raise IdCardError(Problem.FOREIGN_2023)
    raise IdCardError(Problem.UNKNOWN_LAYOUT, marker=marker)


def parse_text_block(block: bytes, rules: CardRules, photo: CardPhoto | None = None) -> CardHolder:
    """The card holder written in a 256-byte text block.

    Raises:
        IdCardError: for an unknown or unconfirmed layout, or a field that cannot be read.
    """
    kind = card_kind(block, rules)
    if kind is CardKind.FOREIGN_PERMANENT:
        return CardHolder(
            kind=kind,
            latin_name=_field(block, 0, 120),
            gender=_gender(_field(block, 120, 2)),
            id_number=_field(block, 122, 30),
            nationality=_field(block, 152, 6),
            name=_field(block, 158, 30),
            valid_from=_date(_field(block, 188, 16), "valid_from"),
            valid_until=_end_date(_field(block, 204, 16)),
            birth=_date(_field(block, 220, 16), "birth"),
            issuer=_field(block, 240, 8),
            photo=photo,
        )
    # The resident layout; the permit shares it for every field the hall uses.
    return CardHolder(
        kind=kind,
        name=_field(block, 0, 30),
        gender=_gender(_field(block, 30, 2)),
        nation_code=_field(block, 32, 4),
        birth=_date(_field(block, 36, 16), "birth"),
        address=_field(block, 52, 70),
        id_number=_field(block, 122, 36),
        issuer=_field(block, 158, 30),
        valid_from=_date(_field(block, 188, 16), "valid_from"),
        valid_until=_end_date(_field(block, 204, 16)),
        photo=photo,
    )


def _put(block: bytearray, offset: int, size: int, value: str) -> None:
    raw = value.encode("utf-16-le")
    if len(raw) > size:
        raise ValueError(f"{value!r} does not fit {size} bytes")
    block[offset : offset + len(raw)] = raw


def _end_text(valid_until: date | None) -> str:
    return LONG_TERM if valid_until is None else f"{valid_until:%Y%m%d}"


DEFAULT_MARKERS = (
    (CardKind.RESIDENT, ""), (CardKind.FOREIGN_PERMANENT, "I"),
    (CardKind.PERMIT, "J"), (CardKind.FOREIGN_PERMANENT_2023, "Y"),
)


def encode_text_block(holder: CardHolder, marker: str | None = None) -> bytes:
    """The text block a card with ``holder`` carries: the reverse of :func:`parse_text_block`.

    Used by the simulator. Cards other than the 2017 foreign card are written
    with the resident layout (for the 2023 foreign card that is a guess: its
    real layout is unknown). ``marker`` overrides the type marker.
    """
    if marker is None:
        marker = next(written for kind, written in DEFAULT_MARKERS if kind is holder.kind)
    block = bytearray(" ".encode("utf-16-le") * (TEXT_SIZE // 2))
    if holder.kind is CardKind.FOREIGN_PERMANENT:
        _put(block, 0, 120, holder.latin_name)
        _put(block, 120, 2, _gender_code(holder.gender))
        _put(block, 122, 30, holder.id_number)
        _put(block, 152, 6, holder.nationality)
        _put(block, 158, 30, holder.name)
        _put(block, 188, 16, f"{holder.valid_from:%Y%m%d}")
        _put(block, 204, 16, _end_text(holder.valid_until))
        _put(block, 220, 16, f"{holder.birth:%Y%m%d}")
        _put(block, 236, 4, "01")
        _put(block, 240, 8, holder.issuer)
        _put(block, MARKER_OFFSET, 2, marker)
        return bytes(block)
    _put(block, 0, 30, holder.name)
    _put(block, 30, 2, _gender_code(holder.gender))
    _put(block, 32, 4, holder.nation_code)
    _put(block, 36, 16, f"{holder.birth:%Y%m%d}")
    _put(block, 52, 70, holder.address)
    _put(block, 122, 36, holder.id_number)
    _put(block, 158, 30, holder.issuer)
    _put(block, 188, 16, f"{holder.valid_from:%Y%m%d}")
    _put(block, 204, 16, _end_text(holder.valid_until))
    if marker:
        _put(block, MARKER_OFFSET, 2, marker)
    return bytes(block)
