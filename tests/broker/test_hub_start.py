"""`hall hub`'s start: the cyclic collector is paused while it starts, and on again whatever happens."""

from __future__ import annotations

import gc
from pathlib import Path

from hallkit.cli import main


def test_a_failed_start_leaves_the_collector_on(tmp_path: Path) -> None:
    assert gc.isenabled()
    code = main(["hub", "--config", str(tmp_path / "missing.toml"), "--data", str(tmp_path / "data"),
                 "--broker", "mqtt://127.0.0.1:1"])
    assert code != 0
    assert gc.isenabled()
