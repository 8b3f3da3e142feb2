"""A simulated ID card reader on a pseudo-terminal, speaking the same SAM protocol as the real one.

It answers commands with the codec from the reader's side, holds one of a
set of test cards, and breaks on demand: no card found, no reply, a reply
cut short, a wrong checksum, a burst of line noise, a card moved during a
read, a failed security module. The test cards' ID numbers are made at run
time with a correct (or, for one card, deliberately wrong) check character,
and their dates are counted from today so they never age out.

Control it in process (:meth:`IdCardSimulator.place`, :meth:`~IdCardSimulator.inject`)
or from ``hall sim idcard``, which reads the same orders from its terminal.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from hallkit.devices.idcard import idnumber
from hallkit.devices.idcard.codec import PREAMBLE, Cmd, Command, IdCardDecoder, Reply, Status, encode
from hallkit.devices.idcard.photo import CardPhoto
from hallkit.devices.idcard.records import CardHolder, CardKind, Gender, encode_text_block

log = logging.getLogger(__name__)

REGION = "652323"
"""Address code of 呼图壁县, where the sample hall is; the test cards are issued there."""
SAM_ID = bytes(range(0x10, 0x20))
PHOTO = bytes(range(256)) * 4
"""Stands in for the 1024-byte WLT photo; no real face, no preamble inside."""


class Fault(StrEnum):
    """Trouble the simulator makes on demand, each for the next command it applies to."""

    NO_CARD = "no-card"
    """'find card' answers no card although one lies there."""
    TIMEOUT = "timeout"
    """No reply at all."""
    PARTIAL = "partial"
    """Only the first half of the reply."""
    CORRUPT = "corrupt"
    """The reply with a wrong checksum."""
    NOISE = "noise"
    """A burst of line noise before the reply."""
    MOVED = "moved"
    """'select' or 'read' fails as when the card is lifted mid-read."""
    SAM_FAULT = "sam-fault"
    """The security module's self-test failed."""

    def applies_to(self, command: Command) -> bool:
        if self is Fault.NO_CARD:
            return command.code == Cmd.FIND_CARD
        if self is Fault.MOVED:
            return command.code in (Cmd.SELECT_CARD, Cmd.READ_BASE, Cmd.READ_BASE_AND_FINGERPRINT)
        return True


@dataclass(frozen=True, slots=True)
class SimCard:
    """A test card: what it holds, its type marker, and a newest appended address if any."""

    name: str
    holder: CardHolder
    appended_address: str = ""


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a year that has none
        return today.replace(year=today.year - years, day=28)


