"""Commands of the hall's core: check and write configuration, import the service catalogue."""

from __future__ import annotations

import argparse
import re
import secrets
import sys
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from hallkit.catalog import CatalogError, import_catalog
from hallkit.commandline import (
    CommandFailed,
    add_force_flag,
    add_json_flag,
    emit,
    refuse_existing,
    write_atomically,
)
from hallkit.config import ConfigError, HallConfig, HallLevel, load_config, parse_config
from hallkit.filemodes import SECRET_MODE, exposed_secrets
from hallkit.i18n import bilingual


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = commands.add_parser("config", help="check a hall configuration file or print an example")
    config_cmds = config.add_subparsers(metavar="ACTION", required=True)
    check = config_cmds.add_parser("check", help="validate a hall configuration file")
    check.add_argument("file", type=Path)
    add_json_flag(check)
    check.set_defaults(handler=config_check)
    example = config_cmds.add_parser("example", help="print a commented example configuration")
    example.add_argument("--out", "--output", "-o", dest="output", metavar="FILE", type=Path, help="write to this file instead of printing (0600: it "
                                                           "holds the hall's id_hash_key)")
    add_force_flag(example)
    example.set_defaults(handler=config_example)

    catalog = commands.add_parser("catalog", help="import a county's published service catalogue")
    catalog_cmds = catalog.add_subparsers(metavar="ACTION", required=True)
    imp = catalog_cmds.add_parser(
        "import", help="turn a catalogue CSV into the [[services]] section for one hall level"
    )
    imp.add_argument("csv", type=Path, help="catalogue CSV (UTF-8 or GB18030)")
    imp.add_argument("--level", required=True, choices=[lvl.value for lvl in HallLevel])
    target = imp.add_mutually_exclusive_group()
    target.add_argument("--out", "--output", "-o", dest="output", metavar="FILE", type=Path, help="write the services TOML here (default: print it)")
    target.add_argument("--into", type=Path, metavar="HALL_TOML",
                        help="replace the [[services]] of this hall configuration, keeping everything else")
    add_force_flag(imp)
    add_json_flag(imp)
    imp.set_defaults(handler=catalog_import)


class ConfigSummary(BaseModel):
    file: str
    valid: bool
    problems: list[str] = []
    hall: str = ""
    services: int = 0
    windows: int = 0
    staff: int = 0
    devices: int = 0


def load_or_fail(path: Path) -> HallConfig:
    """Load a config for a command, turning problems into a readable failure."""
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CommandFailed(exc.report()) from None


def load_secured_or_fail(path: Path) -> HallConfig:
    """Load a config for a process that keeps the hall's data (the hub, the demo): a failure, too,
    when others may read it or the password file it names (:mod:`hallkit.filemodes`)."""
    config = load_or_fail(path)
    if exposed := exposed_secrets(path, config):
        raise CommandFailed("\n".join(found.bilingual() for found in exposed))
    return config


def config_check(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        summary = ConfigSummary(file=str(args.file), valid=False, problems=exc.problems)
        emit(args, summary, exc.report())
        return 1
    if exposed := exposed_secrets(args.file, cfg):
        # Valid as a configuration, but the hub refuses to start on it: an error here too.
        problems = [found.bilingual() for found in exposed]
        emit(args, ConfigSummary(file=str(args.file), valid=False, problems=problems),
             ConfigError(args.file, problems).report())
        return 1
    summary = ConfigSummary(file=str(args.file), valid=True, hall=f"{cfg.hall.name} ({cfg.hall.id})",
                            services=len(cfg.services), windows=len(cfg.windows), staff=len(cfg.staff),
                            devices=len(cfg.devices))
    emit(args, summary,
         f"配置有效 / configuration is valid: {summary.hall}: {summary.services} services, "
         f"{summary.windows} windows, {summary.staff} staff, {summary.devices} devices")
    return 0


def example_config() -> str:
    """The sample hall configuration with a fresh random secret."""
    text = resources.files("hallkit").joinpath("sample", "hall.toml").read_text("utf-8")
    return text.replace("@ID_HASH_KEY@", secrets.token_urlsafe(32))


def config_example(args: argparse.Namespace) -> int:
    text = example_config()
    if args.output:
        refuse_existing(args.output, args.force)
        write_atomically(args.output, text, SECRET_MODE)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def catalog_import(args: argparse.Namespace) -> int:
    try:
        result = import_catalog(args.csv, HallLevel(args.level))
    except CatalogError as exc:
        raise CommandFailed(str(exc)) from None
    if args.output:
        refuse_existing(args.output, args.force)
        write_atomically(args.output, result.services_toml())
    elif args.into:
        merge_services(args.into, result.services_toml())
    lines = [f"{len(result.services)} services kept for level {args.level}, {len(result.skipped)} rows skipped"]
    lines += [f"  skipped: {row.reason.bilingual()}" for row in result.skipped]
    lines += [f"  note: {row.reason.bilingual()}" for row in result.notes]
    if args.output or args.into:
        lines.append(f"wrote {args.output or args.into}")
    if args.json:
        emit(args, result, "")
    elif args.output or args.into:
        print("\n".join(lines))
    else:
        print(result.services_toml(), end="")
        print("\n".join(lines), file=sys.stderr)
    return 0


SERVICES_HEADER = re.compile(r"^\s*\[\[services\]\]\s*(#.*)?$")
TABLE_HEADER = re.compile(r"^\s*\[")


def without_services(text: str) -> str:
    """``text`` with its ``[[services]]`` tables (and what is nested in them) taken out."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        if SERVICES_HEADER.match(line) or (inside and line.lstrip().startswith("[services.")):
            inside = True
        elif TABLE_HEADER.match(line):
            inside = False
        if not inside:
            kept.append(line)
    return "".join(kept).rstrip("\n") + "\n"


def merge_services(path: Path, services: str) -> None:
    """Put ``services`` in place of the hall configuration's own, check the result, write it atomically."""
    try:
        current = path.read_text("utf-8")
    except OSError as exc:
        raise CommandFailed(bilingual("errors.unreadable", path=path, reason=exc.strerror or exc)) from None
    merged = without_services(current) + "\n" + services
    try:
        parse_config(merged, source=path)
    except ConfigError as exc:
        raise CommandFailed(exc.report()) from None
    mode = path.stat().st_mode & 0o777
    write_atomically(path, merged, mode & ~0o077 if "id_hash_key" in merged else mode)
