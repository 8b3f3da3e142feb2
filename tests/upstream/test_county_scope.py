"""The county scopes every id by the sending hall, and keeps each hall's junk within a budget.

On real PostgreSQL, through the county's own parse and write (what the ingest runs per group).
The hall of a message is its topic's: the broker's ACL lets a hall's login write only its own
topic tree, so the topic names the sender.
"""

from __future__ import annotations

import argparse
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from hallkit.contracts.uplink import DeviceTelemetry, QueueFigures, QueueStats, UpKind, UpTopics, encode_batch
from hallkit.county.cli import register
from hallkit.county.quarantine import UNPARSED_HALL, QuarantineLimits, QuarantineUse, admit
from hallkit.county.report import county_report, render_report
from hallkit.county.schema import MIGRATIONS, migrate
from hallkit.county.store import Parsed, parse, write
from hallkit.uplink.testing import SERVED, case, rating

from hallkit.rating.models import CaseStep, Level

COUNTY = "test-county"
ZONE = ZoneInfo("Asia/Shanghai")
DAY = SERVED.astimezone(ZONE).date()
NOW = datetime(2026, 11, 23, 9, 30, 5, tzinfo=UTC)


def batch(kind: UpKind, hall: str, msg_id: str, bodies: list[str], first_seq: int = 1) -> tuple[str, bytes]:
    payload = encode_batch(kind, msg_id, hall, COUNTY, "e1", False,
                           [(first_seq + i, body) for i, body in enumerate(bodies)])
    return UpTopics(COUNTY, hall).up(kind), payload


def store(conn: psycopg.Connection, messages: list[tuple[str, bytes]],
          limits: QuarantineLimits = QuarantineLimits(), now: datetime = NOW) -> int:
    parsed: list[Parsed] = [parse(topic, payload) for topic, payload in messages]
    with conn.transaction():
        return write(conn, parsed, limits, now)


def ratings_of(hall: str, ids: range, level: Level = Level.VERY_SATISFIED) -> list[str]:
    return [rating(i, hall=hall, level=level).model_copy(update={"resident_hash": None}).model_dump_json()
            for i in ids]


def stats(hall: str, stats_id: str, served: int) -> str:
    figures = QueueFigures(taken=served + 2, served=served, abandoned=1, waiting=1, mean_wait_seconds=300.0,
                           p90_wait_seconds=600.0)
    return QueueStats(stats_id=stats_id, hall_id=hall, day=DAY, as_of=SERVED + timedelta(hours=8), final=True,
                      total=figures, services=[], windows=[]).model_dump_json()


def telemetry(hall: str, telemetry_id: str, version: str) -> str:
    return DeviceTelemetry(telemetry_id=telemetry_id, hall_id=hall, device="printer-1", kind="printer",
                           state="online", session=1, version=version, observed_at=SERVED, paper=None,
                           faults=[]).model_dump_json()


def case_of(hall: str, i: int, rating_id: str, step: CaseStep) -> str:
    return case(i, rating_id, step, hall=hall).model_copy(update={"update_id": f"u{i}"}).model_dump_json()


def hall_rows(conn: psycopg.Connection, hall: str) -> dict[str, list[tuple[object, ...]]]:
    """What the county holds of one hall, table by table."""
    queries = {
        "messages": "SELECT msg_id FROM messages WHERE hall = %s ORDER BY msg_id",
        "ratings": "SELECT rating_id, level FROM ratings WHERE hall = %s ORDER BY rating_id",
        "cases": "SELECT update_id, case_id, step FROM case_updates WHERE hall = %s ORDER BY update_id",
        "stats": "SELECT stats_id, body -> 'total' ->> 'served' FROM queue_stats WHERE hall = %s",
        "telemetry": "SELECT telemetry_id, version FROM telemetry WHERE hall = %s",
    }
    return {name: conn.execute(sql, (hall,)).fetchall() for name, sql in queries.items()}  # type: ignore[arg-type]


