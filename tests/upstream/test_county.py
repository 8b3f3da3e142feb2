"""The county side: PostgreSQL away only delays, workers split the load, migrations, report and fleet."""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hallkit.contracts.uplink import DeviceTelemetry, QueueFigures, QueueStats, UpKind, UpTopics, encode_batch
from hallkit.county.cli import register
from hallkit.county.ingest import Ingest
from hallkit.county.report import county_report
from hallkit.county.schema import LATEST, TICKET_DAY, SchemaTooNew, migrate
from hallkit.county.store import parse, write
from hallkit.uplink.testing import SERVED, case, rating

from hallkit.rating.models import CaseStep, Level, RatingChannel
from tests.broker.test_hub import wait_for
from tests.upstream.test_uplink import county_count, publish

PG_PORT = 5432


class Proxy:
    """A TCP relay to PostgreSQL that can be cut (every connection dropped) and restored."""

    def __init__(self) -> None:
        self.port = _free_port()
        self._sockets: list[socket.socket] = []
        self._server: socket.socket | None = None
        self.up()

    def up(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close alone does not
            self._server.close()
            self._server = None
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", PG_PORT))
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def migrated(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
    return dsn


def rating_batches(count: int, per_batch: int, hall: str = "test-hall") -> list[tuple[str, bytes]]:
    topic = UpTopics("test-county", hall).up(UpKind.RATING)
    return [(topic, encode_batch(UpKind.RATING, f"{hall}-m{start}", hall, "test-county", "epoch-1", False,
                                 [(i + 1, rating(i, hall=hall).model_copy(update={"resident_hash": None})
                                   .model_dump_json()) for i in range(start, min(count, start + per_batch))]))
            for start in range(0, count, per_batch)]


def test_postgres_unreachable_only_delays(county_broker, county_db):
    proxy = Proxy()
    dsn = migrated(county_db).replace(":5432/", f":{proxy.port}/")
    ingest = Ingest(county_broker.address, dsn).start()
    try:
        batches = rating_batches(600, 50)
        publish(county_broker, batches[:4])
        wait_for(lambda: county_count(county_db, "SELECT count(*) FROM ratings") == 200)
        proxy.down()
        publish(county_broker, batches[4:])
        # Received, held (in the inbox or in the writer's group, waiting for PostgreSQL), not stored.
        wait_for(lambda: ingest.received >= len(batches) and ingest.messages == 4)
        assert county_count(county_db, "SELECT count(*) FROM ratings") == 200
        proxy.up()
        wait_for(lambda: county_count(county_db, "SELECT count(*) FROM ratings") == 600, timeout=30)
        assert county_count(county_db, "SELECT count(*) FROM quarantine") == 0
    finally:
        ingest.stop()
        proxy.down()


def test_two_workers_split_the_load(county_broker, county_db):
    migrated(county_db)
    workers = [Ingest(county_broker.address, county_db, worker_id=str(n)).start() for n in (1, 2)]
    try:
        publish(county_broker, rating_batches(2000, 20) + rating_batches(500, 20, hall="other-hall"))
        wait_for(lambda: county_count(county_db, "SELECT count(*) FROM ratings") == 2500, timeout=30)
        assert all(w.messages > 10 for w in workers), [w.messages for w in workers]
    finally:
        for worker in workers:
            worker.stop()


def test_values_postgresql_refuses_quarantine_their_message_only(county_broker, county_db):
    """Ratings travel to PostgreSQL as binary COPY rows: a value it cannot hold (an int past int4 or
    int8, a NUL in a text) still quarantines that message alone as ``db_rejected``, nothing wraps
    round, and a time without an offset is read in the session's zone as it always was."""
    migrated(county_db)
    good = rating(1).model_copy(update={"resident_hash": None}).model_dump_json()

    def variant(n: int, old: str, new: str, seq: int | None = None) -> tuple[str, bytes]:
        body = good.replace("test-hall-r000001", f"test-hall-r{n:06d}")
        assert old in body
        return (UpTopics("test-county", "test-hall").up(UpKind.RATING),
                encode_batch(UpKind.RATING, f"m{n}", "test-hall", "test-county", "epoch-1", False,
                             [(seq or n, body.replace(old, new))]))

    served = rating(1).served_at
    naive = served.replace(tzinfo=None).isoformat()
    messages = [variant(1, '"window":', '"window":'), variant(2, '"window":2', '"window":4294967296'),
                variant(3, '"text":""', '"text":"a\\u0000b"'), variant(4, '"window":', '"window":', seq=2**64),
                variant(5, served.isoformat().replace("+00:00", "Z"), naive)]
    ingest = Ingest(county_broker.address, county_db).start()
    try:
        publish(county_broker, messages)
        wait_for(lambda: ingest.messages == 5)
    finally:
        ingest.stop()
    with psycopg.connect(county_db) as conn:
        assert conn.execute("SELECT rating_id, window_no, served_at FROM ratings ORDER BY 1").fetchall() == [
            ("test-hall-r000001", 2, served), ("test-hall-r000005", 2, served)]  # the session here is UTC
        assert conn.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1").fetchall() == [
            ("county.quarantine.db_rejected", 3)]


def test_migrations_apply_once_and_refuse_a_newer_schema(county_db):
    with psycopg.connect(county_db, autocommit=True) as conn:
        assert migrate(conn) == 0
        assert migrate(conn) == LATEST
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, 'from the future')", (LATEST + 1,))
        with pytest.raises(SchemaTooNew):
            migrate(conn)


