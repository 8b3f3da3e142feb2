"""Hall → county under faults: two real Mosquitto brokers, a hub process killed with SIGKILL, real PostgreSQL.

The county broker is down while 10,000 ratings are recorded; the hub is killed once in the
middle and restarted; then the link comes back. The county must hold every rating exactly once,
in each hall's order, and absorb redelivered duplicates; garbage goes to quarantine.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from hallkit.broker.client import read_hall
from hallkit.broker.status import HallStatus, render_status
from hallkit.contracts.hall import DeviceState, DeviceStatus, Topics
from hallkit.contracts.mqtt import make_client
from hallkit.contracts.uplink import UpKind, UpTopics, encode_batch
from hallkit.county.ingest import Ingest
from hallkit.uplink.testing import hall_toml, rating

from tests.broker.test_hub import wait_for
from tests.upstream.waiting import wait_progress

ROOT = Path(__file__).parents[2]
COUNT = 10_000
UP = UpTopics("test-county", "test-hall")


class Producer:
    """The hub process of the test (tests/upstream/producer.py)."""

    def __init__(self, config: Path, data: Path, broker_url: str, count: int = COUNT) -> None:
        with open(data.parent / "hub.log", "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.upstream.producer", str(config), str(data), broker_url, str(count)],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)

    def wait_for_line(self, wanted: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError("the hub process exited")
            if line.strip() == wanted:
                return
        raise AssertionError(f"no {wanted!r} from the hub process")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def county_count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]  # test constants
        return int(row[0]) if row else 0


def backlog(hall_broker) -> int | None:
    hub = read_hall(hall_broker.address, "test-hall", 1.0).hub
    value = hub.detail.get("uplink.backlog") if hub is not None and hub.state == "online" else None
    return int(value) if isinstance(value, int) else None


def publish(broker, messages: list[tuple[str, bytes]], retain: bool = False) -> None:
    client = make_client(broker.address, "test-intruder")
    client.connect(broker.address.host, broker.address.port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_outage_kill_and_restore_every_rating_once_in_order(tmp_path, hall_broker, county_broker, county_db):
    config = tmp_path / "hall.toml"
    # A batch the county broker took while no ingest worker was subscribed yet is sent again soon.
    config.write_text(hall_toml(county_broker.url, batch_size=250, receipt_timeout_seconds=5,
                                receipt_backoff_max_seconds=20), "utf-8")
    data = tmp_path / "data"
    ingest = Ingest(county_broker.address, county_db).start()
    county_broker.stop()
    hub = Producer(config, data, hall_broker.url)
    try:
        hub.wait_for_line("4000")
        hub.kill()
        hub = Producer(config, data, hall_broker.url)
        # A printer's state goes up as telemetry, thinned to what changed.
        printer = DeviceStatus(device="printer-1", state=DeviceState.ONLINE, session=3, kind="printer",
                               version="2.1", detail={"paper": "near_end"})
        # Retained, as every device's status (docs/contract.md): the hub reads it whenever it subscribes.
        publish(hall_broker, [(Topics("test-hall").device_status("printer-1"), printer.model_dump_json().encode())],
                retain=True)
        hub.wait_for_line("done")
        # Everything waits in the outbox, and `hall status` says how much and since when.
        wait_for(lambda: backlog(hall_broker) == COUNT + 1, timeout=20)
        view = read_hall(hall_broker.address, "test-hall")
        shown = render_status(HallStatus(hall="test-hall", hub=view.hub, queue=view.queue,
                                         devices=list(view.devices.values())))
        assert "待上传 10001 条" in shown and "10001 items waiting" in shown  # what `hall status` prints
        assert county_count(county_db, "SELECT count(*) FROM ratings") == 0

        county_broker.start()
        wait_progress(lambda: county_count(county_db, "SELECT count(*) FROM ratings"), COUNT, what="ratings stored")
        wait_for(lambda: backlog(hall_broker) == 0, timeout=30)  # the hub's status, every 10 s
        with psycopg.connect(county_db) as conn:
            rows = conn.execute("SELECT rating_id FROM ratings WHERE hall = 'test-hall' ORDER BY epoch, seq").fetchall()
            assert [r[0] for r in rows] == [f"test-hall-r{i:06d}" for i in range(COUNT)]
            assert conn.execute("SELECT count(DISTINCT seq) FROM ratings").fetchone() == (COUNT,)
            assert conn.execute("SELECT device, paper, version FROM devices").fetchall() == [("printer-1", "near_end", "2.1")]
            assert conn.execute("SELECT link_state FROM halls WHERE hall = 'test-hall'").fetchone() == ("online",)

        # Redelivery: the same message twice, and the same items again under a new message id.
        again = encode_batch(UpKind.RATING, "dup-1", "test-hall", "test-county", "old-epoch", True,
                             [(i + 1, rating(i).model_copy(update={"resident_hash": None}).model_dump_json())
                              for i in range(50)])
        also = again.replace(b'"dup-1"', b'"dup-2"')
        # Garbage of every sort: not JSON, an unknown kind, an identifying field, a foreign hall.
        identifying = encode_batch(UpKind.RATING, "bad-1", "test-hall", "test-county", "e", False,
                                   [(1, rating(COUNT + 1).model_dump_json())])
        foreign = encode_batch(UpKind.RATING, "bad-2", "other-hall", "test-county", "e", False,
                               [(1, rating(COUNT + 2, hall="other-hall").model_copy(
                                   update={"resident_hash": None}).model_dump_json())])
        publish(county_broker, [(UP.up(UpKind.RATING), again), (UP.up(UpKind.RATING), again),
                                (UP.up(UpKind.RATING), also), (UP.up(UpKind.RATING), b"\xff not json"),
                                (UP.up(UpKind.RATING), b"[" * 100_000),
                                (f"{UP.base}/up/photo", b"{}"), (UP.up(UpKind.RATING), identifying),
                                (UP.up(UpKind.RATING), foreign)])
        wait_for(lambda: county_count(county_db, "SELECT count(*) FROM quarantine") == 5, timeout=20)
        with psycopg.connect(county_db) as conn:
            reasons = sorted(r[0] for r in conn.execute("SELECT reason FROM quarantine"))
            detail = conn.execute("SELECT detail FROM quarantine WHERE reason = 'county.quarantine.invalid'").fetchone()
            assert conn.execute("SELECT count(*) FROM messages WHERE msg_id IN ('dup-1', 'dup-2')").fetchone() == (2,)
            assert conn.execute("SELECT count(*) FROM ratings").fetchone() == (COUNT,)
        assert reasons == ["county.quarantine.invalid", "county.quarantine.not_json", "county.quarantine.not_json",
                           "county.quarantine.topic_mismatch", "county.quarantine.unknown_kind"]
        assert detail is not None and "resident_hash" in detail[0]
    finally:
        hub.stop()
        ingest.stop()


def test_rows_stay_until_the_county_broker_acknowledges(tmp_path, hall_broker):
    """A broker that never answers (no PUBACK, so no receipt either) leaves everything in the outbox."""
    silent = _SilentBroker()
    try:
        config = tmp_path / "hall.toml"
        config.write_text(hall_toml(f"mqtt://127.0.0.1:{silent.port}"), "utf-8")
        hub = Producer(config, tmp_path / "data", hall_broker.url)
        hub.wait_for_line("done", timeout=60)
        wait_for(lambda: silent.received > 1000, timeout=20)  # CONNECT, status and batches: sent, never acknowledged
        wait_for(lambda: backlog(hall_broker) == COUNT, timeout=20)  # the hub's status, every 10 s
        time.sleep(2)
        assert backlog(hall_broker) == COUNT
        hub.stop()
    finally:
        silent.close()


class _SilentBroker:
    """Accepts the MQTT connection (CONNACK) and reads publishes, but never acknowledges one."""

    def __init__(self) -> None:
        import socket
        import threading

        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = 0
        self._closing = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while not self._closing:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn) -> None:  # noqa: ANN001 - a socket
        connected = False
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            if not connected:
                conn.sendall(bytes([0x20, 2, 0, 0]))  # CONNACK, accepted
                connected = True
            self.received += len(chunk)

    def close(self) -> None:
        self._closing = True
        self.server.close()



def test_a_killed_hub_reads_offline_at_the_county_with_its_last_backlog(tmp_path, hall_broker, county_broker,
                                                                       county_db):
    config = tmp_path / "hall.toml"
    config.write_text(hall_toml(county_broker.url), "utf-8")
    ingest = Ingest(county_broker.address, county_db).start()
    hub = Producer(config, tmp_path / "data", hall_broker.url, count=50)
    link = "SELECT link_state FROM halls WHERE hall = 'test-hall'"
    try:
        hub.wait_for_line("done")
        wait_progress(lambda: county_count(county_db, "SELECT count(*) FROM ratings"), 50, what="ratings stored")
        with psycopg.connect(county_db) as conn:
            wait_for(lambda: conn.execute(link).fetchone() == ("online",), timeout=60)
        hub.kill()  # the broker sees the connection drop and sends the hall's Will
        with psycopg.connect(county_db, autocommit=True) as conn:
            wait_for(lambda: conn.execute(link).fetchone() == ("offline",), timeout=60)
    finally:
        hub.stop()
        ingest.stop()
