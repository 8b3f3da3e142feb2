"""The day's figures folded from queue events: waits, service times, lines through the day."""

from __future__ import annotations

from datetime import timedelta

from hallkit.dashboard.report import performance, report_csv
from hallkit.dashboard.stats import DayStats, current_day

from hallkit.queue.engine import QueueEngine
from hallkit.queue.models import CallNext, Complete, Skip, TakeTicket
from hallkit.testing import MONDAY


def test_waits_service_times_and_the_line(small_config):
    engine = QueueEngine(small_config)
    stats = DayStats(small_config, current_day(small_config, MONDAY))
    script = [(0, TakeTicket(service_id="social")), (1, TakeTicket(service_id="social")),
              (4, CallNext(window=1)), (10, Complete(window=1)),  # A001 waited 4 min, served 6
              (12, CallNext(window=1)), (13, Skip(window=1)),     # A002 waited 11 min, then requeued
              (25, CallNext(window=1)), (27, Complete(window=1))]
    for minute, command in script:
        now = MONDAY + timedelta(minutes=minute)
        for event in engine.decide(command, now):
            engine.apply(event)
            stats.apply(event)
    social = stats.by_service["social"]
    assert social.served == 2 and social.mean_wait_seconds == (4 + 11) / 2 * 60  # first call only
    assert stats.by_window[1].mean_service_seconds == (6 * 60 + 2 * 60) / 2
    assert stats.by_staff["a1"].served == 2
    assert stats.issued == {"social": 2} and stats.hourly == {10: 2}
    # Ten-minute steps of the day (from 00:00, reset_hour 0): at 10:00 two wait, then one; back in line 10:13-10:25.
    assert stats.waiting_series("social", 62)[60:] == [2, 1, 1]
    rows = performance(small_config, stats, None)
    window_1 = next(r for r in rows if r.kind == "window" and r.key == "1")
    assert (window_1.served, window_1.mean_service_minutes, window_1.mean_wait_minutes) == (2, 4.0, 7.5)
    csv = report_csv(rows, "zh")
    assert csv.startswith("\ufeff类别,编号,名称,办结数") and "窗口,1,1 综合窗口,2,4.0,7.5" in csv
