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
"""The county's zone: "today" of the console and the hours of a hall's day are read in it."""

FINISHING = "('closed', 'appeal_upheld')"
"""hallkit.rating.cases.FINISHING_STEPS as SQL (tests/county_web checks they agree)."""

# The summaries of migration 4. One text serves the backfill (over the whole tables, once) and the
# triggers (over each statement's new rows, its transition table ``new_rows``); migration 7 gives
# the ratings trigger a cheaper text of the same sums, and tests/county_web checks it against the
# whole-table fold. Rows are only added: ``ON CONFLICT DO NOTHING`` keeps a repeat out of the transition
# table, so counts are added, never recounted. Upserts go in key order, so two ingest workers
# updating the same summary rows wait for each other instead of deadlocking. The figures are
# county/report.py's (docs/queue.md, "Daily figures"): a rating's day is its ticket's day (the
# ticket id's date prefix); a rating whose case has an ``appeal_upheld`` step is voided: out of
# every count but coverage's "given"; a case (one per bad rating, keyed by its rating) is
# finished once it has a ``closed`` or ``appeal_upheld`` step, its deadline the latest it was given.

TICKET_DAY = r"""CREATE FUNCTION ticket_day(ticket_id text) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ticket_id ~ '^[1-9][0-9]{3}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])-' THEN
        CASE WHEN to_char(make_date(left(ticket_id, 4)::int, substr(ticket_id, 5, 2)::int, 1)
                          + (substr(ticket_id, 7, 2)::int - 1), 'YYYYMMDD') = left(ticket_id, 8)
             THEN make_date(left(ticket_id, 4)::int, substr(ticket_id, 5, 2)::int, 1)
                  + (substr(ticket_id, 7, 2)::int - 1) END END $$"""
"""The day a ticket id names (``hallkit.queue.numbering.ticket_id_prefix``), NULL for an id that
names none: such a rating is in no day of the report either. CASE, not AND: PostgreSQL does not
promise to test the pattern before building the date, and a bad date would fail the ingest."""

TICKET_DAY_INLINED = r"""CREATE OR REPLACE FUNCTION ticket_day(ticket_id text) RETURNS date LANGUAGE sql IMMUTABLE
    PARALLEL SAFE AS $$
    SELECT CASE WHEN ticket_id ~ '^[1-9][0-9]{3}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])-' THEN
        CASE WHEN extract(day FROM make_date(left(ticket_id, 4)::int, substr(ticket_id, 5, 2)::int, 1)
                          + (substr(ticket_id, 7, 2)::int - 1)) = substr(ticket_id, 7, 2)::int
             THEN make_date(left(ticket_id, 4)::int, substr(ticket_id, 5, 2)::int, substr(ticket_id, 7, 2)::int)
        END END $$"""
"""The same days as :data:`TICKET_DAY`, from immutable parts only (``to_char`` is stable), so the
planner inlines it into the summaries' statements: a call of a SQL function it cannot inline costs
several times the expression, and the rating trigger makes several per row."""

_RATING_KEY = "hall, {period}, service_code, department, coalesce(staff_id, '')"
_PERIODS = (("daily", "day", "ticket_day(ticket_id)"),
            ("monthly", "month", "date_trunc('month', ticket_day(ticket_id))::date"))


def _rating_rollups(ratings: str) -> tuple[str, ...]:
    """Ratings into ``rating_daily`` and ``rating_monthly``, less those whose case is already voided
    (an appeal can arrive before its rating through another worker), and the case rows told their day."""
    statements = tuple(f"""INSERT INTO rating_{period} AS r (hall, {column}, service_code, department, staff,
                service_name, staff_name, ratings, bad, satisfied, given, voided, score_sum)
            SELECT n.hall, {key}, n.service_code, n.department, coalesce(n.staff_id, ''), max(n.service_name),
                max(coalesce(n.staff_name, '')),
                count(*) FILTER (WHERE NOT coalesce(c.voided, false)),
                count(*) FILTER (WHERE NOT coalesce(c.voided, false) AND n.level <= 2),
                count(*) FILTER (WHERE NOT coalesce(c.voided, false) AND n.level >= 3),
                count(*) FILTER (WHERE n.channel <> 'default'), count(*) FILTER (WHERE c.voided),
                coalesce(sum(n.score) FILTER (WHERE NOT coalesce(c.voided, false)), 0)
            FROM {ratings} n LEFT JOIN case_latest c ON c.hall = n.hall AND c.rating_id = n.rating_id
            WHERE ticket_day(n.ticket_id) IS NOT NULL
            GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT (hall, {column}, service_code, department, staff) DO UPDATE SET
                ratings = r.ratings + excluded.ratings, bad = r.bad + excluded.bad,
                satisfied = r.satisfied + excluded.satisfied, given = r.given + excluded.given,
                voided = r.voided + excluded.voided, score_sum = r.score_sum + excluded.score_sum,
                service_name = excluded.service_name, staff_name = excluded.staff_name"""
                       for period, column, key in ((p, c, k.replace("ticket_id", "n.ticket_id"))
                                                   for p, c, k in _PERIODS))
    return (*statements,
            f"""UPDATE case_latest c SET ticket_day = ticket_day(n.ticket_id) FROM {ratings} n
            WHERE c.hall = n.hall AND c.rating_id = n.rating_id AND c.ticket_day IS NULL""")