def test_a_hall_cannot_preempt_another_halls_ids(county_db):
    """Hall A sends first, on its own topic, under every id hall B will use; B's items are all stored."""
    b_final = f"hall-b-{DAY.isoformat()}-final"
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        # A copies B's message ids too: a known msg_id must not make B's batch look like a repeat.
        hostile = [batch(UpKind.STATS, "hall-a", "hall-b-m1", [stats("hall-a", b_final, served=999)]),
                   batch(UpKind.RATING, "hall-a", "hall-b-m2", [
                       rating(i, hall="hall-a", level=Level.VERY_DISSATISFIED).model_copy(
                           update={"rating_id": f"hall-b-r{i:06d}", "resident_hash": None}).model_dump_json()
                       for i in range(3)]),
                   batch(UpKind.CASE, "hall-a", "hall-b-m3", [case_of("hall-a", 1, "hall-b-r000000",
                                                                      CaseStep.CLOSED)]),
                   batch(UpKind.TELEMETRY, "hall-a", "hall-b-m4", [telemetry("hall-a", "t-b-1", "evil")]),
                   # Claiming to be B in the payload, on A's own topic: refused, and counted as A's.
                   batch(UpKind.RATING, "hall-b", "hall-b-m5", ratings_of("hall-b", range(3, 4)))]
        store(conn, [(topic.replace("/hall/hall-b/", "/hall/hall-a/"), payload) for topic, payload in hostile])
        assert store(conn, [batch(UpKind.STATS, "hall-b", "hall-b-m1", [stats("hall-b", b_final, served=40)]),
                            batch(UpKind.RATING, "hall-b", "hall-b-m2", ratings_of("hall-b", range(3))),
                            batch(UpKind.CASE, "hall-b", "hall-b-m3", [case_of("hall-b", 1, "hall-b-r000000",
                                                                               CaseStep.OPENED)]),
                            batch(UpKind.TELEMETRY, "hall-b", "hall-b-m4", [telemetry("hall-b", "t-b-1", "1.0")])]) \
            == 6

        assert hall_rows(conn, "hall-b") == {
            "messages": [("hall-b-m1",), ("hall-b-m2",), ("hall-b-m3",), ("hall-b-m4",)],
            "ratings": [(f"hall-b-r{i:06d}", int(Level.VERY_SATISFIED)) for i in range(3)],
            "cases": [("u1", "case-hall-b-r000000", "opened")],
            "stats": [(b_final, "40")],
            "telemetry": [("t-b-1", "1.0")],
        }
        # A's own items are A's, under the ids it chose; they count nowhere but at A.
        assert [len(rows) for rows in hall_rows(conn, "hall-a").values()] == [4, 3, 1, 1, 1]
        assert conn.execute("SELECT hall, reason FROM quarantine").fetchall() == [
            ("hall-a", "county.quarantine.topic_mismatch")]
        report = county_report(conn, DAY, ZONE, silent_hours=24, now=NOW)
    by_hall = {row.hall: row for row in report.halls}
    assert (by_hall["hall-b"].served, by_hall["hall-b"].ratings, by_hall["hall-b"].bad_ratings) == (40, 3, 0)
    assert by_hall["hall-b"].cases_open == 1  # A's "closed" step of B's case id is A's own case
    assert (by_hall["hall-a"].served, by_hall["hall-a"].ratings, by_hall["hall-a"].bad_ratings) == (999, 3, 3)


