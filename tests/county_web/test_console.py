"""The county console over HTTP against real PostgreSQL: login, scope, 督办, the monthly CSV, the summaries."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from urllib.parse import urlencode

import httpx
import psycopg
import pytest
from hallkit.contracts.uplink import UpKind
from hallkit.county.cli import register
from hallkit.county.console import county_today
from hallkit.county.schema import FINISHING, MIGRATIONS, migrate
from hallkit.county.testing import HALLS, at, case, rating, stats, store
from hallkit.county.web.views import HALL_COLUMNS

from hallkit.commandline import CommandFailed
from hallkit.rating.cases import FINISHING_STEPS
from hallkit.rating.models import CaseStep, Level
from tests.county_web.conftest import ADMIN, LEADER, VIEWER

PAGES = ("/", "/halls/xinghua", "/devices", "/ratings", "/report", "/report.csv", "/logins")


@contextmanager
def logged_in(url: str, user: tuple[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=10) as client:
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert token
        response = client.post("/login", data={"csrf": token.group(1), "name": user[0], "password": user[1]})
        assert response.status_code == 303 and response.headers["location"] == "/"
        yield client


def test_no_page_without_login(console):
    with httpx.Client(base_url=console.url) as anonymous:
        for path in PAGES:
            response = anonymous.get(path)
            # To the login page, which brings the user back to the page asked for (the shared login rules).
            expected = "/login" if path == "/" else f"/login?{urlencode({'next': path})}"
            assert response.status_code == 303 and response.headers["location"] == expected, path
        assert anonymous.get("/api/halls/xinghua/hours").status_code == 401
        assert anonymous.get("/api/devices/stamp").status_code == 401
        assert anonymous.post("/logout").status_code == 401
        login = anonymous.get("/login")
        assert login.status_code == 200 and "登录政务服务监管平台" in login.text
        # The same header rules as the hall dashboard.
        assert "default-src 'self'" in login.headers["content-security-policy"]
        assert login.headers["x-frame-options"] == "DENY" and login.headers["cache-control"] == "no-store"
        bad = anonymous.post("/login", data={"csrf": anonymous.cookies["hallkit_login_csrf"], "name": ADMIN[0],
                                             "password": "wrong-password"})
        assert bad.status_code == 401
    with logged_in(console.url, VIEWER) as viewer:
        for path in PAGES[:-1]:
            assert viewer.get(path).status_code == 200, path
        assert viewer.get("/logins").status_code == 403  # only a county admin sees the logins
        assert viewer.post("/logout", data={"csrf": "forged"}).status_code == 403


def test_a_township_leader_sees_only_their_halls(console):
    other = "dafeng"  # 大丰镇; the leader is 兴华镇's
    with logged_in(console.url, LEADER) as leader:
        halls = leader.get("/").text
        assert 'data-hall="xinghua"' in halls and 'data-hall="xinghua-shimen"' in halls
        assert f'data-hall="{other}"' not in halls and HALLS[other][0] not in halls
        assert leader.get(f"/halls/{other}").status_code == 404
        assert leader.get(f"/api/halls/{other}/hours").status_code == 404
        assert leader.get("/halls/xinghua").status_code == 200
        month = f"{console.month:%Y-%m}"
        for path in ("/devices?all=1", f"/ratings?period=month&month={month}", f"/ratings?period=month&month={month}&by=staff",
                     f"/report?month={month}"):
            page = leader.get(path)
            assert page.status_code == 200 and HALLS["xinghua"][0] in page.text, path
            assert HALLS[other][0] not in page.text and f'data-hall="{other}"' not in page.text, path
        report = leader.get(f"/report.csv?month={month}").content.decode("utf-8-sig")
        assert "xinghua" in report and other not in report
        assert leader.get("/logins").status_code == 403
    with logged_in(console.url, ADMIN) as admin:
        assert f'data-hall="{other}"' in admin.get("/").text
        logins = admin.get("/logins").text
        assert LEADER[0] in logins and "xinghua-shimen" in logins


def longest_waits(page: str, rows: str = r'<tr data-hall="([^"]+)"') -> dict[str, tuple[str, str]]:
    """Each row's 最长等候 cell: its sort value and what it shows."""
    cells = re.findall(rows + r'.*?<td class="num longest-wait" data-value="([^"]+)">([^<]*)</td>', page, re.S)
    return {key: (value, shown) for key, value, shown in cells}


