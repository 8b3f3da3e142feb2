"""The ID card reader: one interface, the serial driver, and a watcher thread for the kiosk.

Reading a card is always find → select → read (the reader forgets a card it
has read, so all three run each time). The driver composes a transport
(:mod:`devices.transport`, usually a serial port) and the pure codec; it
blocks, so the kiosk never calls it directly: :class:`CardWatcher` polls in
its own thread and tells listeners about each card placed, and the kiosk hands
those calls to its UI loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from hallkit.devices.idcard.codec import Cmd, Command, IdCardDecoder, Reply, Status, encode
from hallkit.devices.idcard.photo import CardPhoto
from hallkit.devices.idcard.problems import IdCardError, Problem
from hallkit.devices.idcard.records import CardHolder, CardRules, ResidentRecord, parse_text_block
from hallkit.devices.transport import LinkSettings, Transport, TransportError, device_url, open_transport
from pydantic import BaseModel, ConfigDict, Field

from hallkit.config import Device, HallConfig

log = logging.getLogger(__name__)

SPEEDS = (115200, 57600, 38400, 19200, 9600)
"""Speeds the reader's UART can be set to; 115200 is the factory default."""


class ReaderSettings(BaseModel):
    """How to reach a reader and how patient to be with it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    port: str = Field(description="a device path such as /dev/ttyUSB0, or a device URL (sim://idcard, spy://, "
                                  "socket://; see devices.transport)")
    baud: int = Field(115200, description="115200 8N1 unless the reader was set otherwise")
    reply_timeout: float = Field(1.0, gt=0, description="seconds to wait for one reply")
    retries: int = Field(2, ge=0, le=10, description="repeats of a command whose reply timed out or was garbled")
    poll_interval: float = Field(0.5, gt=0, description="seconds between 'find card' polls")
    removal_polls: int = Field(2, ge=1, description="'no card' answers in a row that mean the card was taken")
    appended_address: bool = Field(True, description="also read the newest appended address (追加住址)")
    rules: CardRules = CardRules()

    @classmethod
    def from_device(cls, device: Device, **overrides: object) -> ReaderSettings:
        """Settings from a ``[[devices]]`` entry, e.g. ``serial:///dev/ttyUSB0?baudrate=115200``.

        ``serial://`` is the hall's name for a local port; any other URL is opened as it is
        (:mod:`devices.transport`), so ``spy:///dev/ttyUSB0`` logs the traffic in hex for
        field work and ``sim://idcard`` reads from a simulated reader.
        """
        parts = urlsplit(device.url)
        query = parse_qs(parts.query)
        values: dict[str, object] = {"port": parts.path if parts.scheme == "serial" else device.url}
        if "baudrate" in query:
            values["baud"] = int(query["baudrate"][0])
        values.update(overrides)
        return cls.model_validate(values)


@dataclass(frozen=True, slots=True)
class CardRead:
    """A card read and accepted: the full holder (stays in this process) and the record that may leave."""

    holder: CardHolder
    record: ResidentRecord


class IdCardReader(Protocol):
    """What the kiosk needs of a reader, whatever its connection."""

    def card_present(self) -> bool:
        """One 'find card' poll."""
        ...

    def read_present_card(self) -> CardRead:
        """Select and read the card found by the last poll, and accept or refuse it."""
        ...

    def read_card(self, timeout: float) -> CardRead:
        """Wait up to ``timeout`` seconds for a card and read it."""
        ...

    def close(self) -> None: ...


def _problem_for(status: int) -> Problem:
    """What the reader's SW3 status means for the resident."""
    if status == Status.NO_CARD:
        return Problem.NO_CARD
    if status in (Status.SELECT_FAILED, Status.READ_FAILED, Status.RANDOM_FAILED):
        return Problem.CARD_MOVED
    if status in (Status.HOST_CHECKSUM_ERROR, Status.HOST_LENGTH_ERROR):
        return Problem.GARBLED  # our command reached the reader damaged: line noise
    if status in (Status.CARD_REJECTED_READER, Status.READER_REJECTED_CARD, Status.VERIFICATION_ERROR):
        return Problem.NOT_VERIFIED
    if status == Status.WRONG_CARD_TYPE:
        return Problem.WRONG_CARD
    return Problem.READER_FAULT


