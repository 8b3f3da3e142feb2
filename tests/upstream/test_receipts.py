"""End-to-end receipts: the hall deletes outbox rows only when the county's ingest says it stored them.

Real brokers (the county on Mosquitto, and on the embedded amqtt broker), a real hub with its
outbox, the real ingest and PostgreSQL. A county broker that acknowledged everything and was then
killed loses nothing; a PUBACK alone deletes nothing; a receipt for another hall or another outbox
deletes nothing.
"""

from __future__ import annotations

import contextlib
import getpass
import secrets
import signal
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hallkit.broker.client import read_hall
from hallkit.broker.embedded import BrokerAccess, EmbeddedBroker
from hallkit.broker.hub import Hub
from hallkit.broker.mosquitto import AclRules, password_line, read_passwords
from hallkit.broker.status import HallStatus, render_status
from hallkit.broker.testing import Mosquitto
from hallkit.contracts.mqtt import BrokerAddress, make_client
from hallkit.contracts.uplink import INGEST_FILTERS, Receipt, UpKind, UplinkStatus, UpTopics, encode_batch, shared
from hallkit.county.ingest import Ingest
from hallkit.county.quarantine import QuarantineLimits
from hallkit.county.receipts import receipts
from hallkit.county.report import county_report, render_report
from hallkit.county.schema import migrate
from hallkit.county.store import Rejected, parse, write
from hallkit.uplink.forwarder import Forwarder
from hallkit.uplink.outbox import Outbox
from hallkit.uplink.testing import hall_config, rating

from hallkit.cli import main
from hallkit.testing import free_port
from tests.broker.test_hub import wait_for
from tests.upstream.test_uplink import county_count, publish
from tests.upstream.waiting import wait_progress

COUNT = 3000
UP = UpTopics("test-county", "test-hall")


class CountyBroker:
    """The county broker of a test, with its logins: started, killed (what it held unsaved is gone),
    started again."""

    url: str
    shared_subscriptions: bool
    logins: dict[str, str]

    def login(self, user: str) -> BrokerAddress:
        host, port = self.url.removeprefix("mqtt://").split(":")
        return BrokerAddress(host=host, port=int(port), username=user, password=self.logins[user])

    def start(self) -> None: ...

    def kill(self) -> None: ...


class MosquittoCounty(CountyBroker):
    """Mosquitto as `hall county broker-config` writes it: persistence on (saved every 30 minutes),
    a login per hall and per ingest worker; only ingest logins write receipts, a hall reads its own."""

    shared_subscriptions = True

    def __init__(self, folder: Path) -> None:
        port = free_port()
        out = folder / "config"
        assert main(["county", "broker-config", "--county", "test-county", "--hall", "test-hall", "--out", str(out),
                     "--port", str(port), "--bind", "127.0.0.1", "--workers", "2"]) == 0
        conf = out / "mosquitto.conf"
        conf.write_text(conf.read_text() + f"user {getpass.getuser()}\n")
        self.broker = Mosquitto(folder / "run", port=port, conf=conf)
        self.url = self.broker.url
        self.logins = tomllib.loads((out / "credentials.toml").read_text())["credentials"]

    def start(self) -> None:
        self.broker.start()

    def kill(self) -> None:
        process = self.broker.process
        assert process is not None
        process.send_signal(signal.SIGKILL)  # an OOM kill or a power cut: no save
        process.wait()
        self.broker.process = None


COUNTY_ACL = """user ingest-1
topic read county/v1/+/hall/+/up/+
topic read county/v1/+/hall/+/status
topic write county/v1/+/hall/+/receipt
user test-hall
topic write county/v1/test-county/hall/test-hall/up/#
topic write county/v1/test-county/hall/test-hall/status
topic read county/v1/test-county/hall/test-hall/receipt
"""
"""The same rules as the county's Mosquitto, in the embedded broker's (acl_file) form."""


