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
                    conn.execute(statement)  # type: ignore[arg-type]  # constant SQL, no parameters
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             (migration.version, migration.name))
    return found
