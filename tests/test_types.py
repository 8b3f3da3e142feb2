"""The code type-checks: mypy with the pydantic plugin, on every module under ``hallkit.``.

The parts install through setuptools ``package-dir`` (``hallkit.broker`` lives in ./broker), and
the editable install's import hook is invisible to mypy, so the test lays the name space out as
mypy expects it: a temporary ``hallkit/`` of symlinks, each folder mapped as pyproject.toml maps
it, checked with pyproject.toml's [tool.mypy] settings.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lay_out(into: Path) -> Path:
    """``into``/hallkit as the installed package sees it, made of links to the worktree's files."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    package = into / "hallkit"
    package.mkdir()
    for entry in (ROOT / "hallkit").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name, folder in setup["package-dir"].items():
        if name != "hallkit":
            (package / name.removeprefix("hallkit.")).symlink_to(ROOT / folder)
    return package


def test_mypy_finds_nothing(tmp_path: Path) -> None:
    lay_out(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / ".mypy_cache"), "-p", "hallkit"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
