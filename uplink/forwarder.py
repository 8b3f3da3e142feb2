"""Sends the outbox to the county: QoS 1, batched, in order; rows deleted only on the county's receipt.

One thread owns the sending. It reads rows after a cursor in ``seq`` order,
joins consecutive rows of one kind into batches and publishes them. Two
windows bound what is out: ``max_inflight`` batches handed to paho and not yet
acknowledged by the county broker (paho floods its whole queue out on a
reconnect and may publish twice, docs/upstream.md, so the outbox, not paho's
memory, is the queue), and ``receipt_window`` items sent and not yet named by
a receipt.

A broker's PUBACK means only that the broker holds the message for now
(mqtt-notes §5): a SIGKILL between two autosaves, a queue cap or a shared
subscription not restored after a restart loses what it acknowledged. So a
row is deleted only when a :class:`~county.contract.Receipt` from the county
ingest names it, which the ingest publishes after its PostgreSQL transaction
committed; a receipt counts only with this hall's id, its county and its
outbox's epoch. A batch the broker acknowledged that gets no receipt is sent
again after ``receipt_timeout_seconds``, then after twice as long each time up
to ``receipt_backoff_max_seconds``: a county whose ingest is down gets the
window again now and then, never the whole backlog again and again.

What awaits a receipt is kept in memory only: after a hub restart everything
is unsent again, and the county stores each item once. After a reconnect the
acknowledged batches are sent again at once (their receipts may have come
while this clean session was away); paho itself resends those it had no
PUBACK for. paho reconnects with exponential backoff and a per-hall random
ceiling, so 500 halls coming back after a county outage do not all knock at
once.
"""

from __future__ import annotations

import logging
import queue
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt
from hallkit.contracts.mqtt import BrokerAddress, make_client, parse_broker_url, say_offline
from hallkit.contracts.uplink import Receipt, SeqRange, UpKind, UplinkStatus, UpTopics, encode_batch
from hallkit.uplink.table import delete_rows
from pydantic import ValidationError

from hallkit import __version__
from hallkit.config import Hall, Upstream
from hallkit.i18n import bilingual
from hallkit.queue.models import new_id

log = logging.getLogger("hallkit.uplink")

STATUS_INTERVAL = 60.0
FIGURES_INTERVAL = 0.5
COMMIT_GRACE_SECONDS = 0.05
"""How long a wake from inside a transaction waits for that transaction's commit (a few ms)."""

Row = tuple[int, float, bytes]
"""``(seq, created, body JSON)`` of one outbox row; the body as stored, UTF-8 (read as a BLOB: no decoding)."""


@dataclass(frozen=True)
class Backlog:
    """What the outbox holds: all of it (``items``), split into not yet sent and sent, awaiting a receipt."""

    connected: bool = False
    items: int = 0
    bytes: int = 0
    oldest_seconds: float = 0.0
    unsent: int = 0
    oldest_unsent_seconds: float = 0.0
    """Age of the oldest item not yet sent, since it was made."""
    awaiting: int = 0
    oldest_awaiting_seconds: float = 0.0
    """How long the oldest batch awaiting a receipt has waited for it, since it was first sent."""


@dataclass
class _Flight:
    """One batch sent, the seqs of it no receipt has named yet."""

    kind: UpKind
    seqs: set[int]
    info: mqtt.MQTTMessageInfo
    first_sent: float
    sent: float
    tries: int = 1
    again: bool = False
    """Send at the next chance whatever the timeout (after a reconnect)."""


def retry_delay(tries: int, timeout: float, ceiling: float) -> float:
    """Seconds a batch sent ``tries`` times waits for its receipt before the next try."""
    return min(ceiling, timeout * 2.0 ** min(tries - 1, 32))


def upstream_address(upstream: Upstream, hall_id: str) -> BrokerAddress:
    """The county broker with this hall's own login (username defaults to the hall id)."""
    address = parse_broker_url(upstream.broker)
    return address.model_copy(update={"username": upstream.username or address.username or hall_id,
                                      "password": upstream.secret() or address.password})