def test_both_halls_items_with_the_same_id_are_both_stored_once(county_db):
    """Ids are each hall's own: the same ids from two halls, in one group and again later, both stored once."""
    def everything(hall: str, served: int, step: CaseStep) -> list[tuple[str, bytes]]:
        return [batch(UpKind.RATING, hall, "m1", [rating(i, hall=hall).model_copy(
                    update={"rating_id": f"r{i}", "resident_hash": None}).model_dump_json() for i in range(5)]),
                batch(UpKind.CASE, hall, "m2", [case_of(hall, 1, "r0", CaseStep.OPENED), case_of(hall, 2, "r0", step)],
                      first_seq=6),
                batch(UpKind.STATS, hall, "m3", [stats(hall, "day-final", served)], first_seq=8),
                batch(UpKind.TELEMETRY, hall, "m4", [telemetry(hall, "t1", f"v{served}")], first_seq=9)]

    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        assert store(conn, everything("hall-a", 10, CaseStep.CLOSED) + everything("hall-b", 20, CaseStep.VERIFIED)) \
            == 2 * 9
        # Sent again: the same message ids, then the same items under new message ids.
        assert store(conn, everything("hall-a", 10, CaseStep.CLOSED) + everything("hall-b", 20, CaseStep.VERIFIED)) \
            == 0
        resent = [(topic, payload.replace(b'"msg_id":"m', b'"msg_id":"again-m'))
                  for topic, payload in everything("hall-b", 20, CaseStep.VERIFIED)]
        assert store(conn, resent) == 0
        for hall, served, step in (("hall-a", "10", "closed"), ("hall-b", "20", "verified")):
            rows = hall_rows(conn, hall)
            assert [len(r) for r in rows.values()] == [4 if hall == "hall-a" else 8, 5, 2, 1, 1], (hall, rows)
            assert rows["stats"] == [("day-final", served)]
            assert rows["cases"][-1][2] == step
        # Each hall's case on its own rating r0: the join is on (hall, rating id).
        joined = conn.execute(
            """SELECT c.hall, r.hall, count(*) FROM case_updates c JOIN ratings r USING (hall, rating_id)
               GROUP BY c.hall, r.hall ORDER BY c.hall""").fetchall()
        assert joined == [("hall-a", "hall-a", 2), ("hall-b", "hall-b", 2)]
        assert conn.execute("SELECT hall, device, version FROM devices ORDER BY hall").fetchall() == [
            ("hall-a", "printer-1", "v10"), ("hall-b", "printer-1", "v20")]
        report = county_report(conn, DAY, ZONE, silent_hours=24, now=NOW)
    assert [(r.hall, r.served, r.ratings, r.cases_open) for r in report.halls] == [
        ("hall-a", 10, 5, 0), ("hall-b", 20, 5, 1)]


def test_admit_keeps_a_halls_budget_per_clock_window():
    limits = QuarantineLimits(messages_per_minute=2, bytes_per_hour=250, payload_cap=100)
    fresh = QuarantineUse(NOW, 0, NOW, 0)
    first = admit(fresh, [500, 10, 10], limits, NOW)
    assert first.kept == (True, True, False)  # the third is over 2 a minute
    assert (first.dropped_messages, first.dropped_bytes, first.truncated_messages) == (1, 10, 1)
    assert first.use == QuarantineUse(NOW.replace(second=0), 2, NOW.replace(minute=0, second=0), 110)
    # A new minute has room for messages; the hour has 140 bytes left: a capped 100, not 100 more, then 1.
    later = admit(first.use, [300, 300, 1], limits, NOW + timedelta(minutes=1))
    assert later.kept == (True, False, True)
    assert later.use.hour_bytes == 211
    # A worker whose clock lags shares the newer window instead of resetting it.
    lagging = admit(later.use, [1, 1], limits, NOW)
    assert lagging.kept == (False, False)
    assert admit(later.use, [100], limits, NOW + timedelta(hours=1)).kept == (True,)