def status_error(status: int) -> IdCardError:
    """The error for a reply status other than success."""
    problem = _problem_for(status)
    if problem is Problem.READER_FAULT:
        return IdCardError(problem, status=f"{status:02X}")
    return IdCardError(problem)


READ_SECONDS = 0.05
"""The longest one read waits for bytes, so a reply's deadline is kept to within this."""


def open_port(settings: ReaderSettings) -> Transport:
    """Open the reader's link, 8N1 at the settings' speed.

    Raises:
        IdCardError: PORT_UNAVAILABLE with the system's reason.
    """
    try:
        return open_transport(device_url(settings.port), LinkSettings(timeout=2.0, baudrate=settings.baud))
    except TransportError as exc:
        raise IdCardError(Problem.PORT_UNAVAILABLE, port=settings.port, reason=str(exc)) from None


class SerialIdCardReader:
    """The GA/T 467 reader on a serial port (or a USB-serial bridge)."""

    def __init__(
        self,
        settings: ReaderSettings,
        hash_key: str,
        elderly_age: int,
        today: Callable[[], date] = date.today,
    ) -> None:
        """Open the port.

        Args:
            settings: port, speed and patience.
            hash_key: the hall's secret for the keyed hash of ID numbers.
            elderly_age: age at which a resident gets a priority ticket.
            today: the hall's local date (a parameter so tests can fix it).
        """
        self.settings = settings
        self._hash_key = hash_key
        self._elderly_age = elderly_age
        self._today = today
        self._port = open_port(settings)
        self._frames = IdCardDecoder()
        self._lock = threading.Lock()

    @classmethod
    def for_hall(cls, config: HallConfig, device: Device, **overrides: object) -> SerialIdCardReader:
        """The reader of a ``[[devices]]`` entry, with the hall's hash key, elderly age and time zone."""
        zone = config.hall.zone
        return cls(
            ReaderSettings.from_device(device, **overrides),
            hash_key=config.privacy.id_hash_key,
            elderly_age=config.queue.elderly_age,
            today=lambda: datetime.now(zone).date(),
        )

    def __enter__(self) -> SerialIdCardReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._port.close()

    def transact(self, command: Command) -> Reply:
        """Send a command and wait for its reply, repeating it after a timeout or a garbled reply.

        Raises:
            IdCardError: TIMEOUT or GARBLED after the last try, PORT_UNAVAILABLE if the port went away.
        """
        with self._lock:
            for attempt in range(self.settings.retries + 1):
                try:
                    return self._exchange(command)
                except IdCardError as exc:
                    if not exc.retry or attempt == self.settings.retries:
                        raise
                    log.debug("reader: %s, repeating command %04X", exc.problem.value, command.code)
        raise AssertionError("unreachable: the loop returns or raises")

    def _exchange(self, command: Command) -> Reply:
        try:
            # Whatever is still in the line belongs to an earlier, abandoned exchange.
            self._port.discard_input()
            self._frames.reset()
            noise_before = self._frames.discarded
            self._port.write(encode(command))
            deadline = time.monotonic() + self.settings.reply_timeout
            while (left := deadline - time.monotonic()) > 0:
                for payload in self._frames.feed(self._port.read(4096, min(left, READ_SECONDS))):
                    reply = Reply.parse(payload)
                    if reply is not None:
                        return reply
        except TransportError as exc:
            raise IdCardError(Problem.PORT_UNAVAILABLE, port=self.settings.port, reason=str(exc)) from None
        self._frames.flush()  # the time is up: a frame still waiting for its rest is broken
        if self._frames.discarded > noise_before:
            raise IdCardError(Problem.GARBLED)
        raise IdCardError(Problem.TIMEOUT)

    def _expect(self, command: Cmd, *accepted: Status) -> Reply:
        reply = self.transact(Command.of(command))
        if reply.sw3 not in accepted:
            raise status_error(reply.sw3)
        return reply

    def sam_status(self) -> None:
        """Check the reader's security module (SAM); raises READER_FAULT if it is not working."""
        self._expect(Cmd.SAM_STATUS, Status.OK)

    def card_present(self) -> bool:
        """One 'find card' poll: True when a card lies on the reader."""
        reply = self.transact(Command.of(Cmd.FIND_CARD))
        if reply.sw3 == Status.NO_CARD:
            return False
        if reply.sw3 in (Status.CARD_FOUND, Status.OK):
            return True
        raise status_error(reply.sw3)

    def read_present_card(self) -> CardRead:
        """Select and read the card the last poll found, then accept or refuse it.

        Raises:
            IdCardError: the card moved, the reader failed, or the card is refused.
        """
        self._expect(Cmd.SELECT_CARD, Status.OK)
        reply = self._expect(Cmd.READ_BASE, Status.OK)
        holder = _holder_from(reply.data, self.settings.rules)
        if self.settings.appended_address:
            holder = _with_appended(holder, self._expect(Cmd.READ_APPENDED_ADDRESS, Status.OK, Status.NOT_ON_CARD))
        today = self._today()
        holder.check(today)
        return CardRead(holder, holder.to_record(self._hash_key, self._elderly_age, today))

    def read_card(self, timeout: float) -> CardRead:
        """Wait for a card and read it, trying again while the trouble is one a retry can cure.

        Raises:
            IdCardError: the last problem seen when ``timeout`` ran out, or a refusal at once.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.card_present():
                    return self.read_present_card()
                last = IdCardError(Problem.NO_CARD)
            except IdCardError as exc:
                if not exc.retry:
                    raise
                last = exc
            if time.monotonic() + self.settings.poll_interval > deadline:
                raise last
            time.sleep(self.settings.poll_interval)


def _holder_from(data: bytes, rules: CardRules) -> CardHolder:
    """Split a 'read base information' reply: text length, photo length, text, photo."""
    if len(data) < 4:
        raise IdCardError(Problem.BAD_DATA, field="length")
    text_size = int.from_bytes(data[0:2], "big")
    photo_size = int.from_bytes(data[2:4], "big")
    # Read with fingerprints (30 10) a third length would follow; this driver sends 30 01 only.
    if len(data) < 4 + text_size + photo_size:
        raise IdCardError(Problem.BAD_DATA, field="length")
    text = data[4 : 4 + text_size]
    photo = CardPhoto(data[4 + text_size : 4 + text_size + photo_size]) if photo_size else None
    return parse_text_block(text, rules, photo)


def _with_appended(holder: CardHolder, reply: Reply) -> CardHolder:
    if reply.sw3 == Status.NOT_ON_CARD:
        return holder
    address = reply.data.decode("utf-16-le", "replace").strip(" \x00")
    if not address:
        return holder
    return replace(holder, appended_addresses=(address,))


class CardListener(Protocol):
    """Told by :class:`CardWatcher` about cards, in the watcher's thread: hand over to your own loop."""

    def card_read(self, read: CardRead) -> None: ...

    def card_problem(self, error: IdCardError) -> None: ...


