"""Rating commands: ``hall cases`` (list, record a step), ``hall ratings report`` and ``hall figures``.

Lists and reports read the hub's SQLite file directly (read-only; they work while the hub runs
and when it does not). Recording a case step goes to the hub over MQTT, because the hub stores
it and hands it to the county uplink in one transaction.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hallkit.broker.login import add_broker_options, add_hall_option
from pydantic import BaseModel

from hallkit.commandline import CommandFailed, add_json_flag, emit
from hallkit.i18n import bilingual, text
from hallkit.rating.cases import Case
from hallkit.rating.report import RatingReport, ReportRow

if TYPE_CHECKING:
    from hallkit.queue.figures import DailyFigures

STEP_COMMANDS = {
    "verify": ("verified", "核实: the complaint was checked with the staff member and the record"),
    "rectify": ("rectified", "整改: what was wrong has been put right"),
    "explain": ("explained", "解释: nothing to put right; the rule was explained (needs --note)"),
    "callback": ("called_back", "回访: the resident was told the outcome"),
    "close": ("closed", "close the case after the call back"),
    "appeal": ("appealed", "申诉复核: ask to void a mistaken or malicious rating (needs --note)"),
    "uphold": ("appeal_upheld", "the appeal is upheld: the rating is voided (needs --note)"),
    "reject": ("appeal_rejected", "the appeal is rejected: handling goes on (needs --note)"),
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cases = commands.add_parser(
        "cases", help="bad-rating cases (差评整改): open and overdue ones; record a step",
        description="Without an action: list open and overdue cases, read from the hub's SQLite file "
                    "(--config, --data). With an action: record that step; it goes to the hub over MQTT "
                    "(--broker), which stores it and sends it to the county.")
    _add_data(cases)
    cases.add_argument("--all", action="store_true", help="also closed and voided cases")
    add_json_flag(cases)
    cases.set_defaults(handler=list_cases)
    steps = cases.add_subparsers(metavar="ACTION", required=False)
    for name, (step, help_text) in STEP_COMMANDS.items():
        cmd = steps.add_parser(name, help=help_text)
        cmd.add_argument("case", help="case id (the first characters `hall cases` shows are enough)")
        cmd.add_argument("--by", required=True, help="id of the staff member or manager taking the step")
        cmd.add_argument("--note", default="", help="what was found, done or decided")
        add_broker_options(cmd)
        add_hall_option(cmd)
        cmd.add_argument("--device", help="this terminal's device id, a counter (default: the login's name)")
        cmd.add_argument("--timeout", type=float, default=5.0)
        add_json_flag(cmd)
        cmd.set_defaults(handler=record_step, step=step)

    ratings = commands.add_parser("ratings", help="rating figures (好差评): coverage, satisfaction, bad ratings")
    actions = ratings.add_subparsers(metavar="ACTION", required=True)
    report = actions.add_parser(
        "report", help="per window, staff and service for a period, read from the hub's SQLite file",
        description="Figures of the services completed between --from and --to (local dates, inclusive), "
                    "read from the hub's SQLite file. Definitions: docs/ratings.md.")
    report.add_argument("--from", dest="start", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    report.add_argument("--to", dest="end", type=date.fromisoformat, required=True, help="YYYY-MM-DD (inclusive)")
    _add_data(report)
    add_json_flag(report)
    report.set_defaults(handler=show_report)

    figures = commands.add_parser(
        "figures", help="every figure of one business day: tickets, waits, 满意率, 差评率, cases, appeals",
        description="The day's queue, rating, case and appeal figures, read from the hub's SQLite file, as the "
                    "dashboard and the county compute them. Definitions: docs/queue.md (Daily figures).")
    figures.add_argument("--day", type=date.fromisoformat, help="YYYY-MM-DD (default: the business day now)")
    _add_data(figures)
    add_json_flag(figures)
    figures.set_defaults(handler=show_figures)


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="hall configuration file (required to read the hub's data)")
    parser.add_argument("--data", type=Path, help="the hub's data folder (default: ./var/<hall id>, as hall hub)")


def _open(args: argparse.Namespace):  # noqa: ANN202 - (HallConfig, sqlite3.Connection)
    from hallkit.commands import load_or_fail
    from hallkit.rating.store import open_read_only

    if args.config is None:
        raise CommandFailed("--config FILE is needed to find and read the hub's data")
    config = load_or_fail(args.config)
    path = (args.data or Path("var") / config.hall.id) / "hall.sqlite3"
    try:
        return config, open_read_only(path)
    except FileNotFoundError:
        raise CommandFailed(bilingual("rating.cli.no_data", path=path)) from None


# ---- cases --------------------------------------------------------------------------------------------


class CaseList(BaseModel):
    """What ``hall cases --json`` prints."""

    as_of: date
    open: int
    overdue: int
    cases: list[Case]
    overdue_ids: list[str]


def list_cases(args: argparse.Namespace) -> int:
    from hallkit.rating import store

    config, conn = _open(args)
    cases = sorted(store.cases(conn), key=lambda c: (c.deadline, c.opened_at))
    conn.close()
    today = datetime.now(config.hall.zone).date()
    shown = [c for c in cases if args.all or not c.state.finished]
    open_cases = [c for c in cases if not c.state.finished]
    overdue = [c for c in open_cases if c.overdue(today)]
    lines = [bilingual("case.list.title", open=len(open_cases), overdue=len(overdue))]
    for case in shown:
        lines.append(text("case.list.line", case=case.case_id[:8], ticket=case.ticket_number, window=case.window,
                          level=text(case.level.label_key), state=text(f"case.state.{case.state.value}"),
                          deadline=case.deadline.isoformat(),
                          overdue=text("case.list.overdue") if case.overdue(today) else ""))
    if not shown:
        lines.append(bilingual("case.list.none"))
    if args.json:
        print(CaseList(as_of=today, open=len(open_cases), overdue=len(overdue), cases=shown,
                       overdue_ids=[c.case_id for c in overdue]).model_dump_json(indent=2))
    else:
        print("\n".join(lines))
    return 0


def record_step(args: argparse.Namespace) -> int:
    from hallkit.broker.cli import ask_hub

    from hallkit.rating.models import CaseStep, CaseStepCommand

    try:
        command = CaseStepCommand(case_id=args.case, step=CaseStep(args.step), by=args.by, note=args.note)
    except ValueError as exc:
        raise CommandFailed(str(exc)) from None
    reply = ask_hub(args, lambda requester: requester.record_step(command, timeout=args.timeout))
    if not reply.ok or reply.update is None:
        refusal = reply.refusal
        emit(args, reply, bilingual("counter.refused", reason=f"{refusal.zh} / {refusal.en}" if refusal else "?"))
        return 1
    update = reply.update
    emit(args, reply, bilingual("case.list.step_done", case=update.case_id[:8], step=update.step.value, by=update.by,
                                at=update.at.astimezone().strftime("%Y-%m-%d %H:%M"),
                                deadline=update.deadline.isoformat()))
    return 0


# ---- report -------------------------------------------------------------------------------------------


def show_report(args: argparse.Namespace) -> int:
    from hallkit.rating import store
    from hallkit.rating.report import Period, build_report

    try:
        period = Period(start=args.start, end=args.end)
    except ValueError as exc:
        raise CommandFailed(str(exc)) from None
    config, conn = _open(args)
    report = build_report(config.hall.id, period, datetime.now(config.hall.zone).date(), list(store.events(conn)),
                          list(store.ratings(conn)), store.every_step(conn))
    conn.close()
    emit(args, report, render_report(report, config.hall.name))
    return 0


def show_figures(args: argparse.Namespace) -> int:
    from hallkit.queue.figures import daily_figures, fold_day
    from hallkit.queue.numbering import business_day
    from hallkit.rating import store
    from hallkit.rating.report import Period, build_report
    from hallkit.store.sqlite import day_events

    config, conn = _open(args)
    now = datetime.now(config.hall.zone)
    day = args.day or business_day(now, config.hall.zone, config.queue.reset_hour)
    queue = fold_day(day, day_events(conn, day)).figures(now)
    ratings = build_report(config.hall.id, Period(start=day, end=day), now.date(), store.events_of_day(conn, day),
                           store.ratings_of_day(conn, day), store.every_step(conn))
    conn.close()
    figures = daily_figures(config.hall.id, queue, ratings)
    emit(args, figures, render_figures(figures, config.hall.name))
    return 0


def render_figures(figures: DailyFigures, hall_name: str) -> str:
    total, rated = figures.queue.total, figures.ratings
    return "\n".join([
        bilingual("figures.title_final" if figures.queue.final else "figures.title_running", hall=hall_name,
                  day=figures.day.isoformat()),
        text("figures.queue", taken=total.taken, served=total.served, waiting=total.waiting,
             longest=_minutes(total.longest_wait_seconds), abandoned=total.abandoned,
             mean=_minutes(total.mean_wait_seconds), p90=_minutes(total.p90_wait_seconds)),
        text("figures.ratings", counted=rated.counted, voided=rated.voided, coverage=_percent(rated.coverage),
             satisfaction=_percent(rated.satisfaction_rate), bad_rate=_percent(rated.bad_rate), bad=rated.bad),
        text("figures.cases", open=rated.open_cases, overdue=rated.overdue_cases, appeals=rated.appeals,
             upheld=rated.appeals_upheld, rejected=rated.appeals_rejected),
    ])


def _minutes(seconds: float | None) -> str:
    return text("rating.report.none") if seconds is None else f"{seconds / 60:.1f}"


def render_report(report: RatingReport, hall_name: str) -> str:
    lines = [bilingual("rating.report.title", hall=hall_name, start=report.period.start, end=report.period.end,
                       as_of=report.as_of)]
    lines.append(_figures_line(report.total))
    for dimension in ("window", "staff", "service"):
        rows = [r for r in report.rows if r.dimension == dimension]
        if rows:
            lines.append(bilingual(f"rating.report.section_{dimension}"))
            lines += ["  " + _figures_line(row) for row in rows]
    return "\n".join(lines)


def _figures_line(row: ReportRow) -> str:
    f = row.figures
    return text("rating.report.header", name=row.name, served=f.served, rated=f.rated, coverage=_percent(row.coverage),
                defaulted=f.defaulted, satisfaction=_percent(row.satisfaction_rate), bad=f.bad, open=f.open_cases,
                overdue=f.overdue_cases)


def _percent(value: float | None) -> str:
    return text("rating.report.none") if value is None else f"{value:.1%}"
