"""The ``hall`` command: one entry point, each part of the hall adds its own commands.

Each part has a module with ``register(commands)`` that adds its sub-commands
to the argparse sub-parser group; this module lists those modules, runs the
chosen command, and turns expected failures into one plain sentence and a
non-zero exit code instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from hallkit import __version__
from hallkit.commandline import CommandFailed, Handler

PARTS: dict[str, tuple[str, ...]] = {
    "hallkit.commands": ("catalog", "config"),
    "hallkit.broker.cli": ("broker", "call", "done", "hub", "pause", "recall", "resume", "schema", "skip",
                           "staff", "status", "take", "transfer"),
    "hallkit.broker.appointments_cli": ("appointments",),
    "hallkit.devices.idcard.cli": ("devices", "idcard", "sim"),
    "hallkit.devices.printer.cli": ("printer", "sim"),
    "hallkit.county.cli": ("county",),
    "hallkit.dashboard.cli": ("dashboard",),
    "hallkit.web.cli": ("web",),
    "hallkit.broker.pad_cli": ("pad", "sim"),
    "hallkit.broker.rating_cli": ("cases", "figures", "ratings"),
    "hallkit.kiosk.cli": ("display", "kiosk", "pad"),
    "hallkit.demo.cli": ("demo",),
    "hallkit.broker.installer_cli": ("doctor", "install"),
}
"""Modules whose ``register`` adds commands, in the order ``hall --help`` lists them, with the
commands each adds (a group such as ``sim`` may have several; tests/test_cli.py checks the list)."""

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hall", ("config", "catalog", "hub", "status", "take", "call", "recall", "skip", "done", "pause", "resume",
              "transfer", "staff", "appointments", "dashboard", "web", "kiosk", "display", "broker")),
    ("devices", ("devices", "printer", "idcard", "pad", "sim")),
    ("ratings", ("ratings", "cases", "figures")),
    ("county", ("county",)),
    ("tools", ("doctor", "install", "schema", "demo")),
)
"""How ``hall --help`` groups the commands (tests/installer/test_help.py checks each is in one group)."""

ENVIRONMENT = (
    ("HALLKIT_BROKER", "the hall broker's URL, mqtt://LOGIN@HOST:PORT, for every command with --broker"),
    ("HALLKIT_BROKER_PASSWORD_FILE", "file holding the password of that login (--password-file)"),
    ("HALLKIT_BROKER_PASSWORD", "that password itself, when no password file is given"),
    ("HALLKIT_HALL", "the hall id (--hall) of the commands that ask a running hall"),
    ("HALLKIT_COUNTY_BROKER", "the county broker's URL (hall county ingest --broker)"),
    ("HALLKIT_COUNTY_DB", "the county's PostgreSQL (hall county … --db)"),
    ("HALLKIT_COUNTY_CONSOLE_DATA", "the county console's login folder (hall county web --data)"),
)


def parts_for(argv: Sequence[str]) -> list[str]:
    """The modules to import for ``argv``: only those adding its command, else all (help, typos).

    Importing every part costs a fifth of a second warm and more from a cold disk (the card
    reader's codec, reports, amqtt): a hub restarting after a power cut is online that much sooner.
    """
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    owners = [name for name, commands in PARTS.items() if command in commands]
    return owners or list(PARTS)


def build_parser(parts: Sequence[str] = tuple(PARTS)) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hall",
        description="hallkit: queue kiosk, counters, rating pads and hub of a government-service hall "
        "(便民服务中心). Every command has its own --help.",
        formatter_class=argparse.RawDescriptionHelpFormatter, usage="hall [-h] [--version] [-v] COMMAND ...",
    )
    parser.add_argument("--version", action="version", version=f"hallkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    commands = parser.add_subparsers(metavar="COMMAND", dest="command", help=argparse.SUPPRESS)
    for name in parts:
        importlib.import_module(name).register(commands)
    parser.epilog = grouped_help(commands)
    return parser


def grouped_help(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> str:
    """The commands under their group's heading, then the environment variables."""
    helps = {action.dest: action.help or "" for action in commands._get_subactions()}
    width = max(map(len, helps)) + 2
    lines: list[str] = []
    for title, names in GROUPS:
        lines += [f"{title} commands:", *(f"  {name:<{width}}{helps[name]}" for name in names if name in helps), ""]
    width = max(len(name) for name, _ in ENVIRONMENT) + 2
    lines += ["environment (each named in the --help of the options it sets):",
              *(f"  {name:<{width}}{what}" for name, what in ENVIRONMENT)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(parts_for(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except CommandFailed as exc:
        print(str(exc), file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `hall county devices --json | head`: the reader has what it wanted; say nothing more,
        # and keep Python from complaining about stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
