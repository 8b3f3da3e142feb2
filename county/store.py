"""From MQTT messages to PostgreSQL rows: validation, quarantine, idempotent batched writes.

:func:`parse` turns one message into an accepted batch, a hall's link status
or a rejection with a reason (never an exception). :func:`write` stores a
group of them in the caller's transaction: a batch whose ``msg_id`` is known
is skipped whole; every item is inserted ``ON CONFLICT DO NOTHING`` on its own
id, so a batch sent again under a new message id (after a hall's reconnect)
adds nothing either. One ``INSERT … SELECT FROM unnest(arrays)`` per table
and group: the cost per row is PostgreSQL's, not a round trip's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from pydantic import ValidationError

from county.contract import (
    UP_BATCH,
    CaseBatch,
    RatingBatch,
    StatsBatch,
    TelemetryBatch,
    UpKind,
    UplinkStatus,
    parse_topic,
)

UpBatchModel = RatingBatch | CaseBatch | StatsBatch | TelemetryBatch


@dataclass(frozen=True)
class Accepted:
    batch: UpBatchModel
    raw: bytes = field(repr=False)


@dataclass(frozen=True)
class LinkStatus:
    status: UplinkStatus


@dataclass(frozen=True)
class Rejected:
    topic: str
    payload: bytes
    reason: str
    detail: str


Parsed = Accepted | LinkStatus | Rejected


def parse(topic: str, payload: bytes) -> Parsed:
    """Validate one message against the contract and its topic; a reason when it does not fit."""
    parts = parse_topic(topic)
    if parts is None:
        return Rejected(topic, payload, "county.quarantine.unknown_topic", topic[:200])
    if parts.leaf == "up" and parts.kind not in {k.value for k in UpKind}:
        return Rejected(topic, payload, "county.quarantine.unknown_kind", str(parts.kind)[:64])
    try:
        json.loads(payload)
    except (ValueError, RecursionError) as exc:  # bad bytes or JSON, absurd numbers or nesting
        return Rejected(topic, payload, "county.quarantine.not_json", str(exc)[:300])
    try:
        model = UplinkStatus.model_validate_json(payload) if parts.leaf == "status" else UP_BATCH.validate_json(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return Rejected(topic, payload, "county.quarantine.invalid", f"{where}: {first['msg']}"[:300])
    mismatch = [f"{name} {said!r} in the payload, {topic_value!r} in the topic"
                for name, said, topic_value in (("hall", model.hall, parts.hall), ("county", model.county, parts.county),
                                                ("kind", getattr(model, "kind", None), parts.kind))
                if said != topic_value]
    if mismatch:
        return Rejected(topic, payload, "county.quarantine.topic_mismatch", "; ".join(mismatch)[:300])
    return LinkStatus(model) if isinstance(model, UplinkStatus) else Accepted(model, payload)


def write(conn: psycopg.Connection, parsed: list[Parsed]) -> int:
    """Store a group in the open transaction; returns the number of new items."""
    now = datetime.now(UTC)
    accepted = {p.batch.msg_id: p for p in parsed if isinstance(p, Accepted)}
    new: list[Accepted] = []
    if accepted:
        ordered = [a.batch for a in accepted.values()]
        known = conn.execute(
            """INSERT INTO messages (msg_id, hall, kind, items, historical, sent_at)
               SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::bool[], %s::timestamptz[])
               ON CONFLICT (msg_id) DO NOTHING RETURNING msg_id""",
            ([b.msg_id for b in ordered], [b.hall for b in ordered], [b.kind for b in ordered],
             [len(b.items) for b in ordered], [b.historical for b in ordered], [b.sent_at for b in ordered]),
        ).fetchall()
        fresh = {row[0] for row in known}
        new = [a for a in accepted.values() if a.batch.msg_id in fresh]
    added = _ratings(conn, [a for a in new if isinstance(a.batch, RatingBatch)])
    added += _cases(conn, [a.batch for a in new if isinstance(a.batch, CaseBatch)])
    added += _stats(conn, [a.batch for a in new if isinstance(a.batch, StatsBatch)])
    added += _telemetry(conn, [a.batch for a in new if isinstance(a.batch, TelemetryBatch)])
    _halls(conn, [a.batch for a in accepted.values()], [p.status for p in parsed if isinstance(p, LinkStatus)], now)
    rejected = [p for p in parsed if isinstance(p, Rejected)]
    if rejected:
        conn.cursor().executemany(
            "INSERT INTO quarantine (topic, payload, reason, detail) VALUES (%s, %s, %s, %s)",
            [(r.topic.replace("\x00", ""), r.payload, r.reason, r.detail.replace("\x00", "")) for r in rejected])
    return added


def _ratings(conn: psycopg.Connection, batches: list[Accepted]) -> int:
    """PostgreSQL unpacks the items from the payloads pydantic just validated: the hot path (ratings
    are most of the traffic) then costs Python one text parameter per group, not a value per field."""
    if not batches:
        return 0
    cursor = conn.execute(
        """INSERT INTO ratings (rating_id, hall, epoch, seq, region_code, service_event_id, ticket_id,
               ticket_number, service_code, service_name, department, window_no, staff_id, staff_name, channel,
               level, score, tags, comment, served_at, rated_at)
           SELECT r.rating_id, m.payload ->> 'hall', m.payload ->> 'epoch', (item ->> 'seq')::bigint, r.region_code,
               r.service_event_id,
               r.ticket_id, r.ticket_number, r.service_code, r.service_name, r.department, r."window", r.staff_id,
               r.staff_name, r.channel, r.level, r.score, r.tags, r.text, r.served_at, r.rated_at
           FROM jsonb_array_elements(%s::jsonb) AS m(payload),
               jsonb_array_elements(m.payload -> 'items') AS item,
               jsonb_to_record(item -> 'body') AS r(rating_id text, region_code text, service_event_id text,
                   ticket_id text, ticket_number text, service_code text, service_name text, department text,
                   "window" integer, staff_id text, staff_name text, channel text, level smallint, score integer,
                   tags jsonb, text text, served_at timestamptz, rated_at timestamptz)
           ON CONFLICT (rating_id) DO NOTHING""",
        # One JSON array of the payloads as sent: a text array would escape every quote in Python.
        ((b"[" + b",".join(a.raw for a in batches) + b"]").decode(),))
    return cursor.rowcount


def _cases(conn: psycopg.Connection, batches: list[CaseBatch]) -> int:
    rows = [(u.update_id, b.hall, b.epoch, item.seq, u.case_id, u.rating_id, u.step.value, u.by, u.at, u.note,
             u.deadline) for b in batches for item in b.items for u in (item.body,)]
    if not rows:
        return 0
    cursor = conn.execute(
        """INSERT INTO case_updates (update_id, hall, epoch, seq, case_id, rating_id, step, by_staff, at, note, deadline)
           SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[],
                                %s::text[], %s::timestamptz[], %s::text[], %s::date[])
           ON CONFLICT (update_id) DO NOTHING""",
        [list(c) for c in zip(*rows, strict=True)])
    return cursor.rowcount


def _stats(conn: psycopg.Connection, batches: list[StatsBatch]) -> int:
    rows = [(s.stats_id, b.hall, b.epoch, item.seq, s.day, s.as_of, s.final, s.model_dump_json())
            for b in batches for item in b.items for s in (item.body,)]
    if not rows:
        return 0
    cursor = conn.execute(
        """INSERT INTO queue_stats (stats_id, hall, epoch, seq, day, as_of, final, body)
           SELECT a, b, c, d, e, f, g, h::jsonb FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[],
               %s::date[], %s::timestamptz[], %s::bool[], %s::text[]) AS x(a, b, c, d, e, f, g, h)
           ON CONFLICT (stats_id) DO NOTHING""",
        [list(c) for c in zip(*rows, strict=True)])
    return cursor.rowcount


def _telemetry(conn: psycopg.Connection, batches: list[TelemetryBatch]) -> int:
    items = [(b, item.seq, item.body) for b in batches for item in b.items]
    if not items:
        return 0
    rows = [(t.telemetry_id, b.hall, b.epoch, seq, t.device, t.kind, t.state, t.session, t.version, t.observed_at,
             t.paper, json.dumps(t.faults, ensure_ascii=False)) for b, seq, t in items]
    cursor = conn.execute(
        """INSERT INTO telemetry (telemetry_id, hall, epoch, seq, device, kind, state, session, version, observed_at,
               paper, faults)
           SELECT a, b, c, d, e, f, g, h, i, j, k, l::jsonb FROM unnest(%s::text[], %s::text[], %s::text[],
               %s::bigint[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[], %s::timestamptz[],
               %s::text[], %s::text[]) AS x(a, b, c, d, e, f, g, h, i, j, k, l)
           ON CONFLICT (telemetry_id) DO NOTHING""",
        [list(c) for c in zip(*rows, strict=True)])
    # The fleet table keeps each device's newest state; one row per device per statement, in key
    # order, so two workers never wait on each other's rows in opposite orders (no deadlock).
    latest: dict[tuple[str, str], tuple[object, ...]] = {}
    for row in sorted(rows, key=lambda r: (r[1], r[4], r[9])):
        latest[(str(row[1]), str(row[4]))] = row
    fleet = [latest[key] for key in sorted(latest)]
    conn.execute(
        """INSERT INTO devices AS d (hall, device, kind, state, state_since, session, version, paper, faults,
               observed_at)
           SELECT b, e, f, g, j, h, i, k, l::jsonb, j FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],
               %s::text[], %s::bigint[], %s::text[], %s::timestamptz[], %s::text[], %s::text[])
               AS x(b, e, f, g, unused, h, i, j, k, l)
           ON CONFLICT (hall, device) DO UPDATE SET kind = excluded.kind, state = excluded.state,
               state_since = CASE WHEN d.state = excluded.state THEN d.state_since ELSE excluded.observed_at END,
               session = excluded.session, version = excluded.version, paper = excluded.paper,
               faults = excluded.faults, observed_at = excluded.observed_at
           WHERE excluded.observed_at >= d.observed_at""",
        [[r[1] for r in fleet], [r[4] for r in fleet], [r[5] for r in fleet], [r[6] for r in fleet],
         [""] * len(fleet), [r[7] for r in fleet], [r[8] for r in fleet], [r[9] for r in fleet],
         [r[10] for r in fleet], [r[11] for r in fleet]])
    return cursor.rowcount


def _halls(conn: psycopg.Connection, batches: list[UpBatchModel], statuses: list[UplinkStatus],
           now: datetime) -> None:
    """Last heard of, per hall (silent halls in the report), and the link state each hall last reported."""
    counties = {b.hall: b.county for b in batches} | {s.hall: s.county for s in statuses}
    if not counties:
        return
    halls = sorted(counties)
    conn.execute(
        """INSERT INTO halls (hall, county, first_seen, last_seen)
           SELECT h, c, %s, %s FROM unnest(%s::text[], %s::text[]) AS x(h, c)
           ON CONFLICT (hall) DO UPDATE SET last_seen = greatest(halls.last_seen, excluded.last_seen),
               county = excluded.county""",
        (now, now, halls, [counties[h] for h in halls]))
    latest: dict[str, UplinkStatus] = {}
    for status in sorted(statuses, key=lambda s: (s.hall, s.session, s.ts)):
        latest[status.hall] = status
    for hall in sorted(latest):
        status = latest[hall]
        # A Will from an older session (the hall already reconnected) must not mark it offline.
        conn.execute(
            """UPDATE halls SET link_state = %s, link_session = %s, link_at = %s, backlog = %s,
                   backlog_oldest_seconds = %s
               WHERE hall = %s AND (link_session IS NULL OR link_session < %s
                                    OR (link_session = %s AND link_at <= %s))""",
            (status.state, status.session, status.ts, status.backlog, status.oldest_seconds, hall,
             status.session, status.session, status.ts))
