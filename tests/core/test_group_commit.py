"""Group commit: a burst is decided one by one and persisted together, but never across a day's reset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hallkit.queue.engine import Refused
from hallkit.queue.models import CallNext, Complete, TakeTicket, TicketCompleted
from hallkit.store.durable import DurableQueue
from hallkit.testing import MONDAY

BEFORE_MIDNIGHT = datetime(2026, 11, 23, 15, 59, 58, tzinfo=UTC)


def test_a_burst_is_one_transaction_with_the_same_answers(small_config, tmp_path):
    queue = DurableQueue(small_config, tmp_path / "hall.sqlite3")
    takes = [TakeTicket(service_id="social") for _ in range(5)]
    results = queue.execute_batch([*takes, takes[0], CallNext(window=2)], MONDAY)
    numbers = [r.ticket.number for r in results[:6]]
    assert numbers == ["A001", "A002", "A003", "A004", "A005", "A001"]  # a repeat inside the burst too
    assert isinstance(results[6], Refused)  # nothing waiting for window 2: refused, not persisted
    assert queue.store.count() == 6  # day opened + five tickets
    queue.close()


def test_a_burst_across_the_reset_hour_is_split(small_config, tmp_path):
    queue = DurableQueue(small_config, tmp_path / "hall.sqlite3")
    queue.execute(TakeTicket(service_id="permit"), BEFORE_MIDNIGHT - timedelta(minutes=5))
    queue.execute(CallNext(window=3), BEFORE_MIDNIGHT - timedelta(minutes=4))
    seen: list[str] = []

    def projector(conn, events) -> None:
        # Like the rating part: a completed service is looked up in the engine's state of its day.
        for event in events:
            if isinstance(event, TicketCompleted):
                seen.append(queue.engine.state.tickets[event.ticket_id].ticket.number)

    queue.projectors.append(projector)
    done, taken = queue.execute_batch([Complete(window=3), TakeTicket(service_id="permit")],
                                      [BEFORE_MIDNIGHT, BEFORE_MIDNIGHT + timedelta(seconds=4)])
    assert seen == ["C001"]
    assert done.events[-1].type == "ticket_completed"
    assert taken.ticket.number == "C001" and taken.events[0].type == "day_opened"
    queue.close()