def _rating_rollup_once(ratings: str, cases_by_key: bool = True) -> str:
    """What :func:`_rating_rollups` does, as one statement that reads each new rating once: its day
    and its case's voided flag are found once per rating (they were four times: the filter and the
    key of each period), and the month is rolled up from the day's few summary rows. The rows are
    written in the same order as before (daily, monthly, then the case rows), each table in key order.

    ``cases_by_key`` (migration 8): a case row is told its day only if the rating's own look-up by
    key found it without one. Migration 7 asked for every case row without a day instead: the plan
    PostgreSQL cached for the trigger (made when ``case_latest`` was small, for a new-rows table of
    one row) scanned ``case_latest_day`` for each new rating, 5–10 µs of the ingest's backend per
    rating in a reconnect storm (docs/deployment.md)."""
    cases = ("""cases AS (UPDATE case_latest c SET ticket_day = coalesce(c.ticket_day, n.day) FROM n
            WHERE n.case_without_day AND c.hall = n.hall AND c.rating_id = n.rating_id)""" if cases_by_key else
             """cases AS (UPDATE case_latest c SET ticket_day = n.day FROM n
            WHERE c.hall = n.hall AND c.rating_id = n.rating_id AND c.ticket_day IS NULL)""")
    without_day = (",\n                c.rating_id IS NOT NULL AND c.ticket_day IS NULL AS case_without_day"
                   if cases_by_key else "")
    return f"""WITH n AS (SELECT n.hall, ticket_day(n.ticket_id) AS day, n.rating_id, n.service_code, n.department,
                coalesce(n.staff_id, '') AS staff, n.service_name, coalesce(n.staff_name, '') AS staff_name,
                n.level, n.channel, n.score, coalesce(c.voided, false) AS voided{without_day}
            FROM {ratings} n LEFT JOIN case_latest c ON c.hall = n.hall AND c.rating_id = n.rating_id),
        d AS (SELECT hall, day, service_code, department, staff, max(service_name) AS service_name,
                max(staff_name) AS staff_name, count(*) FILTER (WHERE NOT voided) AS ratings,
                count(*) FILTER (WHERE NOT voided AND level <= 2) AS bad,
                count(*) FILTER (WHERE NOT voided AND level >= 3) AS satisfied,
                count(*) FILTER (WHERE channel <> 'default') AS given, count(*) FILTER (WHERE voided) AS voided,
                coalesce(sum(score) FILTER (WHERE NOT voided), 0) AS score_sum
            FROM n WHERE day IS NOT NULL GROUP BY 1, 2, 3, 4, 5),
        monthly AS (INSERT INTO rating_monthly AS r (hall, month, service_code, department, staff, service_name,
                staff_name, ratings, bad, satisfied, given, voided, score_sum)
            SELECT hall, date_trunc('month', day)::date, service_code, department, staff, max(service_name),
                max(staff_name), sum(ratings), sum(bad), sum(satisfied), sum(given), sum(voided), sum(score_sum)
            FROM d GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT (hall, month, service_code, department, staff) DO UPDATE SET
                ratings = r.ratings + excluded.ratings, bad = r.bad + excluded.bad,
                satisfied = r.satisfied + excluded.satisfied, given = r.given + excluded.given,
                voided = r.voided + excluded.voided, score_sum = r.score_sum + excluded.score_sum,
                service_name = excluded.service_name, staff_name = excluded.staff_name),
        {cases}
        INSERT INTO rating_daily AS r (hall, day, service_code, department, staff, service_name, staff_name,
            ratings, bad, satisfied, given, voided, score_sum)
        SELECT * FROM d ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (hall, day, service_code, department, staff) DO UPDATE SET
            ratings = r.ratings + excluded.ratings, bad = r.bad + excluded.bad,
            satisfied = r.satisfied + excluded.satisfied, given = r.given + excluded.given,
            voided = r.voided + excluded.voided, score_sum = r.score_sum + excluded.score_sum,
            service_name = excluded.service_name, staff_name = excluded.staff_name"""


