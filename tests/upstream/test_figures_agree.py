"""One simulated business day: the same figures at the hall, on the dashboard and at the county.

A real hub (queue, ratings, outbox) on a real Mosquitto, its uplink to a real county Mosquitto and
the county ingest into a real PostgreSQL. The hub's clock is simulated (the queue and the rating
part read it), so the day can have a clock stepped back 3 minutes between a ticket and its call.
The day has a no-show, two tickets left waiting at close, three pad ratings of which two are bad: one
appeal upheld (the rating is voided), one rejected (the case goes on, past its deadline). While those
two wait, the longest wait (最长等候) is read at three moments, one on a clock stepped back, on the
hall's board (the queue engine), on the dashboard (its fold) and at the county (statistics, summary,
console).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from hallkit.broker.client import HallClient
from hallkit.broker.hub import Hub
from hallkit.broker.parts import hub_parts
from hallkit.broker.ratings import RatingsPart
from hallkit.contracts.uplink import QueueStats
from hallkit.county.console import WHOLE_COUNTY, halls_overview
from hallkit.county.ingest import Ingest
from hallkit.county.report import county_report
from hallkit.county.schema import migrate
from hallkit.dashboard.ratings import RatingBook
from hallkit.dashboard.report import figures as dashboard_figures
from hallkit.dashboard.stats import EventLog, load_day
from hallkit.uplink.outbox import Outbox
from hallkit.uplink.testing import hall_toml

from hallkit.cli import main
from hallkit.config import HallConfig, parse_config
from hallkit.queue.figures import DailyFigures
from hallkit.queue.models import CallNext, Command, Complete, Skip, TakeTicket
from hallkit.rating.models import CaseStep, CaseStepCommand, Level, RatingChannel, RatingSubmission
from tests.broker.test_hub import wait_for

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2024, 3, 4)  # a Monday long past: the case still open is overdue by now
OPENS = datetime(2024, 3, 4, 9, 0, tzinfo=ZONE)


class SimClock:
    """The hub's clock in the test: set by hand, and stepped back like a badly synced PC's."""

    def __init__(self, now: datetime) -> None:
        self.at = now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.at

    def set(self, minutes: float, day: int = 0) -> None:
        self.at = (OPENS + timedelta(days=day, minutes=minutes)).astimezone(UTC)


def count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]  # test constants
        return int(row[0]) if row else 0


@dataclass
class Longest:
    """The longest wait of the hall and of each service with someone waiting, in seconds."""

    total: float | None
    services: dict[str, float | None]

    def __post_init__(self) -> None:
        # A line nobody waits in reads 0 everywhere; the board lists every service, the folds those with tickets.
        self.services = {s: w for s, w in self.services.items() if w}


def everywhere(longest: Longest) -> dict[str, Longest]:
    return dict.fromkeys(("board", "dashboard", "county"), longest)


def longest_everywhere(hub: Hub, config: HallConfig, data: Path, county_db: str, clock: SimClock,
                       minutes: float) -> dict[str, Longest]:
    """At ``minutes``: the hall's board, the dashboard's figures and the county's statistics made then."""
    clock.set(minutes)
    as_of = clock()
    outbox = next(p for p in hub.parts if isinstance(p, Outbox))
    assert outbox.write_stats()  # as its timer does: someone waits, so figures go up even with no new event
    board = hub.snapshot().services  # what the hub publishes and the board shows as 最长等候
    log = EventLog(data / "hall.sqlite3")
    try:
        dashboard = dashboard_figures(config, load_day(config, log, DAY), RatingBook(config, log), DAY, as_of).queue
    finally:
        log.close()

    def stored() -> list[tuple[object]]:
        with psycopg.connect(county_db) as conn:
            return conn.execute("SELECT body FROM queue_stats WHERE as_of = %s", (as_of,)).fetchall()

    wait_for(lambda: len(stored()) == 1, timeout=60)
    county = QueueStats.model_validate(stored()[0][0])
    return {"board": Longest(max(s.longest_wait_seconds for s in board),
                             {s.service_id: s.longest_wait_seconds for s in board}),
            "dashboard": Longest(dashboard.total.longest_wait_seconds,
                                 {s.service_id: s.longest_wait_seconds for s in dashboard.services}),
            "county": Longest(county.total.longest_wait_seconds,
                              {s.service_id: s.longest_wait_seconds for s in county.services})}


