"""An operator's mistakes through the `hall` command: one clear message in each language, a non-zero
exit, no traceback, nothing overwritten or lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hallkit.broker.mosquitto import hub_status_password, password_matches, read_passwords

from hallkit.cli import main
from hallkit.commandline import write_atomically
from hallkit.config import load_config
from hallkit.filemodes import SECRET_MODE
from hallkit.testing import free_port

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
    # A configuration from before the hub's status login: --add gives it one, from secrets/hub.
    (out / "passwords").write_text("".join(f"{u}:{h}\n" for u, h in hashes.items() if u != "hub-status"))
    code, printed, _ = hall(capsys, "broker", "config", "--config", str(config), "--out", str(out), "--add")
    assert code == 0 and f"Kept {len(hashes) - 1} logins" in printed and ": hub-status" in printed
    again = read_passwords((out / "passwords").read_text())
    assert again["hub"] == hashes["hub"] and password_matches(
        again["hub-status"], hub_status_password((out / "secrets" / "hub").read_text().strip()))
    county = tmp_path / "county"
    assert hall(capsys, "county", "broker-config", "--county", "c1", "--hall", "h1", "--out", str(county))[0] == 0
    assert hall(capsys, "county", "broker-config", "--county", "c1", "--hall", "h1", "--out", str(county))[0] == 1
    code, printed, _ = hall(capsys, "county", "broker-config", "--county", "c1", "--hall", "h1", "--hall", "h2",
                            "--out", str(county), "--add")
    assert code == 0 and "Kept 3 logins" in printed and "New logins (1)" in printed and ": h2" in printed


UPSTREAM = '\n[upstream]\nbroker = "{url}"\npassword_file = "{password}"\n'


def test_config_check_says_what_the_hub_would_refuse_in_upstream(tmp_path, capsys):
    config = tmp_path / "hall.toml"
    assert hall(capsys, "config", "example", "--output", str(config))[0] == 0
    sample = config.read_text("utf-8")
    password = tmp_path / "county-password"
    config.write_text(sample + UPSTREAM.format(url="http//county.example", password=password), "utf-8")
    code, out, _ = hall(capsys, "config", "check", str(config))
    assert code == 1 and "upstream.broker" in out and "mqtts://" in out
    config.write_text(sample + UPSTREAM.format(url="mqtts://county.example:8883", password=password), "utf-8")
    code, out, _ = hall(capsys, "config", "check", str(config))
    assert code == 1 and f"upstream.password_file: cannot read {password}" in out
    # The hub refuses it the same way, before it starts anything.
    code, _, err = hall(capsys, "hub", "--config", str(config), "--data", str(tmp_path / "data"))
    assert code == 1 and "upstream.password_file" in err
    write_atomically(password, "s3cret\n", SECRET_MODE)  # as `install -m 0600` does in the README
    assert hall(capsys, "config", "check", str(config))[0] == 0


def test_unusable_data_folders_unknown_zones_and_databases_are_one_clear_message(tmp_path, capsys):
    config = tmp_path / "hall.toml"
    assert hall(capsys, "config", "example", "--output", str(config))[0] == 0
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    data = blocked / "data"  # no one, root included, can make a folder inside a file
    for argv in (["hub", "--config", str(config), "--data", str(data)],
                 ["dashboard", "--config", str(config), "--data", str(data)],
                 ["dashboard", "user", "add", "wang", "--role", "manager", "--password-stdin", "--config", str(config),
                  "--data", str(data)],
                 ["web", "--config", str(config), "--data", str(data)]):
        code, _, err = hall(capsys, *argv)
        assert code == 1, argv
        once_each(err, f"无法写入目录 {data}", f"Cannot write to the folder {data}")
    code, _, err = hall(capsys, "county", "report", "--timezone", "Mars/Base")
    assert code == 2
    once_each(err, "未知时区 'Mars/Base'", "Unknown time zone 'Mars/Base'")
    for dsn in ("postgresql://county:s3cr%40t-pw@127.0.0.1:1/county", "host=127.0.0.1 port=1 password=s3cr@t-pw"):
        code, _, err = hall(capsys, "county", "devices", "--db", dsn)
        assert code == 1 and "s3cr" not in err and "***" in err
        once_each(err, "无法使用县级数据库", "Cannot use the county database")


def test_a_reader_that_stops_early_gets_no_traceback():
    """`hall … | head`: the pipe closes before the command is done writing."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "hallkit.cli", "config", "example"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT, check=False)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == ""


def test_secret_files_others_may_read_stop_the_hub_and_fail_the_checks(tmp_path, capsys):
    config = tmp_path / "hall.toml"
    assert hall(capsys, "config", "example", "--output", str(config))[0] == 0
    assert hall(capsys, "config", "check", str(config))[0] == 0
    login = tmp_path / "console.password"
    write_atomically(login, "not-checked\n", SECRET_MODE)
    doctor = ["doctor", "--config", str(config), "--broker", f"mqtt://console@127.0.0.1:{free_port()}",
              "--password-file", str(login), "--timeout", "1"]

    def refused_everywhere(path: Path) -> None:
        zh, en = "可被其他用户读取", "may be read by other users"
        code, out, _ = hall(capsys, "config", "check", str(config))
        assert code == 1 and f"chmod 600 {path}" in out
        once_each(out, f"{path} {zh}", f"{path} {en}")
        code, _, err = hall(capsys, "hub", "--config", str(config), "--data", str(tmp_path / "data"))
        assert code == 1 and f"chmod 600 {path}" in err
        once_each(err, f"{path} {zh}", f"{path} {en}")
        assert not (tmp_path / "data").exists()  # refused before anything started
        code, out, _ = hall(capsys, *doctor)
        assert code == 1 and f"✗ file {path}: " in out and f"→ 请运行：chmod 600 {path}" in out, out

    config.chmod(0o644)  # as `cp` or an editor under the default umask leaves it
    refused_everywhere(config)
    config.chmod(0o600)
    code, out, _ = hall(capsys, *doctor)
    assert "✓ secrets: " in out and "✗ file" not in out
    # The county password the configuration names, copied without `install -m 0600`.
    password = tmp_path / "upstream.secret"
    password.write_text("s3cret\n")
    password.chmod(0o644)
    config.write_text(config.read_text("utf-8") + UPSTREAM.format(url="mqtts://county.example:8883",
                                                                   password=password), "utf-8")
    refused_everywhere(password)
    password.chmod(0o600)
    # Readable by its group: how root hands a file to the hub's user (README "Under systemd"),
    # not what a file of one's own needs.
    config.chmod(0o640)
    if os.geteuid() == 0:
        assert hall(capsys, "config", "check", str(config))[0] == 0  # root's file, the hub's group
        os.chown(config, 65534, 65534)  # the same mode on a file of another (not root's) user
    refused_everywhere(config)
