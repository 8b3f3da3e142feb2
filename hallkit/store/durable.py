"""The queue made durable: engine decisions persisted before anyone is answered.

Each command runs under one lock: look up the request id (a repeat gets the
stored reply), decide, apply, write the events and the reply in one SQLite
transaction, and only then answer. A process killed at any point restarts by
replaying the log, so everything that was answered is there exactly once.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from hallkit.config import HallConfig
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
        for _, event in self.store.events():
            self.engine.apply(event)
        log.info("queue restored from %s: %d events", self.store.path, self.engine.state.events_applied)

    def execute(self, command: Command, now: datetime | None = None) -> Outcome:
        """Run ``command``; raises :class:`Refused` when it is not valid now."""
        with self.lock:
            known = self.store.reply_for(command.request_id)
            if known is not None:
                action, reply = known
                if action != command.action:
                    raise Refused("queue.request_id_reused", request=command.request_id)
                return Outcome.model_validate_json(reply)
            events = self.engine.decide(command, now or self.clock())
            try:
                for event in events:
                    self.engine.apply(event)
                outcome = self.engine.outcome(command, events)
                with self.store.transaction() as conn:
                    EventStore.append(conn, events)
                    EventStore.remember(conn, command.request_id, command.action, outcome.model_dump_json())
                    for project in self.projectors:
                        project(conn, events)
            except BaseException:
                # The engine may hold events that did not reach the disk: rebuild it from the log.
                self._replay()
                raise
        for listener in self.listeners:
            try:
                listener(events)
            except Exception:
                log.exception("event listener failed")
        return outcome

    def close(self) -> None:
        self.store.close()
