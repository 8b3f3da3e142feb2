"""The hall as it is now: MQTT state in, one board view out to every open page.

One paho client follows the retained queue snapshot, the hub's and every device's status
(their Last Will makes a dead device read offline) and the rating replies. Any change wakes
a refresher thread, which reads the new events of the log, recomputes the board and the
alerts once, and hands the JSON to the event loop; every open page (SSE) gets that same text.
Building once per change, not once per viewer, keeps twenty wall screens cheap.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from hallkit.broker import link
from hallkit.broker.link import Tap
from hallkit.contracts.hall import (
    AlertNotice,
    CaseStepRequest,
    DeviceState,
    DeviceStatus,
    QueueSnapshot,
    RatingReply,
    Topics,
)
from hallkit.contracts.mqtt import BrokerAddress, say_offline
from hallkit.dashboard.alerts import AlertBook, conditions
from hallkit.dashboard.ratings import RatingBook
from hallkit.dashboard.stats import DayStats, EventLog, current_day
from hallkit.dashboard.views import AlertView, BoardView, DetailItem, DeviceRow, ServiceRow, WindowRow
from pydantic import ValidationError

from hallkit import __version__
from hallkit.config import HallConfig
from hallkit.i18n import Lang, text
from hallkit.rating.models import CaseStepCommand

log = logging.getLogger("hallkit.dashboard")

REFRESH_SECONDS = 5.0
"""Waits grow and deadlines come without any message: rebuild this often even when all is quiet."""


@dataclass
class Seen:
    status: DeviceStatus
    at: datetime


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    reply: RatingReply | None = None


class Broadcast:
    """Latest board JSON, fanned out to every open page's queue on the event loop."""

    def __init__(self) -> None:
        self.latest = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queues: set[asyncio.Queue[str]] = set()

    def publish(self, payload: str) -> None:
        """From any thread."""
        if self.loop is None:
            self.latest = payload
            return
        try:
            self.loop.call_soon_threadsafe(self._deliver, payload)
        except RuntimeError:  # the server's loop has closed: it is stopping, and no page is left to tell
            self.latest = payload

    def _deliver(self, payload: str) -> None:
        self.latest = payload
        for queue in self.queues:
            if queue.full():
                # A slow page skips to the newest board; it never needs the ones in between.
                queue.get_nowait()
            queue.put_nowait(payload)

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self.queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self.queues.discard(queue)


