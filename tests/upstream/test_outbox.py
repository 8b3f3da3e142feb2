"""The outbox in the hub's SQLite: same transaction as the change, no resident hash, statistics, the disk cap."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest
from hallkit.broker.hub import Hub
from hallkit.contracts.hall import DeviceState, DeviceStatus, Topics
from hallkit.contracts.uplink import QueueStats, UpKind
from hallkit.uplink.outbox import Outbox
from hallkit.uplink.table import ROW_OVERHEAD, SCHEMA, add_item, delete_rows, read_size
from hallkit.uplink.testing import case, hall_config, rating, unreachable_url

from hallkit.queue.models import CallNext, Complete, TakeTicket
from hallkit.rating.models import CaseStep, Level
from hallkit.testing import MONDAY
from tests.broker.test_hub import wait_for


@pytest.fixture
def hub(tmp_path, hall_broker):
    config = hall_config(unreachable_url(), disk_cap_mb=0.05, alarm_at=0.5)
    assert config.upstream is not None
    hub = Hub(config, hall_broker.address, tmp_path / "data", "normal", parts=[Outbox(config, config.upstream)])
    hub.start()
    yield hub
    hub.stop()


def outbox_of(hub: Hub) -> Outbox:
    part = hub.parts[0]
    assert isinstance(part, Outbox)
    return part


def rows(hub: Hub, kind: str | None = None) -> list[dict[str, object]]:
    with hub.queue.lock:
        found = hub.queue.store.conn.execute(
            "SELECT body FROM outbox WHERE ? IS NULL OR kind = ? ORDER BY seq", (kind, kind)).fetchall()
    return [json.loads(body) for (body,) in found]


def test_records_enter_with_their_transaction_and_without_the_resident_hash(hub):
    with hub.queue.lock, hub.queue.store.transaction() as conn:
        hub.record(conn, rating(1, level=Level.DISSATISFIED))
        hub.record(conn, case(1, "test-hall-r000001", CaseStep.OPENED))
    with pytest.raises(RuntimeError), hub.queue.lock, hub.queue.store.transaction() as conn:
        hub.record(conn, rating(2))
        raise RuntimeError("the rating part's transaction fails after recording")
    with pytest.raises(TypeError), hub.queue.lock, hub.queue.store.transaction() as conn:
        hub.record(conn, DeviceStatus(device="x", state=DeviceState.ONLINE))
    assert [r.get("update_id") or r.get("rating_id") for r in rows(hub)] == ["test-hall-r000001", "test-hall-u000001"]
    assert rows(hub, "rating")[0]["resident_hash"] is None
    # Recording the same rating again (a retried request) adds nothing.
    with hub.queue.lock, hub.queue.store.transaction() as conn:
        hub.record(conn, rating(1, level=Level.DISSATISFIED))
    assert len(rows(hub)) == 2


def test_statistics_every_interval_and_final_at_day_close(hub):
    queue = hub.queue
    queue.execute(TakeTicket(service_id="social"), MONDAY)
    queue.execute(TakeTicket(service_id="pension"), MONDAY + timedelta(minutes=1))
    queue.execute(CallNext(window=1), MONDAY + timedelta(minutes=10))
    queue.execute(Complete(window=1), MONDAY + timedelta(minutes=15))
    outbox = outbox_of(hub)
    queue.clock = lambda: MONDAY + timedelta(minutes=20)
    assert outbox.write_stats()
    interval = QueueStats.model_validate(rows(hub, "stats")[0])
    assert not interval.final and interval.as_of == MONDAY + timedelta(minutes=20)  # on the queue's clock
    assert (interval.total.taken, interval.total.served, interval.total.waiting) == (2, 1, 1)
    assert interval.total.mean_wait_seconds == 600.0
    assert interval.total.longest_wait_seconds == 19 * 60.0  # the pension ticket, taken at minute 1
    assert {s.service_id: s.longest_wait_seconds for s in interval.services} == {"social": 0.0, "pension": 1140.0}
    assert [w.window for w in interval.windows] == [1]
    # Nothing happened since, but the pension ticket still waits: its wait grew, newer figures go up.
    queue.clock = lambda: MONDAY + timedelta(minutes=25)
    assert outbox.write_stats()
    later = QueueStats.model_validate(rows(hub, "stats")[1])
    assert later.stats_id != interval.stats_id and later.total.longest_wait_seconds == 24 * 60.0
    # The next day's first ticket opens a new day: the final figures of Monday go in that transaction.
    queue.execute(TakeTicket(service_id="social"), MONDAY + timedelta(days=1))
    final = QueueStats.model_validate(rows(hub, "stats")[-1])
    assert final.final and final.day == interval.day
    assert (final.total.taken, final.total.served, final.total.abandoned, final.total.waiting) == (2, 1, 1, 0)
    assert final.total.longest_wait_seconds == 0.0  # nobody waits once the day is closed
    by_service = {s.service_id: s for s in final.services}
    assert by_service["pension"].abandoned == 1 and by_service["social"].served == 1
    # Tuesday: once its only ticket is served, nothing happening means no second copy.
    queue.execute(CallNext(window=1), MONDAY + timedelta(days=1, minutes=1))
    queue.execute(Complete(window=1), MONDAY + timedelta(days=1, minutes=5))
    assert outbox.write_stats()
    assert not outbox.write_stats()


def status_payload(device: str, paper: str, session: int = 1) -> bytes:
    return DeviceStatus(device=device, state=DeviceState.ONLINE, session=session, kind="printer", version="1.0",
                        detail={"paper": paper}).model_dump_json().encode()


def test_telemetry_only_on_change_and_bad_status_refused(hub):
    outbox = outbox_of(hub)
    topic = Topics("test-hall").device_status("printer-1")
    outbox.handle(topic, status_payload("printer-1", "ok"))
    outbox.handle(topic, status_payload("printer-1", "ok"))  # the retained status read again
    outbox.handle(topic, status_payload("printer-1", "near_end"))
    outbox.handle(topic, b"not json")
    outbox.handle(topic, status_payload("kiosk-1", "ok"))  # another device's status on this topic
    assert [r["paper"] for r in rows(hub, "telemetry")] == ["ok", "near_end"]
    assert hub.refusals["hub.invalid"] == 1 and hub.refusals["hub.device_mismatch"] == 1


def test_disk_cap_thins_telemetry_first_and_never_drops_ratings(hub):
    outbox = outbox_of(hub)
    topics = Topics("test-hall")
    for i in range(200):
        for device in ("printer-1", "kiosk-1"):
            outbox.handle(topics.device_status(device), status_payload(device, ("ok", "near_end")[i % 2], session=i))
    for i in range(200):
        with hub.queue.lock, hub.queue.store.transaction() as conn:
            hub.record(conn, rating(i))
    telemetry = rows(hub, "telemetry")
    assert len(rows(hub, "rating")) == 200  # over the cap, and all kept
    assert len(telemetry) < 100 and {t["device"] for t in telemetry} == {"printer-1", "kiosk-1"}
    assert telemetry[-1]["session"] == 199  # thinning keeps each device's newest state
    outbox.handle(topics.device_status("printer-1"), status_payload("printer-1", "out", session=500))
    status = outbox.status()
    assert status["uplink.alarm"] is True and int(status["uplink.dropped"] or 0) >= 1
    with hub.queue.lock:
        assert read_size(hub.queue.store.conn) == counted(hub.queue.store.conn)  # thinning took its rows off
    wait_for(lambda: outbox.status()["uplink.backlog"] == len(rows(hub)))


def counted(conn: sqlite3.Connection) -> tuple[int, int]:
    items, size = conn.execute("SELECT count(*), total(length(body)) FROM outbox").fetchone()
    return items, int(size) + items * ROW_OVERHEAD


def test_the_size_follows_rows_in_and_out_also_in_an_outbox_with_the_old_trigger(tmp_path):
    conn = sqlite3.connect(tmp_path / "outbox.sqlite3", isolation_level=None)
    for statement in SCHEMA:
        conn.execute(statement)
    # An outbox made before delete_rows counted rows out by a trigger: opening it drops the trigger.
    conn.execute(f"""CREATE TRIGGER outbox_removed AFTER DELETE ON outbox BEGIN
        UPDATE outbox_size SET items = items - 1, bytes = bytes - length(OLD.body) - {ROW_OVERHEAD}; END""")
    for statement in SCHEMA:
        conn.execute(statement)
    for i in range(1, 41):
        add_item(conn, UpKind.RATING, f"r{i}", rating(i))
    assert read_size(conn) == counted(conn) and read_size(conn)[0] == 40
    assert delete_rows(conn, "seq BETWEEN ? AND ?", (5, 14)) == 10
    assert delete_rows(conn, "seq BETWEEN ? AND ?", (5, 14)) == 0  # a receipt applied twice
    assert delete_rows(conn, "seq BETWEEN ? AND ?", (30, 99)) == 11
    assert read_size(conn) == counted(conn) and read_size(conn)[0] == 19
