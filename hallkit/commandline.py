"""What every part's commands share: the expected-failure exception, ``--json`` and printing.

Kept apart from :mod:`hallkit.cli` (the ``hall`` entry point, which names every part) so the
parts' command modules import only downward.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence

from pydantic import BaseModel

Handler = Callable[[argparse.Namespace], int]


class CommandFailed(Exception):
    """An expected failure: the message is shown as is, the exit code returned."""

    def __init__(self, message: str, code: int = 1) -> None:
        self.code = code
        super().__init__(message)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON, for scripts")


def emit(args: argparse.Namespace, result: BaseModel | Sequence[BaseModel], human: str) -> None:
    """Print ``human`` for a person, or the model(s) as JSON with --json."""
    if getattr(args, "json", False):
        if isinstance(result, BaseModel):
            print(result.model_dump_json(indent=2))
        else:
            print(json.dumps([r.model_dump(mode="json") for r in result], ensure_ascii=False, indent=2))
    else:
        print(human)