def test_ticket_day_is_inlined_and_names_the_days_it_did(county_db):
    """Migration 5 rewrote ``ticket_day`` for speed: the same day (or none) for every id, every day of
    four years and dates that do not exist, and the planner inlines it (no call per row)."""
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        conn.execute(TICKET_DAY.replace("FUNCTION ticket_day(", "FUNCTION ticket_day_4(", 1))
        conn.execute("""CREATE TEMP TABLE ids AS SELECT to_char(date '2023-01-01' + n, 'YYYYMMDD') || '-A001' AS id
                        FROM generate_series(0, 4 * 366) AS n""")
        conn.execute("""INSERT INTO ids VALUES ('20230229-A001'), ('20240229-A001'), ('21000229-A001'),
            ('20000229-A001'), ('20260230-A001'), ('20260431-A001'), ('20261301-A001'), ('20260001-A001'),
            ('20260100-A001'), ('00010101-A001'), ('20260101A001'), ('2026010-A001'), (''), ('x')""")
        assert conn.execute("SELECT count(*), count(ticket_day(id)) FROM ids").fetchone() == (4 * 366 + 15, 4 * 366 + 3)
        assert conn.execute("SELECT count(*) FROM ids WHERE ticket_day(id) IS DISTINCT FROM ticket_day_4(id)"
                             ).fetchone() == (0,)
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN VERBOSE SELECT ticket_day(id) FROM ids"))
        assert "ticket_day" not in plan and "make_date" in plan, plan


def _store(conn: psycopg.Connection, kind: UpKind, hall: str, bodies: list[str], first_seq: int) -> None:
    payload = encode_batch(kind, f"{hall}-{kind.value}-{first_seq}", hall, "test-county", "e1", False,
                           [(first_seq + i, body) for i, body in enumerate(bodies)])
    parsed = parse(UpTopics("test-county", hall).up(kind), payload)
    with conn.transaction():
        write(conn, [parsed])


def test_the_fleet_keeps_each_devices_newest_state(county_db):
    """Telemetry is copied in a group at a time: per device the newest observation wins, of two at the
    same time the later in the group, and an older one arriving later changes nothing."""
    at = datetime(2026, 5, 4, 2, tzinfo=UTC)

    def seen(n: int, device: str, state: str, minutes: int) -> str:
        return DeviceTelemetry(telemetry_id=f"t{n}", hall_id="test-hall", device=device, kind="printer", state=state,
                               session=n, observed_at=at + timedelta(minutes=minutes),
                               faults=["printer.paper_out"] if n % 2 else []).model_dump_json()

    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        _store(conn, UpKind.TELEMETRY, "test-hall", [seen(1, "p-1", "online", 5), seen(2, "p-1", "offline", 9),
                                                     seen(3, "p-1", "online", 9), seen(4, "p-2", "offline", 1),
                                                     seen(5, "p-2", "online", 0)], 1)
        _store(conn, UpKind.TELEMETRY, "test-hall", [seen(6, "p-1", "offline", 7)], 10)
        assert conn.execute("SELECT device, state, session, faults, observed_at FROM devices ORDER BY 1").fetchall() == [
            ("p-1", "online", 3, ["printer.paper_out"], at + timedelta(minutes=9)),
            ("p-2", "offline", 4, [], at + timedelta(minutes=1))]
        assert conn.execute("SELECT count(*) FROM telemetry").fetchone() == (6,)


