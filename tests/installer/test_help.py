"""`hall --help` groups every command and names the environment variables; each option's help names its own."""

from __future__ import annotations

import contextlib

from hallkit.cli import ENVIRONMENT, GROUPS, build_parser, main


def test_every_command_is_in_exactly_one_group():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    grouped = [name for _, names in GROUPS for name in names]
    assert sorted(grouped) == sorted(commands.choices), "a command missing from GROUPS, or one listed twice"


def test_help_shows_the_groups_and_the_environment(capsys):
    parser = build_parser()
    text = parser.format_help()
    for title, _ in GROUPS:
        assert f"{title} commands:" in text
    for name, _ in ENVIRONMENT:
        assert name in text


def test_each_variable_is_named_in_the_help_of_an_option_it_sets(capsys):
    pages = {}
    for command in (["status"], ["hub"], ["dashboard"], ["web"], ["county", "ingest"], ["county", "report"],
                    ["county", "web"], ["pad", "bridge"], ["display"]):
        with contextlib.suppress(SystemExit):
            main([*command, "--help"])
        pages[" ".join(command)] = capsys.readouterr().out
    everything = "\n".join(pages.values())
    for name, _ in ENVIRONMENT:
        assert f"${name}" in everything, name
    assert "$HALLKIT_BROKER_PASSWORD_FILE" in pages["hub"] and "$HALLKIT_HALL" in pages["status"]
    assert "$HALLKIT_COUNTY_BROKER" in pages["county ingest"]
