"""The layering reads from the folders, and the code keeps to it (docs/architecture.md).

Each package sits on a floor; a module may import only from its own package and from floors
below its own. Read from the source with ``ast`` (imports inside functions count too), so a
new import against the direction fails here, with the line that made it.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FLOORS: tuple[tuple[str, ...], ...] = (
    ("hallkit.cli", "hallkit.demo"),       # the `hall` command; the whole hall in one command
    ("hallkit.kiosk",),                    # the kiosk and the hall display
    ("hallkit.county", "hallkit.web"),     # the county: ingest, reports, its web console; the
                                           # residents' phone page behind the ticket's QR code
    ("hallkit.dashboard",),                # the manager's dashboard (its web kit and daily figures
                                           # serve the county's console and the phone page too)
    ("hallkit.broker",),                   # the hub, its clients and bridges, the brokers
    ("hallkit.uplink",),                   # the hall's outbox to the county, run by the hub
    ("hallkit.devices",),                  # codecs, drivers, simulators: no MQTT
    ("hallkit.contracts",),                # message models, topic names, broker addresses
    ("hallkit",),                          # the core: rules, store, figures, accounts
)
"""Top to bottom; a floor imports only the floors below it."""

FOLDERS = {"broker": "hallkit.broker", "contracts": "hallkit.contracts", "county": "hallkit.county",
           "dashboard": "hallkit.dashboard", "demo": "hallkit.demo", "devices": "hallkit.devices",
           "kiosk": "hallkit.kiosk", "uplink": "hallkit.uplink", "web": "hallkit.web", "hallkit": "hallkit"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([FOLDERS[parts[0]], *parts[1:]]) if parts[0] != "hallkit" else ".".join(parts)


def package_of(module: str) -> str:
    """The floor entry a module belongs to (longest match)."""
    names = sorted((name for floor in FLOORS for name in floor), key=len, reverse=True)
    return next(name for name in names if module == name or module.startswith(name + "."))


def floor_of(package: str) -> int:
    return next(i for i, floor in enumerate(FLOORS) if package in floor)


def sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every absolute import of the project in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return [(line, module, names) for line, module, names in found
            if module.split(".")[0] in {"hallkit", "tests", *FOLDERS}]


def test_every_import_points_down_the_floors():
    wrong = []
    for path in sources():
        here = package_of(module_name(path))
        for line, module, _ in imports(path):
            where = f"{path.relative_to(ROOT)}:{line} imports {module}"
            if module.split(".")[0] != "hallkit":
                wrong.append(f"{where}: outside the hallkit name space")
                continue
            there = package_of(module)
            if there != here and floor_of(there) <= floor_of(here):
                wrong.append(f"{where}: {there} is not below {here}")
    assert not wrong, "\n".join(wrong)


def test_no_private_name_crosses_a_package():
    wrong = []
    for path in sources():
        here = package_of(module_name(path))
        for line, module, names in imports(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and module.split(".")[0] == "hallkit" and package_of(module) != here:
                wrong.append(f"{path.relative_to(ROOT)}:{line} takes {', '.join(private)} from {module}")
    assert not wrong, "\n".join(wrong)


def test_benches_do_not_import_the_tests():
    """What a bench shares with the tests (a Mosquitto runner, sample halls, records, a fresh
    database) lives in the package's ``testing`` modules; a bench imports the project as hallkit."""
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for path in sorted((ROOT / "bench").glob("*.py"))
             for line, module, _ in imports(path) if module.split(".")[0] != "hallkit"]
    assert not wrong, "\n".join(wrong)


def test_the_floors_here_are_the_tests_floors():
    """docs/architecture.md shows FLOORS as a table, top floor first; FLOORS is the one source."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("<!-- floors:", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[2] for line in table.splitlines() if line.startswith("| ") and "`" in line]
    assert [tuple(re.findall(r"`([\w.]+)`", row)) for row in rows] == list(FLOORS)


def test_the_files_architecture_md_names_exist():
    """Where each rule lives stays true when a module moves."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`([\w/]+(?:\.py|/))`", text)) | set(re.findall(r"`([\w/]+)/\*[\w.*]*`", text))
    paths = {name for name in named if "/" in name}  # a bare ``client.py`` is one named in its folder's row
    assert paths and not {path for path in paths if not (ROOT / path).exists()}


def test_the_package_list_covers_every_folder():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {module_name(init) for folder in FOLDERS for init in (ROOT / folder).rglob("__init__.py")}
    assert listed == folders


@pytest.mark.slow
def test_only_hallkit_is_installed_at_the_top(tmp_path: Path):
    """Built as a user's pip would: the wheel holds one import name, so it cannot overwrite another
    distribution's ``broker`` or ``devices`` in site-packages."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("hallkit-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"hallkit"}
    assert any(name.startswith("hallkit/kiosk/screens/") and name.endswith(".kv") for name in archive.namelist())


def test_every_module_imports_away_from_the_checkout(tmp_path: Path):
    """As the installed ``hall`` runs: from another folder, with nothing but site-packages.

    The tests run from the repository root, where ``broker`` or ``dashboard`` would also import as
    top-level packages; a module that names one (``resources.files("dashboard")``) fails only here.
    Modules that draw with Kivy are left out: importing Kivy's window needs a screen.
    """
    names = [module_name(path) for path in sources() if "kivy" not in path.read_text()]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)"
    result = subprocess.run([sys.executable, "-I", "-c", code, *names], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "KIVY_NO_ARGS": "1"}, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]


def test_kv_rules_import_through_the_name_space():
    """Kivy's ``#:import`` runs when a screen first loads, away from any import test above."""
    wrong = [f"{path.relative_to(ROOT)}:{number}: {line}"
             for folder in FOLDERS for path in sorted((ROOT / folder).rglob("*.kv"))
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if line.startswith("#:import") and line.split()[2].split(".")[0] not in {"hallkit", "kivy"}]
    assert not wrong, "\n".join(wrong)
