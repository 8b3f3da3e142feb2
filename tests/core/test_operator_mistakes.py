"""An operator's mistakes through the `hall` command: one clear message in each language, a non-zero
exit, no traceback, nothing overwritten or lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from hallkit.broker.mosquitto import read_passwords

from hallkit.cli import main
from hallkit.config import load_config

ROOT = Path(__file__).parents[2]
CATALOGUE = ROOT / "hallkit" / "sample" / "hutubi-service-catalog.csv"


def hall(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def once_each(text: str, zh: str, en: str) -> None:
    assert text.count(zh) == 1 and text.count(en) == 1, text


def test_nothing_is_overwritten_silently(tmp_path, capsys):
    config = tmp_path / "hall.toml"
    assert hall(capsys, "config", "example", "--output", str(config))[0] == 0
    assert oct(config.stat().st_mode & 0o777) == "0o600"  # it holds id_hash_key
    key = load_config(config).privacy.id_hash_key
    code, _, err = hall(capsys, "config", "example", "--output", str(config))
    assert code == 1
    once_each(err, "已存在", "already exists")
    assert load_config(config).privacy.id_hash_key == key
    # The catalogue's services go into the configuration; hall, windows and the key stay.
    code, _, err = hall(capsys, "catalog", "import", str(CATALOGUE), "--level", "township", "--output", str(config))
    assert code == 1 and "--force" in err
    before = load_config(config)
    assert hall(capsys, "catalog", "import", str(CATALOGUE), "--level", "township", "--into", str(config))[0] == 0
    after = load_config(config)
    assert (after.hall, after.windows, after.privacy.id_hash_key) == (before.hall, before.windows, key)
    assert len(after.services) == 66
    # The broker's configuration: refused again without --add or --force; --add keeps every login.
    out = tmp_path / "broker"
    assert hall(capsys, "broker", "config", "--config", str(config), "--out", str(out))[0] == 0
    hashes = read_passwords((out / "passwords").read_text())
    code, _, err = hall(capsys, "broker", "config", "--config", str(config), "--out", str(out))
    assert code == 1
    once_each(err, "--add 保留已有登录", "--add keeps its logins")
    (out / "credentials.toml").unlink()  # handed out, as the hint says
    code, printed, _ = hall(capsys, "broker", "config", "--config", str(config), "--out", str(out), "--add")
    assert code == 0 and f"Kept {len(hashes)} logins" in printed
    assert read_passwords((out / "passwords").read_text()) == hashes
    county = tmp_path / "county"
    assert hall(capsys, "county", "broker-config", "--county", "c1", "--hall", "h1", "--out", str(county))[0] == 0
    assert hall(capsys, "county", "broker-config", "--county", "c1", "--hall", "h1", "--out", str(county))[0] == 1
    code, printed, _ = hall(capsys, "county", "broker-config", "--county", "c1", "--hall", "h1", "--hall", "h2",
                            "--out", str(county), "--add")
    assert code == 0 and "Kept 3 logins" in printed and "New logins (1)" in printed and ": h2" in printed
