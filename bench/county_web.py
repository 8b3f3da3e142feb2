"""County console bench: every page's p50/p99 over HTTP on a county-year of data in PostgreSQL.

The full size (``--scale 1``) is the issue's county-year: 500 halls, 365 days, 300 ratings and a
day's queue statistics per hall and day (≈ 55 million ratings, about a million bad-rating cases
with their steps), ten devices per hall. ``--scale S`` keeps the year and the per-hall rates and
takes ``500 × S`` halls (default 0.01: 5 halls, ≈ 0.55 million ratings, a couple of minutes).

Data goes in with COPY, one statement per hall and table, into a fresh database with every
migration applied, so migration 4's triggers build the summaries as they would from the ingest
(each COPY is one statement: one trigger run over its rows). The console runs as its own
process (``hall county web``); the bench logs in and requests each page ``--requests`` times,
one after another, and prints p50/p99 beside the goal (1 s p99), then the machine's load.

    .venv/bin/python bench/county_web.py [--scale 0.01] [--requests 30] [--screenshots docs/screenshots]

``--screenshots DIR`` also opens every page in Debian's Chromium and saves ``county-*.png``.
``--keep`` leaves the database; ``--reuse DATABASE`` measures such a one again without loading,
after applying the migrations it lacks (a county upgrading hallkit), and prints how long they took.
Needs a PostgreSQL login that may create databases (``HALLKIT_TEST_PG``).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from hallkit.county.console import county_today, day_start
from hallkit.county.schema import LATEST, migrate
from hallkit.county.testing import create_database, database_dsn, drop_database, fresh_database

from hallkit.testing import free_port

ROOT = Path(__file__).resolve().parents[1]


FULL_HALLS = 500
DAYS = 365
RATINGS_PER_DAY = 300
TICKETS_PER_DAY = 330
SERVICES = 20
STAFF = 10
TOWNSHIP_SIZE = 10
USER = ("bench", "bench-password-1")
GOAL_P99 = 1.0
DEPARTMENTS = ("人社", "民政", "卫健", "医保", "农业农村", "残联", "公安", "自然资源")
SERVICE_NAMES = ("城乡居民养老保险参保登记", "最低生活保障申请", "生育登记", "医保参保登记", "临时救助申请",
                 "残疾人证办理", "居住证申领", "农村宅基地申请", "高龄津贴申请", "就业登记",
                 "特困人员认定", "门诊慢特病申请", "独生子女证明", "失业登记", "退役军人优待证",
                 "耕地地力补贴", "城乡医疗救助", "户口迁移", "新生儿落户", "养老待遇领取资格认证")
STAFF_NAMES = ("张三", "李四", "王芳", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴婷")
TOWNSHIPS = ("兴华镇", "大丰镇", "石梯子乡", "园户村镇", "五工台镇", "雀尔沟镇", "二十里店镇", "芳草湖镇")
TAGS = ("等候时间长", "态度不好", "材料要求不清", "多次跑动", "系统故障")


def hall_id(index: int) -> str:
    return f"hall-{index:03d}"


def _ts(value: datetime) -> str:
    return value.isoformat()


class Generator:
    """Rows of one hall for the year ending today, as text for COPY."""

    def __init__(self, index: int, today: date, now: datetime, seed: int = 7) -> None:
        self.hall = hall_id(index)
        self.index = index
        self.today = today
        self.now = now
        self.random = random.Random(seed * 100_003 + index)
        self.seq = 0

    def days(self) -> Iterator[date]:
        for back in range(DAYS - 1, -1, -1):
            yield self.today - timedelta(days=back)

    def _served(self, day: date, i: int, per_day: int) -> datetime:
        start = day_start(day) + timedelta(hours=9)
        return start + timedelta(seconds=i * (8 * 3600 / per_day) + self.random.uniform(0, 60))

    def ratings_and_cases(self) -> tuple[io.StringIO, io.StringIO]:
        ratings, cases = io.StringIO(), io.StringIO()
        rnd = self.random
        for day in self.days():
            for i in range(RATINGS_PER_DAY):
                served = self._served(day, i, RATINGS_PER_DAY)
                if served > self.now:
                    break
                self.seq += 1
                staff = rnd.randrange(STAFF)
                service = 2 * staff + rnd.randrange(2)  # each staff member serves two services
                roll = rnd.random()
                level = 1 if roll < 0.01 else 2 if roll < 0.02 else 3 if roll < 0.07 else 4 if roll < 0.3 else 5
                channel = "default" if rnd.random() < 0.1 else "pad"
                bad = level <= 2
                tags = json.dumps([rnd.choice(TAGS)], ensure_ascii=False) if bad else "[]"
                rating_id = f"{self.hall}-{day:%Y%m%d}-{i}"
                ratings.write("\t".join((
                    rating_id, self.hall, "e1", str(self.seq), "652323100201", f"ev-{rating_id}",
                    f"{day:%Y%m%d}-A{i:03d}", f"A{i % 1000:03d}", f"s{service:02d}", SERVICE_NAMES[service],
                    DEPARTMENTS[service % len(DEPARTMENTS)], str(1 + staff % 6), f"st{staff}", STAFF_NAMES[staff],
                    channel, str(level), str(level), tags, "" if not bad else "等了很久", _ts(served),
                    _ts(served + timedelta(seconds=40)))) + "\n")
                if bad:
                    self._case(cases, rating_id, served, day)
        return ratings, cases

    def _case(self, out: io.StringIO, rating_id: str, served: datetime, day: date) -> None:
        deadline = day + timedelta(days=5)
        steps = [("opened", served)]
        # Old cases were all worked; of the last three weeks', one in ten is still open.
        recent = day > self.today - timedelta(days=21)
        if deadline < self.today - timedelta(days=2) and (not recent or self.random.random() < 0.9):
            steps += [("verified", served + timedelta(days=1)), ("rectified", served + timedelta(days=2)),
                      ("closed", served + timedelta(days=3))]
        for step, when in steps:
            if when > self.now:
                break
            self.seq += 1
            out.write("\t".join((f"u-{rating_id}-{step}", self.hall, "e1", str(self.seq), f"c-{rating_id}", rating_id,
                                 step, "manager", _ts(when), "", deadline.isoformat())) + "\n")

    def stats(self) -> io.StringIO:
        out = io.StringIO()
        for day in self.days():
            if day == self.today:
                hours = [h for h in range(9, 18) if day_start(day) + timedelta(hours=h) <= self.now]
                snapshots = [(day_start(day) + timedelta(hours=h), False, (h - 8) / 9) for h in hours]
            else:
                snapshots = [(day_start(day) + timedelta(hours=18), True, 1.0)]
            busy = self.random.uniform(0.8, 1.2)  # one day's traffic: snapshots of it only grow
            for as_of, final, part in snapshots:
                self.seq += 1
                out.write("\t".join((f"{self.hall}-{day}-{as_of:%H}", self.hall, "e1", str(self.seq), day.isoformat(),
                                     _ts(as_of), "t" if final else "f",
                                     self._body(day, as_of, final, part * busy))) + "\n")
        return out

    def _body(self, day: date, as_of: datetime, final: bool, part: float) -> str:
        rnd = self.random
        taken = int(TICKETS_PER_DAY * part)
        waiting = 0 if final else rnd.randrange(0, 15)
        abandoned = rnd.randrange(0, 6)
        served = max(0, taken - waiting - abandoned)

        longest = round(rnd.uniform(60, 2400), 1)  # the hall's; a line's is up to it

        def figures(t: int, s: int, a: int, w: int, longest_wait: float) -> dict[str, object]:
            return {"taken": t, "served": s, "abandoned": a, "waiting": w,
                    "longest_wait_seconds": longest_wait if w else 0.0,
                    "mean_wait_seconds": round(rnd.uniform(180, 900), 1) if s else None,
                    "p90_wait_seconds": round(rnd.uniform(900, 1800), 1) if s else None}

        # The hall's waiting spread over its first lines, so they add up; the first line has the
        # hall's longest wait (the hall's is its lines' longest), the others shorter ones.
        services = [{"service_id": f"s{i:02d}", **figures(taken // SERVICES, served // SERVICES, 0,
                                                          waiting // SERVICES + (i < waiting % SERVICES),
                                                          longest if i == 0 else round(rnd.uniform(0.5, 1) * longest, 1))}
                    for i in range(SERVICES)]
        body = {"stats_id": f"{self.hall}-{day}-{as_of:%H}", "hall_id": self.hall, "day": day.isoformat(),
                "as_of": _ts(as_of), "final": final, "total": figures(taken, served, abandoned, waiting, longest),
                "services": services, "windows": []}
        return json.dumps(body, ensure_ascii=False)

    def devices(self) -> list[tuple[object, ...]]:
        kinds = ["kiosk", "printer", "printer", "idcard", "scanner", "display", "pad", "pad", "pad", "pad"]
        rows = []
        for n, kind in enumerate(kinds):
            roll = self.random.random()
            offline = roll < 0.03
            since = self.now - timedelta(minutes=self.random.randrange(5, 60 * 30)) if offline else \
                self.now - timedelta(days=self.random.randrange(1, 20))
            paper = None
            if kind == "printer":
                paper = "out" if roll > 0.985 else "near_end" if roll > 0.95 else "ok"
            faults = json.dumps(["printer.cover_open"] if kind == "printer" and 0.9 < roll < 0.91 else [])
            version = "1.4.2" if self.random.random() < 0.9 else "1.3.9"
            rows.append((self.hall, f"{kind}-{n}", kind, "offline" if offline else "online", since, 1, version, paper,
                         faults, self.now))
        return rows


def load(dsn: str, halls: int, now: datetime) -> dict[str, float]:
    today = county_today(now)
    timings = {"ratings": 0.0, "cases": 0.0, "stats": 0.0}
    counts = {"ratings": 0}
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.cursor().executemany(
            "INSERT INTO hall_register (hall, name, township) VALUES (%s, %s, %s)",
            [(hall_id(i), f"{TOWNSHIPS[(i // TOWNSHIP_SIZE) % len(TOWNSHIPS)]}{'便民服务中心' if i % TOWNSHIP_SIZE == 0 else f'{i % TOWNSHIP_SIZE}村便民服务站'}",
              TOWNSHIPS[(i // TOWNSHIP_SIZE) % len(TOWNSHIPS)]) for i in range(halls)])
        for i in range(halls):
            gen = Generator(i, today, now)
            ratings, cases = gen.ratings_and_cases()
            counts["ratings"] += ratings.getvalue().count("\n")
            for table, buffer, columns in (
                    ("ratings", ratings, "rating_id, hall, epoch, seq, region_code, service_event_id, ticket_id, "
                                         "ticket_number, service_code, service_name, department, window_no, staff_id, "
                                         "staff_name, channel, level, score, tags, comment, served_at, rated_at"),
                    ("case_updates", cases, "update_id, hall, epoch, seq, case_id, rating_id, step, by_staff, at, note, "
                                            "deadline"),
                    ("queue_stats", gen.stats(), "stats_id, hall, epoch, seq, day, as_of, final, body")):
                started = time.perf_counter()
                with conn.transaction(), conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # type: ignore[arg-type]
                    copy.write(buffer.getvalue())
                timings[{"ratings": "ratings", "case_updates": "cases", "queue_stats": "stats"}[table]] += \
                    time.perf_counter() - started
            with conn.cursor().copy("COPY devices (hall, device, kind, state, state_since, session, version, paper, "
                                    "faults, observed_at) FROM STDIN") as copy:
                for row in gen.devices():
                    copy.write_row(row)
            state = "offline" if i % 37 == 5 else "online"
            last = now - timedelta(hours=30) if i % 53 == 7 else now - timedelta(seconds=gen.random.randrange(5, 300))
            conn.execute("""INSERT INTO halls (hall, county, first_seen, last_seen, link_state, link_session, link_at,
                                backlog, backlog_oldest_seconds) VALUES (%s, 'bench', %s, %s, %s, 1, %s, %s, 0)""",
                         (gen.hall, now - timedelta(days=DAYS), last, state, last, gen.random.randrange(0, 40)))
            if (i + 1) % max(1, halls // 10) == 0:
                print(f"  loaded {i + 1}/{halls} halls, {counts['ratings']:,} ratings", flush=True)
        conn.execute("VACUUM ANALYZE")
    timings["ratings_per_second"] = counts["ratings"] / timings["ratings"] if timings["ratings"] else 0.0
    timings["ratings_total"] = counts["ratings"]
    return timings


def ingest_cost(ratings: int = 50_000, per_message: int = 500, group: int = 8, rounds: int = 3) -> tuple[float, float]:
    """Ratings a second through the ingest's own parse and write (groups of messages per
    transaction, as ``county.ingest`` stores them), with and without the summary triggers:
    the median of ``rounds`` runs each, alternating, so a shared machine's load hits both alike."""
    from hallkit.contracts.uplink import UpKind, UpTopics, encode_batch
    from hallkit.county.store import parse, write
    from hallkit.county.testing import rating

    from hallkit.rating.models import Level

    today = county_today()
    rates: dict[bool, list[float]] = {True: [], False: []}
    for triggers in [True, False] * rounds:
        with fresh_database("hallkit_bench_ingest") as dsn, psycopg.connect(dsn, autocommit=True) as conn:
            migrate(conn)
            if not triggers:
                conn.execute("ALTER TABLE ratings DISABLE TRIGGER ratings_summary")
            messages = []
            for start in range(0, ratings, per_message):
                hall = hall_id(start // per_message % 50)
                items = [(n + 1, rating(hall, day_start(today - timedelta(days=n % 30)) + timedelta(hours=9, seconds=n),
                                        n, Level.SATISFIED if n % 50 else Level.DISSATISFIED).model_dump_json())
                         for n in range(start, min(ratings, start + per_message))]
                messages.append((UpTopics("bench", hall).up(UpKind.RATING),
                                 encode_batch(UpKind.RATING, f"m{start}", hall, "bench", "e1", False, items)))
            started = time.perf_counter()
            for first in range(0, len(messages), group):
                parsed = [parse(topic, payload) for topic, payload in messages[first:first + group]]
                with conn.transaction():
                    write(conn, parsed)
            rates[triggers].append(ratings / (time.perf_counter() - started))
    return statistics.median(rates[True]), statistics.median(rates[False])


def pages(halls: int, today: date) -> list[tuple[str, str]]:
    month = today.replace(day=1) - timedelta(days=1)
    return [
        ("halls (today)", "/"),
        ("hall page (a day)", f"/halls/{hall_id(halls // 2)}?day={(today - timedelta(days=40)).isoformat()}"),
        ("devices", "/devices"),
        ("devices, needs a visit", "/devices?visit=1"),
        ("好差评 today by hall", "/ratings"),
        ("好差评 month by staff", f"/ratings?period=month&month={month:%Y-%m}&by=staff"),
        ("好差评 90 days by service", f"/ratings?period=range&from={today - timedelta(days=89)}&to={today}&by=service"),
        ("好差评 year by department", f"/ratings?period=range&from={today - timedelta(days=364)}&to={today}&by=department"),
        ("monthly report", f"/report?month={month:%Y-%m}"),
        ("monthly report CSV", f"/report.csv?month={month:%Y-%m}"),
    ]


def login(url: str) -> httpx.Client:
    import re

    client = httpx.Client(base_url=url, timeout=60)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token, "no login form"
    response = client.post("/login", data={"csrf": token.group(1), "name": USER[0], "password": USER[1]})
    assert response.status_code == 303, response.text
    return client


def measure(client: httpx.Client, path: str, requests: int) -> list[float]:
    client.get(path)  # the first request warms the pool and the page cache
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code)
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def screenshots(url: str, folder: Path, halls: int, today: date) -> None:
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    month = today.replace(day=1) - timedelta(days=1)
    shots = [("halls", "/"), ("hall", f"/halls/{hall_id(0)}"), ("devices", "/devices"),
             ("devices-visit", "/devices?visit=1"), ("ratings", f"/ratings?period=month&month={month:%Y-%m}&by=staff"),
             ("report", f"/report?month={month:%Y-%m}"), ("logins", "/logins"), ("halls-en", "/?lang=en")]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        context = chromium.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
        page = context.new_page()
        page.goto(url + "login")
        page.screenshot(path=str(folder / "county-login.png"))
        page.fill("input[name=name]", USER[0])
        page.fill("input[name=password]", USER[1])
        page.click("button[type=submit]")
        page.wait_for_url(url)
        for name, path in shots:
            page.goto(url + path.lstrip("/"))
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(folder / f"county-{name}.png"), full_page=name not in ("devices", "ratings"))
            print(f"  {folder / f'county-{name}.png'}")
        page.goto(url + "?lang=zh")
        chromium.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.01, help="share of the 500 halls (default 0.01: 5 halls)")
    parser.add_argument("--requests", type=int, default=30, help="requests per page (default 30)")
    parser.add_argument("--screenshots", type=Path, help="also save a PNG of each page into this folder")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--ingest-cost", action="store_true",
                        help="first measure what the summary triggers cost the ingest (100,000 ratings twice)")
    parser.add_argument("--reuse", metavar="DATABASE", help="measure a database an earlier --keep run left (no load)")
    args = parser.parse_args()
    halls = max(2, round(FULL_HALLS * args.scale))
    now = datetime.now(UTC)
    today = county_today(now)
    name = args.reuse or create_database("hallkit_bench_web")
    dsn = database_dsn(name)
    data = Path(tempfile.mkdtemp(prefix="county-console-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        if not args.reuse:  # a reused database says its own size below
            print(f"county console bench: {halls} halls × {DAYS} days × {RATINGS_PER_DAY} ratings a day "
                  f"(scale {args.scale}; the full size is {FULL_HALLS} halls), database {name}")
        if args.ingest_cost:
            with_triggers, without = ingest_cost()
            print(f"ingest write path (county.store.write, 8 messages of 500 ratings per transaction, 1 writer, "
                  f"median of 3 × 50,000 each): "
                  f"{with_triggers:,.0f} ratings/s with the summary triggers, {without:,.0f}/s without "
                  f"({with_triggers / without:.2f}×)")
        started = time.perf_counter()
        if args.reuse:
            with psycopg.connect(dsn, autocommit=True) as conn:
                found = conn.execute("SELECT count(*) FROM hall_register").fetchone()
                # As a county upgrading would: the migrations this hallkit adds, before the console starts.
                migrating = time.perf_counter()
                before = migrate(conn)
                migrated = time.perf_counter() - migrating
            halls = int(found[0]) if found else halls
            print(f"county console bench: reusing {name}: {halls} halls; schema {before} → {LATEST} in {migrated:.2f} s")
        else:
            loaded = load(dsn, halls, now)
            print(f"loaded in {time.perf_counter() - started:.0f} s: {int(loaded['ratings_total']):,} ratings by COPY "
                  f"at {loaded['ratings_per_second']:,.0f}/s with the summary triggers")
        with psycopg.connect(dsn) as conn:
            sizes = dict(conn.execute("""SELECT relname, reltuples::bigint FROM pg_class WHERE relname IN
                ('ratings', 'case_updates', 'queue_stats', 'rating_daily', 'rating_monthly', 'case_latest',
                 'stats_latest', 'stats_service_daily', 'devices')""").fetchall())
            size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
        print(f"database size {size[0] if size else '?'}")
        print("  rows: " + ", ".join(f"{k} {v:,}" for k, v in sorted(sizes.items())))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for login_name, role in ((USER[0], ["admin"]), ("county-viewer", ["viewer"]),
                                 ("xinghua-leader", ["leader", "--township", TOWNSHIPS[0]])):
            add = subprocess.run([sys.executable, "-m", "hallkit.cli", "county", "web", "user", "add", login_name,
                                  "--data", str(data), "--password-stdin", "--role", *role],
                                 input=(USER[1] + "\n").encode(), env=env, capture_output=True, check=False)
            assert add.returncode == 0, add.stderr.decode()
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "hallkit.cli", "county", "web", "--db", dsn, "--data",
                                   str(data), "--host", "127.0.0.1", "--port", str(port),
                                   "--county-name", "呼图壁县政务服务管理局"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the console did not start: " + (server.stderr.read().decode() if server.stderr else ""))
            time.sleep(0.1)
        client = login(url)
        load_before = os.getloadavg()
        print(f"\n{'page':<28}{'p50 ms':>9}{'p99 ms':>9}   goal p99 ≤ {GOAL_P99 * 1000:.0f} ms")
        worst = 0.0
        for label, path in pages(halls, today):
            times = measure(client, path, args.requests)
            p99 = percentile(times, 0.99)
            worst = max(worst, p99)
            print(f"{label:<28}{statistics.median(times) * 1000:>9.1f}{p99 * 1000:>9.1f}   "
                  f"{'ok' if p99 <= GOAL_P99 else 'OVER'}")
        load_after = os.getloadavg()
        print(f"\nworst p99 {worst * 1000:.0f} ms ({'meets' if worst <= GOAL_P99 else 'misses'} the 1 s goal) at "
              f"{halls} halls; {os.cpu_count()} cores, load average before {load_before[0]:.2f} "
              f"after {load_after[0]:.2f} (1 min; the machine is shared)")
        if args.screenshots:
            screenshots(url, args.screenshots, halls, today)
        client.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        if not args.keep and not args.reuse:
            drop_database(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
