"""The hub under an operator's mistakes and a hall's bad days: a second hub on its folder, a device
that floods its status, a full disk."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hallkit.broker.client import HallClient, read_hall
from hallkit.broker.hub import Hub
from hallkit.broker.latest import LatestPerKey
from hallkit.contracts.hall import Topics
from hallkit.contracts.uplink import DeviceTelemetry
from hallkit.uplink.outbox import Outbox
from hallkit.uplink.testing import hall_config as upstream_config
from hallkit.uplink.testing import unreachable_url

from hallkit.config import parse_config
from hallkit.queue.models import TakeTicket
from hallkit.store.lock import FolderInUse
from hallkit.testing import HALL_WITH_DEVICES, write_hall_config
from tests.broker.test_hub import wait_for

ROOT = Path(__file__).parents[2]
TOPICS = Topics("test-hall")


@pytest.fixture
def running(mosquitto, tmp_path):
    hub = Hub(parse_config(HALL_WITH_DEVICES), mosquitto.address, tmp_path / "data", synchronous="normal")
    hub.start()
    yield hub
    hub.stop()


def test_latest_per_key_keeps_the_newest_and_spaces_each_key():
    latest: LatestPerKey[int] = LatestPerKey(interval=2.0)
    for value in range(5000):
        latest.put("display-1", value)
    latest.put("kiosk-1", 7)
    assert latest.due(100.0) == [("display-1", 4999), ("kiosk-1", 7)]
    latest.put("display-1", 5000)
    assert latest.due(101.0) == [] and latest.wait(101.0) == pytest.approx(1.0)
    assert latest.due(102.0) == [("display-1", 5000)]
    assert latest.wait(102.0) is None and latest.superseded == 4999


def test_a_second_hub_on_the_same_folder_says_who_holds_it(running, mosquitto, tmp_path):
    with pytest.raises(FolderInUse) as caught:
        Hub(running.config, mosquitto.address, tmp_path / "data")
    assert caught.value.pid == os.getpid()
    assert oct((tmp_path / "data").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "data" / "hall.sqlite3").stat().st_mode & 0o777) == "0o600"
    # The running hub was not disturbed.
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
        assert kiosk.request(TakeTicket(service_id="social")).ok


def test_a_second_hub_process_exits_with_one_clear_message(running, mosquitto, tmp_path):
    config = write_hall_config(tmp_path / "hall.toml", HALL_WITH_DEVICES)
    second = subprocess.run([sys.executable, "-m", "hallkit.cli", "hub", "--config", str(config), "--broker",
                             mosquitto.url, "--data", str(tmp_path / "data")],
                            check=False, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert second.returncode != 0
    assert "Traceback" not in second.stderr
    assert f"process {os.getpid()}" in second.stderr and "进程" in second.stderr
    assert str(tmp_path / "data") in second.stderr


def test_a_data_folder_open_to_others_is_closed_and_said(mosquitto, tmp_path):
    data = tmp_path / "data"
    first = Hub(parse_config(HALL_WITH_DEVICES), mosquitto.address, data, synchronous="normal")
    first.start()
    first_session = first.session
    first.stop()
    data.chmod(0o755)  # as a copy, a restore from backup or an older hallkit may leave them
    (data / "hall.sqlite3").chmod(0o644)
    config = write_hall_config(tmp_path / "hall.toml", HALL_WITH_DEVICES)
    log = tmp_path / "hub.log"
    with log.open("wb") as err:
        hub = subprocess.Popen([sys.executable, "-m", "hallkit.cli", "hub", "--config", str(config), "--broker",
                                mosquitto.url, "--data", str(data)], stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
    try:
        # Said before the hub starts serving: then it is online under a new session.
        wait_for(lambda: (h := read_hall(mosquitto.address, "test-hall", 0.5).hub) is not None
                 and h.state == "online" and h.session != first_session, timeout=30)
    finally:
        hub.terminate()
        hub.wait(60)
    said = log.read_text("utf-8")
    assert "Traceback" not in said
    for path, was, now in ((data, "0755", "0700"), (data / "hall.sqlite3", "0644", "0600")):
        assert said.count(f"{path} was open to other users (mode {was})") == 1, said
        assert said.count(f"{path} 曾对其他用户开放（权限 {was}）") == 1 and f"only ({now})" in said, said
    assert oct(data.stat().st_mode & 0o777) == "0o700"
    assert oct((data / "hall.sqlite3").stat().st_mode & 0o777) == "0o600"


STORM = """
import sys
from hallkit.contracts.hall import DeviceState, DeviceStatus, Topics
from hallkit.contracts.mqtt import BrokerAddress, make_client
address = BrokerAddress(host="127.0.0.1", port=int(sys.argv[1]))
client = make_client(address, "display-1")
client.connect(address.host, address.port)
client.loop_start()
topic = Topics("test-hall").device_status("display-1")
payloads = [DeviceStatus(device="display-1", state=DeviceState.ONLINE, session=1, kind="display",
                         version="1.0", detail={"paper": str(n)}).model_dump_json() for n in range(int(sys.argv[2]))]
