"""``hall dashboard``: run the manager's dashboard; ``hall dashboard user …``: its accounts."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from hallkit.broker.login import add_broker_options, address_from_args

from hallkit.commandline import (
    CommandFailed,
    add_json_flag,
    add_listen_flags,
    emit,
    tls_files,
    writable_folder,
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dash = commands.add_parser(
        "dashboard", help="the hall manager's dashboard in a browser (大厅管理看板)",
        description="Serve the dashboard: live board, charts, ratings and cases, devices, alerts, daily report. "
                    "Create an account first: hall dashboard user add NAME --role manager --config FILE")
    _add_place(dash)
    add_broker_options(dash, login="dashboard")
    add_listen_flags(dash, "dashboard", 8080)
    dash.add_argument("--device", default="dashboard",
                      help="the dashboard's device id (a counter in the config; default: dashboard)")
    dash.set_defaults(handler=run_dashboard)
    users = dash.add_subparsers(title="accounts", metavar="user", dest="dashboard_command")
    user = users.add_parser("user", help="dashboard accounts")
    actions = user.add_subparsers(metavar="ACTION", dest="user_action", required=True)
    add = actions.add_parser("add", help="create an account or set its password and role")
    add.add_argument("name", help="login name: lowercase letters, digits, dashes")
    add.add_argument("--role", choices=("manager", "viewer"), required=True,
                     help="manager: may work cases; viewer: reads only (值班领导)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _add_place(add)
    add.set_defaults(handler=user_add)
    listing = actions.add_parser("list", help="list accounts")
    _add_place(listing)
    add_json_flag(listing)
    listing.set_defaults(handler=user_list)
    remove = actions.add_parser("remove", help="delete an account and end its sessions")
    remove.add_argument("name")
    _add_place(remove)
    remove.set_defaults(handler=user_remove)


def _add_place(parser: argparse.ArgumentParser) -> None:
    # Not required by argparse: on `hall dashboard` it would then be demanded before `user add` too.
    parser.add_argument("--config", type=Path, help="hall configuration file (required)")
    parser.add_argument("--data", type=Path,
                        help="the hub's data folder, with hall.sqlite3 (default: ./var/<hall id>, as hall hub)")


def _place(args: argparse.Namespace):  # noqa: ANN202 - (HallConfig, Path); imports kept lazy for `hall --help`
    from hallkit.commands import load_or_fail

    if args.config is None:
        raise CommandFailed("give the hall configuration: --config FILE", 2)
    config = load_or_fail(args.config)
    return config, writable_folder(args.data or Path("var") / config.hall.id)


def run_dashboard(args: argparse.Namespace) -> int:
    from hallkit.dashboard.server import DashboardServer

    config, data = _place(args)
    address = address_from_args(args)
    server = DashboardServer(config, address, data, args.host, args.port, args.device, tls_files(args))
    if not server.users.users():
        print(f"no dashboard accounts yet: hall dashboard user add NAME --role manager --config {args.config}",
              file=sys.stderr)
    print(f"大厅管理看板 / dashboard: {server.url}  (hall {config.hall.id}, broker {address.url}, data {data})")
    from hallkit.dashboard.web import serve_in_foreground

    return serve_in_foreground(server)


def user_add(args: argparse.Namespace) -> int:
    from hallkit.dashboard.server import users_at
    from pydantic import ValidationError

    from hallkit.accounts import AuthError, Role

    config, data = _place(args)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("密码 / password: ")
        if getpass.getpass("再输入一次 / again: ") != password:
            raise CommandFailed("两次输入的密码不一致 / the passwords differ")
    store = users_at(config, data)
    try:
        user = store.add_user(args.name, Role(args.role), password)
    except (AuthError, ValidationError) as exc:
        raise CommandFailed(f"cannot add {args.name!r}: {exc}") from None
    finally:
        store.close()
    print(f"account {user.name} ({user.role.value}) saved in {data / 'dashboard.sqlite3'}")
    return 0


def user_list(args: argparse.Namespace) -> int:
    from hallkit.dashboard.server import users_at

    config, data = _place(args)
    store = users_at(config, data)
    users = store.users()
    store.close()
    emit(args, users, "\n".join(f"{user.name}\t{user.role.value}" for user in users))
    return 0


def user_remove(args: argparse.Namespace) -> int:
    from hallkit.dashboard.server import users_at

    config, data = _place(args)
    store = users_at(config, data)
    try:
        if not store.remove_user(args.name):
            raise CommandFailed(f"no account {args.name!r}")
    finally:
        store.close()
    print(f"account {args.name} removed")
    return 0
