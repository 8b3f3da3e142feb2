"""``hall web``: serve the phone page behind each ticket's QR code."""

from __future__ import annotations

import argparse
from pathlib import Path

from hallkit.broker.login import add_broker_options, address_from_args

from hallkit.commandline import add_listen_flags, tls_files, writable_folder


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    web = commands.add_parser(
        "web", help="the phone page behind each ticket's QR code (扫码查看排队、评价)",
        description="Serve /t/<token>: where the ticket stands, live, then the 好差评 form. A device of the hall: "
                    "[[devices]] id = \"web\", kind = \"web\" with its own broker login. Set [web] public_url to "
                    "the address phones reach it at; every ticket's QR code links there.")
    web.add_argument("--config", type=Path, required=True, help="hall configuration file")
    web.add_argument("--data", type=Path,
                     help="the hub's data folder, with hall.sqlite3 (default: ./var/<hall id>, as hall hub)")
    add_broker_options(web, login="web")
    add_listen_flags(web, "web", 8090)
    web.set_defaults(handler=run_web)


def run_web(args: argparse.Namespace) -> int:
    from hallkit.web.server import WebServer

    from hallkit.commands import load_or_fail

    config = load_or_fail(args.config)
    data = writable_folder(args.data or Path("var") / config.hall.id)
    address = address_from_args(args)
    server = WebServer(config, address, data, args.host, args.port, tls_files(args))
    print(f"扫码页 / phone page: {server.url}/t/<token>  (QR codes link to {config.web.public_url}/t/<token>; "
          f"hall {config.hall.id}, broker {address.url}, data {data})")
    from hallkit.dashboard.web import serve_in_foreground

    return serve_in_foreground(server)
