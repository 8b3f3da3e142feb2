"""The county ingest: every hall's uplink, from a shared MQTT subscription into PostgreSQL.

Several ingest processes split the load: each subscribes to
``$share/ingest/county/v1/+/hall/+/…`` (Mosquitto 2.0 serves shared
subscriptions to MQTT 3.1.1 clients too; EMQX and HiveMQ do as well), so the
broker hands each message to one of them.

At-least-once into the database: messages are acknowledged by hand (paho's
manual ack), and only after the transaction that stored them committed. A
crash before the commit leaves the message unacknowledged, so the broker
delivers it again (persistent session, fixed client id per worker), and the
idempotent writes absorb the repeat. The broker sends no more than its
in-flight limit of unacknowledged messages, which bounds this process's
memory while PostgreSQL is away.

Input never stops it: a bad message goes to ``quarantine`` with a reason. A
PostgreSQL outage only delays it: the group is retried, with backoff, on a
new connection, until it commits.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import psycopg

from broker.mqtt import BrokerAddress, make_client
from county.contract import INGEST_FILTERS, INGEST_GROUP, shared
from county.schema import migrate
from county.quarantine import QuarantineLimits
from county.store import Parsed, Rejected, parse, write
from hallkit.i18n import bilingual

log = logging.getLogger("hallkit.county.ingest")

GROUP_MESSAGES = 8
"""Messages stored per transaction at most: one commit (one fsync) for many batches."""
MAX_BACKOFF = 15.0


@dataclass(frozen=True)
class _Message:
    mid: int
    topic: str
    payload: bytes
    qos: int


class Ingest:
    def __init__(self, broker: BrokerAddress, dsn: str, worker_id: str = "1", group: str = INGEST_GROUP,
                 ca_file: str | None = None, limits: QuarantineLimits = QuarantineLimits()) -> None:
        self.broker = broker
        self.limits = limits
        self.dsn = dsn
        self.group = group
        self.stored = 0
        self.messages = 0
        self.quarantined = 0
        self._inbox: queue.Queue[_Message] = queue.Queue()
        self._stopping = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        # A fixed client id and a persistent session: what the broker holds for this worker while
        # it restarts is delivered to it afterwards, not lost.
        self.client = make_client(broker, client_id=f"county-ingest-{worker_id}", clean_session=False,
                                  ca_file=ca_file)
        self.client.manual_ack_set(True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: self._subscribed.set()

    def start(self, wait: float = 10.0) -> Ingest:
        self._thread.start()
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        if wait and not self._subscribed.wait(wait):
            log.warning(bilingual("county.ingest.broker_waiting", broker=self.broker.url))
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)
        self.client.disconnect()
        self.client.loop_stop()
        if self._conn is not None:
            self._conn.close()

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode,
                    _p: object) -> None:
        if reason.is_failure:
            log.error(bilingual("county.ingest.refused", broker=self.broker.url, reason=str(reason)))
            return
        client.subscribe([(shared(f, self.group), 1) for f in INGEST_FILTERS])
        log.info(bilingual("county.ingest.connected", broker=self.broker.url, group=self.group))

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(_Message(message.mid, message.topic, message.payload, message.qos))

    # ---- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        # Schema first, so reports work before the first hall speaks.
        if not self._with_database(lambda conn: None):
            return
        while not self._stopping.is_set():
            try:
                first = self._inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            group = [first]
            while len(group) < GROUP_MESSAGES:
                try:
                    group.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            try:
                parsed = [parse(m.topic, m.payload) for m in group]
                if not self._store(group, parsed):
                    return  # stopping while PostgreSQL was away: unacknowledged, the broker keeps them
            except Exception as exc:  # a bug must not stop the writer: keep the group, in quarantine
                log.exception("unexpected failure ingesting %d messages", len(group))
                rejects: list[Parsed] = [Rejected(m.topic, m.payload, "county.quarantine.internal",
                                                  f"{type(exc).__name__}: {exc}"[:300]) for m in group]
                if not self._with_database(lambda conn: write(conn, rejects, self.limits)):
                    return
                self.quarantined += len(rejects)
            for message in group:
                if message.qos > 0:  # QoS 0 has nothing to acknowledge
                    self.client.ack(message.mid, message.qos)
            self.messages += len(group)

    def _store(self, group: list[_Message], parsed: list[Parsed]) -> bool:
        """Commit ``parsed``, retrying until PostgreSQL takes it; False only when told to stop first."""

        def store(conn: psycopg.Connection) -> None:
            try:
                with conn.transaction():
                    added = write(conn, parsed, self.limits)
                self.stored += added
            except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
                # Valid by the contract, refused by the database (a NUL in a text, a value out of
                # range): find which message, quarantine it, keep the rest.
                log.warning(bilingual("county.ingest.db_rejected", detail=str(exc)[:200]))
                self._store_one_by_one(conn, group, parsed)
            self.quarantined += sum(isinstance(p, Rejected) for p in parsed)

        return self._with_database(store)

    def _with_database(self, work: Callable[[psycopg.Connection], None]) -> bool:
        """Run ``work`` on a live connection, reconnecting with backoff while PostgreSQL is away."""
        delay = 0.5
        while not self._stopping.is_set():
            try:
                work(self._connection())
                return True
            except psycopg.OperationalError as exc:
                log.warning(bilingual("county.ingest.db_waiting", detail=str(exc).strip()[:200], seconds=delay))
                self._drop_connection()
                self._stopping.wait(delay)
                delay = min(MAX_BACKOFF, delay * 2)
        return False

    def _store_one_by_one(self, conn: psycopg.Connection, group: list[_Message], parsed: list[Parsed]) -> None:
        for index, (message, item) in enumerate(zip(group, parsed, strict=True)):
            try:
                with conn.transaction():
                    added = write(conn, [item], self.limits)
                self.stored += added
            except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
                reject = Rejected(message.topic, message.payload, "county.quarantine.db_rejected", str(exc)[:300])
                with conn.transaction():
                    write(conn, [reject], self.limits)
                parsed[index] = reject

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, connect_timeout=5, autocommit=True)
            migrate(self._conn)
            log.info(bilingual("county.ingest.db_ready"))
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None
