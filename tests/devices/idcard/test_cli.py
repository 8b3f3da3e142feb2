"""``hall idcard read``, ``hall devices scan`` and ``hall sim idcard`` as an installer runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hallkit.devices.idcard.simulator import Fault, IdCardSimulator

from hallkit.cli import main
from hallkit.privacy import id_hash

WAIT = 30.0


def _config(tmp_path: Path) -> Path:
    from hallkit.testing import SMALL_HALL

    path = tmp_path / "hall.toml"
    path.write_text(SMALL_HALL, "utf-8")
    return path


def test_read_prints_the_masked_record(
    simulator: IdCardSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    simulator.place("elderly")
    code = main(["idcard", "read", "--port", simulator.port, "--timeout", "10", "--json",
                 "--config", str(_config(tmp_path))])
    out = capsys.readouterr().out
    assert code == 0
    record = json.loads(out)
    number = simulator.card("elderly").holder.id_number
    assert record["elderly"] is True
    assert record["id_hash"] == id_hash("test-secret-0123456789", number)
    assert number not in out and "马秀兰" not in out


def test_read_in_words(simulator: IdCardSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    simulator.place("valid")
    assert main(["idcard", "read", "--port", simulator.port, "--timeout", "10"]) == 0
    captured = capsys.readouterr()
    assert "王**" in captured.out and "one-off key" in captured.err
    assert simulator.card("valid").holder.id_number not in captured.out


def test_read_failure_is_a_sentence_and_non_zero(
    simulator: IdCardSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    simulator.place("expired")
    assert main(["idcard", "read", "--port", simulator.port, "--timeout", "10"]) == 1
    assert "expired on" in capsys.readouterr().err
    simulator.inject(Fault.SAM_FAULT, 50)
    assert main(["idcard", "read", "--port", simulator.port, "--timeout", "1", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["problem"] == "reader_fault"


def test_read_on_a_missing_port(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["idcard", "read", "--port", str(tmp_path / "ttyUSB9"), "--timeout", "1"]) == 1
    assert "Cannot open the card reader port" in capsys.readouterr().err


def test_scan_finds_the_reader_and_not_a_silent_port(
    simulator: IdCardSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    master, slave = os.openpty()  # a port where nothing answers
    try:
        assert main(["devices", "scan", "--port", simulator.port, "--port", os.ttyname(slave), "--json"]) == 0
        found = json.loads(capsys.readouterr().out)
        assert found == [{"port": simulator.port, "baud": 115200, "sam_ok": True}]
    finally:
        os.close(master)
        os.close(slave)


def test_sim_command_is_driven_from_its_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "idcard"
    sim = subprocess.Popen(
        [sys.executable, "-m", "hallkit.cli", "sim", "idcard", "--card", "valid", "--link", str(link)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[3],
    )
    assert sim.stdin is not None and sim.stdout is not None
    try:
        assert str(link) in sim.stdout.readline()
        assert main(["idcard", "read", "--port", str(link), "--timeout", "10"]) == 0
        sim.stdin.write("remove\nfault sam-fault 50\n")
        sim.stdin.flush()
        assert "Card taken away" in sim.stdout.readline()
        assert "sam-fault" in sim.stdout.readline()
        assert main(["idcard", "read", "--port", str(link), "--timeout", "1"]) == 1
        assert "status 60" in capsys.readouterr().err
        sim.stdin.write("quit\n")
        sim.stdin.flush()
        assert sim.wait(WAIT) == 0
        assert not link.exists()
    finally:
        sim.kill()
        sim.wait(WAIT)