def test_the_longest_wait_on_the_halls_page_and_a_halls_page(console):
    today = county_today()
    with psycopg.connect(console.dsn, autocommit=True) as conn:
        # dafeng's latest: one person waiting 90 s; xinghua-shimen runs a hallkit that does not send
        # the longest wait: its statistics are still taken, and the cell says it is not known.
        store(conn, UpKind.STATS, "dafeng", [stats("dafeng", today, at(today, 11, 45), False, 16, 1).model_dump_json()])
        older = stats("xinghua-shimen", today, at(today, 11, 50), False, 16, 2).model_dump(mode="json")
        for figures in (older["total"], *older["services"]):
            del figures["longest_wait_seconds"]
        store(conn, UpKind.STATS, "xinghua-shimen", [json.dumps(older)])
        stored = conn.execute("SELECT hall, service_id, longest_wait_seconds FROM stats_service_daily WHERE day = %s "
                              "ORDER BY 1, 2", (today,)).fetchall()
    assert stored == [("dafeng", "svc-0", 0.0), ("dafeng", "svc-1", 90.0), ("xinghua", "svc-0", 180.0),
                      ("xinghua", "svc-1", 270.0), ("xinghua-shimen", "svc-0", None), ("xinghua-shimen", "svc-1", None)]
    with logged_in(console.url, VIEWER) as viewer:
        halls = viewer.get("/").text
        assert '<th data-sort="num" class="num">最长等候(分)</th>' in halls
        # xinghua's 11:30 statistics: five waiting, the longest 450 s.
        assert longest_waits(halls) == {"xinghua": ("7.5", "7.5"), "xinghua-shimen": ("-1", "–"),
                                        "dafeng": ("1.5", "1.5")}
        hall = viewer.get("/halls/xinghua").text
        assert re.search(r'最长等候\(分\)</div><div class="value">7.5</div>', hall)
        assert longest_waits(hall, r"<tr><td>([^<]+)</td>") == {"svc-0": ("3.0", "3.0"), "svc-1": ("4.5", "4.5")}
        # A closed day: nobody waits.
        past = viewer.get(f"/?day={console.month.isoformat()}").text
        assert {shown for _value, shown in longest_waits(past).values()} == {"0.0"}
        assert "Longest wait (min)" in viewer.get("/?lang=en").text


def test_an_overdue_case_appears_under_duban_longest_first(console):
    today = county_today()
    served = at(today - timedelta(days=9), 10)
    late = rating("dafeng", served, 900, Level.DISSATISFIED)
    with psycopg.connect(console.dsn, autocommit=True) as conn:
        store(conn, UpKind.RATING, "dafeng", [late.model_dump_json()])
        store(conn, UpKind.CASE, "dafeng", [case(late, CaseStep.OPENED, served, today - timedelta(days=2))
                                            .model_dump_json()])
        store(conn, UpKind.CASE, "dafeng", [case(late, CaseStep.VERIFIED, served + timedelta(days=1),
                                                 today - timedelta(days=2)).model_dump_json()])
    with logged_in(console.url, VIEWER) as viewer:
        page = viewer.get("/ratings").text
    overdue = page[page.index('id="overdue"'):page.index("</table>", page.index('id="overdue"'))]
    row = re.search(rf'data-case="c-{late.rating_id}".*?</tr>', overdue, re.S)
    assert row, "the overdue case is not under 督办"
    assert "核实" in row.group() and '<td class="num days-over bad-text">2</td>' in row.group()
    days = [int(d) for d in re.findall(r'days-over bad-text">(\d+)<', overdue)]
    assert days == sorted(days, reverse=True) and days[0] > 2  # last month's cases are further over


def test_bad_ratings_show_reasons_and_cases_without_personal_numbers(console):
    with logged_in(console.url, ADMIN) as admin:
        page = admin.get(f"/ratings?period=month&month={console.month:%Y-%m}").text
    bad = page[page.index('id="bad"'):]
    assert "等候时间长" in bad and "办结" in bad
    assert "13912345678" not in page and "13*********" in bad


