"""`hall install systemd` writes units systemd accepts (systemd-analyze verify), for a hall and a county."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hallkit.cli import main
from hallkit.testing import HALL_WITH_DEVICES

ANALYZE = shutil.which("systemd-analyze")


def verify(units: list[Path]) -> subprocess.CompletedProcess[str]:
    """systemd's verdict; a unit of ours it only warns about (an unknown key, a bad value) fails too."""
    assert ANALYZE is not None
    done = subprocess.run([ANALYZE, "verify", *map(str, units)], capture_output=True, text=True, timeout=120,
                          check=False)
    ours = [line for line in done.stderr.splitlines() if any(unit.name in line for unit in units)]
    assert not ours, "\n".join(ours)
    return done


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze missing: scripts/bootstrap.sh installs systemd")
def test_hall_units_verify_and_hand_over_passwords(tmp_path, capsys):
    config = tmp_path / "hall.toml"
    config.write_text(HALL_WITH_DEVICES, "utf-8")
    broker = tmp_path / "broker"
    assert main(["broker", "config", "--config", str(config), "--out", str(broker), "--port", "1883"]) == 0
    out = tmp_path / "units"
    assert main(["install", "systemd", "--config", str(config), "--broker-folder", str(broker),
                 "--out", str(out)]) == 0
    system = sorted(out.glob("*.service"))
    assert [p.name for p in system] == ["hallkit-broker.service", "hallkit-dashboard.service", "hallkit-hub.service"]
    done = verify(system)
    assert done.returncode == 0, done.stderr
    hub = (out / "hallkit-hub.service").read_text()
    assert f"LoadCredential=broker-password:{broker.absolute()}/secrets/hub" in hub
    assert "Environment=HALLKIT_BROKER_PASSWORD_FILE=%d/broker-password" in hub
    assert "User=hallkit" in hub and "mqtt://hub@127.0.0.1:1883" in hub
    assert all(":" not in line.split("@")[0].split("//")[-1] for line in hub.splitlines() if "mqtt://" in line)
    session = sorted((out / "user").glob("*.service"))
    assert [p.name for p in session] == ["hallkit-display.service", "hallkit-kiosk.service"]
    kiosk = (out / "user" / "hallkit-kiosk.service").read_text()
    assert "WantedBy=graphical-session.target" in kiosk and "--logins %E/hallkit/logins.toml" in kiosk
    assert "u hallkit" in (out / "hallkit.conf").read_text()
    assert "systemctl enable --now" in capsys.readouterr().out


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze missing: scripts/bootstrap.sh installs systemd")
def test_county_units_verify_one_ingest_instance_per_worker(tmp_path, capsys):
    broker = tmp_path / "county"
    assert main(["county", "broker-config", "--county", "c1", "--hall", "h1", "--tls", "--tls-name", "localhost",
                 "--out", str(broker)]) == 0
    out = tmp_path / "units"
    assert main(["install", "systemd", "--county", "--broker-folder", str(broker), "--workers", "2",
                 "--out", str(out)]) == 0
    units = sorted(out.glob("*.service"))
    assert [p.name for p in units] == ["hallkit-county-broker.service", "hallkit-ingest@.service"]
    # A template is verified through an instance of it.
    instance = out / "hallkit-ingest@1.service"
    instance.symlink_to(out / "hallkit-ingest@.service")
    done = verify([out / "hallkit-county-broker.service", instance])
    assert done.returncode == 0, done.stderr
    ingest = (out / "hallkit-ingest@.service").read_text()
    assert "ingest-%i@localhost:8883" in ingest and f"--ca-file {broker.absolute()}/ca.pem" in ingest
    assert f"LoadCredential=broker-password:{broker.absolute()}/secrets/ingest-%i" in ingest
    assert "hallkit-ingest@1.service hallkit-ingest@2.service" in capsys.readouterr().out
