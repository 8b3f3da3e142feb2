"""The county's PostgreSQL schema, as numbered migrations applied in order, once.

``migrate`` runs at every start of an ingest or a report. It takes an
advisory lock so several ingest workers starting together apply each
migration exactly once, records each in ``schema_migrations``, and refuses a
database written by a newer hallkit. A new migration is appended to
:data:`MIGRATIONS`; applied ones are never edited.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

MIGRATION_LOCK = 0x6861_6C6C  # "hall": any fixed number shared by every worker


SUMMARY_ZONE = "Asia/Shanghai"
"""The time zone of the summaries' days and months (migration 4); the console reads days in it."""


def _rating_rollups(ratings: str) -> tuple[str, ...]:
    """The statements that fold rows of ``ratings`` (and, below, statistics and case updates) into the summaries.

    Run once over the whole tables when migration 4 is applied, and by the triggers over each
    statement's new rows (its transition table): one text, so the backfill and the triggers
    cannot disagree. Rows are only ever added (``ON CONFLICT DO NOTHING`` on their ids keeps a
    repeat out of the transition table too), so counts are added, never recounted. Upserts go in
    key order, so two ingest workers updating the same summary rows wait instead of deadlocking.
    The figures follow county/report.py: bad is level 1-2, satisfied level 3-5 (基本满意 or
    better), given is a rating a resident gave (channel not ``default``); the statistics of a
    day are its final ones, else its latest; a case's state is its latest step (by time, then seq).
    """
    rollups = tuple(f"""INSERT INTO rating_{period} AS r (hall, {column}, service_code, department, staff, service_name,
                staff_name, ratings, bad, satisfied, given, score_sum)
            SELECT hall, {key}, service_code, department, coalesce(staff_id, ''), max(service_name),
                max(coalesce(staff_name, '')), count(*), count(*) FILTER (WHERE level <= 2),
                count(*) FILTER (WHERE level >= 3), count(*) FILTER (WHERE channel <> 'default'), sum(score)
            FROM {ratings} GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT (hall, {column}, service_code, department, staff) DO UPDATE SET
                ratings = r.ratings + excluded.ratings, bad = r.bad + excluded.bad,
                satisfied = r.satisfied + excluded.satisfied, given = r.given + excluded.given,
                score_sum = r.score_sum + excluded.score_sum, service_name = excluded.service_name,
                staff_name = excluded.staff_name"""
                    for period, column, key in (("daily", "day", "county_day(served_at)"),
                                                ("monthly", "month",
                                                 "date_trunc('month', county_day(served_at))::date")))
    return rollups


def _stats_rollups(stats: str) -> tuple[str, ...]:
    touched = f"(SELECT DISTINCT hall, day FROM {stats})"
    return (f"""INSERT INTO stats_latest AS s (hall, day, as_of, final, body)
            SELECT DISTINCT ON (hall, day) hall, day, as_of, final, body FROM {stats}
            ORDER BY hall, day, final DESC, as_of DESC
            ON CONFLICT (hall, day) DO UPDATE SET as_of = excluded.as_of, final = excluded.final, body = excluded.body
                WHERE (excluded.final, excluded.as_of) > (s.final, s.as_of)""",
            f"""DELETE FROM stats_service_daily d USING {touched} t WHERE d.hall = t.hall AND d.day = t.day""",
            f"""INSERT INTO stats_service_daily (hall, day, service_id, taken, served, abandoned, waiting,
                mean_wait_seconds)
            SELECT s.hall, s.day, x.service_id, x.taken, x.served, x.abandoned, x.waiting, x.mean_wait_seconds
            FROM stats_latest s JOIN {touched} t ON t.hall = s.hall AND t.day = s.day,
                jsonb_to_recordset(s.body -> 'services') AS x(service_id text, taken integer, served integer,
                    abandoned integer, waiting integer, mean_wait_seconds double precision)""")