def sim_cards(today: date) -> tuple[SimCard, ...]:
    """The simulator's cards, valid (or expired) relative to ``today``."""
    photo = CardPhoto(PHOTO)
    adult_birth = _years_before(today, 35) - timedelta(days=40)
    elder_birth = _years_before(today, 72) - timedelta(days=100)
    expired_birth = _years_before(today, 30) - timedelta(days=10)
    permit_birth = _years_before(today, 28) - timedelta(days=3)
    expired_until = today - timedelta(days=40)
    wrong = idnumber.compose(REGION, adult_birth, 124)
    wrong = wrong[:17] + idnumber.CHECK_CHARACTERS[(idnumber.CHECK_CHARACTERS.index(wrong[17]) + 1) % 11]
    issuer = "呼图壁县公安局"
    return (
        SimCard("valid", CardHolder(
            kind=CardKind.RESIDENT, name="王小明", gender=Gender.MALE, nation_code="01", birth=adult_birth,
            address="新疆呼图壁县兴华镇幸福路12号", id_number=idnumber.compose(REGION, adult_birth, 123),
            valid_from=_years_before(today, 2), valid_until=_years_before(today, -8), issuer=issuer, photo=photo)),
        SimCard("elderly", CardHolder(
            kind=CardKind.RESIDENT, name="马秀兰", gender=Gender.FEMALE, nation_code="03", birth=elder_birth,
            address="新疆呼图壁县兴华镇团结村3组", id_number=idnumber.compose(REGION, elder_birth, 246),
            valid_from=_years_before(today, 5), valid_until=None, issuer=issuer, photo=photo),
            appended_address="新疆呼图壁县兴华镇和谐小区5栋"),
        SimCard("expired", CardHolder(
            kind=CardKind.RESIDENT, name="赵刚", gender=Gender.MALE, nation_code="17", birth=expired_birth,
            address="新疆呼图壁县兴华镇建设路8号", id_number=idnumber.compose(REGION, expired_birth, 311),
            valid_from=_years_before(expired_until, 10), valid_until=expired_until, issuer=issuer, photo=photo)),
        SimCard("foreign", CardHolder(
            kind=CardKind.FOREIGN_PERMANENT, name="史密斯", latin_name="SMITH JOHN", gender=Gender.MALE,
            nationality="USA", birth=adult_birth, id_number=f"USA{adult_birth:%y%m%d}650023",
            valid_from=_years_before(today, 1), valid_until=_years_before(today, -9),
            issuer="1500", photo=photo)),
        SimCard("bad-checksum", CardHolder(
            kind=CardKind.RESIDENT, name="陈静", gender=Gender.FEMALE, nation_code="01", birth=adult_birth,
            address="新疆呼图壁县兴华镇幸福路14号", id_number=wrong,
            valid_from=_years_before(today, 2), valid_until=_years_before(today, -8), issuer=issuer, photo=photo)),
        SimCard("permit", CardHolder(
            kind=CardKind.PERMIT, name="黄港生", gender=Gender.MALE, birth=permit_birth,
            address="香港特别行政区", id_number=idnumber.compose("810000", permit_birth, 17),
            valid_from=_years_before(today, 1), valid_until=_years_before(today, -4),
            issuer="呼图壁县公安局", photo=photo)),
        SimCard("foreign-2023", CardHolder(
            kind=CardKind.FOREIGN_PERMANENT_2023, name="安娜", gender=Gender.FEMALE, birth=adult_birth,
            id_number=idnumber.compose("933156", adult_birth, 42),
            valid_from=_years_before(today, 1), valid_until=_years_before(today, -9), photo=photo)),
    )


def _base_data(card: SimCard, fingerprint: bool) -> bytes:
    """The data of a 'read base information' reply: text length, photo length, text, photo.

    With ``fingerprint`` (command 30 10) a third length follows: zero, as the test cards hold none.
    """
    text = encode_text_block(card.holder)
    lengths = len(text).to_bytes(2, "big") + len(PHOTO).to_bytes(2, "big")
    return lengths + (bytes(2) if fingerprint else b"") + text + PHOTO