def _county_report_days(dsn: str, month: date, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    days = []
    day = month
    while day.month == month.month:
        args = parser.parse_args(["county", "report", "--db", dsn, "--day", day.isoformat(), "--json"])
        assert args.handler(args) == 0
        days.append(json.loads(capsys.readouterr().out))
        day += timedelta(days=1)
    return days


def _percent(share: float) -> str:
    return f"{share * 100:.2f}%"


def test_the_monthly_csv_agrees_with_the_daily_county_report(console, capsys):
    with logged_in(console.url, ADMIN) as admin:
        download = admin.get(f"/report.csv?month={console.month:%Y-%m}")
    assert download.headers["content-type"].startswith("text/csv")
    assert download.content.startswith("\ufeff".encode())  # the BOM Excel needs for Chinese
    lines = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    header = lines.index([text for text in lines if text and text[0] == "服务中心"][0])
    end = lines.index([], header)  # a blank line ends the halls' section
    rows = {line[0]: dict(zip(HALL_COLUMNS, line, strict=True)) for line in lines[header + 1:end]}
    days = _county_report_days(console.dsn, console.month, capsys)
    total = rows.pop("合计")
    assert set(rows) == set(HALLS)
    assert int(total["ratings"]) == sum(h["ratings"] for d in days for h in d["halls"])
    assert int(total["taken"]) == sum(h["taken"] or 0 for d in days for h in d["halls"])
    for hall, row in rows.items():
        daily = [h for d in days for h in d["halls"] if h["hall"] == hall]
        stats_days = [h for h in daily if h["taken"] is not None]
        for column, field in (("taken", "taken"), ("served", "served"), ("abandoned", "abandoned"),
                              ("ratings", "ratings"), ("voided", "voided"), ("bad", "bad_ratings"),
                              ("cases_open", "cases_open"), ("cases_overdue", "cases_overdue"),
                              ("appeals", "appeals"), ("appeals_upheld", "appeals_upheld"),
                              ("appeals_rejected", "appeals_rejected")):
            assert int(row[column]) == sum(h[field] or 0 for h in daily), (hall, column)
        assert int(row["days"]) == len(stats_days)
        ratings = sum(h["ratings"] for h in daily)
        bad = sum(h["bad_ratings"] for h in daily)
        assert row["satisfaction"] == _percent((ratings - bad) / ratings)
        assert row["bad_rate"] == _percent(bad / ratings)
        served = sum(h["served"] for h in stats_days)
        given = sum(round(h["coverage"] * h["served"]) for h in stats_days)
        assert row["coverage"] == _percent(given / served)
        weighted = sum(h["mean_wait_minutes"] * h["served"] for h in stats_days) / served
        assert abs(float(row["mean_wait_minutes"]) - weighted) <= 0.1
        assert int(row["voided"]) == 1 and int(row["appeals_rejected"]) == 1  # the seed's two appeals
    assert any("满意率" in line[0] for line in lines if line)  # the definitions are written on it


def test_summaries_count_a_resent_rating_once(console):
    with psycopg.connect(console.dsn, autocommit=True) as conn:
        before = conn.execute("SELECT sum(ratings), sum(bad) FROM rating_daily").fetchone()
        raw = conn.execute("""SELECT count(*), count(*) FILTER (WHERE level <= 2) FROM ratings r WHERE NOT EXISTS (
            SELECT 1 FROM case_updates u WHERE u.hall = r.hall AND u.rating_id = r.rating_id
                                           AND u.step = 'appeal_upheld')""").fetchone()
        assert before == raw  # every rating counted once, the voided ones not at all
        # Ratings the seed stored on the month's first day (ids are hall, day and number).
        repeats = [rating("xinghua", at(console.month, 9, n), n, Level.SATISFIED) for n in range(3)]
        fresh = rating("xinghua", at(county_today() - timedelta(days=1), 10), 700, Level.BASIC)
        # The same rating ids under a new message id (a hall's resend after a reconnect) add nothing.
        store(conn, UpKind.RATING, "xinghua", [r.model_dump_json() for r in [*repeats, fresh]])
        after = conn.execute("SELECT sum(ratings), sum(bad) FROM rating_daily").fetchone()
        monthly = conn.execute("SELECT sum(ratings) FROM rating_monthly").fetchone()
        assert after == (before[0] + 1, before[1]) and monthly[0] == after[0]


def test_the_ratings_trigger_sums_as_the_full_fold_does(console):
    """Migration 7's one-pass trigger, fed group by group (the seed, a voided case, a resend, a bad
    ticket id), leaves the summaries the whole-table fold of migration 4 computes from scratch."""
    fold = next(m for m in MIGRATIONS if m.version == 4).statements
    rollups = [s for s in fold if s.lstrip().startswith("INSERT INTO rating_")]
    assert len(rollups) == 2  # daily, monthly
    columns = "SELECT * FROM rating_{} ORDER BY 1, 2, 3, 4, 5"
    with psycopg.connect(console.dsn, autocommit=True) as conn:
        day = county_today() - timedelta(days=1)
        late = [rating("xinghua", at(day, 9, n), 800 + n, Level.VERY_DISSATISFIED if n % 3 else Level.SATISFIED)
                for n in range(5)]
        odd = rating("xinghua", at(day, 9), 900, Level.BASIC).model_copy(update={"ticket_id": "20230229-A900"})
        store(conn, UpKind.CASE, "xinghua", [case(late[1], CaseStep.APPEAL_UPHELD, late[1].served_at, day)
                                             .model_dump_json()])
        store(conn, UpKind.RATING, "xinghua", [r.model_dump_json() for r in [*late, odd]])
        store(conn, UpKind.RATING, "xinghua", [r.model_dump_json() for r in late[:2]])  # a resend adds nothing
        kept = {period: conn.execute(columns.format(period)).fetchall() for period in ("daily", "monthly")}
        assert sum(row[7] for row in kept["daily"]) > 0
        with conn.transaction():
            conn.execute("TRUNCATE rating_daily, rating_monthly")
            for statement in rollups:
                conn.execute(statement)  # type: ignore[arg-type]  # constant SQL
            folded = {period: conn.execute(columns.format(period)).fetchall() for period in ("daily", "monthly")}
            raise psycopg.Rollback  # the console's summaries stay as the trigger left them
    assert kept == folded


def test_logins_from_the_command_line(county_db, tmp_path, capsys, monkeypatch):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    data = str(tmp_path / "console")
    refused = parser.parse_args(["county", "web", "user", "add", "lone", "--role", "leader", "--data", data,
                                 "--password-stdin"])
    with pytest.raises(CommandFailed):
        refused.handler(refused)
    args = parser.parse_args(["county", "web", "user", "add", "li-zhen", "--role", "leader", "--township", "兴华镇",
                              "--data", data, "--password-stdin"])
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert args.handler(args) == 0
    hall = parser.parse_args(["county", "web", "hall", "set", "xinghua", "--name", "兴华镇便民服务中心",
                              "--township", "兴华镇", "--db", county_db])
    assert hall.handler(hall) == 0
    listing = parser.parse_args(["county", "web", "user", "list", "--data", data, "--json"])
    capsys.readouterr()
    assert listing.handler(listing) == 0
    [account] = json.loads(capsys.readouterr().out)
    assert account == {"name": "li-zhen", "role": "leader", "townships": ["兴华镇"], "halls": []}
    with psycopg.connect(county_db) as conn:
        assert conn.execute("SELECT name, township FROM hall_register").fetchall() == [("兴华镇便民服务中心", "兴华镇")]


def test_migration_4_summarises_what_an_older_database_already_holds(county_db):
    """A county that ran an earlier hallkit: its rows are folded into the summaries once, then kept."""
    with psycopg.connect(county_db, autocommit=True) as conn:
        with conn.transaction():  # the schema as the hallkit before the console left it
            conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                         "applied_at timestamptz NOT NULL DEFAULT now())")
            for migration in (m for m in MIGRATIONS if m.version < 4):
                for statement in migration.statements:
                    conn.execute(statement)  # type: ignore[arg-type]  # constant SQL
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             (migration.version, migration.name))
        day = county_today() - timedelta(days=3)
        old = [rating("xinghua", at(day, 10, n), n, Level.DISSATISFIED if n < 2 else Level.SATISFIED) for n in range(6)]
        store(conn, UpKind.RATING, "xinghua", [r.model_dump_json() for r in old])
        store(conn, UpKind.CASE, "xinghua", [case(old[0], CaseStep.OPENED, old[0].served_at, day).model_dump_json()])
        migrate(conn)
        assert conn.execute("SELECT sum(ratings), sum(bad) FROM rating_daily WHERE hall = 'xinghua' AND day = %s "
                            "AND staff = 'a1'", (day,)).fetchone() == (3, 1)  # n = 0, 2, 4
        assert conn.execute("SELECT sum(ratings), sum(bad) FROM rating_monthly").fetchone() == (6, 2)
        assert conn.execute("SELECT step FROM case_latest").fetchall() == [("opened",)]
        store(conn, UpKind.RATING, "xinghua", [rating("xinghua", at(day, 11), 50, Level.BASIC).model_dump_json()])
        assert conn.execute("SELECT sum(ratings) FROM rating_daily").fetchone() == (7,)


