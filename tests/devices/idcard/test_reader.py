"""End to end over a real pseudo-terminal: the serial driver against the simulated reader."""

from __future__ import annotations

import logging
import queue
import time
from datetime import date

import pytest
from hallkit.devices.idcard.problems import IdCardError, Problem
from hallkit.devices.idcard.reader import CardRead, CardWatcher, ReaderSettings, SerialIdCardReader
from hallkit.devices.idcard.records import CardKind, CardRules
from hallkit.devices.idcard.simulator import Fault, IdCardSimulator

from hallkit.privacy import id_hash, mask_id, mask_name

from .conftest import ELDERLY_AGE, HASH_KEY

WAIT = 20.0  # seconds; generous because tests share two cores


@pytest.mark.parametrize("name", ["valid", "elderly", "foreign"])
def test_cards_are_read_masked_and_hashed(
    simulator: IdCardSimulator, reader: SerialIdCardReader, name: str
) -> None:
    holder = simulator.card(name).holder
    simulator.place(name)
    read = reader.read_card(WAIT)
    assert read.holder.id_number == holder.id_number
    record = read.record
    assert record.card is holder.kind
    assert record.id_masked == mask_id(holder.id_number)
    assert record.name_masked == mask_name(holder.display_name)
    assert record.id_hash == id_hash(HASH_KEY, holder.id_number)
    assert record.elderly is (holder.age(date.today()) >= ELDERLY_AGE)
    assert len(read.holder.photo or b"") == 1024


def test_elderly_card_reads_its_appended_address(simulator: IdCardSimulator, reader: SerialIdCardReader) -> None:
    simulator.place("elderly")
    read = reader.read_card(WAIT)
    assert read.record.elderly and read.holder.valid_until is None
    assert read.holder.appended_addresses == (simulator.card("elderly").appended_address,)


@pytest.mark.parametrize(("name", "problem"), [
    ("expired", Problem.EXPIRED),
    ("bad-checksum", Problem.BAD_NUMBER),
    ("permit", Problem.UNCONFIRMED_LAYOUT),
    ("foreign-2023", Problem.FOREIGN_2023),
])
def test_refused_cards_say_why(
    simulator: IdCardSimulator, reader: SerialIdCardReader, name: str, problem: Problem
) -> None:
    simulator.place(name)
    with pytest.raises(IdCardError) as refused:
        reader.read_card(WAIT)
    assert refused.value.problem is problem and refused.value.refused


def test_permit_read_when_the_hall_accepts_it(simulator: IdCardSimulator, settings: ReaderSettings) -> None:
    simulator.place("permit")
    accepting = settings.model_copy(update={"rules": CardRules(accept_permit=True)})
    with SerialIdCardReader(accepting, HASH_KEY, ELDERLY_AGE) as reader:
        assert reader.read_card(WAIT).record.card is CardKind.PERMIT


def test_no_card(simulator: IdCardSimulator, reader: SerialIdCardReader) -> None:
    with pytest.raises(IdCardError) as missing:
        reader.read_card(0.2)
    assert missing.value.problem is Problem.NO_CARD
    assert "放" in missing.value.render("zh") and "card" in missing.value.render("en")


@pytest.mark.parametrize(("fault", "problem"), [
    (Fault.TIMEOUT, Problem.TIMEOUT),
    (Fault.PARTIAL, Problem.GARBLED),
    (Fault.CORRUPT, Problem.GARBLED),
])
def test_link_faults_give_their_message_then_the_driver_recovers(
    simulator: IdCardSimulator, reader: SerialIdCardReader, fault: Fault, problem: Problem
) -> None:
    simulator.place("valid")
    simulator.inject(fault, reader.settings.retries + 1)  # one more than the driver repeats a command
    with pytest.raises(IdCardError) as failed:
        reader.card_present()
    assert failed.value.problem is problem
    assert reader.read_card(WAIT).record.card is CardKind.RESIDENT