class CardWatcher:
    """Polls a reader in its own thread and tells listeners about each card placed.

    A card is read once per placing: after a read (or a refusal) the watcher
    waits for the card to be taken away before it reads again.
    """

    def __init__(self, reader: IdCardReader, poll_interval: float = 0.5, removal_polls: int = 2) -> None:
        self._reader = reader
        self._poll_interval = poll_interval
        self._removal_polls = removal_polls
        self._listeners: list[CardListener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_listener(self, listener: CardListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: CardListener) -> None:
        self._listeners.remove(listener)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the watcher is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="idcard-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and wait for the thread (an exchange in progress finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> CardWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        absent_polls = self._removal_polls  # start as if no card had been read
        while not self._stop.is_set():
            try:
                if not self._reader.card_present():
                    absent_polls += 1
                elif absent_polls >= self._removal_polls:
                    absent_polls = self._read_once()
            except IdCardError as exc:
                self._tell_problem(exc)
            self._stop.wait(self._poll_interval)

    def _read_once(self) -> int:
        """Read the card just found; return the new count of 'no card' polls."""
        try:
            read = self._reader.read_present_card()
        except IdCardError as exc:
            self._tell_problem(exc)
            # A refused card stays refused: wait for it to be taken away. Otherwise try again.
            return 0 if exc.refused else self._removal_polls
        for listener in list(self._listeners):
            try:
                listener.card_read(read)
            except Exception:  # a broken listener must not stop the reader for the others
                log.exception("card listener %r failed", listener)
        return 0

    def _tell_problem(self, error: IdCardError) -> None:
        log.info("card reader: %s", error.problem.value)
        for listener in list(self._listeners):
            try:
                listener.card_problem(error)
            except Exception:
                log.exception("card listener %r failed", listener)
