"""The county ingest: every hall's uplink, from a shared MQTT subscription into PostgreSQL.

Several ingest processes split the load: each subscribes to
``$share/ingest/county/v1/+/hall/+/…`` (Mosquitto 2.0 serves shared
subscriptions to MQTT 3.1.1 clients too; EMQX and HiveMQ do as well), so the
broker hands each message to one of them. A broker without shared
subscriptions (the embedded amqtt) takes one worker subscribed to the plain
filters (``group=None``, ``hall county ingest --no-shared``).

End to end: after the transaction that stored a group commits, the ingest
publishes one :class:`~county.contract.Receipt` per hall and epoch of the
group (QoS 1) and only then acknowledges the group's messages to the broker
(paho's manual ack). The hall deletes its outbox rows on the receipt alone,
and sends again what got none, so a message the broker acknowledged and then
lost (a SIGKILL between two autosaves, a queue cap, a shared subscription not
restored after a restart, a worker that never returns) is only late.

Clean session, on purpose: since the receipt carries the guarantee, the
broker need not keep anything for a worker that is away. A persistent session
would not be safer and has traps of its own: Mosquitto 2.0 restores a
worker's session but not its ``$share`` subscription, and a stray worker id
keeps its share of the traffic in its session after it is gone
(docs/upstream.md). The broker sends a worker no more than its in-flight
limit of unacknowledged messages, which bounds this process's memory while
PostgreSQL is away.

Input never stops it: a bad message goes to ``quarantine`` with a reason. A
PostgreSQL outage only delays it: the group is retried, with backoff, on a
new connection, until it commits.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import psycopg
from hallkit.contracts.mqtt import BrokerAddress, make_client
from hallkit.contracts.uplink import INGEST_FILTERS, INGEST_GROUP, shared
from hallkit.county.quarantine import QuarantineLimits
from hallkit.county.receipts import receipts
from hallkit.county.schema import migrate
from hallkit.county.store import Parsed, Rejected, parse, write

from hallkit.i18n import bilingual

log = logging.getLogger("hallkit.county.ingest")

GROUP_MESSAGES = 8
"""Messages stored per transaction at most: one commit (one fsync) for many batches."""
MAX_BACKOFF = 15.0
GC_YOUNG_THRESHOLD = 50_000
"""Allocations before Python's young-generation collection (700 by default). A group holds some
10,000 models alive while it is validated and written, so at 700 the collector ran dozens of times
per group, walking and promoting objects that die at the group's end: 4–6 µs of CPU per item,
as much as the validation itself. Set once per process by :meth:`Ingest.start`."""


@dataclass(frozen=True)
class _Message:
    mid: int
    topic: str
    payload: bytes
    qos: int


class Ingest:
    def __init__(self, broker: BrokerAddress, dsn: str, worker_id: str = "1", group: str | None = INGEST_GROUP,
                 ca_file: str | None = None, limits: QuarantineLimits = QuarantineLimits()) -> None:
        """``group``: the shared-subscription group of the workers; None subscribes without ``$share``
        (a broker that has no shared subscriptions; then run exactly one worker)."""
        self.broker = broker
        self.limits = limits
        self.dsn = dsn
        self.group = group
        self.stored = 0
        self.received = 0
        """Messages the broker handed over: stored, quarantined or waiting for PostgreSQL."""
        self.messages = 0
        self.quarantined = 0
        self.receipts = 0
        self.receipts_failed = 0
        self._inbox: queue.Queue[_Message] = queue.Queue()
        self._stopping = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        # A clean session: a hall sends again whatever got no receipt (see the module's docstring).
        self.client = make_client(broker, client_id=f"county-ingest-{worker_id}", clean_session=True,
                                  ca_file=ca_file)
        self.client.manual_ack_set(True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: self._subscribed.set()

    def start(self, wait: float = 10.0) -> Ingest:
        # Process-wide, and meant to be: a worker is a process of its own (``hall county ingest``).
        gc.set_threshold(max(gc.get_threshold()[0], GC_YOUNG_THRESHOLD), *gc.get_threshold()[1:])
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
        group = self.group
        client.subscribe([(shared(f, group) if group else f, 1) for f in INGEST_FILTERS])
        if group:
            log.info(bilingual("county.ingest.connected", broker=self.broker.url, group=group))
        else:
            log.info(bilingual("county.ingest.connected_unshared", broker=self.broker.url))

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self.received += 1  # paho's one thread: no race
        self._inbox.put(_Message(message.mid, message.topic, bytes(message.payload), message.qos))

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
            kept: list[Rejected] = []  # what the quarantine kept, for the receipts
            try:
                parsed = [parse(m.topic, m.payload) for m in group]
                if not self._store(group, parsed, kept):
                    return  # stopping while PostgreSQL was away: unacknowledged, the halls send again
            except Exception as exc:  # a bug must not stop the writer: keep the group, in quarantine
                log.exception("unexpected failure ingesting %d messages", len(group))
                rejects: list[Parsed] = [Rejected(m.topic, m.payload, "county.quarantine.internal",
                                                  f"{type(exc).__name__}: {exc}"[:300]) for m in group]

                def quarantine(conn: psycopg.Connection, rejects: list[Parsed] = rejects,
                               kept: list[Rejected] = kept) -> None:
                    kept.clear()
                    with conn.transaction():
                        write(conn, rejects, self.limits, kept=kept)

                if not self._with_database(quarantine):
                    return
                self.quarantined += len(rejects)
                parsed = rejects
            self._send_receipts(parsed, kept)
            for message in group:
                if message.qos > 0:  # QoS 0 has nothing to acknowledge
                    self.client.ack(message.mid, message.qos)
            self.messages += len(group)

    def _send_receipts(self, parsed: list[Parsed], kept: list[Rejected]) -> None:
        """After the commit, before the broker's ack: a receipt that is lost costs only a resend."""
        for topic, receipt in receipts(parsed, kept):
            info = self.client.publish(topic, receipt.model_dump_json(), qos=1)
            if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: queued until reconnected
                self.receipts += 1
            else:
                self.receipts_failed += 1
                log.warning(bilingual("county.ingest.receipt_failed", hall=receipt.hall,
                                      reason=mqtt.error_string(info.rc)))

    def _store(self, group: list[_Message], parsed: list[Parsed], kept: list[Rejected]) -> bool:
        """Commit ``parsed``, retrying until PostgreSQL takes it; False only when told to stop first.
        ``kept`` gets the rejected messages the quarantine kept."""

        def store(conn: psycopg.Connection) -> None:
            kept.clear()  # a try that rolled back kept nothing
            try:
                with conn.transaction():
                    added = write(conn, parsed, self.limits, kept=kept)
                self.stored += added
            except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
                # Valid by the contract, refused by the database (a NUL in a text, a value out of
                # range): find which message, quarantine it, keep the rest.
                log.warning(bilingual("county.ingest.db_rejected", detail=str(exc)[:200]))
                kept.clear()
                self._store_one_by_one(conn, group, parsed, kept)
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

    def _store_one_by_one(self, conn: psycopg.Connection, group: list[_Message], parsed: list[Parsed],
                          kept: list[Rejected]) -> None:
        for index, (message, item) in enumerate(zip(group, parsed, strict=True)):
            try:
                with conn.transaction():
                    kept_here: list[Rejected] = []
                    added = write(conn, [item], self.limits, kept=kept_here)
                self.stored += added
                kept += kept_here
            except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
                reject = Rejected(message.topic, message.payload, "county.quarantine.db_rejected", str(exc)[:300])
                with conn.transaction():
                    write(conn, [reject], self.limits, kept=kept)
                parsed[index] = reject

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, connect_timeout=5, autocommit=True)
            migrate(self._conn)
            log.info(bilingual("county.ingest.db_ready"))
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None
