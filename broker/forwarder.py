"""Sends the outbox to the county broker: QoS 1, batched, in order, deleted only after PUBACK.

One thread owns the sending. It reads rows after a cursor in ``seq`` order,
joins consecutive rows of one kind into batches, and hands paho at most
``max_inflight`` batches at a time: paho floods its whole queue out on a
reconnect and may publish twice (docs/upstream.md), so the outbox, not paho's
memory, is the queue. A batch's rows are deleted when paho marks that very
message published (its PUBACK); matching by message object rather than mid
avoids acting on a stale acknowledgement of a reused mid.

On every (re)connect the cursor goes back to the oldest row: whatever was in
flight is sent again, and the county absorbs the duplicates (it stores each
message id and item id once). paho reconnects with exponential backoff and a
per-hall random ceiling, so 500 halls coming back after a county outage do
not all knock at once.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from broker.mqtt import BrokerAddress, make_client, parse_broker_url, say_offline
from county.contract import UpKind, UplinkStatus, UpTopics, encode_batch
from hallkit import __version__
from hallkit.config import Hall, Upstream
from hallkit.i18n import bilingual
from hallkit.queue.models import new_id

log = logging.getLogger("hallkit.uplink")

ACK_TIMEOUT = 120.0
"""Seconds a batch may wait for its PUBACK on a live connection before everything is sent again."""
STATUS_INTERVAL = 60.0
FIGURES_INTERVAL = 0.5
COMMIT_GRACE_SECONDS = 0.05
"""How long a wake from inside a transaction waits for that transaction's commit (a few ms)."""


@dataclass(frozen=True)
class Backlog:
    connected: bool = False
    items: int = 0
    bytes: int = 0
    oldest_seconds: float = 0.0


@dataclass
class _InFlight:
    info: mqtt.MQTTMessageInfo
    seqs: list[int]
    sent: float


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
        self._inflight: list[_InFlight] = []
        self._sending: set[int] = set()
        self._cursor = 0
        self._resync = threading.Event()
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
        return Backlog(self._connected.is_set(), backlog.items, backlog.bytes, backlog.oldest_seconds)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode,
                    _p: object) -> None:
        if reason.is_failure:
            log.error(bilingual("upstream.refused", broker=self.address.url, reason=str(reason)))
            return
        self._connected_since = time.time()
        self._resync.set()
        self._connected.set()
        client.publish(self.topics.status, self._status("online").model_dump_json(), qos=1, retain=True)
        log.info(bilingual("upstream.connected", broker=self.address.url, backlog=self._backlog.items))
        self._wake.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode,
                       _p: object) -> None:
        if self._connected.is_set() and not self._stopping.is_set():
            log.warning(bilingual("upstream.lost", broker=self.address.url, reason=str(reason)))
        self._connected.clear()
        self._wake.set()

    def _status(self, state: str) -> UplinkStatus:
        backlog = self._backlog
        return UplinkStatus(hall=self.hall, county=self.county, state=state, session=self.session,
                            backlog=backlog.items, oldest_seconds=round(backlog.oldest_seconds, 1),
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
                        self._check_resync()
                        self._fill(conn)
                    now = time.monotonic()
                    if changed or now - figures_at >= FIGURES_INTERVAL:
                        self._backlog = _figures(conn)
                        figures_at = now
                    if self._connected.is_set() and now - status_at >= STATUS_INTERVAL:
                        self.client.publish(self.topics.status, self._status("online").model_dump_json(),
                                            qos=1, retain=True)
                        status_at = now
                    failures = 0
                except sqlite3.Error:
                    # A busy or full disk: nothing is lost (rows stay until acknowledged); wait and retry.
                    failures += 1
                    log.exception("uplink outbox read/delete failed")
                    self._stopping.wait(min(30.0, 0.5 * 2**failures))
        finally:
            conn.close()

    def _check_resync(self) -> None:
        now = time.monotonic()
        if self._inflight and now - min(f.sent for f in self._inflight) > ACK_TIMEOUT:
            log.warning(bilingual("upstream.ack_timeout", seconds=ACK_TIMEOUT))
            self._resync.set()
        if self._resync.is_set():
            self._resync.clear()
            self._inflight.clear()
            self._sending.clear()
            self._cursor = 0

    def _settle(self, conn: sqlite3.Connection) -> bool:
        """Delete the rows of every batch the county broker acknowledged."""
        done: list[_InFlight] = []
        pending: list[_InFlight] = []
        for flight in self._inflight:
            (done if flight.info.is_published() else pending).append(flight)
        if not done:
            return False
        self._inflight = pending
        for flight in done:
            self._sending.difference_update(flight.seqs)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for f in done for seq in f.seqs])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return True

    def _fill(self, conn: sqlite3.Connection) -> None:
        """Hand paho batches until ``max_inflight`` are unacknowledged or the outbox is empty.

        Rows of one read are grouped by kind (a topic per kind), so ratings interleaved with a
        few case updates still travel in full batches; each kind keeps its order, and the county
        orders items by ``seq``.
        """
        room = self.upstream.max_inflight - len(self._inflight)
        if room <= 0:
            return
        size = self.upstream.batch_size
        rows = conn.execute("SELECT seq, kind, created, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                            (self._cursor, room * size)).fetchall()
        rows = [row for row in rows if row[0] not in self._sending]
        if not rows:
            return
        by_kind: dict[str, list[tuple[int, str, float, str]]] = {}
        for row in rows:
            by_kind.setdefault(row[1], []).append(row)
        batches = [kind_rows[i:i + size] for kind_rows in by_kind.values() for i in range(0, len(kind_rows), size)]
        batches.sort(key=lambda batch: batch[0][0])
        for batch in batches[:room]:
            kind = UpKind(batch[0][1])
            payload = encode_batch(kind, new_id(), self.hall, self.county, self.epoch,
                                   historical=max(r[2] for r in batch) < self._connected_since,
                                   items=[(r[0], r[3]) for r in batch])
            info = self.client.publish(self.topics.up(kind), payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                self._resync.set()  # paho's queue is full: start again from the table
                return
            flight = _InFlight(info, [r[0] for r in batch], time.monotonic())
            self._inflight.append(flight)
            self._sending.update(flight.seqs)
        # Past the cursor only while every row up to it is in flight: batches[room:] are read again.
        for row in rows:
            if row[0] not in self._sending:
                break
            self._cursor = row[0]


def _figures(conn: sqlite3.Connection) -> Backlog:
    items, size = conn.execute("SELECT items, bytes FROM outbox_size").fetchone()
    oldest = conn.execute("SELECT created FROM outbox ORDER BY seq LIMIT 1").fetchone()
    return Backlog(False, int(items), int(size), max(0.0, time.time() - oldest[0]) if oldest else 0.0)