class IdCardSimulator:
    """A reader on a pseudo-terminal: open :attr:`port` with pyserial as if it were /dev/ttyUSB0."""

    def __init__(self, today: Callable[[], date] = date.today) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: bytes pass as they are
        flags = fcntl.fcntl(self._master, fcntl.F_GETFL)
        fcntl.fcntl(self._master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self.port = os.ttyname(self._slave)
        self.cards = sim_cards(today())
        self._card: SimCard | None = None
        self._found = False
        self._selected = False
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._frames = IdCardDecoder()
        self._wake_read, self._wake_write = os.pipe()
        self._thread: threading.Thread | None = None
        self.placed_at: float | None = None
        """``time.monotonic()`` when the current card was placed (for the bench)."""
        self.commands = 0
        """Commands answered or ignored so far."""

    def card(self, name: str) -> SimCard:
        for card in self.cards:
            if card.name == name:
                return card
        raise KeyError(name)

    @property
    def url(self) -> str:
        """The port as a device URL (:mod:`devices.transport`)."""
        return f"serial://{self.port}"

    @property
    def card_names(self) -> tuple[str, ...]:
        return tuple(card.name for card in self.cards)

    def place(self, name: str) -> None:
        """Lay a test card on the reader (replacing any other)."""
        card = self.card(name)
        with self._lock:
            self._card, self._found, self._selected = card, False, False
            self.placed_at = time.monotonic()

    def remove(self) -> None:
        """Take the card away."""
        with self._lock:
            self._card, self._found, self._selected = None, False, False
            self.placed_at = None

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Make ``fault`` happen on the next ``times`` commands it applies to."""
        with self._lock:
            self._faults.extend([fault] * times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="idcard-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and close the pseudo-terminal."""
        if self._thread is not None:
            os.write(self._wake_write, b"x")
            self._thread.join(10)
            self._thread = None
        for fd in (self._master, self._slave, self._wake_read, self._wake_write):
            os.close(fd)

    def __enter__(self) -> IdCardSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while True:
            ready, _, _ = select.select([self._master, self._wake_read], [], [], 1.0)
            if self._wake_read in ready:
                return
            if self._master not in ready:
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EIO):  # EIO: no one has the port open
                    time.sleep(0.01)
                    continue
                raise
            for payload in self._frames.feed(chunk):
                command = Command.parse(payload)
                if command is not None:
                    self._send(self._wire_reply(command))

    def _take_fault(self, command: Command) -> Fault | None:
        with self._lock:
            self.commands += 1
            for index, fault in enumerate(self._faults):
                if fault.applies_to(command):
                    return self._faults.pop(index)
        return None

    def _wire_reply(self, command: Command) -> bytes:
        fault = self._take_fault(command)
        if fault is Fault.TIMEOUT:
            return b""
        if fault is Fault.SAM_FAULT:
            return encode(Reply.of(Status.SELF_TEST_FAILED))
        if fault is Fault.NO_CARD:
            return encode(Reply.of(Status.NO_CARD))
        if fault is Fault.MOVED:
            failed = Status.SELECT_FAILED if command.code == Cmd.SELECT_CARD else Status.READ_FAILED
            return encode(Reply.of(failed))
        wire = encode(self._answer(command))
        if fault is Fault.PARTIAL:
            return wire[: len(wire) // 2]
        if fault is Fault.CORRUPT:
            return wire[:-1] + bytes((wire[-1] ^ 0x5A,))
        if fault is Fault.NOISE:
            return os.urandom(64).replace(PREAMBLE, b"") + wire
        return wire

    def _answer(self, command: Command) -> Reply:
        """What a healthy reader answers, given the card lying on it."""
        with self._lock:
            card = self._card
            code = command.code
            if code in (Cmd.SAM_STATUS, Cmd.RESET_SAM) or command.cmd == 0x60:
                return Reply.of(Status.OK)
            if code == Cmd.READ_SAM_ID:
                return Reply.of(Status.OK, SAM_ID)
            if code == Cmd.FIND_CARD:
                self._found, self._selected = card is not None, False
                return Reply.of(Status.CARD_FOUND, bytes(4)) if card else Reply.of(Status.NO_CARD)
            if code == Cmd.SELECT_CARD:
                self._selected = self._found
                return Reply.of(Status.OK, bytes(8)) if self._selected else Reply.of(Status.SELECT_FAILED)
            if code in (Cmd.READ_BASE, Cmd.READ_BASE_AND_FINGERPRINT):
                if card is None or not self._selected:
                    return Reply.of(Status.READ_FAILED)
                return Reply.of(Status.OK, _base_data(card, code == Cmd.READ_BASE_AND_FINGERPRINT))
            if code == Cmd.READ_APPENDED_ADDRESS:
                if card is None or not self._selected:
                    return Reply.of(Status.READ_FAILED)
                if not card.appended_address:
                    return Reply.of(Status.NOT_ON_CARD)
                return Reply.of(Status.OK, card.appended_address.ljust(35).encode("utf-16-le"))
            return Reply.of(Status.BAD_COMMAND)

    def _send(self, wire: bytes) -> None:
        deadline = time.monotonic() + 2.0
        while wire and time.monotonic() < deadline:
            try:
                wire = wire[os.write(self._master, wire):]
            except BlockingIOError:
                # Nobody is reading the port and its buffer is full; a real line would drop it too.
                select.select([], [self._master], [], 0.05)