print("ready", flush=True)
sys.stdin.readline()
sent = [client.publish(topic, payload, qos=1, retain=True) for payload in payloads]  # as presence.py does
sent[-1].wait_for_publish(60)
client.disconnect()
client.loop_stop()
"""


def test_a_status_storm_holds_up_no_ticket_and_the_county_gets_the_latest_state(mosquitto, tmp_path):
    """5,000 status changes from one device (its own process): tickets taken meanwhile are answered
    (bench/hub.py measures by how much later: goal 100 ms), and the outbox holds a handful of
    telemetry rows for it, the last one its latest state."""
    config = upstream_config(unreachable_url())
    assert config.upstream is not None
    hub = Hub(config, mosquitto.address, tmp_path / "data", "normal", parts=[Outbox(config, config.upstream)])
    hub.start()
    storm = subprocess.Popen([sys.executable, "-c", STORM, str(mosquitto.port), "5000"], cwd=ROOT, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert storm.stdout is not None and storm.stdin is not None
        assert storm.stdout.readline() == "ready\n"
        with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
            storm.stdin.write("go\n")
            storm.stdin.flush()
            slowest = 0.0
            while storm.poll() is None:
                started = time.monotonic()
                assert kiosk.request(TakeTicket(service_id="social")).ok
                slowest = max(slowest, time.monotonic() - started)
        assert storm.returncode == 0
        # Before: 19.8 s for 3,000 changes. A generous ceiling here; the bench holds the 100 ms goal.
        assert slowest < 2.0

        def telemetry() -> list[str]:
            with hub.queue.lock:
                found = hub.queue.store.conn.execute(
                    "SELECT body FROM outbox WHERE kind = 'telemetry' ORDER BY seq").fetchall()
            return [DeviceTelemetry.model_validate_json(body).paper or "" for (body,) in found]

        wait_for(lambda: telemetry()[-1:] == ["4999"], timeout=30)
        assert len(telemetry()) <= 20, telemetry()
        # The broker was told to hold the flood back; the newest state came all the same (retained).
        assert hub.status_watch.mutes >= 1
    finally:
        storm.kill()
        hub.stop()


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs: a disk that really fills up (needs root, as on the test machine)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)], check=False,
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (not root?): {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_refuses_each_request_and_loses_nothing(small_disk, mosquitto):
    config = parse_config(HALL_WITH_DEVICES)
    data = small_disk / "data"
    hub = Hub(config, mosquitto.address, data, synchronous="full")
    hub.start()
    try:
        with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
            issued = [kiosk.request(TakeTicket(service_id="social")).outcome.ticket.number for _ in range(3)]
            filler = fill(small_disk)
            refused = kiosk.request(TakeTicket(service_id="social"))
            assert not refused.ok and refused.refusal is not None
            assert refused.refusal.reason == "hub.disk_full" and "磁盘已满" in refused.refusal.zh
            assert hub.disk_is_full
    finally:
        hub.stop()
    # Started again on the full disk: it runs, says so, and refuses with the reason.
    hub = Hub(config, mosquitto.address, data, synchronous="full")
    assert hub.disk_is_full
    hub.start()
    try:
        with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
            again = kiosk.request(TakeTicket(service_id="social"))
            assert not again.ok and again.refusal is not None and again.refusal.reason == "hub.disk_full"
            filler.unlink()
            after = kiosk.request(TakeTicket(service_id="social"))
            assert after.ok and after.outcome is not None and after.outcome.ticket is not None
        assert issued == ["A001", "A002", "A003"] and after.outcome.ticket.number == "A004"
        assert not hub.disk_is_full
    finally:
        hub.stop()
