"""Property tests of the queue: any sequence of actions, valid or refused, keeps the queue whole.

A hypothesis state machine drives one engine with random actions at random times (several
days, and now and then a clock set back) and checks after every step that numbers are unique
and gapless per prefix per day, that every ticket of the day is in exactly one state, that
waiting tickets can still be called, and at the end that replaying the event log through a
fresh engine, and restarting on it (which replays only the current day), rebuild the same state.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from hallkit.config import HallConfig, parse_config
from hallkit.queue.engine import QueueEngine, Refused
from hallkit.queue.figures import fold_day
from hallkit.queue.models import (
    EVENT,
    CallNext,
    Channel,
    Command,
    Complete,
    DayOpened,
    Event,
    Pause,
    Priority,
    Recall,
    Resume,
    Skip,
    SwitchStaff,
    TakeTicket,
    TicketIssued,
    TicketState,
    Transfer,
)
from hallkit.store.durable import DurableQueue
from hallkit.store.sqlite import EventStore
from hallkit.testing import MONDAY, SMALL_HALL

CONFIG: HallConfig = parse_config(
    SMALL_HALL.replace("[queue]\n", "[queue]\nreset_hour = 4\n", 1)
    + '\n[[services]]\nid = "relief"\nname = "临时救助"\nprefix = "A"\n'
    + '\n[[windows]]\nnumber = 4\nname = "备用窗口"\nservices = ["pension", "relief"]\nopen = false\n'
)
SERVICES = [s.id for s in CONFIG.services] + ["nothing"]
# Windows 1-3 are open; 4 is closed and 9 does not exist: drawn less often so that most
# actions do something.
windows = st.sampled_from([1, 1, 2, 2, 3, 3, 4, 9])
STAFF = ["a1", "b1"]
# Transfer targets that make sense at some counter: a service, a window, or a window with a
# service it serves (the closed window 4 included: such a transfer must be refused).
TARGETS: list[tuple[str | None, int | None]] = sorted(
    {(s, None) for s in SERVICES[:-1]}
    | {(None, w.number) for w in CONFIG.windows}
    | {(s, w.number) for w in CONFIG.windows for s in CONFIG.served_by(w)},
    key=str,
)
FINISHED = (TicketState.DONE, TicketState.NO_SHOW)

minutes = st.one_of(
    st.integers(0, 15),
    st.integers(0, 15),
    st.sampled_from([90, 60 * 9, 60 * 24, 60 * 24 * 3]),  # lunch, overnight (reset), next day, weekend
    st.sampled_from([-2, -60 * 24]),  # a clock set back a little, or over the reset hour
)


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = QueueEngine(CONFIG)
        self.now: datetime = MONDAY
        self.log: list[Event] = []
        self.finished: set[str] = set()
        self.refusals = 0

    def run(self, command: Command) -> None:
        before = self.engine.snapshot()
        try:
            events = self.engine.decide(command, self.now)
        except Refused as refused:
            self.refusals += 1
            assert refused.message.key.startswith("queue.")
            assert self.engine.snapshot() == before, "a refused command changed the state"
            return
        waiting_or_called = {tid for tid, r in self.engine.state.tickets.items()
                             if r.state in (TicketState.WAITING, TicketState.CALLED)}
        for event in events:
            if isinstance(event, DayOpened):
                assert set(event.abandoned) == waiting_or_called
                self.finished.clear()
            self.engine.apply(event)
        self.log += events

    # ---- actions --------------------------------------------------------------------------

    @rule(delta=minutes)
    def time_passes(self, delta: int) -> None:
        self.now += timedelta(minutes=delta)

    @rule(service=st.sampled_from(SERVICES), priority=st.sampled_from(Priority),
          channel=st.sampled_from(Channel), count=st.integers(1, 3))
    def take(self, service: str, priority: Priority, channel: Channel, count: int) -> None:
        for _ in range(count):
            self.run(TakeTicket(service_id=service, priority=priority, channel=channel))

    @initialize(services=st.lists(st.sampled_from(SERVICES[:-1]), max_size=8))
    def morning_queue(self, services: list[str]) -> None:
        for service in services:
            self.run(TakeTicket(service_id=service))

    @rule(window=windows, count=st.integers(1, 3))
    def call(self, window: int, count: int) -> None:
        for _ in range(count):
            self.run(CallNext(window=window))

    @rule(window=st.sampled_from([1, 2, 3]),
          then=st.sampled_from(["recall", "skip", "done", "transfer", "stay"]),
          goal=st.sampled_from(TARGETS))
    def serve(self, window: int, then: str, goal: tuple[str | None, int | None]) -> None:
        """A counter at work: call, then act on the ticket it called (random actions rarely do)."""
        to_service, to_window = goal
        self.run(CallNext(window=window))
        follow_up: dict[str, Command] = {
            "recall": Recall(window=window),
            "skip": Skip(window=window),
            "done": Complete(window=window),
            "transfer": Transfer(window=window, to_service=to_service, to_window=to_window),
        }
        if then in follow_up:
            self.run(follow_up[then])

    @rule(window=windows)
    def recall(self, window: int) -> None:
        self.run(Recall(window=window))

    @rule(window=windows)
    def skip(self, window: int) -> None:
        self.run(Skip(window=window))

    @rule(window=windows)
    def complete(self, window: int) -> None:
        self.run(Complete(window=window))

    @rule(window=windows, to_service=st.none() | st.sampled_from(SERVICES),
          to_window=st.none() | windows)
    def transfer(self, window: int, to_service: str | None, to_window: int | None) -> None:
        self.run(Transfer(window=window, to_service=to_service, to_window=to_window))

    @rule(window=windows)
    def pause(self, window: int) -> None:
        self.run(Pause(window=window))

    @rule(window=windows)
    def resume(self, window: int) -> None:
        self.run(Resume(window=window))

    @rule(window=windows, staff=st.sampled_from(STAFF))
    def switch_staff(self, window: int, staff: str) -> None:
        self.run(SwitchStaff(window=window, staff_id=staff))

    # ---- invariants -----------------------------------------------------------------------

    @invariant()
    def numbers_unique_and_gapless_per_prefix_per_day(self) -> None:
        issued = [e.ticket for e in self.log if isinstance(e, TicketIssued)]
        assert len({t.id for t in issued}) == len(issued)
        seqs: dict[tuple[date, str], list[int]] = defaultdict(list)
        for ticket in issued:
            seqs[ticket.day, ticket.prefix].append(ticket.seq)
            assert ticket.number == f"{ticket.prefix}{ticket.seq:03d}"
        for numbers in seqs.values():
            assert numbers == list(range(1, len(numbers) + 1))
        days = [t.day for t in issued]
        assert days == sorted(days), "a business day came back"
        state = self.engine.state
        today = {p: len(n) for (day, p), n in seqs.items() if day == state.day}
        assert state.counters == today

    @invariant()
    def every_ticket_of_the_day_is_in_exactly_one_state(self) -> None:
        state = self.engine.state
        issued_today = [e.ticket.id for e in self.log
                        if isinstance(e, TicketIssued) and e.ticket.day == state.day]
        assert list(state.tickets) == issued_today  # none lost, none added
        waiting = {tid for tid, r in state.tickets.items() if r.state is TicketState.WAITING}
        assert set(state.waiting) == waiting
        called = {tid for tid, r in state.tickets.items() if r.state is TicketState.CALLED}
        at_windows = [w.current for w in state.windows.values() if w.current is not None]
        assert len(at_windows) == len(set(at_windows)), "one ticket at two windows"
        assert set(at_windows) == called
        for tid in called:
            assert state.windows[state.tickets[tid].window or 0].current == tid
        assert len({r.order for r in state.waiting.values()}) == len(state.waiting)
        # The lines a window calls from hold exactly the waiting tickets, each once, in its line.
        lined = [(key, tid) for key, line in state.lines.items() for _, tid in line]
        lined += [(n, tid) for n, line in state.directed.items() for _, tid in line]
        assert sorted(tid for _, tid in lined) == sorted(state.waiting)
        for key, tid in lined:
            record = state.tickets[tid]
            expected = record.directed_window if record.directed_window is not None else (
                record.service_id, 1 if record.ticket.priority is Priority.NORMAL else 0)
            assert key == expected
        # Finished tickets stay finished.
        assert all(state.tickets[tid].state in FINISHED for tid in self.finished)
        self.finished = {tid for tid, r in state.tickets.items() if r.state in FINISHED}

    @invariant()
    def waiting_tickets_can_be_called(self) -> None:
        for record in self.engine.state.waiting.values():
            if record.directed_window is not None:
                window = CONFIG.window(record.directed_window)
                assert window.open and record.service_id in CONFIG.served_by(window)
            else:
                assert any(w.open for w in CONFIG.windows_serving(record.service_id)), record

    @invariant()
    def figures_are_sane(self) -> None:
        for record in self.engine.state.waiting.values():
            view = self.engine.ticket_view(record.ticket.id)
            assert 0 <= view.ahead < len(self.engine.state.waiting)
            assert view.estimated_wait_minutes >= 0
        for window in self.engine.state.windows.values():
            assert window.service_seconds >= 0

    @invariant()
    def queue_views_match_a_scan_of_the_waiting_tickets(self) -> None:
        # The snapshot's per-service views are kept by the events; a scan is what they stand for.
        for view in self.engine.service_queues(self.now):
            waiting = [r for r in self.engine.state.waiting.values() if r.service_id == view.service_id]
            oldest = min((r.ticket.taken_at for r in waiting), default=None)
            assert view.waiting == len(waiting)
            assert view.longest_wait_seconds == (max(0.0, (self.now - oldest).total_seconds()) if oldest else 0.0)

    @invariant()
    def the_days_fold_has_the_engines_lines(self) -> None:
        # The figures the uplink sends and the board the hall sees: one definition of 最长等候,
        # clock steps back included.
        if self.engine.state.day is None:
            return
        figures = fold_day(self.engine.state.day, self.log).figures(self.now)
        folded = {s.service_id: (s.waiting, s.longest_wait_seconds) for s in figures.services}
        views = self.engine.service_queues(self.now)
        for view in views:
            assert folded.get(view.service_id, (0, 0.0)) == (view.waiting, view.longest_wait_seconds)
        assert figures.total.longest_wait_seconds == max(v.longest_wait_seconds for v in views)

    def teardown(self) -> None:
        # The log as the store keeps it (JSON), replayed through a fresh engine ...
        fresh = QueueEngine(CONFIG)
        for event in self.log:
            fresh.apply(EVENT.validate_json(event.model_dump_json()))
        assert fresh.snapshot() == self.engine.snapshot()
        # ... and as a restart replays it: the current day only, with what the days before left.
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "hall.sqlite3"
            store = EventStore(path)
            with store.transaction() as conn:
                EventStore.append(conn, [(event, event.model_dump_json()) for event in self.log])
            store.close()
            restarted = DurableQueue(CONFIG, path)
            try:
                assert restarted.engine.snapshot() == self.engine.snapshot()
            finally:
                restarted.close()


QueueMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestQueueMachine = QueueMachine.TestCase


def test_draining_calls_every_waiting_ticket() -> None:
    """After any busy morning, calling every open window until refused empties the queue."""

    @given(st.lists(st.tuples(st.sampled_from(SERVICES[:-1]), st.sampled_from(Priority),
                              st.integers(0, 5)), max_size=40),
           st.lists(st.sampled_from([1, 2, 3]), max_size=20))
    @settings(max_examples=80, deadline=None)
    def drains(takes: list[tuple[str, Priority, int]], calls: list[int]) -> None:
        engine = QueueEngine(CONFIG)
        now = MONDAY
        for service, priority, gap in takes:
            now += timedelta(minutes=gap)
            engine.execute(TakeTicket(service_id=service, priority=priority), now)
        for window in calls:
            with contextlib.suppress(Refused):
                engine.execute(CallNext(window=window), now)
        issued = len(engine.state.tickets)
        for window in (1, 2, 3):
            while True:
                try:
                    engine.execute(CallNext(window=window), now)
                except Refused:
                    break
        assert not engine.state.waiting
        assert all(w.current is None for w in engine.state.windows.values())
        done = [r for r in engine.state.tickets.values() if r.state is TicketState.DONE]
        assert len(done) == issued

    drains()