class LiveHall:
    def __init__(self, config: HallConfig, broker: BrokerAddress, event_log: EventLog, device: str) -> None:
        self.config = config
        self.broker = broker
        self.topics = Topics(config.hall.id)
        self.device = device
        self.events = event_log
        self.ratings = RatingBook(config, event_log)
        self.broadcast = Broadcast()
        self.snapshot: QueueSnapshot | None = None
        self.hub: Seen | None = None
        self.devices: dict[str, Seen] = {}
        self.board: BoardView | None = None
        self.today: DayStats | None = None
        self.alerts = AlertBook(self._publish_alert)
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dashboard-refresh", daemon=True)
        self._tap: Tap | None = None

    @property
    def client(self) -> mqtt.Client:
        """The dashboard login's connection (see :mod:`broker.link`)."""
        assert self._tap is not None, "start() first"
        return self._tap.client

    # ---- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        topics = (self.topics.queue_state, self.topics.hub_status, self.topics.device_statuses,
                  self.topics.rating_reply(self.device))
        self._tap = link.join(
            self.broker, self.device, [(topic, self._on_message) for topic in topics],
            on_up=self._on_connect, on_down=self._on_disconnect,
            will=(self.topics.device_status(self.device), self._status(DeviceState.OFFLINE).model_dump_json().encode()))
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._dirty.set()
        if self._tap is not None:
            say_offline(self.client, self.topics.device_status(self.device),
                        self._status(DeviceState.OFFLINE).model_dump_json())
            self._tap.leave()
        self._thread.join(timeout=5)
        self.events.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _status(self, state: DeviceState) -> DeviceStatus:
        return DeviceStatus(device=self.device, state=state, kind="dashboard", version=__version__,
                            session=int(time.time()))

    def _on_connect(self, client: mqtt.Client) -> None:
        client.publish(self.topics.device_status(self.device),
                            self._status(DeviceState.ONLINE).model_dump_json(), qos=1, retain=True)
        self._connected.set()
        self._dirty.set()
        log.info("dashboard connected to %s", self.broker.url)

    def _on_disconnect(self, _client: mqtt.Client) -> None:
        self._connected.clear()
        self._dirty.set()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            if message.topic == self.topics.queue_state:
                self.snapshot = QueueSnapshot.model_validate_json(message.payload)
            elif message.topic == self.topics.hub_status:
                self.hub = Seen(DeviceStatus.model_validate_json(message.payload), datetime.now(UTC))
            elif message.topic == self.topics.rating_reply(self.device):
                self._on_rating_reply(RatingReply.model_validate_json(message.payload))
                return
            else:
                status = DeviceStatus.model_validate_json(message.payload)
                known = self.devices.get(status.device)
                if known is not None and status.state is DeviceState.OFFLINE and status.session < known.status.session:
                    return  # the Will of a connection the device has already replaced
                self.devices[status.device] = Seen(status, datetime.now(UTC))
        except ValidationError as exc:
            log.warning("ignored a malformed message on %s: %s", message.topic, exc.errors()[0]["msg"])
            return
        self._dirty.set()

    # ---- the board -------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._dirty.wait(REFRESH_SECONDS)
            self._dirty.clear()
            if self._stopping.is_set():
                return
            try:
                self.refresh()
            except Exception:  # a bad row must not stop the board; the next change tries again
                log.exception("dashboard refresh failed")

    def refresh(self) -> BoardView:
        now = datetime.now(UTC)
        with self._lock:
            stats = self._today(now)
            cases = self.ratings.open_cases()
            hub = self.hub.status if self.hub else None
            devices = [seen.status for seen in self.devices.values()]
            found = conditions(self.config, self.snapshot, hub, devices, cases, current_day(self.config, now))
            alerts = self.alerts.update(found, now)
            self.board = self._board(stats, alerts, now)
        self.broadcast.publish(self.board.model_dump_json())
        return self.board

    def _today(self, now: datetime) -> DayStats:
        day = current_day(self.config, now)
        if self.today is None or self.today.day != day:
            self.today = DayStats(self.config, day)
            self.today.last_seq = self.events.before_day(day)
        stats = self.today
        for seq, event in self.events.since(stats.last_seq):
            stats.last_seq = seq
            stats.apply(event)
        return stats

    def _board(self, stats: DayStats, alerts: list[AlertView], now: datetime) -> BoardView:
        snapshot = self.snapshot
        names = {s.id: s.name for s in self.config.staff}
        services: list[ServiceRow] = []
        windows: list[WindowRow] = []
        if snapshot is not None:
            for s in snapshot.services:
                tally = stats.by_service.get(s.service_id)
                mean_wait = tally.mean_wait_seconds if tally else None
                services.append(ServiceRow(
                    service_id=s.service_id, name=s.name, prefix=s.prefix, waiting=s.waiting,
                    longest_wait_minutes=round(s.longest_wait_seconds / 60, 1),
                    mean_wait_minutes=None if mean_wait is None else round(mean_wait / 60, 1),
                    estimated_wait_minutes=s.estimated_wait_minutes, issued_today=stats.issued.get(s.service_id, 0),
                    served_today=tally.served if tally else 0))
            for w in snapshot.windows:
                cfg = self.config.window(w.number)
                desk = stats.by_window.get(w.number)
                mean_wait = desk.mean_wait_seconds if desk else None
                windows.append(WindowRow(
                    number=w.number, name=w.name, open=w.open, paused=w.paused,
                    calling=w.ticket.number if w.ticket else None,
                    staff_on_duty=names.get(w.staff_id or "", w.staff_id),
                    staff_a=names.get(cfg.staff_a or "", cfg.staff_a), staff_b=names.get(cfg.staff_b or "", cfg.staff_b),
                    served_today=w.served_today,
                    mean_service_minutes=None if w.mean_service_seconds is None else round(w.mean_service_seconds / 60, 1),
                    mean_wait_minutes=None if mean_wait is None else round(mean_wait / 60, 1)))
        # Busy services first: on a wall screen the lines people stand in matter, not the catalogue.
        services.sort(key=lambda r: (-r.waiting, -r.issued_today, r.prefix, r.service_id))
        return BoardView(
            hall=self.config.hall.id, hall_name=self.config.hall.name, day=snapshot.day if snapshot else None,
            at=now, connected=self.connected,
            hub_online=self.hub is not None and self.hub.status.state is DeviceState.ONLINE,
            waiting_total=snapshot.waiting_total if snapshot else 0,
            served_today=sum(w.served_today for w in windows), services=services, windows=windows, alerts=alerts)

    def device_rows(self, lang: Lang = "zh") -> list[DeviceRow]:
        rows: list[DeviceRow] = []
        configured = {d.id: d for d in self.config.devices}
        seen = dict(self.devices)
        if self.hub is not None:
            seen["hub"] = self.hub
        for device_id in sorted(configured.keys() | seen.keys()):
            known = seen.get(device_id)
            kind = configured[device_id].kind.value if device_id in configured else (known.status.kind if known else "")
            if known is None:
                rows.append(DeviceRow(device=device_id, kind=kind, kind_label=_kind(kind, lang), configured=True, state="unknown", last_seen=None,
                                      version="", paper=None, problems=[], detail=[]))
                continue
            status = known.status
            paper = status.detail.get("paper")
            rows.append(DeviceRow(
                device=device_id, kind=kind or status.kind, kind_label=_kind(kind or status.kind, lang), configured=device_id in configured or device_id == "hub",
                state=status.state.value, last_seen=known.at, version=status.version,
                paper=str(paper) if paper is not None else None, problems=[p.zh for p in status.problems],
                detail=[_detail_item(k, v, lang) for k, v in sorted(status.detail.items()) if k != "paper"]))
        return rows

    # ---- alerts and case steps out ---------------------------------------------------------

    def _publish_alert(self, alert: AlertView, raised: bool) -> None:
        notice = AlertNotice(device=self.device, alert_id=alert.id, kind=alert.kind.value, subject=alert.subject,
                             severity=alert.severity.value, state="raised" if raised else "cleared",
                             since=alert.since, reason=alert.key, params=alert.params, zh=alert.zh, en=alert.en)
        self.client.publish(self.topics.alert(self.device), notice.model_dump_json(), qos=1)
        log.log(logging.WARNING if raised else logging.INFO, "alert %s: %s",
                "raised" if raised else "cleared", alert.zh)

    def case_step(self, command: CaseStepCommand, timeout: float = 5.0) -> RatingReply | None:
        """Send one case step to the hub and wait for its answer; ``None`` when none came in time."""
        request = CaseStepRequest(device=self.device, reply_to=self.topics.rating_reply(self.device), step=command)
        pending = _Pending()
        self._pending[command.request_id] = pending
        try:
            self.client.publish(self.topics.case_step(self.device), request.model_dump_json(), qos=1)
            if not pending.done.wait(timeout):
                return None
            self._dirty.set()
            return pending.reply
        finally:
            self._pending.pop(command.request_id, None)

    def _on_rating_reply(self, reply: RatingReply) -> None:
        pending = self._pending.get(reply.request_id)
        if pending is not None:
            pending.reply = reply
            pending.done.set()


def _detail_item(key: str, value: object, lang: Lang) -> DetailItem:
    """A reported fact in words: its key's first and last parts by the catalogue's names for them (else
    the part itself: ratings.refused is 评价 · 已拒绝, refused.queue.nothing_waiting 已拒绝 · nothing
    waiting), 是/否 for a flag."""
    def word(part: str) -> str:
        found = text(f"dashboard.detail.{part}", lang)
        return part.replace("_", " ") if found == f"dashboard.detail.{part}" else found

    if isinstance(value, bool):
        value = text(f"dashboard.detail.{'yes' if value else 'no'}", lang)
    parts = key.split(".")
    label = word(parts[0]) + (f" · {word(parts[-1])}" if len(parts) > 1 else "")
    return DetailItem(label=label, value="–" if value is None else str(value))


def _kind(kind: str, lang: Lang) -> str:
    label = text(f"dashboard.kind.{kind}", lang)
    return kind if label == f"dashboard.kind.{kind}" else label