def test_migration_6_adds_the_longest_wait_without_touching_the_rows_there(county_db):
    """A county upgrading from schema 5: a column added (no rewrite, no backfill), the trigger then fills it."""
    day = county_today()
    with psycopg.connect(county_db, autocommit=True) as conn:
        with conn.transaction():  # the schema as the hallkit before the longest wait left it
            conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                         "applied_at timestamptz NOT NULL DEFAULT now())")
            for migration in (m for m in MIGRATIONS if m.version <= 5):
                for statement in migration.statements:
                    conn.execute(statement)  # type: ignore[arg-type]  # constant SQL
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             (migration.version, migration.name))
        store(conn, UpKind.STATS, "xinghua", [stats("xinghua", day, at(day, 9), False, 6, 2).model_dump_json()])
        table = "SELECT relfilenode FROM pg_class WHERE relname = 'stats_service_daily'"
        before = conn.execute(table).fetchone()
        assert migrate(conn) == 5
        assert conn.execute(table).fetchone() == before  # the same file: the table was not rewritten
        assert conn.execute("SELECT service_id, longest_wait_seconds FROM stats_service_daily").fetchall() == [
            ("svc-0", None), ("svc-1", None)]
        store(conn, UpKind.STATS, "xinghua", [stats("xinghua", day, at(day, 10), False, 8, 3).model_dump_json()])
        assert conn.execute("SELECT service_id, longest_wait_seconds FROM stats_service_daily ORDER BY 1").fetchall() \
            == [("svc-0", 90.0), ("svc-1", 180.0)]


