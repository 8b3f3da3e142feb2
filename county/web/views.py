"""What the console's pages read from a request and write to a file: periods, months, the CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import date, timedelta

from hallkit.county.console import MonthReport, Period, month_period

from hallkit.i18n import Lang, text

MAX_RANGE_DAYS = 366


def parse_period(query: Mapping[str, str], today: date) -> tuple[Period, str]:
    """``?period=day&day=…``, ``?period=month&month=YYYY-MM`` or ``?period=range&from=…&to=…``;
    anything unreadable falls back to today. A range is capped at a year and put in order."""
    mode = query.get("period", "day")
    try:
        if mode == "month":
            return month_period(parse_month(query.get("month"), today)), mode
        if mode == "range":
            first, last = sorted((date.fromisoformat(query["from"]), date.fromisoformat(query["to"])))
            return Period(start=max(first, last - timedelta(days=MAX_RANGE_DAYS - 1)), end=last), mode
        day = date.fromisoformat(query["day"]) if "day" in query else today
        return Period(start=day, end=day), "day"
    except (KeyError, ValueError):
        return Period(start=today, end=today), "day"


def parse_month(value: str | None, today: date) -> date:
    try:
        return date.fromisoformat(f"{value}-01") if value else today.replace(day=1)
    except ValueError:
        return today.replace(day=1)


def format_month(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


SHARES = frozenset({"satisfaction", "bad_rate", "coverage"})


def _cell(column: str, value: object) -> str:
    if value is None:
        return ""
    if column in SHARES and isinstance(value, float):
        return f"{value * 100:.2f}%"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


HALL_COLUMNS = ("hall", "name", "township", "days", "taken", "served", "abandoned", "mean_wait_minutes", "ratings",
                "voided", "bad", "satisfaction", "bad_rate", "mean_score", "coverage", "cases_opened", "cases_open",
                "cases_overdue", "appeals", "appeals_upheld", "appeals_rejected")
SERVICE_COLUMNS = ("key", "name", "ratings", "bad", "satisfaction", "bad_rate", "mean_score", "rank")


def month_csv(report: MonthReport, lang: Lang, definitions: list[str]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel on a county office PC opens the Chinese right; shares
    as percentages with two decimals; the definitions below the figures."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([text("county.web.report.title", lang, month=format_month(report.month))])
    writer.writerow([text("county.web.report.by_hall", lang)])
    writer.writerow([text(f"county.web.col.{c}", lang) for c in HALL_COLUMNS])
    for row in report.halls:
        writer.writerow([_cell(c, getattr(row, c)) for c in HALL_COLUMNS])
    total = report.total.model_copy(update={"hall": text("county.web.report.total", lang)})
    writer.writerow([_cell(c, getattr(total, c)) if c != "days" else "" for c in HALL_COLUMNS])
    writer.writerow([])
    writer.writerow([text("county.web.report.by_service", lang)])
    writer.writerow([text(f"county.web.col.{c}", lang) for c in SERVICE_COLUMNS])
    for figures in report.services:
        writer.writerow([_cell(c, getattr(figures, c)) for c in SERVICE_COLUMNS])
    writer.writerow([])
    writer.writerow([text("county.web.report.definitions", lang)])
    for key in definitions:
        writer.writerow([text(key, lang)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
