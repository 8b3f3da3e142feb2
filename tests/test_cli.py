"""The command line imports only the part that adds the command asked for."""

from __future__ import annotations

import argparse
import importlib

import pytest

from hallkit.cli import PARTS, build_parser, parts_for


@pytest.mark.parametrize("name", list(PARTS))
def test_each_part_adds_the_commands_listed_for_it(name: str) -> None:
    commands = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(name).register(commands)
    assert sorted(commands.choices) == sorted(PARTS[name])


def test_a_command_imports_only_its_parts() -> None:
    assert parts_for(["hub", "--config", "hall.toml"]) == ["hallkit.broker.cli"]
    assert parts_for(["-v", "sim", "idcard"]) == ["hallkit.devices.idcard.cli", "hallkit.devices.printer.cli",
                                                 "hallkit.broker.pad_cli"]


def test_help_and_unknown_commands_see_every_part() -> None:
    assert parts_for([]) == list(PARTS)
    assert parts_for(["--help"]) == list(PARTS)
    assert parts_for(["no-such-command"]) == list(PARTS)


def _subcommands(parser: argparse.ArgumentParser, command: str) -> set[str]:
    group = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    inner = group.choices[command]
    found = [a for a in inner._actions if isinstance(a, argparse._SubParsersAction)]
    return set(found[0].choices) if found else set()


@pytest.mark.parametrize("command", sorted({c for commands in PARTS.values() for c in commands}))
def test_a_command_parsed_alone_has_what_it_has_among_all(command: str) -> None:
    assert _subcommands(build_parser(parts_for([command])), command) == _subcommands(build_parser(), command)