def test_the_summaries_finish_cases_as_the_core_does():
    assert "(" + ", ".join(f"'{step.value}'" for step in FINISHING_STEPS) + ")" == FINISHING


def test_an_upheld_appeal_voids_its_rating_whichever_arrives_first(county_db):
    day = county_today() - timedelta(days=2)
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        first, late = (rating("xinghua", at(day, 10, n), n, Level.VERY_DISSATISFIED) for n in (1, 2))
        store(conn, UpKind.RATING, "xinghua", [first.model_dump_json()])
        store(conn, UpKind.CASE, "xinghua", [case(r, CaseStep.APPEAL_UPHELD, r.served_at, day).model_dump_json()
                                             for r in (first, late)])
        store(conn, UpKind.RATING, "xinghua", [late.model_dump_json()])  # its case was voided before it came
        assert conn.execute("SELECT sum(ratings), sum(bad), sum(voided), sum(given) FROM rating_daily").fetchone() == (
            0, 0, 2, 2)
        assert conn.execute("SELECT sum(ratings), sum(voided) FROM rating_monthly").fetchone() == (0, 2)
        assert conn.execute("SELECT count(*) FROM case_latest WHERE finished AND voided AND ticket_day = %s",
                            (day,)).fetchone() == (2,)


def _index_scans(conn: psycopg.Connection, index: str) -> int:
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT 1")  # the flush happens at this transaction's end
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = %s", (index,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_rating_finds_its_case_by_key_not_among_the_cases_without_a_day(county_db):
    """Migration 7's trigger looked for case rows without a day once per new rating (a cached plan
    scanning ``case_latest_day``): the ingest's cost grew with the cases whose rating had not come."""
    day = county_today() - timedelta(days=2)
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        waiting = [rating("xinghua", at(day, 9, n % 60), n, Level.VERY_DISSATISFIED) for n in range(1, 201)]
        store(conn, UpKind.CASE, "xinghua", [case(r, CaseStep.OPENED, r.served_at, day).model_dump_json()
                                             for r in waiting])  # their ratings come later
        before = _index_scans(conn, "case_latest_day")
        for first in range(300, 800, 100):
            store(conn, UpKind.RATING, "xinghua", [rating("xinghua", at(day, 11, n % 60), n, Level.SATISFIED)
                                                   .model_dump_json() for n in range(first, first + 100)])
        store(conn, UpKind.RATING, "xinghua", [r.model_dump_json() for r in waiting[:50]])
        assert _index_scans(conn, "case_latest_day") == before
        assert conn.execute("SELECT count(*) FILTER (WHERE ticket_day = %s), count(*) FILTER (WHERE ticket_day IS NULL)"
                            " FROM case_latest", (day,)).fetchone() == (50, 150)
        assert conn.execute("SELECT sum(ratings), sum(bad) FROM rating_daily").fetchone() == (550, 50)