@pytest.mark.parametrize("fault", [Fault.TIMEOUT, Fault.PARTIAL, Fault.CORRUPT, Fault.NOISE, Fault.NO_CARD])
def test_one_fault_is_ridden_out(simulator: IdCardSimulator, reader: SerialIdCardReader, fault: Fault) -> None:
    simulator.place("valid")
    simulator.inject(fault)
    assert reader.read_card(WAIT).record.card is CardKind.RESIDENT
    assert simulator.pending_faults == 0


def test_card_moved_mid_read(simulator: IdCardSimulator, reader: SerialIdCardReader) -> None:
    simulator.place("valid")
    simulator.inject(Fault.MOVED)
    assert reader.card_present()
    with pytest.raises(IdCardError) as moved:
        reader.read_present_card()
    assert moved.value.problem is Problem.CARD_MOVED
    assert "hold it still" in moved.value.render("en")
    simulator.inject(Fault.MOVED)
    assert reader.read_card(WAIT).record.card is CardKind.RESIDENT


def test_reader_fault_names_the_status(simulator: IdCardSimulator, reader: SerialIdCardReader) -> None:
    simulator.inject(Fault.SAM_FAULT)
    with pytest.raises(IdCardError) as fault:
        reader.sam_status()
    assert fault.value.problem is Problem.READER_FAULT
    assert "60" in fault.value.render("zh")
    reader.sam_status()


class Collector:
    """A kiosk stand-in: what the watcher tells it, in order."""

    def __init__(self) -> None:
        self.events: queue.Queue[CardRead | IdCardError] = queue.Queue()

    def card_read(self, read: CardRead) -> None:
        self.events.put(read)

    def card_problem(self, error: IdCardError) -> None:
        self.events.put(error)

    def next(self) -> CardRead | IdCardError:
        return self.events.get(timeout=WAIT)


def _lift(simulator: IdCardSimulator) -> None:
    """Take the card away for as long as a hand does: until the watcher has polled a few times."""
    simulator.remove()
    seen = simulator.commands
    deadline = time.monotonic() + WAIT
    while simulator.commands < seen + 4 and time.monotonic() < deadline:
        time.sleep(0.02)


def test_watcher_reads_each_card_once_per_placing(
    simulator: IdCardSimulator, reader: SerialIdCardReader
) -> None:
    kiosk = Collector()
    watcher = CardWatcher(reader, poll_interval=0.05, removal_polls=2)
    watcher.add_listener(kiosk)
    with watcher:
        simulator.place("valid")
        first = kiosk.next()
        assert isinstance(first, CardRead) and not first.record.elderly
        _lift(simulator)
        simulator.place("elderly")
        second = kiosk.next()
        assert isinstance(second, CardRead) and second.record.elderly
        _lift(simulator)
        simulator.place("expired")
        refused = kiosk.next()
        assert isinstance(refused, IdCardError) and refused.problem is Problem.EXPIRED
        simulator.inject(Fault.SAM_FAULT)
        fault = kiosk.next()
        assert isinstance(fault, IdCardError) and fault.problem is Problem.READER_FAULT
    assert kiosk.events.empty()  # the refused card was not read again while it lay there


def test_no_full_number_or_name_reaches_the_logs(
    simulator: IdCardSimulator, reader: SerialIdCardReader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    kiosk = Collector()
    watcher = CardWatcher(reader, poll_interval=0.05, removal_polls=2)
    watcher.add_listener(kiosk)
    with watcher:
        for card in simulator.cards:
            simulator.place(card.name)
            event = kiosk.next()
            if isinstance(event, CardRead):
                logging.getLogger("kiosk").info("read %s -> %s", event.holder, event.record.model_dump_json())
            _lift(simulator)
    for card in simulator.cards:
        assert card.holder.id_number not in caplog.text
        assert card.holder.display_name not in caplog.text
