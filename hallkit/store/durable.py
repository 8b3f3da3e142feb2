"""The queue made durable: engine decisions persisted before anyone is answered.

Each command runs under one lock: look up the request id (a repeat gets the
stored reply), decide, apply, write the events and the reply in one SQLite
transaction, and only then answer. A process killed at any point restarts by
replaying the log, so everything that was answered is there exactly once.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from hallkit.config import HallConfig
from hallkit.encoding import dump_spliced
from hallkit.queue.engine import QueueEngine, Refused
from hallkit.queue.models import Command, Event, Outcome
from hallkit.store.sqlite import EventStore, Synchronous

log = logging.getLogger(__name__)

Projector = Callable[[sqlite3.Connection, list[Event]], None]
"""Writes derived rows (ratings, outbox) inside the transaction that stores the events."""

Listener = Callable[[list[Event]], None]
"""Told about events after they are committed (publishing, dashboards)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Answer(NamedTuple):
    """A command carried out: its outcome, and that outcome as JSON (stored for repeats, sent as
    the reply's ``outcome`` by whoever may see all of it), encoded once."""

    outcome: Outcome
    json: str


class DurableQueue:
    def __init__(
        self,
        config: HallConfig,
        path: Path | str,
        synchronous: Synchronous = "full",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = EventStore(path, synchronous)
        self.engine = QueueEngine(config)
        self.projectors: list[Projector] = []
        self.listeners: list[Listener] = []
        self.lock = threading.RLock()
        self._replay()

    def _replay(self) -> None:
        self.engine.reset()
        # The log rebuilds tens of thousands of objects that all stay (the day's tickets): the
        # cyclic garbage collector would scan them again and again as they pile up, a third of
        # the replay's time, and find nothing to free. Paused for the replay only.
        collecting = gc.isenabled()
        gc.disable()
        try:
            # Only the current business day is replayed: a day_opened clears the tickets, and
            # what earlier days leave it (pauses, staff, counters) comes from a few queries. A
            # restart then costs the day, not the whole log.
            start = self.store.current_day_seq()
            if start:
                self.engine.resume(self.store.past_days(start))
            for _, event in self.store.events(after_seq=start - 1 if start else 0):
                self.engine.apply(event)
        finally:
            if collecting:
                gc.enable()
        log.info("queue restored from %s: %d events", self.store.path, self.engine.state.events_applied)

    def execute(self, command: Command, now: datetime | None = None) -> Outcome:
        """Run ``command``; raises :class:`Refused` when it is not valid now."""
        result = self.execute_batch([command], now)[0]
        if isinstance(result, Refused):
            raise result
        return result

    def execute_batch(
        self, commands: Sequence[Command], now: datetime | Sequence[datetime] | None = None
    ) -> list[Outcome | Refused]:
        """:meth:`answer_batch`, each outcome without its JSON."""
        return [r if isinstance(r, Refused) else r.outcome for r in self.answer_batch(commands, now)]

    def answer_batch(
        self, commands: Sequence[Command], now: datetime | Sequence[datetime] | None = None
    ) -> list[Answer | Refused]:
        """Run ``commands`` in order and persist them in one transaction (group commit).

        ``now`` is the time of all of them, or one time per command (a replay), or the clock.

        Each command is decided against the state its predecessors left, exactly as if run one
        by one; only the commit is shared, so a burst costs one fsync instead of one per
        command. Nothing is answered before that commit. If the commit fails, none of the
        batch happened: the engine is rebuilt from the log and the error raised.
        """
        results: list[Answer | Refused] = []
        committed: list[Event] = []
        new_events: list[tuple[Event, str]] = []
        new_replies: list[tuple[str, str, str]] = []
        answered: dict[str, tuple[str, Answer]] = {}
        with self.lock:
            try:
                stored = self.store.replies_for([c.request_id for c in commands])
                times = now if isinstance(now, Sequence) else [now] * len(commands)
                for command, given in zip(commands, times, strict=True):
                    at = given or self.clock()
                    if new_replies and self.engine.opens_day(at):
                        # Projectors read the engine's state of the day they project: one
                        # transaction never holds the end of one business day and the next.
                        self._commit(new_events, new_replies)
                        committed += [event for event, _ in new_events]
                        new_events, new_replies = [], []
                    results.append(self._run(command, at, stored, answered, new_events, new_replies))
                if new_replies:
                    self._commit(new_events, new_replies)
                    committed += [event for event, _ in new_events]
            except BaseException:
                # The engine may hold events that did not reach the disk: rebuild it from the log.
                self._replay()
                raise
        if committed:
            for listener in self.listeners:
                try:
                    listener(committed)
                except Exception:
                    log.exception("event listener failed")
        return results

    def _commit(self, events: list[tuple[Event, str]], replies: list[tuple[str, str, str]]) -> None:
        with self.store.transaction() as conn:
            EventStore.append(conn, events)
            EventStore.remember(conn, replies)
            for project in self.projectors:
                project(conn, [event for event, _ in events])

    def _run(
        self,
        command: Command,
        now: datetime | None,
        stored: dict[str, tuple[str, str]],
        answered: dict[str, tuple[str, Answer]],
        new_events: list[tuple[Event, str]],
        new_replies: list[tuple[str, str, str]],
    ) -> Answer | Refused:
        known = answered.get(command.request_id)
        if known is None and (before := stored.get(command.request_id)) is not None:
            known = (before[0], Answer(Outcome.model_validate_json(before[1]), before[1]))
        if known is not None:
            action, answer = known
            if action != command.action:
                return Refused("queue.request_id_reused", request=command.request_id)
            return answer
        try:
            events = self.engine.decide(command, now or self.clock())
        except Refused as refused:
            return refused
        for event in events:
            self.engine.apply(event)
        outcome = self.engine.outcome(command, events)
        # Each event encoded once: the log's row, and spliced into the stored and sent outcome.
        bodies = [event.model_dump_json() for event in events]
        answer = Answer(outcome, dump_spliced(outcome.model_copy(update={"events": []}),
                                              {"events": f"[{','.join(bodies)}]"}))
        answered[command.request_id] = (command.action, answer)
        new_events.extend(zip(events, bodies, strict=True))
        new_replies.append((command.request_id, command.action, answer.json))
        return answer

    def close(self) -> None:
        self.store.close()