SERVICE_FIGURES_4 = (("taken", "integer"), ("served", "integer"), ("abandoned", "integer"), ("waiting", "integer"),
                     ("mean_wait_seconds", "double precision"))
"""The columns of ``stats_service_daily`` migration 4 made: a service's figures as its statistics carry them."""
SERVICE_FIGURES = (*SERVICE_FIGURES_4, ("longest_wait_seconds", "double precision"))
"""With migration 6's 最长等候 (NULL from a hall that does not send it)."""


def _stats_rollups(stats: str, figures: tuple[tuple[str, str], ...] = SERVICE_FIGURES) -> tuple[str, ...]:
    touched = f"(SELECT DISTINCT hall, day FROM {stats})"
    names = ", ".join(name for name, _type in figures)
    return (f"""INSERT INTO stats_latest AS s (hall, day, as_of, final, body)
            SELECT DISTINCT ON (hall, day) hall, day, as_of, final, body FROM {stats}
            ORDER BY hall, day, final DESC, as_of DESC
            ON CONFLICT (hall, day) DO UPDATE SET as_of = excluded.as_of, final = excluded.final, body = excluded.body
                WHERE (excluded.final, excluded.as_of) > (s.final, s.as_of)""",
            f"""DELETE FROM stats_service_daily d USING {touched} t WHERE d.hall = t.hall AND d.day = t.day""",
            f"""INSERT INTO stats_service_daily (hall, day, service_id, {names})
            SELECT s.hall, s.day, x.service_id, {", ".join(f"x.{name}" for name, _type in figures)}
            FROM stats_latest s JOIN {touched} t ON t.hall = s.hall AND t.day = s.day,
                jsonb_to_recordset(s.body -> 'services') AS x(service_id text,
                    {", ".join(f"{name} {kind}" for name, kind in figures)})""")


def _summary_function(name: str, statements: tuple[str, ...], replace: bool = False) -> str:
    """The trigger function running ``statements`` over each statement's new rows."""
    return f"""CREATE {"OR REPLACE " if replace else ""}FUNCTION summarise_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN {"; ".join(statements)}; RETURN NULL; END $$"""