class Forwarder:
    def __init__(self, db_path: Path, upstream: Upstream, hall: Hall, epoch: str, synchronous: int) -> None:
        self.db_path = db_path
        self.upstream = upstream
        self.hall = hall.id
        self.county = hall.county_id
        self.epoch = epoch
        self.synchronous = synchronous
        self.topics = UpTopics(hall.county_id, hall.id)
        self.address = upstream_address(upstream, hall.id)
        self.session = int(time.time())
        self.receipts = 0
        self.receipts_ignored = 0
        self.resent = 0
        """Items sent again for want of a receipt (after a timeout or a reconnect)."""
        self._flights: list[_Flight] = []
        self._flight_of: dict[int, _Flight] = {}
        self._cursor = 0
        self._receipts: queue.SimpleQueue[Receipt] = queue.SimpleQueue()
        self._reconnected = threading.Event()
        self._connected = threading.Event()
        self._connected_since = 0.0
        self._wake = threading.Event()
        self._settle_first = False
        self._stopping = threading.Event()
        self._backlog = Backlog()
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)
        will = self._status("offline").model_dump_json().encode()
        self.client = make_client(self.address, client_id=f"hall-{hall.id}", will=(self.topics.status, will),
                                  ca_file=str(upstream.ca_file) if upstream.ca_file else None)
        # Room for paho's own resend of what was in flight at a disconnect beside our next window.
        self.client.max_inflight_messages_set(2 * upstream.max_inflight + 10)
        self.client.max_queued_messages_set(4 * upstream.max_inflight + 10)
        self.client.reconnect_delay_set(min_delay=1, max_delay=random.randint(60, 120))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = lambda *_: self._wake.set()

    # ---- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        log.info("uplink of %s to %s", self.hall, self.address.url)
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=10)
        say_offline(self.client, self.topics.status, self._status("offline").model_dump_json())
        self.client.disconnect()
        self.client.loop_stop()

    def wake(self, after_commit: bool = False) -> None:
        """Send what is new. ``after_commit``: the caller is still inside the transaction that adds
        it, so look a moment later (else the read sees nothing and the row waits for the next poll)."""
        if after_commit:
            self._settle_first = True
        self._wake.set()

    def backlog(self) -> Backlog:
        backlog = self._backlog
        return Backlog(self._connected.is_set(), backlog.items, backlog.bytes, backlog.oldest_seconds,
                       backlog.unsent, backlog.oldest_unsent_seconds, backlog.awaiting,
                       backlog.oldest_awaiting_seconds)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def broker_acknowledged(self) -> int:
        """Items the county broker acknowledged (PUBACK) that no receipt has named yet: still held."""
        return sum(len(f.seqs) for f in self._flights if f.info.is_published())

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode,
                    _p: object) -> None:
        if reason.is_failure:
            log.error(bilingual("upstream.refused", broker=self.address.url, reason=str(reason)))
            return
        self._connected_since = time.time()
        # Subscribed before anything is sent on this connection: the broker handles a client's
        # packets in order, so no receipt of this session's batches can come before it.
        client.subscribe(self.topics.receipt, qos=1)
        self._reconnected.set()
        self._connected.set()
        client.publish(self.topics.status, self._status("online").model_dump_json(), qos=1, retain=True)
        log.info(bilingual("upstream.connected", broker=self.address.url, backlog=self._backlog.items))
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode,
                       _p: object) -> None:
        if self._connected.is_set() and not self._stopping.is_set():
            log.warning(bilingual("upstream.lost", broker=self.address.url, reason=str(reason)))
        self._connected.clear()
        # Each connection is a session of its own with a Will naming it: the county takes an
        # "offline" for its current session as final (the broker sends a Will only once that
        # connection is gone), and this connection's Will must not be mistaken for the next one's.
        self.session = max(self.session + 1, int(time.time()))
        client.will_set(self.topics.status, self._status("offline").model_dump_json(), qos=1, retain=True)
        self._wake.set()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        """A receipt, checked here and applied by the sending thread (which owns the database)."""
        if message.topic != self.topics.receipt:
            return
        try:
            receipt = Receipt.model_validate_json(message.payload)
        except ValidationError as exc:
            self.receipts_ignored += 1
            first = exc.errors(include_url=False)[0]
            log.warning(bilingual("upstream.receipt_invalid",
                                  detail=f"{'.'.join(map(str, first['loc']))}: {first['msg']}"[:200]))
            return
        if (receipt.hall, receipt.county, receipt.epoch) != (self.hall, self.county, self.epoch):
            # Another hall's, another county's, or for an outbox this hall no longer has: deletes nothing.
            self.receipts_ignored += 1
            log.warning(bilingual("upstream.receipt_foreign", hall=receipt.hall, county=receipt.county,
                                  epoch=receipt.epoch[:16]))
            return
        self._receipts.put(receipt)
        self._wake.set()

    def _status(self, state: Literal["online", "offline"]) -> UplinkStatus:
        backlog = self._backlog
        return UplinkStatus(hall=self.hall, county=self.county, state=state, session=self.session,
                            backlog=backlog.items, oldest_seconds=round(backlog.oldest_seconds, 1),
                            unsent=backlog.unsent, oldest_unsent_seconds=round(backlog.oldest_unsent_seconds, 1),
                            awaiting_receipt=backlog.awaiting,
                            oldest_awaiting_seconds=round(backlog.oldest_awaiting_seconds, 1),
                            version=__version__)

    # ---- the sending thread ----------------------------------------------------------------

    def _run(self) -> None:
        conn = sqlite3.connect(self.db_path, isolation_level=None, timeout=30)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        figures_at = status_at = 0.0
        failures = 0
        try:
            while not self._stopping.is_set():
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                if self._settle_first:
                    self._settle_first = False
                    self._stopping.wait(COMMIT_GRACE_SECONDS)
                try:
                    changed = self._settle(conn)
                    if self._connected.is_set():
                        self._send(conn)
                    now = time.monotonic()
                    if changed or now - figures_at >= FIGURES_INTERVAL:
                        self._backlog = self._figures(conn)
                        figures_at = now
                    if self._connected.is_set() and now - status_at >= STATUS_INTERVAL:
                        self.client.publish(self.topics.status, self._status("online").model_dump_json(),
                                            qos=1, retain=True)
                        status_at = now
                    failures = 0
                except sqlite3.Error:
                    # A busy or full disk: nothing is lost (rows stay until a receipt names them,
                    # and a receipt not applied is asked for again by the resend); wait and retry.
                    failures += 1
                    log.exception("uplink outbox read/delete failed")
                    self._stopping.wait(min(30.0, 0.5 * 2**failures))
        finally:
            conn.close()

    def _settle(self, conn: sqlite3.Connection) -> bool:
        """Delete every row the county's receipts named, in one transaction."""
        ranges: list[SeqRange] = []
        while True:
            try:
                receipt = self._receipts.get_nowait()
            except queue.Empty:
                break
            ranges += [*receipt.stored, *receipt.quarantined]
            self.receipts += 1
        if not ranges:
            return False
        conn.execute("BEGIN IMMEDIATE")
        try:
            for first, last in ranges:
                delete_rows(conn, "seq BETWEEN ? AND ?", (first, last))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        for first, last in ranges:
            if last - first < len(self._flight_of):
                named = [seq for seq in range(first, last + 1) if seq in self._flight_of]
            else:  # a wide range (a county's whole history): walk what is out instead
                named = [seq for seq in self._flight_of if first <= seq <= last]
            self._forget(named)
        return True

    def _forget(self, seqs: list[int]) -> None:
        for seq in seqs:
            flight = self._flight_of.pop(seq, None)
            if flight is not None:
                flight.seqs.discard(seq)
        if seqs:
            self._flights = [f for f in self._flights if f.seqs]

    def _send(self, conn: sqlite3.Connection) -> None:
        if self._reconnected.is_set():
            self._reconnected.clear()
            for flight in self._flights:
                # Acknowledged batches: their receipt may have come while we were away. The others
                # paho sends again itself.
                flight.again = flight.info.is_published()
        room = self.upstream.max_inflight - sum(not f.info.is_published() for f in self._flights)
        room = self._resend(conn, room)
        self._fill(conn, room)

    def _resend(self, conn: sqlite3.Connection, room: int) -> int:
        """Send again, as new messages, the acknowledged batches whose receipt is overdue; returns room left.

        A batch not yet acknowledged is not due: it is still paho's to deliver (on this
        connection or after the next reconnect), and a copy would only queue up behind it.
        """
        now = time.monotonic()
        timeout, ceiling = self.upstream.receipt_timeout_seconds, self.upstream.receipt_backoff_max_seconds
        overdue = 0
        waited = ceiling
        for flight in self._flights:
            if room <= 0:
                break
            delay = retry_delay(flight.tries, timeout, ceiling)
            if not flight.info.is_published() or not (flight.again or now - flight.sent >= delay):
                continue
            first, last = min(flight.seqs), max(flight.seqs)
            rows = [row for row in conn.execute("SELECT seq, created, CAST(body AS BLOB) FROM outbox "
                                                "WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last))
                    if row[0] in flight.seqs]
            self._forget(sorted(flight.seqs - {row[0] for row in rows}))  # thinned meanwhile under the cap
            if not rows:
                continue
            info = self._publish(flight.kind, rows)
            if info is None:
                break
            self.resent += len(rows)
            if not flight.again:
                overdue += len(rows)
                waited = min(waited, delay)
            flight.info, flight.sent, flight.tries, flight.again = info, now, flight.tries + 1, False
            room -= 1
        if overdue:
            log.warning(bilingual("upstream.receipt_timeout", items=overdue, seconds=round(waited)))
        return room

    def _fill(self, conn: sqlite3.Connection, room: int) -> None:
        """Send new batches while paho has room and the receipt window is not full.

        Rows of one read are grouped by kind (a topic per kind), so ratings interleaved with a
        few case updates still travel in full batches; each kind keeps its order, and the county
        orders items by ``seq``.
        """
        size = self.upstream.batch_size
        limit = min(room * size, self.upstream.receipt_window - len(self._flight_of))
        if room <= 0 or limit <= 0:
            return
        rows = conn.execute("SELECT seq, kind, created, CAST(body AS BLOB) FROM outbox WHERE seq > ? ORDER BY seq "
                            "LIMIT ?", (self._cursor, limit)).fetchall()
        rows = [row for row in rows if row[0] not in self._flight_of]
        if not rows:
            return
        by_kind: dict[str, list[tuple[int, str, float, bytes]]] = {}
        for row in rows:
            by_kind.setdefault(row[1], []).append(row)
        batches = [kind_rows[i:i + size] for kind_rows in by_kind.values() for i in range(0, len(kind_rows), size)]
        batches.sort(key=lambda batch: batch[0][0])
        for batch in batches[:room]:
            kind = UpKind(batch[0][1])
            info = self._publish(kind, [(seq, created, body) for seq, _, created, body in batch])
            if info is None:
                break
            flight = _Flight(kind, {row[0] for row in batch}, info, time.time(), time.monotonic())
            self._flights.append(flight)
            for seq in flight.seqs:
                self._flight_of[seq] = flight
        # Past the cursor only while every row up to it is out: the rest of this read comes again.
        for row in rows:
            if row[0] not in self._flight_of:
                break
            self._cursor = row[0]

    def _publish(self, kind: UpKind, rows: list[Row]) -> mqtt.MQTTMessageInfo | None:
        """One batch as a new message; None when paho's queue is full (try again next round)."""
        payload = encode_batch(kind, new_id(), self.hall, self.county, self.epoch,
                               historical=max(row[1] for row in rows) < self._connected_since,
                               items=[(row[0], row[2]) for row in rows])
        info = self.client.publish(self.topics.up(kind), payload, qos=1)
        return info if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN) else None

    def _figures(self, conn: sqlite3.Connection) -> Backlog:
        now = time.time()
        items, size = conn.execute("SELECT items, bytes FROM outbox_size").fetchone()
        oldest = conn.execute("SELECT created FROM outbox ORDER BY seq LIMIT 1").fetchone()
        awaiting = len(self._flight_of)
        oldest_unsent: float | None = None
        # Past the cursor at most ``awaiting`` rows are out, so the first unsent one is in this read.
        rows = conn.execute("SELECT seq, created FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                            (self._cursor, awaiting + 1))
        for seq, created in rows:
            if seq not in self._flight_of:
                oldest_unsent = created
                break
        rows.close()
        first_sent = min((f.first_sent for f in self._flights), default=None)
        return Backlog(False, int(items), int(size), max(0.0, now - oldest[0]) if oldest else 0.0,
                       max(0, int(items) - awaiting),
                       max(0.0, now - oldest_unsent) if oldest_unsent is not None else 0.0,
                       awaiting, max(0.0, now - first_sent) if first_sent is not None else 0.0)