def _case_rollup(cases: str) -> str:
    return f"""INSERT INTO case_latest AS c (hall, case_id, rating_id, step, deadline, at, seq, opened_at)
            SELECT DISTINCT ON (hall, case_id) hall, case_id, rating_id, step, deadline, at, seq,
                min(at) OVER (PARTITION BY hall, case_id)
            FROM {cases} ORDER BY hall, case_id, at DESC, seq DESC
            ON CONFLICT (hall, case_id) DO UPDATE SET
                opened_at = least(c.opened_at, excluded.opened_at),
                step = CASE WHEN (excluded.at, excluded.seq) > (c.at, c.seq) THEN excluded.step ELSE c.step END,
                deadline = CASE WHEN (excluded.at, excluded.seq) > (c.at, c.seq) THEN excluded.deadline
                                ELSE c.deadline END,
                seq = CASE WHEN (excluded.at, excluded.seq) > (c.at, c.seq) THEN excluded.seq ELSE c.seq END,
                at = greatest(c.at, excluded.at)"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "halls, messages, ratings, cases, statistics, telemetry, devices, quarantine", (
        """CREATE TABLE halls (
            hall text PRIMARY KEY,
            county text NOT NULL,
            first_seen timestamptz NOT NULL,
            last_seen timestamptz NOT NULL,
            link_state text,
            link_session bigint,
            link_at timestamptz,
            backlog integer,
            backlog_oldest_seconds double precision
        )""",
        """CREATE TABLE messages (
            msg_id text PRIMARY KEY,
            hall text NOT NULL,
            kind text NOT NULL,
            items integer NOT NULL,
            historical boolean NOT NULL,
            sent_at timestamptz NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        )""",
        """CREATE TABLE ratings (
            rating_id text PRIMARY KEY,
            hall text NOT NULL,
            epoch text NOT NULL,
            seq bigint NOT NULL,
            region_code text NOT NULL,
            service_event_id text NOT NULL,
            ticket_id text NOT NULL,
            ticket_number text NOT NULL,
            service_code text NOT NULL,
            service_name text NOT NULL,
            department text NOT NULL,
            window_no integer NOT NULL,
            staff_id text,
            staff_name text,
            channel text NOT NULL,
            level smallint NOT NULL,
            score integer NOT NULL,
            tags jsonb NOT NULL,
            comment text NOT NULL,
            served_at timestamptz NOT NULL,
            rated_at timestamptz NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        )""",
        "CREATE INDEX ratings_hall_served ON ratings (hall, served_at)",
        "CREATE INDEX ratings_hall_seq ON ratings (hall, epoch, seq)",
        """CREATE TABLE case_updates (
            update_id text PRIMARY KEY,
            hall text NOT NULL,
            epoch text NOT NULL,
            seq bigint NOT NULL,
            case_id text NOT NULL,
            rating_id text NOT NULL,
            step text NOT NULL,
            by_staff text NOT NULL,
            at timestamptz NOT NULL,
            note text NOT NULL,
            deadline date NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        )""",
        "CREATE INDEX case_updates_case ON case_updates (hall, case_id, at)",
        """CREATE TABLE queue_stats (
            stats_id text PRIMARY KEY,
            hall text NOT NULL,
            epoch text NOT NULL,
            seq bigint NOT NULL,
            day date NOT NULL,
            as_of timestamptz NOT NULL,
            final boolean NOT NULL,
            body jsonb NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        )""",
        "CREATE INDEX queue_stats_hall_day ON queue_stats (hall, day, final, as_of)",
        """CREATE TABLE telemetry (
            telemetry_id text PRIMARY KEY,
            hall text NOT NULL,
            epoch text NOT NULL,
            seq bigint NOT NULL,
            device text NOT NULL,
            kind text NOT NULL,
            state text NOT NULL,
            session bigint NOT NULL,
            version text NOT NULL,
            observed_at timestamptz NOT NULL,
            paper text,
            faults jsonb NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        )""",
        "CREATE INDEX telemetry_device ON telemetry (hall, device, observed_at)",
        """CREATE TABLE devices (
            hall text NOT NULL,
            device text NOT NULL,
            kind text NOT NULL,
            state text NOT NULL,
            state_since timestamptz NOT NULL,
            session bigint NOT NULL,
            version text NOT NULL,
            paper text,
            faults jsonb NOT NULL,
            observed_at timestamptz NOT NULL,
            PRIMARY KEY (hall, device)
        )""",
        """CREATE TABLE quarantine (
            id bigserial PRIMARY KEY,
            received_at timestamptz NOT NULL DEFAULT now(),
            topic text NOT NULL,
            payload bytea NOT NULL,
            reason text NOT NULL,
            detail text NOT NULL
        )""",
    )),
    Migration(4, "console: hall register, rating, statistics and case summaries kept by triggers", (
        """CREATE TABLE hall_register (
            hall text PRIMARY KEY,
            name text NOT NULL,
            township text NOT NULL
        )""",
        # The summaries' business day is China Standard Time, the report's default zone.
        f"""CREATE FUNCTION county_day(at timestamptz) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT (at AT TIME ZONE '{SUMMARY_ZONE}')::date $$""",
        *(f"""CREATE TABLE rating_{period} (
            hall text NOT NULL,
            {column} date NOT NULL,
            service_code text NOT NULL,
            department text NOT NULL,
            staff text NOT NULL,
            service_name text NOT NULL,
            staff_name text NOT NULL,
            ratings integer NOT NULL,
            bad integer NOT NULL,
            satisfied integer NOT NULL,
            given integer NOT NULL,
            score_sum bigint NOT NULL,
            PRIMARY KEY (hall, {column}, service_code, department, staff)
        )""" for period, column in (("daily", "day"), ("monthly", "month"))),
        "CREATE INDEX rating_daily_day ON rating_daily (day)",
        "CREATE INDEX rating_monthly_month ON rating_monthly (month)",
        """CREATE TABLE stats_latest (
            hall text NOT NULL,
            day date NOT NULL,
            as_of timestamptz NOT NULL,
            final boolean NOT NULL,
            body jsonb NOT NULL,
            PRIMARY KEY (hall, day)
        )""",
        "CREATE INDEX stats_latest_day ON stats_latest (day)",
        """CREATE TABLE stats_service_daily (
            hall text NOT NULL,
            day date NOT NULL,
            service_id text NOT NULL,
            taken integer NOT NULL,
            served integer NOT NULL,
            abandoned integer NOT NULL,
            waiting integer NOT NULL,
            mean_wait_seconds double precision,
            PRIMARY KEY (hall, day, service_id)
        )""",
        "CREATE INDEX stats_service_daily_day ON stats_service_daily (day)",
        """CREATE TABLE case_latest (
            hall text NOT NULL,
            case_id text NOT NULL,
            rating_id text NOT NULL,
            step text NOT NULL,
            deadline date NOT NULL,
            at timestamptz NOT NULL,
            seq bigint NOT NULL,
            opened_at timestamptz NOT NULL,
            PRIMARY KEY (hall, case_id)
        )""",
        "CREATE INDEX case_latest_step ON case_latest (step, deadline)",
        "CREATE INDEX case_latest_opened ON case_latest (opened_at) INCLUDE (hall)",
        "CREATE INDEX case_latest_rating ON case_latest (hall, rating_id)",
        "CREATE INDEX ratings_bad_served ON ratings (served_at) WHERE level <= 2",
        # What is already stored, then the triggers that keep the summaries in step from now on.
        *_rating_rollups("ratings"), *_stats_rollups("queue_stats"), _case_rollup("case_updates"),
        *(f"""CREATE FUNCTION summarise_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN {"; ".join(statements)}; RETURN NULL; END $$"""
          for name, statements in (("ratings", _rating_rollups("new_rows")), ("stats", _stats_rollups("new_rows")),
                                   ("cases", (_case_rollup("new_rows"),)))),
        """CREATE TRIGGER ratings_summary AFTER INSERT ON ratings REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION summarise_ratings()""",
        """CREATE TRIGGER queue_stats_summary AFTER INSERT ON queue_stats REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION summarise_stats()""",
        """CREATE TRIGGER case_updates_summary AFTER INSERT ON case_updates REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION summarise_cases()""",
    )),
)

LATEST = MIGRATIONS[-1].version


class SchemaTooNew(RuntimeError):
    pass


def migrate(conn: psycopg.Connection) -> int:
    """Bring the database to :data:`LATEST`; returns the version found before."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())""")
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        found = int(row[0]) if row else 0
        if found > LATEST:
            raise SchemaTooNew(f"the database has schema {found}, this hallkit knows {LATEST}: upgrade hallkit")
        for migration in MIGRATIONS:
            if migration.version > found:
                for statement in migration.statements:
                    conn.execute(statement)  # type: ignore[arg-type]  # constant SQL, no parameters
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             (migration.version, migration.name))
    return found