def test_quarantine_limits_hold_per_hall_and_count_drops(county_db, capsys):
    """Five 5 MB junk messages from one hall: a capped few kept, the rest counted; other halls unaffected."""
    limits = QuarantineLimits(messages_per_minute=3, bytes_per_hour=16 * 1024, payload_cap=4096)
    junk = b"x" * (5 * 1024 * 1024)
    topic_a, topic_b = UpTopics(COUNTY, "hall-a").up(UpKind.RATING), UpTopics(COUNTY, "hall-b").up(UpKind.RATING)
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        store(conn, [(topic_a, junk)] * 5 + [(topic_b, b"not json")], limits)
        # Later in the same hour: the message budget is new, the byte budget (16 KiB) is not.
        for minute in range(1, 4):
            store(conn, [(topic_a, junk)], limits, NOW + timedelta(minutes=minute))
        store(conn, [("county/v1/test-county/hall/Hall A!/up/rating", b"{}"), ("elsewhere", b"{}")], limits)
        store(conn, [(UpTopics(COUNTY, "hall-b").status, b"{")], limits)
        rows = conn.execute("SELECT hall, octet_length(payload), size FROM quarantine ORDER BY id").fetchall()
        kept_a = ("hall-a", 4096, len(junk))
        assert rows == [kept_a] * 3 + [("hall-b", 8, 8), kept_a, (UNPARSED_HALL, 2, 2), (UNPARSED_HALL, 2, 2),
                                       ("hall-b", 1, 1)]
        assert {hall: counts for hall, *counts in conn.execute(
            "SELECT hall, dropped_messages, dropped_bytes, truncated_messages FROM quarantine_halls")} == {
            UNPARSED_HALL: [0, 0, 0], "hall-a": [4, 4 * len(junk), 4], "hall-b": [0, 0, 0]}
        report = county_report(conn, DAY, ZONE, silent_hours=24, now=NOW)
    assert report.quarantined == 8
    assert {q.hall: (q.kept, q.dropped, q.dropped_bytes) for q in report.quarantine} == {
        UNPARSED_HALL: (2, 0, 0), "hall-a": (4, 4, 4 * len(junk)), "hall-b": (2, 0, 0)}

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["county", "report", "--db", county_db, "--day", DAY.isoformat()])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert render_report(report).splitlines()[-5:] == out.splitlines()[-5:]  # the title, headers, three halls
    [line_a] = [line for line in out.splitlines() if line.startswith("hall-a")]
    assert line_a.split() == ["hall-a", "4", "16.0", "KiB", "4", "20.0", "MiB", "4"]
    assert "超限丢弃" in out and "dropped" in out


def test_workers_share_a_halls_quarantine_budget(county_db):
    """Two ingest workers' connections storing one hall's junk at once keep no more than its budget."""
    limits = QuarantineLimits(messages_per_minute=7, bytes_per_hour=1 << 20, payload_cap=1024)
    topic = UpTopics(COUNTY, "hall-a").up(UpKind.RATING)
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
    start = threading.Barrier(2)

    def worker() -> None:
        with psycopg.connect(county_db, autocommit=True) as conn:
            start.wait()
            for _ in range(20):
                store(conn, [(topic, b"junk"), (UpTopics(COUNTY, "hall-b").up(UpKind.RATING), b"junk")], limits)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with psycopg.connect(county_db, autocommit=True) as conn:
        assert conn.execute("SELECT hall, count(*) FROM quarantine GROUP BY hall ORDER BY hall").fetchall() == [
            ("hall-a", 7), ("hall-b", 7)]
        assert conn.execute("SELECT hall, dropped_messages FROM quarantine_halls ORDER BY hall").fetchall() == [
            ("hall-a", 33), ("hall-b", 33)]


