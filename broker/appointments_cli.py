"""``hall appointments``: load a booking system's appointments into the hall, and list them."""

from __future__ import annotations

import argparse
import sqlite3
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from hallkit.commandline import CommandFailed, add_json_flag, emit


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    appointments = commands.add_parser("appointments", help="booked visits (预约) residents check in for at the kiosk")
    actions = appointments.add_subparsers(metavar="ACTION", required=True)
    load = actions.add_parser(
        "import", help="load a CSV (id_number, service_id, starts, ends) keeping only the keyed hash of each ID number",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A booking system's export, UTF-8, with a header row naming these columns (any order):\n"
                    "  id_number   the resident's 18-character ID number (kept only as its keyed hash)\n"
                    "  service_id  a service id of the hall configuration ([[services]] id)\n"
                    "  starts      start of the booked slot, ISO 8601 (2026-12-01T09:00, hall time if no offset)\n"
                    "  ends        end of the booked slot, ISO 8601\n"
                    "Rows that do not fit are reported by line and skipped.")
    load.add_argument("csv", type=Path, help="the CSV file")
    _add_place(load)
    add_json_flag(load)
    load.set_defaults(handler=import_command)
    listing = actions.add_parser("list", help="appointments of a day (by hash prefix, never the number)")
    listing.add_argument("--day", help="YYYY-MM-DD (default: today)")
    _add_place(listing)
    add_json_flag(listing)
    listing.set_defaults(handler=list_command)


def _add_place(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="hall configuration file")
    parser.add_argument("--data", type=Path, help="the hub's data folder (default: ./var/<hall id>, as hall hub)")


def _open(args: argparse.Namespace):  # noqa: ANN202 - (HallConfig, sqlite3.Connection)
    from hallkit.broker.appointments import create_table

    from hallkit.commands import load_or_fail

    config = load_or_fail(args.config)
    folder = args.data or Path("var") / config.hall.id
    folder.mkdir(parents=True, exist_ok=True)
    # The hub may be running: WAL lets this second writer in between its transactions.
    conn = sqlite3.connect(folder / "hall.sqlite3", isolation_level=None, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    create_table(conn)
    return config, conn


class ImportReport(BaseModel):
    kept: int
    problems: list[str]


def import_command(args: argparse.Namespace) -> int:
    from hallkit.broker.appointments import import_appointments

    config, conn = _open(args)
    try:
        conn.execute("BEGIN IMMEDIATE")
        rows = import_appointments(conn, config, args.csv)
        conn.execute("COMMIT")
    except OSError as exc:
        raise CommandFailed(f"cannot read {args.csv}: {exc.strerror or exc}") from None
    finally:
        conn.close()
    report = ImportReport(kept=sum(r.appointment_id is not None for r in rows),
                          problems=[f"row {r.row}: {r.problem}" for r in rows if r.problem])
    emit(args, report, "\n".join([f"预约已导入 / appointments kept: {report.kept} (only the keyed hash of each ID "
                                  "number is stored; keep or delete the CSV as your rules say)",
                                  *(f"  skipped {p}" for p in report.problems)]))
    return 0 if not report.problems else 1


class AppointmentLine(BaseModel):
    appointment_id: str
    resident: str
    service: str
    starts: datetime
    ends: datetime
    checked_in: bool


def list_command(args: argparse.Namespace) -> int:
    from hallkit.broker.appointments import check_in_request_id

    config, conn = _open(args)
    day = args.day or datetime.now(config.hall.zone).date().isoformat()
    names = {s.id: s.name for s in config.services}
    has_requests = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'requests'").fetchone() is not None
    lines = []
    for appointment_id, hashed, service_id, starts, ends in conn.execute(
            "SELECT appointment_id, id_hash, service_id, starts, ends FROM appointments ORDER BY starts"):
        start = datetime.fromisoformat(starts)
        if start.astimezone(config.hall.zone).date().isoformat() != day:
            continue
        checked = has_requests and conn.execute("SELECT 1 FROM requests WHERE request_id = ?",
                                                (check_in_request_id(appointment_id),)).fetchone() is not None
        lines.append(AppointmentLine(appointment_id=appointment_id, resident=hashed[:8],
                                     service=names.get(service_id, service_id), starts=start,
                                     ends=datetime.fromisoformat(ends), checked_in=checked))
    conn.close()
    emit(args, lines, "\n".join(
        f"{a.starts.astimezone(config.hall.zone):%H:%M}-{a.ends.astimezone(config.hall.zone):%H:%M}  {a.service}  "
        f"#{a.resident}  {'已签到 / checked in' if a.checked_in else '未签到 / not yet'}" for a in lines)
        or f"{day}: 没有预约 / no appointments")
    return 0
