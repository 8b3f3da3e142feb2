"""``hall county …``: the county's ingest of every hall's uplink, its daily report, its device fleet."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from datetime import date, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hallkit.broker.cli import add_rewrite_flags, broker_reach, check_rewrite, describe_written
from hallkit.broker.login import add_broker_options, address_from_args
from hallkit.county.quarantine import QuarantineLimits

from hallkit.commandline import CommandFailed, add_json_flag, emit, failure
from hallkit.i18n import bilingual

DEFAULT_DB = os.environ.get("HALLKIT_COUNTY_DB", "postgresql:///hallkit_county")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    county = commands.add_parser("county", help="the county side: ingest the halls' uplink, reports, device fleet")
    actions = county.add_subparsers(metavar="ACTION", required=True)

    ingest = actions.add_parser("ingest", help="store every hall's uplink in PostgreSQL (run one or more)")
    add_broker_options(ingest, login="ingest-N", env="HALLKIT_COUNTY_BROKER", logins=False, what="county broker")
    _add_db(ingest)
    ingest.add_argument("--worker", default="1",
                        help="this worker's id, one per worker; on a broker from `hall county broker-config` "
                             "its login ingest-N is its client id")
    sharing = ingest.add_mutually_exclusive_group()
    sharing.add_argument("--group", default="ingest", help="shared-subscription group of the workers")
    sharing.add_argument("--no-shared", action="store_true",
                         help="subscribe without $share, for a broker that has no shared subscriptions "
                              "(the embedded one): run exactly one worker then")
    ingest.add_argument("--ca-file", help="CA certificate of the county broker, for mqtts://")
    limits = QuarantineLimits()
    ingest.add_argument("--quarantine-per-minute", type=int, default=limits.messages_per_minute,
                        help="rejected messages kept per hall and minute; the rest are counted, not kept "
                             f"(default {limits.messages_per_minute})")
    ingest.add_argument("--quarantine-bytes-per-hour", type=int, default=limits.bytes_per_hour,
                        help=f"rejected payload bytes kept per hall and hour (default {limits.bytes_per_hour})")
    ingest.add_argument("--quarantine-payload-cap", type=int, default=limits.payload_cap,
                        help=f"bytes kept of each rejected payload (default {limits.payload_cap})")
    ingest.set_defaults(handler=run_ingest)

    report = actions.add_parser("report", help="per hall and day: tickets, waits, satisfaction, coverage, cases")
    _add_db(report)
    report.add_argument("--day", type=date.fromisoformat, help="YYYY-MM-DD (default: today)")
    report.add_argument("--silent-hours", type=float, default=24.0,
                        help="a hall is silent after this many hours without a message (default 24)")
    report.add_argument("--timezone", default="Asia/Shanghai", help="the county's time zone")
    add_json_flag(report)
    report.set_defaults(handler=show_report)

    broker = actions.add_parser("broker-config", help="write the county broker's Mosquitto configuration: one "
                                                      "login per hall, no queue caps that could drop uplink data")
    broker.add_argument("--county", required=True, help="county id (hall.county_id of its halls)")
    broker.add_argument("--hall", action="append", required=True, dest="halls", metavar="HALL_ID",
                        help="a hall id; repeat for every hall")
    broker.add_argument("--out", required=True, type=Path, help="folder to write into")
    broker.add_argument("--port", type=int, help="port to listen on (default: 8883 with --tls, else 1883)")
    broker.add_argument("--bind", default="0.0.0.0", help="address to listen on (default 0.0.0.0: the halls reach it over the network)")
    broker.add_argument("--tls", action="store_true",
                        help="listen with TLS: makes the county's CA (ca.pem, for every hall's [upstream] ca_file) "
                             "and the broker's certificate where missing")
    broker.add_argument("--tls-name", action="append", dest="tls_names", metavar="NAME",
                        help="a host name or address halls reach the broker by, for its certificate; repeat "
                             "(default: this machine's name, localhost and 127.0.0.1)")
    broker.add_argument("--workers", type=int, default=2,
                        help="ingest workers: one login each, ingest-1 … ingest-N (default 2)")
    add_rewrite_flags(broker)
    broker.set_defaults(handler=write_broker_config)

    devices = actions.add_parser("devices", help="every hall's devices: offline, paper, faults, versions")
    _add_db(devices)
    add_json_flag(devices)
    devices.set_defaults(handler=show_devices)

    from hallkit.county.web.cli import register as register_web

    register_web(actions, _add_db)


def write_broker_config(args: argparse.Namespace) -> int:
    from hallkit.broker.mosquitto import unreachable_folders, write_county_config

    check_rewrite(args)
    names = (args.tls_names or [socket.getfqdn(), "localhost", "127.0.0.1"]) if args.tls else None
    port = args.port or (8883 if args.tls else 1883)
    try:
        written = write_county_config(args.county, args.halls, args.out, port=port, bind=args.bind,
                                      workers=args.workers, tls_names=names, add=args.add)
    except ValueError as exc:  # a hall named like an ingest login, or an unreadable credentials.toml
        raise CommandFailed(str(exc)) from None
    print(describe_written(written))
    print(broker_reach(args.bind, port))
    for folder in unreachable_folders(args.out):
        print(bilingual("install.folder_closed", folder=folder), file=sys.stderr)
    print(bilingual("county.broker_next", out=args.out.resolve(), port=port,
                    scheme="mqtts" if args.tls else "mqtt"))
    return 0


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=DEFAULT_DB,
                        help=f"PostgreSQL connection, postgresql://USER@HOST/DB; its password in ~/.pgpass, not here "
                             f"(default: $HALLKIT_COUNTY_DB, else {DEFAULT_DB})")


def run_ingest(args: argparse.Namespace) -> int:
    from hallkit.broker.cli import wait_for_signal
    from hallkit.county.ingest import Ingest

    limits = QuarantineLimits(messages_per_minute=args.quarantine_per_minute,
                              bytes_per_hour=args.quarantine_bytes_per_hour, payload_cap=args.quarantine_payload_cap)
    ingest = Ingest(address_from_args(args), args.db, worker_id=args.worker,
                    group=None if args.no_shared else args.group, ca_file=args.ca_file, limits=limits)
    ingest.start()
    wait_for_signal()
    ingest.stop()
    return 0


def _connect(dsn: str):  # noqa: ANN202 - psycopg.Connection, imported lazily to keep `hall --help` fast
    import psycopg
    from hallkit.county.schema import SchemaTooNew, migrate

    try:
        conn = psycopg.connect(dsn, connect_timeout=5, autocommit=True)
        migrate(conn)
    except (psycopg.Error, SchemaTooNew) as exc:
        raise database_failure(dsn, exc) from None
    return conn


def database_failure(dsn: str, exc: Exception) -> CommandFailed:
    """PostgreSQL's refusal under one bilingual line naming the database, its password hidden."""
    detail = redacted(str(exc).strip()[:300], dsn).replace("\n", "\n  ")
    return CommandFailed(f"{bilingual('errors.database', dsn=redacted(dsn))}\n  {detail}")


def redacted(text: str, dsn: str | None = None) -> str:
    """``text`` (a DSN, or an error about one) with the DSN's password replaced by ***."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        secret = conninfo_to_dict(dsn or text).get("password")
    except Exception:  # noqa: BLE001 - not a DSN psycopg can read: hide a URL's password all the same
        secret = urlsplit(dsn or text).password
    if not secret:
        return text
    return text.replace(quote(str(secret), safe=""), "***").replace(str(secret), "***")


def zone_of(name: str, option: str = "--timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise failure("errors.unknown_zone", 2, zone=name, option=option) from None


def show_report(args: argparse.Namespace) -> int:
    from hallkit.county.report import county_report, render_report

    zone = zone_of(args.timezone)
    day = args.day or datetime.now(zone).date()
    with _connect(args.db) as conn:
        report = county_report(conn, day, zone, args.silent_hours)
    emit(args, report, render_report(report))
    return 0


def show_devices(args: argparse.Namespace) -> int:
    from hallkit.county.report import fleet, render_fleet

    with _connect(args.db) as conn:
        result = fleet(conn)
    emit(args, result, render_fleet(result))
    return 0
