"""Shared command groups of the device parts: ``hall sim …``, ``hall devices …`` and ``hall pad …``.

Several parts add a simulator (``hall sim idcard``, ``hall sim printer``, …) or
a device command under one group. argparse refuses a second parser with the
same name, so no part creates these groups itself: each calls
:func:`sim_commands` or :func:`device_commands` and adds its sub-command to
what comes back, whichever part registers first.
"""

from __future__ import annotations

import argparse

Commands = argparse._SubParsersAction  # the type argparse gives sub-command groups

GROUP_HELP = (
    ("sim", "simulated devices (card reader, printer, ...) on a pseudo-terminal or a socket, for demos and tests"),
    ("devices", "find and check the hall's devices"),
    ("pad", "rating pads (评价器): watch one, run its bridge to the hub, or a touch tablet as one"),
)


def shared_group(commands: Commands, name: str) -> Commands:
    """The sub-command group ``hall <name>``, made on first use and found afterwards.

    Also finds a group of that name that another part made with plain
    argparse calls, as long as it has sub-commands.
    """
    existing = commands.choices.get(name)
    if existing is None:
        help_text = next((text for group, text in GROUP_HELP if group == name), None)
        parser = commands.add_parser(name, help=help_text)
        return parser.add_subparsers(metavar="DEVICE" if name == "sim" else "ACTION", required=True)
    for action in existing._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError(f"'hall {name}' exists without sub-commands; it must be made by devices.sim_cli")


def sim_commands(commands: Commands) -> Commands:
    """``hall sim``: add your simulator with ``sim_commands(commands).add_parser("printer", ...)``."""
    return shared_group(commands, "sim")


def pad_commands(commands: Commands) -> Commands:
    """``hall pad``: the hub's pad bridge and the kiosk's touch tablet each add theirs."""
    return shared_group(commands, "pad")


def device_commands(commands: Commands) -> Commands:
    """``hall devices``: add your command with ``device_commands(commands).add_parser(...)``."""
    return shared_group(commands, "devices")
