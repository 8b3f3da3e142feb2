"""``hall demo --headless``: a bounded queue, the virtual printer in use, a fresh state per run, a quiet Ctrl-C."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hallkit.broker.client import read_hall
from hallkit.broker.mosquitto import Logins
from hallkit.contracts.hall import DeviceState
from hallkit.contracts.mqtt import parse_broker_url
from hallkit.demo.demo import BALK_PER_WINDOW, CONSOLE, arrival_weights, demo_config, window_word

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"等候 waiting (\d+)")


@pytest.fixture(autouse=True)
def one_demo_at_a_time() -> Iterator[None]:
    """A demo takes the first free ports from 1883, 8080 and 8090, as a user's does: two started at
    once by parallel test workers could both find one free and the second fail to bind it."""
    with open(Path(tempfile.gettempdir()) / "hallkit-demo-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _demo(data: Path, *extra: str, stdout: int | object = subprocess.PIPE) -> subprocess.Popen[str]:
    # A demo that hangs dumps every thread's stack on SIGABRT (see stop_demo).
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONFAULTHANDLER="1")
    return subprocess.Popen([sys.executable, "-m", "hallkit.cli", "demo", "--headless", "--speed", "200",
                             "--data", str(data), *extra], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=subprocess.PIPE, text=True)


def stop_demo(demo: subprocess.Popen[str]) -> str:
    """Ctrl-C, and what the demo wrote on stderr; a demo still running after a ceiling fails the test
    with every thread's stack."""
    demo.send_signal(signal.SIGINT)
    try:
        # A ceiling, not a figure: stopping joins each part in turn (servers, simulated staff and
        # pads, hub, broker), a few seconds even beside a busy loop on two cores.
        return demo.communicate(timeout=240)[1]
    except subprocess.TimeoutExpired:
        demo.send_signal(signal.SIGABRT)
        _, err = demo.communicate()
        raise AssertionError(f"the demo did not stop within 240 s of Ctrl-C: {err[-6000:]}") from None


def test_headless_demo_keeps_its_queue_bounded_and_prints_on_the_virtual_printer(tmp_path):
    demo = _demo(tmp_path, "--duration", "20")
    out, err = demo.communicate(timeout=120)
    assert demo.returncode == 0, err[-3000:]
    waiting = [int(n) for n in SUMMARY.findall(out)]
    assert len(waiting) >= 4, out
    config = demo_config(tmp_path, None)
    # Bounded by the residents who walk away from a long queue, however slow the machine makes the
    # simulated staff (a tighter figure, such as the second half's peak, failed on a loaded machine).
    assert max(waiting) <= BALK_PER_WINDOW * len(config.windows) + len(config.windows)
    assert list((tmp_path / "printed-tickets").glob("ticket-*.png"))  # the same printer as with windows
    assert "Traceback" not in err, err[-3000:]
    # The broker, the dashboard and the phone page: this computer only, each said so.
    assert out.count("仅本机可访问") == 3 and out.count("(this computer only;") == 3, out
    assert (tmp_path / "hall.toml").stat().st_mode & 0o077 == 0  # it holds the hall's id_hash_key


def test_each_run_starts_fresh_unless_kept(tmp_path):
    config = demo_config(tmp_path, None)
    marker = tmp_path / config.hall.id / "from-an-earlier-run"
    marker.parent.mkdir(parents=True)
    marker.touch()
    kept = _demo(tmp_path, "--duration", "3", "--keep")
    kept.communicate(timeout=120)
    assert marker.exists()
    fresh = _demo(tmp_path, "--duration", "3")
    out, _err = fresh.communicate(timeout=120)
    assert not marker.exists() and "fresh hall state" in out


def test_ctrl_c_stops_the_demo_without_a_traceback(tmp_path):
    # Its summary goes to a file the test reads as it grows: reading the pipe line by line and then
    # communicate() would lose what the line reader had buffered.
    printed = tmp_path / "demo.out"
    with printed.open("w") as out_file:
        demo = _demo(tmp_path, stdout=out_file)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not SUMMARY.search(printed.read_text()):  # running
            time.sleep(0.2)
        err = stop_demo(demo)
    assert demo.returncode == 0, err[-3000:]
    assert "hallkit demo stopped" in printed.read_text()
    assert "Traceback" not in err and "CancelledError" not in err, err[-3000:]


def test_summary_and_arrivals_follow_the_windows(tmp_path):
    assert [window_word(True, False, "A001"), window_word(True, False, None), window_word(True, True, None),
            window_word(False, False, None)] == ["A001", "-", "暂停paused", "关闭closed"]
    config = demo_config(tmp_path, None)
    weights = arrival_weights(config)
    # Every window's share of residents adds up to one window's worth: none is sent more than it serves.
    assert abs(sum(weights) - len(config.windows)) < 1e-9 and min(weights) > 0


def test_headless_demo_has_the_kiosk_printer_and_card_reader_online(tmp_path):
    """Without windows the kiosk's devices still run: the manager's device list shows them online,
    not 从未上线 (never seen)."""
    printed = tmp_path / "demo.out"
    with printed.open("w") as out_file:
        demo = _demo(tmp_path, stdout=out_file)
        try:
            deadline = time.monotonic() + 120
            while not (started := re.search(r" on (mqtt://\S+);", printed.read_text())):
                assert demo.poll() is None and time.monotonic() < deadline, printed.read_text()
                time.sleep(0.2)
            logins = Logins.read(tmp_path / "broker" / "credentials.toml")
            password = logins.password(CONSOLE)
            assert password is not None
            console = parse_broker_url(started.group(1)).as_login(CONSOLE, password)
            wanted = {"kiosk-1", "printer-1", "idcard-1"}
            while True:
                devices = read_hall(console, demo_config(tmp_path, None).hall.id, timeout=2.0).devices
                online = {d for d in wanted if d in devices and devices[d].state is DeviceState.ONLINE}
                if online == wanted and devices["printer-1"].detail.get("paper") == "ok":
                    break
                assert demo.poll() is None and time.monotonic() < deadline, (online, printed.read_text())
                time.sleep(0.5)
        finally:
            err = stop_demo(demo)
    assert demo.returncode == 0 and "Traceback" not in err, err[-3000:]


def test_ctrl_c_while_starting_stops_the_demo_cleanly(tmp_path):
    # A Ctrl-C that lands while the parts start (as on a slow machine, before the first summary)
    # is kept until they have started, then everything stops.
    (tmp_path / demo_config(tmp_path, None).hall.id).mkdir()  # an earlier run's state: the demo starts afresh
    printed = tmp_path / "demo.out"
    with printed.open("w") as out_file:
        demo = _demo(tmp_path, stdout=out_file)
        deadline = time.monotonic() + 120
        while "fresh hall state" not in printed.read_text():
            assert demo.poll() is None and time.monotonic() < deadline, printed.read_text()
            time.sleep(0.05)
        err = stop_demo(demo)
    assert demo.returncode == 0, err[-3000:]
    assert "hallkit demo stopped" in printed.read_text()
    assert "Traceback" not in err, err[-3000:]
