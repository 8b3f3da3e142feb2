"""The ``hall`` command: one entry point, each part of the hall adds its own commands.

Each part has a module with ``register(commands)`` that adds its sub-commands
to the argparse sub-parser group; this module lists those modules, runs the
chosen command, and turns expected failures into one plain sentence and a
non-zero exit code instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from hallkit import __version__

PARTS = (
    "hallkit.commands",
    "broker.cli",
    "broker.appointments_cli",
    "devices.idcard.cli",
    "devices.printer.cli",
    "county.cli",
    "dashboard.cli",
    "web.cli",
    "devices.evaluator.cli",
    "hallkit.rating.cli",
    "kiosk.cli",
)
"""Modules whose ``register`` adds commands, in the order ``hall --help`` lists them."""

Handler = Callable[[argparse.Namespace], int]


class CommandFailed(Exception):
    """An expected failure: the message is shown as is, the exit code returned."""

    def __init__(self, message: str, code: int = 1) -> None:
        self.code = code
        super().__init__(message)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON, for scripts")


def emit(args: argparse.Namespace, result: BaseModel | list[BaseModel], human: str) -> None:
    """Print ``human`` for a person, or the model(s) as JSON with --json."""
    if getattr(args, "json", False):
        if isinstance(result, list):
            print(json.dumps([r.model_dump(mode="json") for r in result], ensure_ascii=False, indent=2))
        else:
            print(result.model_dump_json(indent=2))
    else:
        print(human)


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


if __name__ == "__main__":
    sys.exit(main())
