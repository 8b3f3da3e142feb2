"""``hall doctor`` and ``hall install systemd``: an installer's tools."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from hallkit.broker.login import add_broker_options, address_from_args

from hallkit.commandline import CommandFailed, add_json_flag, emit
from hallkit.i18n import bilingual


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = commands.add_parser(
        "doctor", help="check a hall end to end and say what to fix",
        description="Broker and logins, the hub, every configured device (state, paper), clock and time zone, "
                    "the uplink's backlog and receipts. Logs in as --broker's login (console by default), never "
                    "as another process's login, which would knock that process off.")
    doctor.add_argument("--config", required=True, type=Path, help="hall configuration file")
    add_broker_options(doctor, login="console")
    doctor.add_argument("--broker-folder", type=Path, metavar="DIR",
                        help="the folder `hall broker config --out` wrote: checks each login's secrets/ file "
                             "against the broker's password file")
    doctor.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the broker")
    add_json_flag(doctor)
    doctor.set_defaults(handler=run_doctor)

    install = commands.add_parser("install", help="write service files for this machine")
    kinds = install.add_subparsers(metavar="KIND", required=True)
    systemd = kinds.add_parser(
        "systemd", help="systemd units: broker, hub, dashboard, phone page, kiosk and display autostart; "
                        "with --county the county broker and ingest workers",
        description="Writes the units into --out (system units) and --out/user (the kiosk's and display's "
                    "desktop-session units, for /etc/systemd/user), and hallkit.conf for systemd-sysusers.")
    systemd.add_argument("--out", required=True, type=Path, help="folder to write into (e.g. /etc/systemd/system)")
    systemd.add_argument("--broker-folder", required=True, type=Path, metavar="DIR",
                         help="the folder `hall broker config` or `hall county broker-config` wrote")
    systemd.add_argument("--config", type=Path, help="hall configuration file (for a hall)")
    systemd.add_argument("--hub-host", default="hall-pc", help="the hall PC's name, as the kiosk and display reach it")
    systemd.add_argument("--county", action="store_true", help="the county's units instead of a hall's")
    systemd.add_argument("--county-broker", default="mqtts://localhost:8883",
                         help="with --county: the broker URL the workers use, without a login")
    systemd.add_argument("--db", default="postgresql:///hallkit_county", help="with --county: the PostgreSQL DSN")
    systemd.add_argument("--workers", type=int, default=2, help="with --county: ingest workers")
    systemd.set_defaults(handler=install_systemd)


def run_doctor(args: argparse.Namespace) -> int:
    from hallkit.broker.doctor import Verdict, diagnose, observe, render

    from hallkit.commands import load_or_fail

    config = load_or_fail(args.config)
    address = address_from_args(args)
    if args.broker_folder is not None and not (args.broker_folder / "passwords").is_file():
        raise CommandFailed(bilingual("doctor.no_broker_folder", folder=args.broker_folder), 2)
    try:
        seen = observe(config, args.config, address, args.broker_folder, args.timeout)
    except OSError as exc:  # the broker folder's files unreadable (not root)
        raise CommandFailed(bilingual("doctor.unreadable", detail=str(exc)), 2) from None
    findings = diagnose(config, seen)
    failed = sum(f.verdict is Verdict.FAIL for f in findings)
    warned = sum(f.verdict is Verdict.WARN for f in findings)
    summary = bilingual("doctor.summary", failed=failed, warned=warned, checks=len(findings))
    emit(args, findings, f"{render(findings)}\n{summary}")
    return 1 if failed else 0


def install_systemd(args: argparse.Namespace) -> int:
    from hallkit.broker.systemd import CountyPlan, HallPlan, county_units, hall_units, instances, sysusers

    from hallkit.commands import load_or_fail
    from hallkit.config import DeviceKind

    hall_bin = Path(shutil.which("hall") or Path(sys.executable).with_name("hall")).absolute()
    folder = args.broker_folder.absolute()
    if args.county:
        ca = folder / "ca.pem"
        plan = CountyPlan(hall_bin=hall_bin, broker_folder=folder, broker_url=args.county_broker,
                          ca_file=ca if ca.exists() else None, db=args.db, workers=args.workers)
        units = county_units(plan)
        start = ["hallkit-county-broker.service", *instances(plan)]
    else:
        if args.config is None:
            raise CommandFailed(bilingual("install.no_config"), 2)
        config = load_or_fail(args.config)
        first = {kind: next((d.id for d in config.devices if d.kind is kind), None)
                 for kind in (DeviceKind.KIOSK, DeviceKind.DISPLAY, DeviceKind.WEB)}
        port = int(_listener_port(folder / "mosquitto.conf"))
        units = hall_units(HallPlan(hall_bin=hall_bin, config=args.config.absolute(), hall_id=config.hall.id,
                                    broker_folder=folder, broker_port=port, web=first[DeviceKind.WEB] is not None,
                                    hub_host=args.hub_host, kiosk=first[DeviceKind.KIOSK],
                                    display=first[DeviceKind.DISPLAY]))
        start = [u.name for u in units if not u.user_unit]
    args.out.mkdir(parents=True, exist_ok=True)
    for unit in units:
        target = args.out / "user" / unit.name if unit.user_unit else args.out / unit.name
        target.parent.mkdir(exist_ok=True)
        target.write_text(unit.text, "utf-8")
        print(f"wrote {target}")
    users = args.out / "hallkit.conf"
    users.write_text(sysusers(), "utf-8")
    print(f"wrote {users}")
    print(bilingual("install.systemd_next", out=args.out, units=" ".join(start)))
    return 0


def _listener_port(conf: Path) -> str:
    try:
        lines = conf.read_text("utf-8").splitlines()
    except OSError as exc:
        raise CommandFailed(bilingual("install.no_broker", file=conf, detail=exc.strerror or str(exc)), 2) from None
    ports = [line.split()[1] for line in lines if line.startswith("listener ")]
    if not ports:
        raise CommandFailed(bilingual("install.no_listener", file=conf), 2)
    return ports[0]
