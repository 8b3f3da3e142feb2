"""The daily performance report (绩效考核) and the charts' data, from the event log and the ratings.

Per window and per staff member: services completed, mean service time (call to completion),
mean wait (ticket taken to first call, counted where the ticket was first called), ratings
received, satisfaction rate and bad ratings (voided appeals excluded), and open cases.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from hallkit.dashboard.ratings import RatingBook, slices
from hallkit.dashboard.stats import DayStats, EventLog, load_day
from hallkit.dashboard.views import ChartSeries, ChartsView, ReportRow

from hallkit.config import HallConfig
from hallkit.i18n import Lang, text
from hallkit.queue.figures import DailyFigures, DeskFigures, daily_figures
from hallkit.rating.report import RatingReport
from hallkit.rating.report import ReportRow as RatingRow


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def day_stats(config: HallConfig, event_log: EventLog, today: DayStats | None, day: date) -> DayStats:
    """Today's live fold when asked for today, else the day folded from the log."""
    if today is not None and today.day == day:
        return today
    return load_day(config, event_log, day)


def performance(config: HallConfig, stats: DayStats, ratings: RatingReport | None) -> list[ReportRow]:
    rows: list[ReportRow] = []
    figures = {(r.dimension, r.key): r for r in ratings.rows} if ratings else {}
    for window in config.windows:
        tally = stats.by_window.get(window.number)
        rated = figures.get(("window", f"{window.number:03d}"))
        rows.append(_row("window", str(window.number), f"{window.number} {window.name}", tally, rated))
    staff_ids = [s.id for s in config.staff] + sorted(stats.by_staff.keys() - {s.id for s in config.staff})
    for staff_id in staff_ids:
        member = config.staff_member(staff_id)
        rows.append(_row("staff", staff_id, member.name if member else staff_id, stats.by_staff.get(staff_id),
                         figures.get(("staff", staff_id))))
    return rows


def _row(kind: str, key: str, name: str, tally: DeskFigures | None, rated: RatingRow | None) -> ReportRow:
    return ReportRow(
        kind=kind, key=key, name=name, served=tally.served if tally else 0,
        mean_service_minutes=_minutes(tally.mean_service_seconds) if tally else None,
        mean_wait_minutes=_minutes(tally.mean_wait_seconds) if tally else None,
        rated=rated.figures.rated if rated else 0,
        satisfaction=None if rated is None or rated.satisfaction_rate is None else round(rated.satisfaction_rate, 3),
        bad=rated.figures.bad if rated else 0, open_cases=rated.figures.open_cases if rated else 0)


def figures(config: HallConfig, stats: DayStats, book: RatingBook, today: date, as_of: datetime) -> DailyFigures:
    """Every figure of the day, as ``hall figures`` and the county compute them (hallkit.queue.figures);
    the longest wait at ``as_of``."""
    return daily_figures(config.hall.id, stats.figures(as_of), book.report(stats, today))


CSV_COLUMNS = ("kind", "key", "name", "served", "mean_service_minutes", "mean_wait_minutes", "rated",
               "satisfaction", "bad", "open_cases")


def report_csv(rows: list[ReportRow], lang: Lang) -> str:
    """CSV with a byte-order mark so Excel on a Chinese Windows opens it as UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([text(f"dashboard.report.col.{c}", lang) for c in CSV_COLUMNS])
    for row in rows:
        writer.writerow([text(f"dashboard.report.kind.{row.kind}", lang) if c == "kind" else
                         "" if getattr(row, c) is None else getattr(row, c) for c in CSV_COLUMNS])
    return out.getvalue()


def charts(config: HallConfig, stats: DayStats, book: RatingBook, today: date, now: datetime) -> ChartsView:
    last = int((min(now, stats.end) - stats.start).total_seconds() // 600) if now >= stats.start else 0
    names = {s.id: s.name for s in config.services}
    active = sorted(stats.issued, key=lambda sid: -stats.issued[sid])
    first = next((i for i in range(last + 1)
                  if any(i in stats.buckets.get(sid, {}) for sid in active)), last)
    span = range(first, last + 1)
    queue = [ChartSeries(name=names.get(sid, sid), values=[float(v) for v in stats.waiting_series(sid, last)[first:]])
             for sid in active]
    wait = []
    for sid in active:
        buckets = stats.buckets.get(sid, {})
        wait.append(ChartSeries(name=names.get(sid, sid), values=[
            round(sum(b.waits) / len(b.waits) / 60, 1) if (b := buckets.get(i)) and b.waits else None for i in span]))
    hours = sorted(stats.hourly)
    ratings = book.report(stats, today) if book.available else None
    day_ratings = book.ratings_of(stats) if ratings else []
    staff_names = {s.id: s.name for s in config.staff}
    window_names = {f"{w.number:03d}": f"{w.number} {w.name}" for w in config.windows}
    return ChartsView(
        day=stats.day, times=[f"{stats.bucket_time(i):%H:%M}" for i in span], queue=queue, wait=wait,
        hours=[f"{h:02d}:00" for h in range(hours[0], hours[-1] + 1)] if hours else [],
        tickets_per_hour=[stats.hourly.get(h, 0) for h in range(hours[0], hours[-1] + 1)] if hours else [],
        by_window=slices(ratings, "window", day_ratings, window_names) if ratings else [],
        by_staff=slices(ratings, "staff", day_ratings, staff_names) if ratings else [],
        coverage=ratings.total.coverage if ratings else None,
        served=ratings.total.figures.served if ratings else sum(t.served for t in stats.by_window.values()),
        rated=ratings.total.figures.rated if ratings else 0, ratings_available=ratings is not None)