def test_a_schema_1_database_migrates_to_hall_scoped_keys_with_its_data(county_db):
    """A county database written by schema 1 (global ids) keeps every row and takes (hall, id) keys."""
    [first] = [m for m in MIGRATIONS if m.version == 1]
    with psycopg.connect(county_db, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("""CREATE TABLE schema_migrations (
                version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())""")
            for statement in first.statements:
                conn.execute(statement)  # type: ignore[arg-type]  # the migration's constant SQL
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (1, %s)", (first.name,))
        # Rows as schema 1 wrote them.
        conn.execute("""INSERT INTO messages (msg_id, hall, kind, items, historical, sent_at)
                        VALUES ('m1', 'hall-a', 'rating', 1, false, %s)""", (SERVED,))
        conn.execute(
            """INSERT INTO ratings (rating_id, hall, epoch, seq, region_code, service_event_id, ticket_id,
                   ticket_number, service_code, service_name, department, window_no, channel, level, score, tags,
                   comment, served_at, rated_at)
               VALUES ('r1', 'hall-a', 'e1', 1, '652323100201', 'ev-1', 't1', 'A001', 'social', '低保申请', '民政', 1,
                       'pad', 2, 2, '[]', '', %s, %s)""", (SERVED, SERVED))
        conn.execute("""INSERT INTO case_updates (update_id, hall, epoch, seq, case_id, rating_id, step, by_staff, at,
                            note, deadline) VALUES ('u1', 'hall-a', 'e1', 2, 'c1', 'r1', 'opened', 'manager', %s, '',
                            %s)""", (SERVED, date(2026, 11, 30)))
        conn.execute("""INSERT INTO queue_stats (stats_id, hall, epoch, seq, day, as_of, final, body)
                        VALUES ('day-final', 'hall-a', 'e1', 3, %s, %s, true, %s::jsonb)""",
                     (DAY, SERVED, stats("hall-a", "day-final", 10)))
        conn.execute("""INSERT INTO telemetry (telemetry_id, hall, epoch, seq, device, kind, state, session, version,
                            observed_at, faults) VALUES ('t1', 'hall-a', 'e1', 4, 'printer-1', 'printer', 'online',
                            1, '1.0', %s, '[]')""", (SERVED,))
        conn.execute("""INSERT INTO quarantine (topic, payload, reason, detail) VALUES
                        ('county/v1/test-county/hall/hall-a/up/photo', 'abc', 'county.quarantine.unknown_kind', ''),
                        ('county/v1/test-county/hall/hall-b/status', '{', 'county.quarantine.not_json', ''),
                        ('somewhere/else', 'x', 'county.quarantine.unknown_topic', '')""")

        assert migrate(conn) == 1
        assert [len(rows) for rows in hall_rows(conn, "hall-a").values()] == [1, 1, 1, 1, 1]
        assert conn.execute("SELECT hall, size FROM quarantine ORDER BY id").fetchall() == [
            ("hall-a", 3), ("hall-b", 1), (UNPARSED_HALL, 1)]
        keys = dict(conn.execute(
            """SELECT c.conrelid::regclass::text, array_agg(a.attname ORDER BY k.n)
               FROM pg_constraint c, unnest(c.conkey) WITH ORDINALITY AS k(attnum, n), pg_attribute a
               WHERE c.contype = 'p' AND a.attrelid = c.conrelid AND a.attnum = k.attnum
                 AND c.conrelid::regclass::text IN ('messages', 'ratings', 'case_updates', 'queue_stats', 'telemetry')
               GROUP BY c.conrelid""").fetchall())
        assert keys == {"messages": ["hall", "msg_id"], "ratings": ["hall", "rating_id"],
                        "case_updates": ["hall", "update_id"], "queue_stats": ["hall", "stats_id"],
                        "telemetry": ["hall", "telemetry_id"]}
        # The old rows keep their place: hall A's ids stay taken for A, and are free for B.
        assert store(conn, [batch(UpKind.STATS, "hall-a", "m1", [stats("hall-a", "day-final", 99)])]) == 0
        assert store(conn, [batch(UpKind.STATS, "hall-b", "m1", [stats("hall-b", "day-final", 20)])]) == 1
        assert conn.execute("SELECT hall, body -> 'total' ->> 'served' FROM queue_stats ORDER BY hall").fetchall() == [
            ("hall-a", "10"), ("hall-b", "20")]
        report = county_report(conn, DAY, ZONE, silent_hours=24, now=NOW)
    assert {q.hall: q.kept for q in report.quarantine} == {UNPARSED_HALL: 1, "hall-a": 1, "hall-b": 1}


def test_a_missing_earlier_migration_is_applied_after_a_later_one(county_db):
    """Work on two branches each added one: a database that got 3 first still gets 2."""
    [second] = [m for m in MIGRATIONS if m.version == 2]
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        for column in ("unsent", "unsent_oldest_seconds", "awaiting_receipt", "awaiting_oldest_seconds"):
            conn.execute(f"ALTER TABLE halls DROP COLUMN {column}")  # type: ignore[arg-type]  # our own names
        conn.execute("DELETE FROM schema_migrations WHERE version = 2")
        assert migrate(conn) == max(m.version for m in MIGRATIONS)
        columns = {name for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'halls'")}
        assert {"unsent", "awaiting_receipt"} <= columns
        assert conn.execute("SELECT name FROM schema_migrations WHERE version = 2").fetchone() == (second.name,)
