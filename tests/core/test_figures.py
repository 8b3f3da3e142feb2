"""The one fold of the event log (hallkit/queue/figures.py): day split, clock steps, abandoned tickets."""

from __future__ import annotations

from datetime import timedelta

from hallkit.uplink.queue_stats import day_stats

from hallkit.queue.engine import QueueEngine
from hallkit.queue.figures import fold_day
from hallkit.queue.models import CallNext, Complete, Event, Skip, TakeTicket, Transfer
from hallkit.testing import MONDAY


def run(engine: QueueEngine, script: list[tuple[float, object]]) -> list[Event]:
    events: list[Event] = []
    for minute, command in script:
        for event in engine.decide(command, MONDAY + timedelta(minutes=minute)):  # type: ignore[arg-type]
            engine.apply(event)
            events.append(event)
    return events


def test_a_clock_stepped_back_waits_zero_and_the_day_follows_the_log(small_config):
    engine = QueueEngine(small_config)
    events = run(engine, [
        (0, TakeTicket(service_id="social")), (1, TakeTicket(service_id="social")),
        (2, TakeTicket(service_id="social")),
        (-3, CallNext(window=1)),  # the clock stepped back 3 min: A001's wait is 0, not -180 s
        (4, Complete(window=1)),
        (10, CallNext(window=1)), (11, Transfer(window=1, to_service="pension")),
        (12, CallNext(window=1)), (13, Skip(window=1)),  # the transferred A002 is called first, then put back
    ])
    # Stepped back over midnight (reset_hour 0): still Monday's queue, so still Monday's figures.
    events += run(engine, [(-30, TakeTicket(service_id="social"))])
    day = events[0].day  # type: ignore[union-attr]
    fold = fold_day(day, events)
    figures = fold.figures(MONDAY + timedelta(minutes=14))
    assert not figures.final
    assert (figures.total.taken, figures.total.served, figures.total.waiting, figures.total.abandoned) == (4, 1, 3, 0)
    assert figures.total.mean_wait_seconds == (0 + 540) / 2  # first calls only: A001 0 s, A002 9 min
    assert figures.total.p90_wait_seconds == 540.0
    by_service = {s.service_id: s for s in figures.services}
    assert (by_service["social"].taken, by_service["social"].waiting) == (4, 2)  # A003 and the 23:30 one
    assert (by_service["pension"].taken, by_service["pension"].waiting) == (0, 1)  # A002, transferred there and put back
    [window] = figures.windows
    assert (window.called, window.served, window.mean_service_seconds) == (2, 1, 420.0)
    # 最长等候 at minute 14, from each ticket's taking: in social the ticket stamped at minute -30,
    # earliest though last in line (44 min); in pension A002, taken at minute 1, not put back at 13 (13 min).
    assert (by_service["social"].longest_wait_seconds, by_service["pension"].longest_wait_seconds) == (2640.0, 780.0)
    assert figures.total.longest_wait_seconds == 2640.0
    # Read at minute 0.5 (a clock stepped back), A002, stamped at minute 1, has waited 0 s, not -30 s.
    early = {s.service_id: s.longest_wait_seconds for s in fold.figures(MONDAY + timedelta(seconds=30)).services}
    assert early == {"social": 1830.0, "pension": 0.0}

    # The next day's first command closes Monday: what was left is abandoned, and the figures are final.
    events += run(engine, [(24 * 60 + 60, TakeTicket(service_id="social"))])
    closed = fold_day(day, events).figures(events[-1].at)
    assert closed.final and (closed.total.waiting, closed.total.abandoned) == (0, 3)
    assert closed.total.longest_wait_seconds == 0.0 and all(s.longest_wait_seconds == 0.0 for s in closed.services)
    assert closed.total.taken == 4  # Tuesday's ticket is Tuesday's
    # The uplink's statistics are the same fold.
    closing = events[-2]
    sent = day_stats("test-hall", day, events[1:-2], closing.at, True, closing.abandoned, "s")  # type: ignore[union-attr]
    assert sent.total.model_dump() == closed.total.model_dump()
    assert [s.model_dump() for s in sent.services] == [s.model_dump() for s in closed.services]
    assert [w.model_dump() for w in sent.windows] == [w.model_dump(exclude={"staff"}) for w in closed.windows]
