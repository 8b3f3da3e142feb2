"""Commands of the hall's core: check and write configuration, import the service catalogue."""

from __future__ import annotations

import argparse
import secrets
import sys
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from hallkit.catalog import CatalogError, import_catalog
from hallkit.commandline import CommandFailed, add_json_flag, emit
from hallkit.config import ConfigError, HallConfig, HallLevel, load_config


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = commands.add_parser("config", help="check a hall configuration file or print an example")
    config_cmds = config.add_subparsers(metavar="ACTION", required=True)
    check = config_cmds.add_parser("check", help="validate a hall configuration file")
    check.add_argument("file", type=Path)
    add_json_flag(check)
    check.set_defaults(handler=config_check)
    example = config_cmds.add_parser("example", help="print a commented example configuration")
    example.add_argument("--output", "-o", type=Path, help="write to this file instead of printing")
    example.set_defaults(handler=config_example)

    catalog = commands.add_parser("catalog", help="import a county's published service catalogue")
    catalog_cmds = catalog.add_subparsers(metavar="ACTION", required=True)
    imp = catalog_cmds.add_parser(
        "import", help="turn a catalogue CSV into the [[services]] section for one hall level"
    )
    imp.add_argument("csv", type=Path, help="catalogue CSV (UTF-8 or GB18030)")
    imp.add_argument("--level", required=True, choices=[lvl.value for lvl in HallLevel])
    imp.add_argument("--output", "-o", type=Path, help="write the services TOML here (default: print it)")
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


def config_check(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        summary = ConfigSummary(file=str(args.file), valid=False, problems=exc.problems)
        emit(args, summary, exc.report())
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
        args.output.write_text(text, "utf-8")
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
        args.output.write_text(result.services_toml(), "utf-8")
    lines = [f"{len(result.services)} services kept for level {args.level}, {len(result.skipped)} rows skipped"]
    lines += [f"  skipped: {row.reason.bilingual()}" for row in result.skipped]
    lines += [f"  note: {row.reason.bilingual()}" for row in result.notes]
    if args.output:
        lines.append(f"wrote {args.output}")
    if args.json:
        emit(args, result, "")
    elif args.output:
        print("\n".join(lines))
    else:
        print(result.services_toml(), end="")
        print("\n".join(lines), file=sys.stderr)
    return 0
