"""The page process's side of the hall: its MQTT device, the followed tickets, ratings out.

``hall web`` is a device of the hall (``[[devices]] kind = "web"``, its own broker login): it
publishes its status with a Last Will, hears the hub's event notices (only to know when to read
the log on, see :mod:`web.follow`), and hands in ratings on ``rating/submit/<device>`` by the QR
token, channel ``qr`` (``broker/ratings.py: RATING_RIGHTS``). One refresher thread reads the log
after each notice and recomputes the page of every ticket someone is watching; each open page
(SSE) gets its ticket's JSON only when it changed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from hallkit.broker.client import HallClient, HubError
from hallkit.contracts.hall import DeviceState, DeviceStatus, Topics
from hallkit.contracts.mqtt import BrokerAddress, say_offline
from hallkit.dashboard.stats import EventLog
from hallkit.web.follow import TicketFollower
from hallkit.web.views import PhoneView, Stage
from pydantic import BaseModel, ConfigDict, Field

from hallkit import __version__
from hallkit.config import PHONE_PATTERN, HallConfig
from hallkit.i18n import Message
from hallkit.rating import store
from hallkit.rating.followup import FOLLOWUP_FILE, FollowUp, FollowUpBook
from hallkit.rating.models import Level, RatingChannel, RatingReceipt, RatingSubmission

log = logging.getLogger("hallkit.web")

REFRESH_SECONDS = 5.0
"""Waits change and a notice may be missed: reread the log this often even when all is quiet."""
RATE_POLL_SECONDS = 1.0
"""While a page shows the rating form, this often: a rating on the window's pad must close it, and
the hub says nothing on MQTT about a rating (only the rating's sender hears the answer)."""
PURGE_SECONDS = 60.0


class RateForm(BaseModel):
    """The phone page's rating form, checked before anything is sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: Level
    tags: list[str] = Field([], max_length=20)
    text: str = Field("", max_length=500)
    phone: str | None = Field(None, pattern=PHONE_PATTERN)
    request_id: str = Field(min_length=8, max_length=64,
                            description="the form's own id: sending the same form twice gives one rating")


@dataclass(frozen=True)
class RateResult:
    receipt: RatingReceipt | None = None
    refusal: Message | None = None


class Watchers:
    """Open pages per token, each an asyncio queue on the server's loop (the newest view wins)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pages: dict[str, set[asyncio.Queue[str]]] = {}
        self.sent: dict[str, str] = {}

    def tokens(self) -> list[str]:
        return list(self.pages)

    def subscribe(self, token: str) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self.pages.setdefault(token, set()).add(queue)
        return queue

    def unsubscribe(self, token: str, queue: asyncio.Queue[str]) -> None:
        pages = self.pages.get(token)
        if pages is not None:
            pages.discard(queue)
            if not pages:
                del self.pages[token]
                self.sent.pop(token, None)

    def publish(self, changed: dict[str, str]) -> None:
        """From the refresher thread: the views that changed, by token."""
        if self.loop is not None and changed:
            self.loop.call_soon_threadsafe(self._deliver, changed)

    def _deliver(self, changed: dict[str, str]) -> None:
        for token, payload in changed.items():
            self.sent[token] = payload
            for queue in self.pages.get(token, ()):
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(payload)


class PhoneHall:
    def __init__(self, config: HallConfig, broker: BrokerAddress, data: Path, device: str | None = None) -> None:
        self.config = config
        self.device = device or config.web.device
        self.topics = Topics(config.hall.id)
        self.data = data
        self.follower = TicketFollower(config, EventLog(data / "hall.sqlite3"))
        self.followups = FollowUpBook(data / FOLLOWUP_FILE)
        self.watchers = Watchers()
        self.session = int(time.time())
        self.hub = HallClient(broker, config.hall.id, self.device,
                              will=(self.topics.device_status(self.device),
                                    self._status(DeviceState.OFFLINE).model_dump_json().encode()),
                              extra=[(self.topics.events, self._on_event)], on_ready=self._on_ready)
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._rating_forms_open = False
        self._next_purge = 0.0
        self._thread = threading.Thread(target=self._loop, name="web-refresh", daemon=True)

    # ---- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.follower.catch_up()
        self.hub.connect(must=False)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._dirty.set()
        self._thread.join(timeout=5)
        say_offline(self.hub.client, self.topics.device_status(self.device),
                    self._status(DeviceState.OFFLINE).model_dump_json())
        self.hub.close()
        self.followups.close()
        self.follower.log.close()

    @property
    def connected(self) -> bool:
        return self.hub.ready.is_set()

    def _status(self, state: DeviceState) -> DeviceStatus:
        return DeviceStatus(device=self.device, state=state, kind="web", version=__version__, session=self.session,
                            detail={"pages": sum(len(p) for p in self.watchers.pages.values())}
                            if state is DeviceState.ONLINE else {})

    def _on_ready(self, client: mqtt.Client) -> None:
        client.publish(self.topics.device_status(self.device),
                       self._status(DeviceState.ONLINE).model_dump_json(), qos=1, retain=True)
        self._dirty.set()  # what happened while the link was down

    def _on_event(self, _c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        self._dirty.set()

    # ---- pages --------------------------------------------------------------------------------------

    def view(self, token: str) -> PhoneView | None:
        return self.follower.view(token, datetime.now(UTC))

    def refresh(self) -> None:
        """Read the log on, and send every watched page whose view changed."""
        self.follower.catch_up()
        now = datetime.now(UTC)
        changed: dict[str, str] = {}
        forms_open = False
        for token in self.watchers.tokens():
            view = self.follower.view(token, now)
            payload = view.model_dump_json() if view is not None else '{"stage": "gone"}'
            forms_open = forms_open or (view is not None and view.stage is Stage.RATE)
            if self.watchers.sent.get(token) != payload:
                changed[token] = payload
        self._rating_forms_open = forms_open
        self.watchers.publish(changed)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._dirty.wait(RATE_POLL_SECONDS if self._rating_forms_open else REFRESH_SECONDS)
            self._dirty.clear()
            if self._stopping.is_set():
                return
            try:
                self.refresh()
                if time.monotonic() >= self._next_purge:
                    self._next_purge = time.monotonic() + PURGE_SECONDS
                    self.purge_followups()
            except Exception:  # one bad row must not stop every page; the next change tries again
                log.exception("phone page refresh failed")

    def wake(self) -> None:
        self._dirty.set()

    # ---- ratings ------------------------------------------------------------------------------------

    def rate(self, token: str, form: RateForm) -> RateResult:
        """Check the form against the ticket's page, hand the rating to the hub, keep a follow-up number."""
        view = self.view(token)
        if view is None:
            return RateResult(refusal=Message(key="web.gone"))
        if view.stage is Stage.RATED:
            return RateResult(refusal=Message(key="rating.already_rated", params={"number": view.number}))
        if view.stage is not Stage.RATE:
            return RateResult(refusal=Message(key="web.not_served", params={"number": view.number}))
        if not form.level.bad and (form.tags or form.phone):
            return RateResult(refusal=Message(key="web.only_for_bad"))
        if len(form.text) > self.config.web.comment_max_chars:
            return RateResult(refusal=Message(key="web.comment_too_long",
                                              params={"chars": self.config.web.comment_max_chars}))
        submission = RatingSubmission(request_id=form.request_id, ticket_public_id=token, channel=RatingChannel.QR,
                                      level=form.level, tags=form.tags, text=form.text)
        try:
            reply = self.hub.rate(submission)
        except HubError as exc:
            log.warning("rating of %s not handed in: %s", view.number, exc)
            return RateResult(refusal=Message(key="web.hub_unreachable"))
        finally:
            self.wake()
        if not reply.ok or reply.receipt is None:
            refusal = reply.refusal
            return RateResult(refusal=Message(key=refusal.reason, params=refusal.params) if refusal
                              else Message(key="web.hub_unreachable"))
        receipt = reply.receipt
        if form.phone and receipt.case_id:
            self.followups.add(FollowUp(case_id=receipt.case_id, rating_id=receipt.rating_id,
                                        ticket_number=receipt.ticket_number, phone=form.phone,
                                        stored_at=datetime.now(UTC)))
        log.info("rated %s by QR: %d%s", receipt.ticket_number, receipt.level,
                 f", case {receipt.case_id}" + (" with a follow-up number" if form.phone else "")
                 if receipt.case_id else "")
        return RateResult(receipt=receipt)

    def purge_followups(self) -> int:
        """Delete the follow-up numbers whose case is finished or that are past the retention."""
        held = self.followups.case_ids()
        if not held:
            return 0
        finished: set[str] = set()
        with self.follower.lock:
            conn = self.follower.log.connection()
            if conn is not None:
                for case_id in held:
                    case = store.cases_by_prefix(conn, case_id)
                    if case and case[0].state.finished:
                        finished.add(case_id)
        gone = self.followups.purge(finished, datetime.now(UTC), self.config.web.followup_retention_days)
        if gone:
            log.info("deleted %d follow-up phone numbers (case finished or past %d days)", gone,
                     self.config.web.followup_retention_days)
        return gone
