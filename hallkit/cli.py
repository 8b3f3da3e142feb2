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

PARTS = (
    "hallkit.commands",
    "hallkit.broker.cli",
    "hallkit.broker.appointments_cli",
    "hallkit.devices.idcard.cli",
    "hallkit.devices.printer.cli",
    "hallkit.county.cli",
    "hallkit.dashboard.cli",
    "hallkit.web.cli",
    "hallkit.broker.pad_cli",
    "hallkit.broker.rating_cli",
    "hallkit.kiosk.cli",
    "hallkit.demo.cli",
)
"""Modules whose ``register`` adds commands, in the order ``hall --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hall",
        description="hallkit: queue kiosk, counters, rating pads and hub of a government-service hall "
        "(便民服务中心). Every command has its own --help.",
    )
    parser.add_argument("--version", action="version", version=f"hallkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name in PARTS:
        importlib.import_module(name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
