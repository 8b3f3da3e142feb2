"""``hall county web``: the county console; ``… user …``: its logins; ``… hall set``: the hall register."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path

from hallkit.commandline import CommandFailed, add_json_flag, add_listen_flags, emit, tls_files

DEFAULT_DATA = Path(os.environ.get("HALLKIT_COUNTY_CONSOLE_DATA", "var/county-console"))


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser],
             add_db: Callable[[argparse.ArgumentParser], None]) -> None:
    web = actions.add_parser("web", help="the county console in a browser: halls, devices, 好差评, monthly report",
                             description="Serve the county console. Create a login first: "
                                         "hall county web user add NAME --role admin")
    add_db(web)
    _add_data(web)
    add_listen_flags(web, "county console", 8090, configured=False)
    web.add_argument("--county-name", default="", help="shown in the header, e.g. 呼图壁县政务服务管理局")
    web.set_defaults(handler=run_console)
    parts = web.add_subparsers(title="logins and halls", metavar="user|hall", dest="web_command")

    user = parts.add_parser("user", help="console logins")
    actions_ = user.add_subparsers(metavar="ACTION", dest="user_action", required=True)
    add = actions_.add_parser("add", help="create a login or set its password, role and scope")
    add.add_argument("name", help="login name: lowercase letters, digits, dashes")
    add.add_argument("--role", choices=("admin", "viewer", "leader"), required=True,
                     help="admin: every hall and the logins page; viewer: every hall; leader: only their halls")
    add.add_argument("--township", action="append", default=[], help="a leader's township (repeat for more)")
    add.add_argument("--hall", action="append", default=[], help="a hall a leader may see (repeat for more)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _add_data(add)
    add.set_defaults(handler=user_add)
    listing = actions_.add_parser("list", help="list logins and their scope")
    _add_data(listing)
    add_json_flag(listing)
    listing.set_defaults(handler=user_list)
    remove = actions_.add_parser("remove", help="delete a login and end its sessions")
    remove.add_argument("name")
    _add_data(remove)
    remove.set_defaults(handler=user_remove)

    hall = parts.add_parser("hall", help="the hall register: names and townships")
    hall_actions = hall.add_subparsers(metavar="ACTION", dest="hall_action", required=True)
    set_ = hall_actions.add_parser("set", help="name a hall and put it in a township")
    set_.add_argument("hall", help="hall id, as in its configuration")
    set_.add_argument("--name", required=True, help="e.g. 兴华镇便民服务中心")
    set_.add_argument("--township", required=True, help="e.g. 兴华镇")
    add_db(set_)
    set_.set_defaults(handler=hall_set)


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"folder of the console's login file (default: $HALLKIT_COUNTY_CONSOLE_DATA, else {DEFAULT_DATA})")


def run_console(args: argparse.Namespace) -> int:
    import psycopg
    from hallkit.county.cli import database_failure, redacted
    from hallkit.county.schema import SchemaTooNew
    from hallkit.county.web.server import ConsoleServer
    tls = tls_files(args)
    try:
        server = ConsoleServer(args.db, args.data, args.host, args.port, args.county_name, tls)
    except (psycopg.Error, SchemaTooNew) as exc:
        raise database_failure(args.db, exc) from None
    if not server.users.users():
        print(f"no console logins yet: hall county web user add NAME --role admin --data {args.data}",
              file=sys.stderr)
    print(f"县级政务服务监管平台 / county console: {server.url}  (db {redacted(args.db)}, data {args.data})")
    from hallkit.dashboard.web import serve_in_foreground

    return serve_in_foreground(server)


def user_add(args: argparse.Namespace) -> int:
    from hallkit.county.web.accounts import Account, Accounts, ConsoleRole, open_users
    from pydantic import ValidationError

    from hallkit.accounts import AuthError

    try:
        account = Account(name=args.name, role=ConsoleRole(args.role), townships=tuple(args.township),
                          halls=tuple(args.hall))
    except ValidationError as exc:
        raise CommandFailed(f"cannot add {args.name!r}: {exc.errors(include_url=False)[0]['msg']}", 2) from None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("密码 / password: ")
        if getpass.getpass("再输入一次 / again: ") != password:
            raise CommandFailed("两次输入的密码不一致 / the passwords differ")
    users = open_users(args.data)
    try:
        Accounts(users).add(account, password)
    except AuthError as exc:
        raise CommandFailed(f"cannot add {args.name!r}: {exc}") from None
    finally:
        users.close()
    scope = "、".join([*account.townships, *account.halls]) or "全县 / whole county"
    print(f"login {account.name} ({account.role.value}: {scope}) saved in {args.data / 'county-console.sqlite3'}")
    return 0


def user_list(args: argparse.Namespace) -> int:
    from hallkit.county.web.accounts import Accounts, open_users

    users = open_users(args.data)
    accounts = Accounts(users).all()
    users.close()
    emit(args, accounts, "\n".join(f"{a.name}\t{a.role.value}\t{'、'.join([*a.townships, *a.halls]) or '-'}"
                                   for a in accounts))
    return 0


def user_remove(args: argparse.Namespace) -> int:
    from hallkit.county.web.accounts import Accounts, open_users

    users = open_users(args.data)
    try:
        if not Accounts(users).remove(args.name):
            raise CommandFailed(f"no login {args.name!r}")
    finally:
        users.close()
    print(f"login {args.name} removed")
    return 0


def hall_set(args: argparse.Namespace) -> int:
    from hallkit.county.cli import _connect

    with _connect(args.db) as conn:
        conn.execute("""INSERT INTO hall_register (hall, name, township) VALUES (%s, %s, %s)
                        ON CONFLICT (hall) DO UPDATE SET name = excluded.name, township = excluded.township""",
                     (args.hall, args.name, args.township))
    print(f"hall {args.hall}: {args.name} ({args.township})")
    return 0
