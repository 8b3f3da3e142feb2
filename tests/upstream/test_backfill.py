"""Backfill: a hall's ratings, cases and past days from before its uplink reach the county once.

Real SQLite, real Mosquitto (the hall's and two counties'), real PostgreSQL with the real ingest.
The hall works three days without ``[upstream]``; then the uplink is set, the hub restarted, run
without the uplink for a while, and pointed at another county: each county holds everything once.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from hallkit.broker.hub import Hub
from hallkit.broker.parts import hub_parts
from hallkit.broker.ratings import RatingsPart
from hallkit.broker.testing import Mosquitto
from hallkit.contracts.hall import CaseStepRequest, RatingRequest, Topics
from hallkit.county.ingest import Ingest
from hallkit.county.testing import fresh_database
from hallkit.uplink.backfill import BackfillReason, Mark, Target, reason_for
from hallkit.uplink.outbox import Outbox
from hallkit.uplink.testing import pads_hall_config, unreachable_url

from hallkit.config import HallConfig
from hallkit.queue.models import CallNext, Complete, TakeTicket
from hallkit.rating import store as rating_store
from hallkit.rating.models import CaseStep, CaseStepCommand, Level, RatingChannel, RatingSubmission
from hallkit.rating.rules import EventStatus
from hallkit.testing import MONDAY
from tests.broker.test_hub import wait_for
from tests.upstream.test_uplink import backlog, county_count

TOPICS = Topics("test-hall")


class Hall:
    """The hub with its real parts, started on the hall broker; works a day the way windows and pads do."""

    def __init__(self, config: HallConfig, hall_broker: Mosquitto, data: Path) -> None:
        self.config = config
        self.hub = Hub(config, hall_broker.address, data, "normal", parts=hub_parts(config))
        self.ratings = next(p for p in self.hub.parts if isinstance(p, RatingsPart))
        self.hub.start()

    def work_day(self, day: int, served: int, levels: list[Level]) -> list[str]:
        """``served`` tickets served at window 1, one left waiting; the first ones rated ``levels``.

        Returns the ids of the cases the bad ratings opened.
        """
        start = MONDAY + timedelta(days=day)
        queue = self.hub.queue
        for i in range(served + 1):
            queue.execute(TakeTicket(service_id="social"), start + timedelta(minutes=i))
        for i in range(served):
            queue.execute(CallNext(window=1), start + timedelta(minutes=30 + 10 * i))
            queue.execute(Complete(window=1), start + timedelta(minutes=35 + 10 * i))
        with queue.lock:
            pending = [e for e in rating_store.events(queue.store.conn)
                       if e.status is EventStatus.PENDING and e.served_at >= start]
        pad = next(d for d in self.config.devices if d.id == "pad-1")
        cases = []
        for event, level in zip(pending, levels, strict=False):
            request = RatingRequest(device=pad.id, reply_to=TOPICS.rating_reply(pad.id), submission=RatingSubmission(
                service_event_id=event.service_event_id, channel=RatingChannel.PAD, level=level,
                tags=["态度不好"] if level.bad else []))
            reply = self.ratings.rate(pad, request, event.served_at + timedelta(seconds=30))
            assert reply.ok and reply.receipt is not None, reply.refusal
            if reply.receipt.case_id is not None:
                cases.append(reply.receipt.case_id)
        return cases

    def step(self, case_id: str, step: CaseStep, day: int) -> None:
        console = next(d for d in self.config.devices if d.id == "console")
        request = CaseStepRequest(device=console.id, reply_to=TOPICS.rating_reply(console.id),
                                  step=CaseStepCommand(case_id=case_id, step=step, by="a1"))
        reply = self.ratings.record_step(console, request, MONDAY + timedelta(days=day, hours=6))
        assert reply.ok, reply.refusal

    @property
    def outbox(self) -> Outbox:
        return next(p for p in self.hub.parts if isinstance(p, Outbox))

    def stop(self) -> None:
        self.hub.stop()


class County:
    """A county: its own Mosquitto, PostgreSQL database and ingest."""

    def __init__(self, folder: Path, dsn: str) -> None:
        self.broker = Mosquitto(folder).start()
        self.dsn = dsn
        self.ingest = Ingest(self.broker.address, dsn).start()
        # The ingest makes its tables from its own thread.
        wait_for(lambda: county_count(dsn, "SELECT count(*) FROM pg_tables WHERE tablename = 'queue_stats'") == 1,
                 timeout=30)

    def counts(self) -> tuple[int, int, int, int]:
        """Ratings, case updates, final statistics, and messages that carried any of them."""
        return (county_count(self.dsn, "SELECT count(*) FROM ratings"),
                county_count(self.dsn, "SELECT count(*) FROM case_updates"),
                county_count(self.dsn, "SELECT count(*) FROM queue_stats WHERE final"),
                county_count(self.dsn, "SELECT count(*) FROM messages WHERE kind IN ('rating', 'case', 'stats')"))

    def final_days(self) -> dict[str, dict[str, object]]:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute("SELECT day::text, body FROM queue_stats WHERE final").fetchall()
        return {day: body for day, body in rows}

    def stop(self) -> None:
        self.ingest.stop()
        self.broker.stop()


@pytest.fixture
def second_county_db():
    with fresh_database() as dsn:
        yield dsn


def delivered(county: County, hall_broker: Mosquitto, expected: tuple[int, int, int]) -> None:
    wait_for(lambda: county.counts()[:3] == expected, timeout=60)
    wait_for(lambda: backlog(hall_broker) == 0, timeout=20)


def test_what_the_hall_held_goes_up_once_per_county(tmp_path, hall_broker, county_db, second_county_db, caplog):
    data = tmp_path / "data"
    caplog.set_level("INFO", logger="hallkit.outbox")
    # Three days without an uplink: 3 + 2 ratings (two bad, opening cases), case steps, two closed days.
    hall = Hall(pads_hall_config(None), hall_broker, data)
    try:
        first_cases = hall.work_day(0, 3, [Level.VERY_SATISFIED, Level.DISSATISFIED, Level.SATISFIED])
        hall.step(first_cases[0], CaseStep.VERIFIED, 0)
        second_cases = hall.work_day(1, 2, [Level.VERY_DISSATISFIED, Level.BASIC])
        hall.work_day(2, 1, [])  # opens day 3: days 1 and 2 are closed
    finally:
        hall.stop()
    ratings, cases, days = 5, 3, 2  # two cases opened, one verified

    county_a = County(tmp_path / "county-a", county_db)
    county_b: County | None = None
    try:
        # The uplink is set: everything the hall held reaches county A once.
        hall = Hall(pads_hall_config("county-a", county_a.broker.url), hall_broker, data)
        try:
            delivered(county_a, hall_broker, (ratings, cases, days))
            assert "The uplink to county county-a is new" in caplog.text
            assert "评价 5 条、整改记录 3 条、2 个往日的最终统计" in caplog.text
            assert county_count(county_a.dsn, "SELECT count(*) FROM quarantine") == 0  # no resident hash went up
            with psycopg.connect(county_a.dsn) as conn:
                day_one = conn.execute("SELECT body FROM queue_stats WHERE day = '2026-11-23'").fetchone()[0]
            assert (day_one["total"]["taken"], day_one["total"]["served"], day_one["total"]["abandoned"]) == (4, 3, 1)
            # Live from here on: a step of a case from day 2, and day 4 opens (closing day 3 at once).
            hall.step(second_cases[0], CaseStep.VERIFIED, 3)
            hall.work_day(3, 0, [])
            cases, days = cases + 1, days + 1
            delivered(county_a, hall_broker, (ratings, cases, days))
        finally:
            hall.stop()
        sent = county_a.counts()

        # A restart sends nothing again.
        caplog.clear()
        hall = Hall(pads_hall_config("county-a", county_a.broker.url), hall_broker, data)
        try:
            wait_for(lambda: hall.outbox.backlog().connected, timeout=20)
            wait_for(lambda: backlog(hall_broker) == 0, timeout=20)
            assert county_a.counts() == sent
            assert "The county keeps each once" not in caplog.text
        finally:
            hall.stop()

        # A while without the uplink: what was rated then goes up when it is back.
        hall = Hall(pads_hall_config(None), hall_broker, data)
        try:
            hall.work_day(4, 1, [Level.SATISFIED])
        finally:
            hall.stop()
        ratings, days = ratings + 1, days + 1  # day 5 opening closed day 4
        hall = Hall(pads_hall_config("county-a", county_a.broker.url), hall_broker, data)
        try:
            delivered(county_a, hall_broker, (ratings, cases, days))
            assert "The hub ran without the uplink for a while" in caplog.text
        finally:
            hall.stop()

        # Another county on another broker: it gets everything, county A nothing more.
        before = county_a.counts()
        county_b = County(tmp_path / "county-b", second_county_db)
        hall = Hall(pads_hall_config("county-b", county_b.broker.url), hall_broker, data)
        try:
            delivered(county_b, hall_broker, (ratings, cases, days))
            assert "The uplink now goes to county county-b" in caplog.text
        finally:
            hall.stop()
        assert county_a.counts()[:3] == before[:3]
        # Day 3 closed live at county A and by backfill at county B: the same final statistics.
        assert county_a.final_days() == county_b.final_days()
        assert len(county_b.final_days()) == days
        assert county_count(county_b.dsn, "SELECT count(*) FROM quarantine") == 0
    finally:
        county_a.stop()
        if county_b is not None:
            county_b.stop()


def test_when_to_backfill():
    here = Target(county="county-a", broker="mqtt://county-a:1883")
    assert reason_for(None, here, 1) is BackfillReason.FIRST
    assert reason_for(Mark(target=here, session=4), here, 5) is None
    assert reason_for(Mark(target=here, session=3), here, 5) is BackfillReason.GAP
    assert reason_for(Mark(target=here, session=9), here, 1) is BackfillReason.GAP  # the session file was lost
    moved = Target(county="county-a", broker="mqtts://county-a:8883")
    assert reason_for(Mark(target=here, session=4), moved, 5) is BackfillReason.NEW_COUNTY
    assert reason_for(Mark(target=here, session=4), Target(county="county-b", broker=here.broker), 5) \
        is BackfillReason.NEW_COUNTY


def test_the_outbox_without_the_ratings_part_backfills_days_only(tmp_path, hall_broker):
    """``hub_parts`` attaches the ratings part first; a hub with only the outbox has no rating tables."""
    config = pads_hall_config(None)
    hub = Hub(config, hall_broker.address, tmp_path / "data", "normal")
    hub.queue.execute(TakeTicket(service_id="social"), MONDAY)
    hub.queue.execute(TakeTicket(service_id="social"), MONDAY + timedelta(days=1))
    hub.queue.close()
    upstream = pads_hall_config("county-a", unreachable_url()).upstream
    assert upstream is not None
    hub = Hub(config, hall_broker.address, tmp_path / "data", "normal", parts=[Outbox(config, upstream)])
    try:
        with hub.queue.lock:
            rows = hub.queue.store.conn.execute("SELECT kind, item_id, body FROM outbox").fetchall()
        assert [(kind, item) for kind, item, _ in rows] == [("stats", "test-hall-2026-11-23-final")]
        assert json.loads(rows[0][2])["total"]["abandoned"] == 1
    finally:
        hub.parts[0].close()
        hub.queue.close()
