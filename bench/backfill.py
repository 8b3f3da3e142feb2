"""Backfill benchmark: a year of a busy township hall queued for the county when its uplink is set.

Builds the hub's SQLite with the real parts and no ``[upstream]``: ``--days`` business days of
``--tickets`` tickets each (taken, called and served at window 1), ``--rated`` of them rated at
the pad, one in ``--bad-every`` badly (each bad rating opens a case, which is then verified and
rectified). Then starts a hub with ``[upstream]`` (an unreachable county: only the queuing is
measured) and prints how long attaching the outbox took and what it queued.

Needs nothing but SQLite. Run: ``.venv/bin/python bench/backfill.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from hallkit.broker.hub import Hub
from hallkit.broker.parts import hub_parts
from hallkit.broker.ratings import RatingsPart
from hallkit.contracts.hall import CaseStepRequest, RatingRequest, Topics
from hallkit.contracts.mqtt import parse_broker_url
from hallkit.uplink.backfill import backfill
from hallkit.uplink.table import SCHEMA
from hallkit.uplink.testing import pads_hall_config, unreachable_url

from hallkit.config import HallConfig
from hallkit.queue.models import CallNext, Command, Complete, TakeTicket, TicketCompleted
from hallkit.rating.models import CaseStep, CaseStepCommand, Level, RatingChannel, RatingSubmission
from hallkit.store.sqlite import EventStore
from hallkit.testing import MONDAY

TOPICS = Topics("test-hall")


def close(hub: Hub) -> None:
    """A hub that never connected: close its parts and its file (``Hub.stop`` expects a started hub)."""
    for part in hub.parts:
        part.close()
    hub.queue.close()


def build(config: HallConfig, data: Path, days: int, tickets: int, rated: float, bad_every: int) -> tuple[int, int]:
    """The hall's history, made by the real queue and ratings part; returns (ratings, case steps)."""
    hub = Hub(config, parse_broker_url(unreachable_url()), data, "normal", parts=hub_parts(config))
    ratings_part = next(p for p in hub.parts if isinstance(p, RatingsPart))
    pad = next(d for d in config.devices if d.id == "pad-1")
    console = next(d for d in config.devices if d.id == "console")
    ratings = steps = 0
    try:
        for day in range(days):
            # Weekdays only: a year of 250 business days spans about 350 calendar days.
            start = MONDAY + timedelta(days=day + 2 * (day // 5))
            commands: list[Command] = [TakeTicket(service_id="social") for _ in range(tickets)]
            times = [start + timedelta(seconds=3000 * i / tickets) for i in range(tickets)]
            for i in range(tickets):
                commands += [CallNext(window=1), Complete(window=1)]
                times += [start + timedelta(hours=1, seconds=60 * i), start + timedelta(hours=1, seconds=60 * i + 50)]
            done = [e for outcome in hub.queue.execute_batch(commands, times) if not isinstance(outcome, Exception)
                    for e in outcome.events if isinstance(e, TicketCompleted)]
            for n, event in enumerate(done[: int(len(done) * rated)]):
                level = Level.DISSATISFIED if n % bad_every == 0 else Level.VERY_SATISFIED
                reply = ratings_part.rate(pad, RatingRequest(
                    device=pad.id, reply_to=TOPICS.rating_reply(pad.id),
                    submission=RatingSubmission(service_event_id=event.id, channel=RatingChannel.PAD, level=level,
                                                tags=["效率低"] if level.bad else [])), event.at + timedelta(seconds=20))
                assert reply.receipt is not None, reply.refusal
                ratings += 1
                steps += 1 if reply.receipt.case_id else 0
                for step in (CaseStep.VERIFIED, CaseStep.RECTIFIED) if reply.receipt.case_id else ():
                    answer = ratings_part.record_step(console, CaseStepRequest(
                        device=console.id, reply_to=TOPICS.rating_reply(console.id),
                        step=CaseStepCommand(case_id=reply.receipt.case_id, step=step, by="a1")),
                        event.at + timedelta(hours=2))
                    assert answer.ok, answer.refusal
                    steps += 1
    finally:
        close(hub)
    return ratings, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--tickets", type=int, default=300, help="tickets a day")
    parser.add_argument("--rated", type=float, default=0.8, help="share of served tickets rated")
    parser.add_argument("--bad-every", type=int, default=33, help="one bad rating in this many")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        started = time.monotonic()
        ratings, steps = build(pads_hall_config(None), data, args.days, args.tickets, args.rated, args.bad_every)
        size = (data / "hall.sqlite3").stat().st_size / 2**20
        print(f"history: {args.days} days x {args.tickets} tickets, {ratings} ratings, {steps} case steps, "
              f"{size:.0f} MB (built in {time.monotonic() - started:.0f} s)")
        config = pads_hall_config("county-a", unreachable_url())
        assert config.upstream is not None
        # The backfill alone, on the hub's file with the outbox's tables (as Outbox.attach runs it).
        store = EventStore(data / "hall.sqlite3", "normal")
        try:
            with store.transaction() as conn:
                for statement in SCHEMA:
                    conn.execute(statement)
            report = backfill(store, config, config.upstream, session=1)
            assert report is not None
            items = report.ratings + report.cases + report.days
            print(f"backfill: {report.ratings} ratings, {report.cases} case steps, {report.days} days of final "
                  f"statistics queued in {report.seconds:.2f} s ({items / report.seconds:,.0f} items/s)")
        finally:
            store.close()
        # The whole hub start with the uplink for a new county (queue restore, parts, backfill again).
        config = pads_hall_config("county-b", unreachable_url())
        started = time.monotonic()
        hub = Hub(config, parse_broker_url(unreachable_url()), data, "normal", parts=hub_parts(config))
        print(f"hub start with the outbox attached, pointed at a new county: {time.monotonic() - started:.2f} s")
        close(hub)

if __name__ == "__main__":
    main()