class EmbeddedCounty(CountyBroker):
    """The embedded amqtt broker: no shared subscriptions, no persistence at all."""

    shared_subscriptions = False

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.logins = {user: secrets.token_hex(8) for user in ("ingest-1", "test-hall")}
        self.access = BrokerAccess(read_passwords("\n".join(password_line(u, p) for u, p in self.logins.items())),
                                   AclRules.parse(COUNTY_ACL))
        self.broker: EmbeddedBroker | None = None

    def start(self) -> None:
        self.broker = EmbeddedBroker(self.access, port=self.port)
        self.broker.start()

    def kill(self) -> None:
        assert self.broker is not None
        self.broker.stop()  # in this process: everything it held was in memory, and is gone
        self.broker = None


@pytest.fixture(params=["mosquitto", "embedded"])
def county(request, tmp_path) -> Iterator[CountyBroker]:
    broker: CountyBroker = MosquittoCounty(tmp_path / "county") if request.param == "mosquitto" else EmbeddedCounty()
    broker.start()
    yield broker
    with contextlib.suppress(AssertionError):  # already down
        broker.kill()


@dataclass
class HallHub:
    hub: Hub
    outbox: Outbox

    @property
    def forwarder(self) -> Forwarder:
        assert self.outbox.forwarder is not None
        return self.outbox.forwarder

    def rows(self) -> int:
        with self.hub.queue.lock:
            return int(self.hub.queue.store.conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def epoch(self) -> str:
        with self.hub.queue.lock:
            return str(self.hub.queue.store.conn.execute(
                "SELECT value FROM outbox_meta WHERE key = 'epoch'").fetchone()[0])

    def record(self, count: int) -> None:
        for start in range(0, count, 500):
            with self.hub.queue.lock, self.hub.queue.store.transaction() as conn:
                for i in range(start, min(count, start + 500)):
                    self.hub.record(conn, rating(i))


@pytest.fixture
def start_hall(tmp_path, hall_broker) -> Iterator:
    hubs: list[Hub] = []

    def start(county_url: str, **upstream: object) -> HallHub:
        # Short receipt timeouts: the test waits on resends, not on a production-sized pause.
        config = hall_config(county_url, receipt_timeout_seconds=1, receipt_backoff_max_seconds=4, **upstream)
        assert config.upstream is not None
        outbox = Outbox(config, config.upstream)
        hub = Hub(config, hall_broker.address, tmp_path / "hall", "normal", parts=[outbox])
        hub.start()
        hubs.append(hub)
        return HallHub(hub, outbox)

    yield start
    for hub in hubs:
        hub.stop()


def old_style_worker_session(address: BrokerAddress) -> None:
    """What the county ran before receipts: a persistent ingest session, so the broker holds the
    halls' batches for it while the worker is down (and acknowledges them to the halls)."""
    client = make_client(address, "unused: the login is the client id", clean_session=False)
    subscribed: list[bool] = []
    client.on_subscribe = lambda *_: subscribed.append(True)
    client.connect(address.host, address.port)
    client.loop_start()
    client.subscribe([(shared(f), 1) for f in INGEST_FILTERS])
    wait_for(lambda: subscribed)
    client.disconnect()
    client.loop_stop()


def test_a_county_broker_killed_after_acknowledging_loses_nothing(county, start_hall, county_db):
    """(a), and (d) with the embedded broker: N ratings acknowledged by the county broker, the broker
    killed and restarted, the ingest started: all N stored once; the outbox empties only then."""
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
    if county.shared_subscriptions:
        old_style_worker_session(county.login("ingest-2"))
    hall = start_hall(county.url, password=county.logins["test-hall"])
    hall.record(COUNT)
    # Sent, every batch acknowledged by the county broker (PUBACK), and every row still held.
    wait_for(lambda: hall.forwarder.broker_acknowledged == COUNT, timeout=60)
    assert hall.rows() == COUNT
    wait_for(lambda: (hall.outbox.status()["uplink.unsent"], hall.outbox.status()["uplink.awaiting_receipt"])
             == (0, COUNT))  # the figures, every 0.5 s

    county.kill()
    county.start()
    ingest = Ingest(county.login("ingest-1"), county_db, group="ingest" if county.shared_subscriptions else None).start()
    stored: list[int] = []
    held: list[int] = []

    def progress() -> int:
        # Rows first, then the database: a row deleted before its rating was stored would show
        # as a sum below COUNT.
        held.append(hall.rows())
        stored.append(county_count(county_db, "SELECT count(*) FROM ratings"))
        return stored[-1] + (COUNT - held[-1])

    try:
        wait_progress(progress, 2 * COUNT, what="ratings stored and rows deleted")
    finally:
        ingest.stop()
    assert all(h + s >= COUNT for h, s in zip(held, stored, strict=True)), "a row was deleted before it was stored"
    with psycopg.connect(county_db) as conn:
        ids = [r[0] for r in conn.execute("SELECT rating_id FROM ratings ORDER BY seq").fetchall()]
    assert ids == [f"test-hall-r{i:06d}" for i in range(COUNT)]  # each once (the id is the key), in order
    assert hall.rows() == 0 and hall.forwarder.receipts_ignored == 0


def test_b_a_puback_alone_deletes_nothing(county_broker, start_hall, hall_broker):
    """(b): the ingest is down; the county broker acknowledges every batch; rows stay through several
    resends, and `hall status` says they were sent and await the county's receipt."""
    hall = start_hall(county_broker.url)
    hall.record(500)
    wait_for(lambda: hall.forwarder.broker_acknowledged == 500, timeout=30)
    wait_for(lambda: hall.forwarder.resent >= 1000, timeout=30)  # resent twice: the timeouts passed
    assert hall.rows() == 500

    def shown() -> str:
        view = read_hall(hall_broker.address, "test-hall", 1.0)
        return render_status(HallStatus(hall="test-hall", hub=view.hub, queue=view.queue,
                                        devices=list(view.devices.values())))

    wait_for(lambda: "已发送、待县级回执 500 条" in shown(), timeout=30)  # the hub's status, every 10 s
    text = shown()
    assert "其中未发送 0 条" in text and "sent, awaiting the county's receipt: 500" in text
    assert "最早一批已等回执" in text and "waiting" in text
    assert hall.rows() == 500


def test_c_a_receipt_for_another_hall_or_outbox_deletes_nothing(county_broker, start_hall):
    """(c): receipts with another hall, county or epoch, or unreadable, are ignored; the right one deletes."""
    hall = start_hall(county_broker.url)
    hall.record(200)
    wait_for(lambda: hall.forwarder.broker_acknowledged == 200, timeout=30)
    epoch = hall.epoch()
    everything = [(1, 10**12)]
    forged = [Receipt(hall="other-hall", county="test-county", epoch=epoch, stored=everything),
              Receipt(hall="test-hall", county="test-county", epoch="another-outbox", stored=everything),
              Receipt(hall="test-hall", county="other-county", epoch=epoch, quarantined=everything)]
    publish(county_broker, [(UP.receipt, r.model_dump_json().encode()) for r in forged]
            + [(UP.receipt, b'{"hall": "test-hall", "stored": "all"}'),
               # On another hall's receipt topic: this hall does not even see it.
               (UpTopics("test-county", "other-hall").receipt,
                Receipt(hall="test-hall", county="test-county", epoch=epoch, stored=everything).model_dump_json().encode())])
    wait_for(lambda: hall.forwarder.receipts_ignored == 4)
    assert hall.rows() == 200 and hall.forwarder.receipts == 0
    # The county's own receipt for the first 50 items (as the ingest would send it) deletes those.
    right = Receipt(hall="test-hall", county="test-county", epoch=epoch, stored=[(1, 40)], quarantined=[(41, 50)])
    publish(county_broker, [(UP.receipt, right.model_dump_json().encode())])
    wait_for(lambda: hall.rows() == 150)
    assert hall.forwarder.receipts_ignored == 4


def test_the_county_report_shows_unsent_apart_from_awaiting_receipt(county_db):
    status = UplinkStatus(hall="test-hall", county="test-county", state="online", session=1,
                          ts=datetime(2026, 11, 23, 4, tzinfo=UTC), backlog=700, oldest_seconds=900,
                          unsent=200, oldest_unsent_seconds=120, awaiting_receipt=500, oldest_awaiting_seconds=600)
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        with conn.transaction():
            write(conn, [parse(UP.status, status.model_dump_json().encode())])
        report = county_report(conn, status.ts.date(), ZoneInfo("Asia/Shanghai"), 24.0, now=status.ts)
    [row] = report.halls
    assert (row.unsent, row.unsent_oldest_minutes, row.awaiting_receipt, row.awaiting_oldest_minutes) == (200, 2.0, 500, 10.0)
    shown = render_report(report)
    assert "未发送 200 条，最早一条已等待 2.0 分钟；已发送、待县级回执 500 条，最早一批已等回执 10.0 分钟" in shown
    assert "sent, awaiting the county's receipt 500, the oldest waiting 10.0 min" in shown
    assert "11-23 12:00" in shown  # when the hall said so, in the county's time zone


def batch(msg_id: str, seqs: range, resident_hash: bool = False) -> bytes:
    return encode_batch(UpKind.RATING, msg_id, "test-hall", "test-county", "e1", False,
                        [(seq, rating(seq).model_copy(update={} if resident_hash else {"resident_hash": None})
                          .model_dump_json()) for seq in seqs])


def test_the_ingest_receipts_every_batch_it_took_again_and_what_it_quarantined(county_broker, county_db):
    received: list[Receipt] = []
    subscribed: list[bool] = []
    hall = make_client(county_broker.address, "hall-test-hall")
    hall.on_message = lambda _c, _u, m: received.append(Receipt.model_validate_json(m.payload))
    hall.on_subscribe = lambda *_: subscribed.append(True)
    hall.connect(county_broker.address.host, county_broker.address.port)
    hall.loop_start()
    hall.subscribe(UP.receipt, qos=1)
    wait_for(lambda: subscribed)
    ingest = Ingest(county_broker.address, county_db).start()
    try:
        publish(county_broker, [(UP.up(UpKind.RATING), batch("m1", range(1, 4)))])
        wait_for(lambda: len(received) == 1)
        # The same message again (its receipt was lost, say): stored once, receipted again.
        publish(county_broker, [(UP.up(UpKind.RATING), batch("m1", range(1, 4)))])
        wait_for(lambda: len(received) == 2)
        assert [(r.stored, r.quarantined, r.epoch) for r in received] == [([(1, 3)], [], "e1")] * 2
        # Refused (a resident hash), header readable: named apart, as quarantined. Not JSON: nothing.
        publish(county_broker, [(UP.up(UpKind.RATING), batch("m2", range(10, 12), resident_hash=True)),
                                (UP.up(UpKind.RATING), b"\xff not json"),
                                (UP.up(UpKind.RATING), batch("m3", range(12, 13)))])
        wait_for(lambda: {seq for r in received for seq in r.seqs()} == {1, 2, 3, 10, 11, 12})
        assert sorted(seq for r in received for first, last in r.quarantined for seq in range(first, last + 1)) == [10, 11]
        assert county_count(county_db, "SELECT count(*) FROM ratings") == 4
        assert county_count(county_db, "SELECT count(*) FROM quarantine") == 2
        assert ingest.receipts == len(received) and ingest.receipts_failed == 0
    finally:
        ingest.stop()
        hall.disconnect()
        hall.loop_stop()


def test_a_refused_message_the_quarantine_did_not_keep_is_not_receipted(county_db):
    """Over its hall's quarantine budget a refused message is counted, not kept: the hall must keep it
    (and send it again later) rather than delete what the county does not have."""
    refused = [parse(UP.up(UpKind.RATING), batch("m1", range(5, 8), resident_hash=True))]
    assert isinstance(refused[0], Rejected)
    with psycopg.connect(county_db, autocommit=True) as conn:
        migrate(conn)
        for limits, named in ((QuarantineLimits(messages_per_minute=0), []), (QuarantineLimits(), [(5, 7)])):
            kept: list[Rejected] = []
            with conn.transaction():
                write(conn, refused, limits, kept=kept)
            assert [r.quarantined for _, r in receipts(refused, kept)] == ([named] if named else [])
