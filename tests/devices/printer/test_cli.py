"""``hall printer test|status|sim-state`` and ``hall sim printer`` against the virtual printer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hallkit.devices.printer.simulator import PrinterSimulator, SimulatorControl, StateChange
from hallkit.devices.printer.status import PaperLevel

from hallkit.cli import main

GENEROUS = 30.0


def test_printer_test_prints_a_sample_ticket(simulator: PrinterSimulator, capsys):
    assert main(["printer", "test", "--printer", simulator.url]) == 0
    [ticket] = simulator.wait_for_tickets(1, GENEROUS)
    assert ticket.large_text == ["A001"]
    assert ticket.qr_codes == ["http://hall.local:8090/t/TEST000001"]
    assert "已打印测试小票 A001" in capsys.readouterr().out


def test_printer_test_uses_the_config(simulator: PrinterSimulator, tmp_path: Path):
    from hallkit.commands import example_config

    config = tmp_path / "hall.toml"
    config.write_text(example_config().replace("tcp://127.0.0.1:9100", simulator.url), "utf-8")
    assert main(["printer", "test", "--config", str(config)]) == 0
    [ticket] = simulator.wait_for_tickets(1, GENEROUS)
    assert ticket.lines[0].text == "兴华镇便民服务中心"


def test_printer_test_refuses_without_paper(simulator: PrinterSimulator, capsys):
    simulator.change_state(StateChange(paper=PaperLevel.OUT))
    assert main(["printer", "test", "--printer", simulator.url]) == 1
    assert "打印机未就绪（缺纸），未打印 / The printer is not ready (paper out)" in capsys.readouterr().err
    assert simulator.tickets() == []


def test_printer_status_in_words_and_json(simulator: PrinterSimulator, capsys):
    simulator.change_state(StateChange(paper=PaperLevel.NEAR_END))
    assert main(["printer", "status", "--printer", simulator.url]) == 0
    assert capsys.readouterr().out.strip() == f"打印机 {simulator.url}：纸将用完 / Printer {simulator.url}: paper low"
    assert main(["printer", "status", "--printer", simulator.url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["printer"] == simulator.url
    assert report["status"]["condition"] == "paper_low"
    assert report["status"]["paper"] == "near_end"
    assert report["status"]["can_print"] is True


def _refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again: nobody listens there


@pytest.mark.parametrize("command", ["test", "status"])
def test_unreachable_printer_is_a_plain_message_and_exit_1(command, capsys):
    url = f"tcp://127.0.0.1:{_refused_port()}"
    assert main(["printer", command, "--printer", url, "--timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"无法连接打印机 {url}")
    assert "Traceback" not in err


def test_unknown_scheme_lists_the_valid_ones(capsys):
    assert main(["printer", "status", "--printer", "lpt://1"]) == 1
    assert "serial://, tcp://, file://, usb://, sim://" in capsys.readouterr().err


def test_sim_state_command(simulator: PrinterSimulator, capsys):
    assert main(["printer", "sim-state", "--control", simulator.control_url, "--paper", "out", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["paper"] == "out"
    assert simulator.state.paper is PaperLevel.OUT
    assert main(["printer", "sim-state", "--control", simulator.control_url, "--cover", "open"]) == 0
    assert simulator.state.cover_open


def test_hall_sim_printer_runs_as_a_process(tmp_path: Path):
    """The demo's virtual printer: started by the command, printed on, stopped by SIGTERM."""
    out = tmp_path / "png"
    process = subprocess.Popen(
        [sys.executable, "-m", "hallkit.cli", "sim", "printer", "--port", "0", "--control-port", "0",
         "--paper", "58", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
    )
    try:
        banner = process.stdout.readline()  # blocks until it listens
        words = banner.split("/ Virtual printer running: ")[1]
        port = int(words.split("print port ")[1].split(",")[0])
        control = int(words.split("control port ")[1].split(",")[0])
        assert main(["printer", "test", "--printer", f"tcp://127.0.0.1:{port}"]) == 0
        [ticket] = SimulatorControl(f"http://127.0.0.1:{control}").wait_for_tickets(1, GENEROUS)
        assert ticket.png is not None and Path(ticket.png).is_file()
    finally:
        process.terminate()
        assert process.wait(GENEROUS) == 0
    assert [p.name for p in out.glob("ticket-*.png")] == ["ticket-0001.png"]
