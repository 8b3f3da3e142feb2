"""A hall changes its configuration (a service or a window removed): its old log still replays."""

from __future__ import annotations

from datetime import timedelta

from hallkit.config import parse_config
from hallkit.queue.engine import QueueEngine
from hallkit.queue.models import CallNext, Complete, Pause, Skip, SwitchStaff, TakeTicket
from hallkit.store.durable import DurableQueue
from hallkit.testing import MONDAY, SMALL_HALL

WITHOUT_PERMIT = (SMALL_HALL.split('[[services]]\nid = "permit"')[0]
                  + '[[windows]]\nnumber = 1\nname = "综合窗口"\nservices = ["*"]\nstaff_a = "a1"\nstaff_b = "b1"\n')


def test_a_removed_service_and_window_do_not_stop_the_restart(small_config, tmp_path):
    path = tmp_path / "hall.sqlite3"
    queue = DurableQueue(small_config, path)
    queue.execute(TakeTicket(service_id="permit"), MONDAY)
    queue.execute(CallNext(window=3), MONDAY + timedelta(minutes=1))
    queue.execute(Complete(window=3), MONDAY + timedelta(minutes=5))
    queue.execute(TakeTicket(service_id="permit"), MONDAY + timedelta(minutes=6))  # still waiting
    queue.execute(TakeTicket(service_id="social"), MONDAY + timedelta(minutes=7))
    queue.close()

    smaller = parse_config(WITHOUT_PERMIT)
    assert [s.id for s in smaller.services] == ["social", "pension"] and len(smaller.windows) == 1
    queue = DurableQueue(smaller, path)
    now = MONDAY + timedelta(minutes=8)
    views = {v.service_id: v for v in queue.engine.service_queues(now)}
    assert views["social"].waiting == 1 and "permit" not in views
    assert queue.engine.window_view(1).ticket is None
    called = queue.execute(CallNext(window=1), now)
    assert called.ticket is not None and called.ticket.number == "A001"
    assert queue.execute(TakeTicket(service_id="pension"), now).ticket.number == "B001"
    queue.close()


def test_a_window_removed_after_an_earlier_day_is_still_known_after_a_restart(small_config, tmp_path):
    # A restart replays only the current day; the windows earlier days named (window 3, since
    # removed) and their pauses and staff come from the log in a summary, as a full replay has them.
    path = tmp_path / "hall.sqlite3"
    queue = DurableQueue(small_config, path)
    queue.execute(TakeTicket(service_id="permit"), MONDAY)
    queue.execute(CallNext(window=3), MONDAY + timedelta(minutes=1))
    queue.execute(Skip(window=3), MONDAY + timedelta(minutes=2))  # back in line: counts as joining twice
    queue.execute(SwitchStaff(window=1, staff_id="b1"), MONDAY + timedelta(minutes=3))
    queue.execute(Pause(window=2), MONDAY + timedelta(minutes=4))
    queue.execute(TakeTicket(service_id="social"), MONDAY + timedelta(days=1))
    queue.close()

    smaller = parse_config(WITHOUT_PERMIT)
    restarted = DurableQueue(smaller, path)
    whole = QueueEngine(smaller)
    for _, event in restarted.store.events():
        whole.apply(event)
    assert restarted.engine.snapshot() == whole.snapshot()
    assert 3 in restarted.engine.state.windows and restarted.engine.state.windows[1].staff_id == "b1"
    restarted.close()