def _case_rollup(cases: str) -> str:
    """Steps into ``case_latest``; a case voided by these steps takes its rating out of the rating
    summaries (one statement: every part sees the case rows as they were before it)."""
    folded = f"""SELECT u.hall, u.rating_id, max(u.case_id) AS case_id,
                bool_or(u.step IN {FINISHING}) AS finished, bool_or(u.step = 'appeal_upheld') AS voided,
                max(u.deadline) AS deadline, count(*) FILTER (WHERE u.step = 'appealed') AS appeals,
                count(*) FILTER (WHERE u.step = 'appeal_upheld') AS upheld,
                count(*) FILTER (WHERE u.step = 'appeal_rejected') AS rejected, min(u.at) AS opened_at,
                (array_agg(u.step ORDER BY u.at DESC, u.seq DESC))[1] AS step, max(u.at) AS at,
                (array_agg(u.seq ORDER BY u.at DESC, u.seq DESC))[1] AS seq
            FROM {cases} u GROUP BY u.hall, u.rating_id"""
    voided = """SELECT r.hall, {key}, r.service_code, r.department, coalesce(r.staff_id, '') AS staff, count(*) AS n,
                count(*) FILTER (WHERE r.level <= 2) AS bad, count(*) FILTER (WHERE r.level >= 3) AS satisfied,
                sum(r.score) AS score
            FROM ratings r JOIN newly USING (hall, rating_id) WHERE ticket_day(r.ticket_id) IS NOT NULL
            GROUP BY 1, 2, 3, 4, 5"""
    unrated = ", ".join(f"""{period} AS (UPDATE rating_{period} d SET ratings = d.ratings - v.n, bad = d.bad - v.bad,
                satisfied = d.satisfied - v.satisfied, score_sum = d.score_sum - v.score, voided = d.voided + v.n
            FROM ({voided.format(key=key.replace("ticket_id", "r.ticket_id") + " AS k")}) v
            WHERE d.hall = v.hall AND d.{column} = v.k AND d.service_code = v.service_code
                AND d.department = v.department AND d.staff = v.staff)"""
                        for period, column, key in _PERIODS)
    return f"""WITH s AS ({folded}),
            newly AS (SELECT s.hall, s.rating_id FROM s LEFT JOIN case_latest c USING (hall, rating_id)
                      WHERE s.voided AND NOT coalesce(c.voided, false)),
            {unrated},
            days AS (SELECT s.*, ticket_day(r.ticket_id) AS ticket_day FROM s
                     LEFT JOIN ratings r ON r.hall = s.hall AND r.rating_id = s.rating_id)
        INSERT INTO case_latest AS c (hall, rating_id, case_id, finished, voided, deadline, appeals, upheld, rejected,
            opened_at, step, at, seq, ticket_day)
        SELECT hall, rating_id, case_id, finished, voided, deadline, appeals, upheld, rejected, opened_at, step, at,
            seq, ticket_day FROM days ORDER BY hall, rating_id
        ON CONFLICT (hall, rating_id) DO UPDATE SET
            finished = c.finished OR excluded.finished, voided = c.voided OR excluded.voided,
            deadline = greatest(c.deadline, excluded.deadline), appeals = c.appeals + excluded.appeals,
            upheld = c.upheld + excluded.upheld, rejected = c.rejected + excluded.rejected,
            opened_at = least(c.opened_at, excluded.opened_at),
            step = CASE WHEN (excluded.at, excluded.seq) > (c.at, c.seq) THEN excluded.step ELSE c.step END,
            seq = CASE WHEN (excluded.at, excluded.seq) > (c.at, c.seq) THEN excluded.seq ELSE c.seq END,
            at = greatest(c.at, excluded.at), ticket_day = coalesce(c.ticket_day, excluded.ticket_day)"""


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
    Migration(2, "halls: what each hall has not yet sent and what awaits the county's receipt", (
        """ALTER TABLE halls ADD COLUMN unsent integer, ADD COLUMN unsent_oldest_seconds double precision,
               ADD COLUMN awaiting_receipt integer, ADD COLUMN awaiting_oldest_seconds double precision""",
    )),
    # Ids are chosen by the halls, some predictably (``{hall}-{day}-final``): keyed alone, one hall
    # could take another's id first and have the real item dropped as a repeat. The hall is the
    # topic's, which the broker's ACL ties to the sender's login.
    Migration(3, "item ids scoped by hall; quarantine per hall, capped, with dropped counts", (
        "ALTER TABLE messages DROP CONSTRAINT messages_pkey, ADD PRIMARY KEY (hall, msg_id)",
        "ALTER TABLE ratings DROP CONSTRAINT ratings_pkey, ADD PRIMARY KEY (hall, rating_id)",
        "ALTER TABLE case_updates DROP CONSTRAINT case_updates_pkey, ADD PRIMARY KEY (hall, update_id)",
        "ALTER TABLE queue_stats DROP CONSTRAINT queue_stats_pkey, ADD PRIMARY KEY (hall, stats_id)",
        "ALTER TABLE telemetry DROP CONSTRAINT telemetry_pkey, ADD PRIMARY KEY (hall, telemetry_id)",
        # The same rule as county.contract.parse_topic and the id pattern: rows kept before this
        # migration are attributed as new ones are.
        """ALTER TABLE quarantine ADD COLUMN hall text, ADD COLUMN size bigint""",
        """UPDATE quarantine SET size = octet_length(payload),
               hall = CASE WHEN topic ~ '^county/v1/[^/]+/hall/[a-z0-9][a-z0-9-]{0,62}/(status|up/[^/]+)$'
                           THEN split_part(topic, '/', 5) ELSE '(unparsed)' END""",
        "ALTER TABLE quarantine ALTER COLUMN hall SET NOT NULL, ALTER COLUMN size SET NOT NULL",
        "CREATE INDEX quarantine_hall ON quarantine (hall, received_at)",
        """CREATE TABLE quarantine_halls (
            hall text PRIMARY KEY,
            minute_start timestamptz NOT NULL,
            minute_messages integer NOT NULL DEFAULT 0,
            hour_start timestamptz NOT NULL,
            hour_bytes bigint NOT NULL DEFAULT 0,
            dropped_messages bigint NOT NULL DEFAULT 0,
            dropped_bytes bigint NOT NULL DEFAULT 0,
            truncated_messages bigint NOT NULL DEFAULT 0,
            last_dropped_at timestamptz
        )""",
    )),
    Migration(4, "console: hall register; rating, statistics and case summaries kept by triggers", (
        """CREATE TABLE hall_register (
            hall text PRIMARY KEY,
            name text NOT NULL,
            township text NOT NULL
        )""",
        TICKET_DAY,
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
            voided integer NOT NULL,
            score_sum bigint NOT NULL,
            PRIMARY KEY (hall, {column}, service_code, department, staff)
        )""" for period, column, _key in _PERIODS),
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
            rating_id text NOT NULL,
            case_id text NOT NULL,
            finished boolean NOT NULL,
            voided boolean NOT NULL,
            deadline date NOT NULL,
            appeals integer NOT NULL,
            upheld integer NOT NULL,
            rejected integer NOT NULL,
            opened_at timestamptz NOT NULL,
            step text NOT NULL,
            at timestamptz NOT NULL,
            seq bigint NOT NULL,
            ticket_day date,
            PRIMARY KEY (hall, rating_id)
        )""",
        "CREATE INDEX case_latest_open ON case_latest (deadline) INCLUDE (hall) WHERE NOT finished",
        "CREATE INDEX case_latest_day ON case_latest (ticket_day) INCLUDE (hall)",
        "CREATE INDEX ratings_bad_served ON ratings (served_at) WHERE level <= 2",
        # What is already stored (cases first: a voided case keeps its rating out), then the triggers.
        _case_rollup("case_updates"), *_rating_rollups("ratings"), *_stats_rollups("queue_stats", SERVICE_FIGURES_4),
        *(_summary_function(name, statements)
          for name, statements in (("ratings", _rating_rollups("new_rows")),
                                   ("stats", _stats_rollups("new_rows", SERVICE_FIGURES_4)),
                                   ("cases", (_case_rollup("new_rows"),)))),
        """CREATE TRIGGER ratings_summary AFTER INSERT ON ratings REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION summarise_ratings()""",
        """CREATE TRIGGER queue_stats_summary AFTER INSERT ON queue_stats REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION summarise_stats()""",
        """CREATE TRIGGER case_updates_summary AFTER INSERT ON case_updates REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION summarise_cases()""",
    )),
    Migration(5, "ticket_day inlined into the summaries (the ingest's cost per rating)", (TICKET_DAY_INLINED,)),
    # A nullable column without a default changes only the catalogue, whatever the table's size; the
    # rows already there stay NULL (statistics from before carry no longest wait, so there is
    # nothing to backfill); the hall's total is read from stats_latest's body, which has it as sent.
    Migration(6, "statistics: the longest wait (最长等候) per service", (
        "ALTER TABLE stats_service_daily ADD COLUMN longest_wait_seconds double precision",
        _summary_function("stats", _stats_rollups("new_rows"), replace=True),
    )),
    Migration(7, "the rating summaries in one statement that reads each new rating once", (
        f"""CREATE OR REPLACE FUNCTION summarise_ratings() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN {_rating_rollup_once("new_rows", cases_by_key=False)}; RETURN NULL; END $$""",
    )),
    Migration(8, "the rating summaries find a rating's case row by its key, not by the rows without a day", (
        f"""CREATE OR REPLACE FUNCTION summarise_ratings() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN {_rating_rollup_once("new_rows")}; RETURN NULL; END $$""",
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
        applied = {int(v) for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        found = max(applied, default=0)
        if found > LATEST:
            raise SchemaTooNew(f"the database has schema {found}, this hallkit knows {LATEST}: upgrade hallkit")
        for migration in MIGRATIONS:
            # Every missing one, not only those above the newest: two branches of work may each
            # have added one, and a database that got the later one must still get the earlier.
            if migration.version not in applied:
                for statement in migration.statements:
                    conn.execute(statement)  # constant SQL, no parameters
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             (migration.version, migration.name))
    return found