def county_console_longest(county_db: str) -> tuple[float | None, dict[str, float | None]]:
    """What the county's console shows: the Halls page (minutes) and the hall's page per service (seconds)."""
    with psycopg.connect(county_db) as conn:
        [row] = halls_overview(conn, WHOLE_COUNTY, DAY, datetime.now(UTC))
        services = dict(conn.execute("SELECT service_id, longest_wait_seconds FROM stats_service_daily "
                                     "WHERE day = %s AND longest_wait_seconds > 0", (DAY,)).fetchall())
    return row.longest_wait_minutes, services


def test_one_day_has_the_same_figures_everywhere(tmp_path, hall_broker, county_broker, county_db, capsys):
    toml = hall_toml(county_broker.url).replace("[queue]", "[rating]\npad_timeout_seconds = 600\n\n[queue]", 1)
    (tmp_path / "hall.toml").write_text(toml, encoding="utf-8")
    config = parse_config(toml)
    data = tmp_path / "data"
    clock = SimClock(OPENS)
    hub = Hub(config, hall_broker.address, data, "normal", parts=hub_parts(config))
    hub.queue.clock = clock
    next(p for p in hub.parts if isinstance(p, RatingsPart)).clock = clock
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
    ingest = Ingest(county_broker.address, county_db).start()
    hub.start()
    kiosk = HallClient(hall_broker.address, "test-hall", "kiosk-1").connect()
    console = HallClient(hall_broker.address, "test-hall", "console").connect()
    pad = HallClient(hall_broker.address, "test-hall", "pad-2").connect()
    try:
        def at(minutes: float, command: Command, client: HallClient = console) -> str:
            clock.set(minutes)
            reply = client.request(command)
            assert reply.ok and reply.outcome is not None, reply.refusal
            return reply.outcome.events[-1].id

        def rate(minutes: float, service_event_id: str, level: Level) -> str | None:
            clock.set(minutes)
            reply = pad.rate(RatingSubmission(service_event_id=service_event_id, channel=RatingChannel.PAD,
                                              level=level))
            assert reply.ok and reply.receipt is not None, reply.refusal
            return reply.receipt.case_id

        def step(minutes: float, case_id: str, what: CaseStep) -> None:
            clock.set(minutes)
            reply = console.record_step(CaseStepCommand(case_id=case_id, step=what, by="a1", note="复核意见"))
            assert reply.ok, reply.refusal

        for minute, service in ((0, "social"), (0.5, "permit"), (1, "pension"), (1.5, "pension"), (2, "pension")):
            at(minute, TakeTicket(service_id=service), kiosk)
        at(5, CallNext(window=1))                                # A001 waited 5 min
        at(6, CallNext(window=3))                                # C001 waited 5.5 min
        at(6.5, Skip(window=3))                                  # put back once (no_show_requeue = 1)
        at(7, CallNext(window=3))
        at(7.5, Skip(window=3))                                  # a no-show: abandoned
        at(8, Complete(window=1))
        served = []
        for called, done in ((10, 14), (15, 18), (19, 22)):      # B001..B003 at window 2, with its pad
            at(called, CallNext(window=2))
            served.append(at(done, Complete(window=2)))
        assert rate(14.2, served[0], Level.VERY_SATISFIED) is None
        upheld_case = rate(18.2, served[1], Level.VERY_DISSATISFIED)
        rejected_case = rate(22.2, served[2], Level.DISSATISFIED)
        assert upheld_case and rejected_case
        at(40, TakeTicket(service_id="social"), kiosk)
        at(37, CallNext(window=1))  # the PC's clock stepped back 3 min: A002 called "before" it was taken
        at(39, Complete(window=1))
        at(41, TakeTicket(service_id="social"), kiosk)           # A003: still waiting at close
        # 最长等候, one definition everywhere: from the taking of the ticket stamped earliest, never negative.
        first = longest_everywhere(hub, config, data, county_db, clock, 44)
        assert first == everywhere(Longest(180.0, {"social": 180.0}))  # A003, 3 min
        assert county_console_longest(county_db) == (3.0, {"social": 180.0})
        stepped = longest_everywhere(hub, config, data, county_db, clock, 40)  # the clock stepped back 4 min
        assert stepped == everywhere(Longest(0.0, {}))  # A003 has waited 0 s, not -60
        at(40, TakeTicket(service_id="social"), kiosk)           # A004: behind A003, stamped a minute earlier
        later = longest_everywhere(hub, config, data, county_db, clock, 46)
        assert later == everywhere(Longest(360.0, {"social": 360.0}))  # A004's 6 min, not A003's 5
        assert county_console_longest(county_db) == (6.0, {"social": 360.0})
        step(50, upheld_case, CaseStep.APPEALED)
        step(51, upheld_case, CaseStep.APPEAL_UPHELD)            # the rating is voided
        step(52, rejected_case, CaseStep.APPEALED)
        step(53, rejected_case, CaseStep.APPEAL_REJECTED)        # back to verified: still open
        clock.set(0, day=1)
        kiosk.request(TakeTicket(service_id="social"))           # Tuesday opens: Monday's final statistics

        wait_for(lambda: count(county_db, "SELECT count(*) FROM queue_stats WHERE final") == 1
                 and count(county_db, "SELECT count(*) FROM ratings") == 3
                 and count(county_db, "SELECT count(*) FROM case_updates") == 6, timeout=60)

        # At the hall: `hall figures`, read from the hub's file.
        assert main(["figures", "--config", str(tmp_path / "hall.toml"), "--data", str(data),
                     "--day", DAY.isoformat(), "--json"]) == 0
        hall = DailyFigures.model_validate(json.loads(capsys.readouterr().out))
        # On the dashboard: its day fold and rating book over the same file, as /api/figures serves them.
        log = EventLog(data / "hall.sqlite3")
        try:
            dashboard = dashboard_figures(config, load_day(config, log, DAY), RatingBook(config, log), hall.as_of,
                                          hall.queue.as_of)
        finally:
            log.close()
        # At the county: its report, and the statistics it stored.
        with psycopg.connect(county_db) as conn:
            [county] = county_report(conn, DAY, ZONE, silent_hours=24, now=datetime.now(UTC)).halls
            [(body,)] = conn.execute("SELECT body FROM queue_stats WHERE day = %s AND final", (DAY,)).fetchall()
        stats = QueueStats.model_validate(body)
    finally:
        for client in (kiosk, console, pad):
            client.close()
        hub.stop()
        ingest.stop()

    # What the day was, by hand: waits 5, 5.5, 9, 13.5, 17 min and 0 s for the stepped-back call.
    queue = hall.queue.total
    assert hall.queue.final and hall.as_of == datetime.now(ZONE).date()
    assert (queue.taken, queue.served, queue.waiting, queue.abandoned) == (8, 5, 0, 3)
    assert queue.longest_wait_seconds == 0.0  # closed: nobody waits
    assert (queue.mean_wait_seconds, queue.p90_wait_seconds) == (500.0, 1020.0)
    waits = [f.mean_wait_seconds for f in [*hall.queue.services, *hall.queue.windows, *hall.queue.staff]]
    assert all(w is None or w >= 0 for w in waits)
    assert next(w for w in hall.queue.windows if w.window == 1).mean_wait_seconds == 150.0  # (300 + 0) / 2
    rated = hall.ratings
    assert (rated.served, rated.rated, rated.voided, rated.counted, rated.satisfied, rated.bad) == (5, 3, 1, 2, 1, 1)
    assert (rated.satisfaction_rate, rated.bad_rate, rated.coverage) == (0.5, 0.5, 0.6)
    assert (rated.open_cases, rated.overdue_cases) == (1, 1)
    assert (rated.appeals, rated.appeals_upheld, rated.appeals_rejected) == (2, 1, 1)

    # The dashboard: every figure equal.
    assert dashboard == hall

    # The county: the statistics it holds are the hall's fold; its rating figures its own SQL.
    assert stats.final and stats.total.model_dump() == queue.model_dump()
    assert [s.model_dump() for s in stats.services] == [s.model_dump() for s in hall.queue.services]
    assert [w.model_dump() for w in stats.windows] == [w.model_dump() for w in hall.queue.windows]
    assert (county.taken, county.served, county.waiting, county.abandoned) == (8, 5, 0, 3)
    assert county.mean_wait_minutes == round(queue.mean_wait_seconds / 60, 1)
    assert county.p90_wait_minutes == round(queue.p90_wait_seconds / 60, 1)
    assert (county.ratings, county.voided, county.bad_ratings) == (rated.counted, rated.voided, rated.bad)
    assert county.satisfaction == round(rated.satisfaction_rate, 4)
    assert county.bad_rate == round(rated.bad_rate, 4)
    assert county.coverage == round(rated.coverage, 4)
    assert rated.mean_score is not None and county.mean_score == round(rated.mean_score, 2)
    assert (county.cases_open, county.cases_overdue) == (rated.open_cases, rated.overdue_cases)
    assert (county.appeals, county.appeals_upheld, county.appeals_rejected) == (
        rated.appeals, rated.appeals_upheld, rated.appeals_rejected)