def test_report_and_devices(county_db, capsys):
    day = SERVED.astimezone(ZoneInfo("Asia/Shanghai")).date()
    now = SERVED + timedelta(days=10)
    figures = QueueFigures(taken=12, served=10, abandoned=1, waiting=1, mean_wait_seconds=300.0, p90_wait_seconds=600.0)
    stats = QueueStats(stats_id="s1", hall_id="test-hall", day=day, as_of=SERVED + timedelta(hours=8), final=True,
                       total=figures, services=[], windows=[])
    ratings = [rating(i, level=Level.DISSATISFIED if i < 2 else Level.SATISFIED) for i in range(8)]
    ratings.append(rating(8).model_copy(update={"channel": RatingChannel.DEFAULT}))
    cases = [case(1, ratings[0].rating_id, CaseStep.OPENED, deadline=date(2026, 11, 30)),
             case(2, ratings[1].rating_id, CaseStep.OPENED, deadline=day + timedelta(days=30)),
             case(3, ratings[1].rating_id, CaseStep.CLOSED, deadline=day + timedelta(days=30))]
    printer = DeviceTelemetry(telemetry_id="t1", hall_id="test-hall", device="printer-1", kind="printer",
                              state="offline", session=2, version="1.2",
                              observed_at=datetime.now(UTC) - timedelta(hours=5),
                              paper="out", faults=["printer.cover_open"])
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        _store(conn, UpKind.STATS, "test-hall", [stats.model_dump_json()], 1)
        _store(conn, UpKind.RATING, "test-hall",
               [r.model_copy(update={"resident_hash": None}).model_dump_json() for r in ratings], 2)
        _store(conn, UpKind.CASE, "test-hall", [c.model_dump_json() for c in cases], 20)
        _store(conn, UpKind.TELEMETRY, "test-hall", [printer.model_dump_json()], 30)
        conn.execute("UPDATE halls SET last_seen = %s", (now - timedelta(hours=30),))
        report = county_report(conn, day, ZoneInfo("Asia/Shanghai"), silent_hours=24, now=now)
    [row] = report.halls
    assert (row.taken, row.served, row.mean_wait_minutes, row.p90_wait_minutes) == (12, 10, 5.0, 10.0)
    assert (row.ratings, row.bad_ratings, row.satisfaction) == (9, 2, round(7 / 9, 4))
    assert row.coverage == 0.8  # 8 given over 10 served; the default one does not count
    assert (row.cases_open, row.cases_overdue) == (1, 1)
    assert report.silent_halls == ["test-hall"]

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    for argv in (["county", "report", "--db", county_db, "--day", day.isoformat(), "--json"],
                 ["county", "devices", "--db", county_db, "--json"],
                 ["county", "report", "--db", county_db, "--day", day.isoformat()],
                 ["county", "devices", "--db", county_db]):
        args = parser.parse_args(argv)
        assert args.handler(args) == 0
    out = capsys.readouterr().out
    decoded = json.JSONDecoder()
    first, end = decoded.raw_decode(out)
    fleet, _ = decoded.raw_decode(out[end:].lstrip())
    assert first["halls"][0]["hall"] == "test-hall"
    assert fleet["offline"] == 1 and fleet["paper_out"] == 1 and fleet["faulty"] == 1
    assert fleet["devices"][0]["offline_hours"] >= 5
    assert "满意率" in out and "satisfaction" in out and "无纸 / out of paper" in out


def test_a_stale_will_does_not_mark_a_reconnected_hall_offline(county_db):
    from hallkit.contracts.uplink import UplinkStatus

    topic = UpTopics("test-county", "test-hall").status
    online = UplinkStatus(hall="test-hall", county="test-county", state="online", session=5,
                          ts=datetime(2026, 11, 23, 3, tzinfo=UTC))
    stale = online.model_copy(update={"state": "offline", "session": 4, "ts": datetime(2026, 11, 23, 4, tzinfo=UTC)})
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        for status in (online, stale):
            with conn.transaction():
                write(conn, [parse(topic, status.model_dump_json().encode())])
        assert conn.execute("SELECT link_state, link_session FROM halls").fetchone() == ("online", 5)


def test_a_will_for_the_current_session_marks_the_hall_offline_and_keeps_its_last_backlog(county_db):
    """A Will is stamped when its connection began, before the hall's later reports of the same session."""
    from hallkit.contracts.uplink import UplinkStatus

    topic = UpTopics("test-county", "test-hall").status
    will = UplinkStatus(hall="test-hall", county="test-county", state="offline", session=7,
                        ts=datetime(2026, 11, 23, 3, tzinfo=UTC))
    online = will.model_copy(update={"state": "online", "ts": datetime(2026, 11, 23, 5, tzinfo=UTC),
                                     "backlog": 120, "unsent": 20, "awaiting_receipt": 100})
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        for group in ([online], [will]):
            with conn.transaction():
                write(conn, [parse(topic, s.model_dump_json().encode()) for s in group])
        assert conn.execute("SELECT link_state, link_session, backlog, unsent, awaiting_receipt, link_at FROM halls"
                            ).fetchone() == ("offline", 7, 120, 20, 100, online.ts)
        # Both in one message group: the Will is still the last word of its session.
        with conn.transaction():
            write(conn, [parse(topic, s.model_dump_json().encode())
                         for s in (will.model_copy(update={"session": 8}), online.model_copy(update={"session": 8}))])
        assert conn.execute("SELECT link_state, link_session FROM halls").fetchone() == ("offline", 8)
