"""The hub's rating part: service events to rate, ratings, bad-rating cases, and what each pad shows.

- A projector stores every ``ticket_completed`` event as a service event waiting for its one rating,
  in the transaction that stores the queue event, so no served ticket is ever missing from the
  coverage figures.
- Rating requests (``rating/submit/<device>``) are checked against the rules and stored, with the
  case a bad rating opens and the records for the county (``hub.record``), in one transaction,
  before the answer. A request sent again gets the same answer; a second rating of a rated event
  is refused.
- Case steps (``rating/case/<device>``) from counters move a case through its workflow.
- After each queue event the pads of the windows concerned get their screen (retained): the staff
  on duty, the ticket served, and a rating prompt right after a completion.
- A sweeper closes events whose rating period is over (the province's default level, or nothing).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum

from hallkit.broker.hub import HUB_DEVICE, Hub, bad_reply_to
from hallkit.contracts.hall import (
    CaseStepRequest,
    PadScreen,
    RatingPrompt,
    RatingReply,
    RatingRequest,
    Refusal,
    Topics,
    scoped_request_id,
)
from pydantic import ValidationError

from hallkit.accounts import manager_names
from hallkit.config import Device, DeviceKind, HallConfig
from hallkit.i18n import Message
from hallkit.queue.models import Event, TicketCompleted, window_of
from hallkit.rating import store
from hallkit.rating.cases import CaseRefused, open_case, take_step
from hallkit.rating.models import CaseUpdate, Rating, RatingChannel, RatingReceipt, RatingSubmission
from hallkit.rating.rules import EventStatus, RatingRefused, ServiceEvent, accept, close_unrated, period_length

log = logging.getLogger("hallkit.ratings")

class NamedBy(StrEnum):
    """How a rating names the service event it rates."""

    OWN_WINDOW_EVENT = "service_event_id"  # the completion at the pad's own window, as its screen showed
    TICKET_TOKEN = "ticket_public_id"  # the ticket's QR token, which only the resident holds


RATING_RIGHTS: dict[DeviceKind, dict[RatingChannel, NamedBy]] = {
    DeviceKind.PAD: {RatingChannel.PAD: NamedBy.OWN_WINDOW_EVENT},
    DeviceKind.KIOSK: {RatingChannel.KIOSK: NamedBy.TICKET_TOKEN, RatingChannel.QR: NamedBy.TICKET_TOKEN},
    DeviceKind.WEB: {RatingChannel.QR: NamedBy.TICKET_TOKEN},
}
"""Who may hand in a resident's rating, through which channel, naming the service how: the one
place these rules live. Service event ids are on the event topic every device reads, so only a
window's own pad may rate by one; anywhere else the rating goes by the QR token. Staff devices
never rate (51号: no forcing or interfering), but counters record case steps."""

CASE_KINDS = (DeviceKind.COUNTER,)

CASE_ID_SHOWN = 8
"""Characters of a case id that ``hall cases`` shows: the shortest prefix a case step may name."""


def may_hand_in(device: Device, submission: RatingSubmission) -> Message | None:
    """Why ``device`` may not hand in ``submission`` (before looking the service up), or None."""
    named_by = RATING_RIGHTS.get(device.kind, {}).get(submission.channel)
    if named_by is None:
        return Message(key="rating.channel_not_allowed",
                       params={"device": device.id, "channel": submission.channel.value})
    if named_by is NamedBy.TICKET_TOKEN and submission.ticket_public_id is None:
        return Message(key="rating.by_token_only", params={"channel": submission.channel.value})
    if named_by is NamedBy.OWN_WINDOW_EVENT:
        if submission.service_event_id is None:
            return Message(key="rating.by_event_only")
        if device.window is None:
            return Message(key="rating.pad_without_window", params={"device": device.id})
    return None


def may_rate(device: Device, event: ServiceEvent) -> Message | None:
    """Why ``device`` may not rate ``event``, once found, or None: a pad rates its own window only."""
    if device.kind is DeviceKind.PAD and event.window != device.window:
        return Message(key="rating.other_window", params={"device": device.id, "window": event.window})
    return None


def utcnow() -> datetime:
    return datetime.now(UTC)


class RatingsPart:
    def __init__(self, config: HallConfig) -> None:
        self.config = config
        self.topics = Topics(config.hall.id)
        self.devices = {d.id: d for d in config.devices}
        self.pads: dict[int, list[Device]] = {}
        for device in config.devices:
            if device.kind is DeviceKind.PAD and device.window is not None:
                self.pads.setdefault(device.window, []).append(device)
        self.prompts: dict[int, RatingPrompt] = {}
        # Queue listeners set prompts on the hub's worker thread; ratings and the sweep remove them.
        self._prompts_lock = threading.Lock()
        self.accepted = 0
        self.refusals: Counter[str] = Counter()
        self.clock = utcnow
        self._hub: Hub | None = None
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="ratings-sweep", daemon=True)

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            raise RuntimeError("the ratings part is not attached to a hub")
        return self._hub

    # ---- HubPart --------------------------------------------------------------------------------

    def attach(self, hub: Hub) -> None:
        self._hub = hub
        with hub.queue.lock, hub.queue.store.transaction() as conn:
            store.migrate(conn)
        hub.queue.projectors.append(self._project)
        hub.queue.listeners.append(self._on_queue_events)
        # paho queues these until the hub connects; retained, so a pad that starts later sees them.
        for window in self.pads:
            self._publish_screen(window)
        self._sweeper.start()

    def subscriptions(self) -> Sequence[str]:
        return (self.topics.rating_submits, self.topics.case_steps)

    def handle(self, topic: str, payload: bytes) -> None:
        if topic.startswith(self.topics.rating_submit("")):
            self._on_request(topic, payload, RatingRequest)
        elif topic.startswith(self.topics.case_step("")):
            self._on_request(topic, payload, CaseStepRequest)

    def status(self) -> dict[str, str | int | float | bool | None]:
        return {"ratings.accepted": self.accepted, "ratings.refused": sum(self.refusals.values())}

    def close(self) -> None:
        self._stop.set()
        if self._sweeper.is_alive():
            self._sweeper.join(timeout=5)

    # ---- service events ---------------------------------------------------------------------------

    def _project(self, conn: sqlite3.Connection, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, TicketCompleted):
                store.add_event(conn, self._service_event(event))

    def _service_event(self, done: TicketCompleted) -> ServiceEvent:
        # Runs inside DurableQueue.execute, after the engine applied the event: the ticket is known.
        ticket = self.hub.queue.engine.state.tickets[done.ticket_id].ticket
        service = self.config.service(done.service_id)
        staff = self.config.staff_member(done.staff_id) if done.staff_id else None
        return ServiceEvent(
            service_event_id=done.id, ticket_id=done.ticket_id, ticket_number=ticket.number,
            ticket_public_id=ticket.public_id, service_id=service.id,
            service_code=service.upstream_code, service_name=service.name,
            department=service.department, window=done.window, window_name=self.config.window(done.window).name,
            staff_id=done.staff_id, staff_name=staff.name if staff else None, called_at=done.called_at,
            served_at=done.at, resident_hash=ticket.id_hash,
        )

    def _on_queue_events(self, events: list[Event]) -> None:
        windows: set[int] = set()
        for event in events:
            window = window_of(event)
            if window is None:
                continue
            windows.add(window)
            if isinstance(event, TicketCompleted):
                # The prompt stays when the next resident is called: the one served may still be rating,
                # and the rating binds to the event, not to whoever stands at the window now.
                with self._prompts_lock:
                    self.prompts[window] = self._prompt(event)
        for window in windows:
            self._publish_screen(window)

    def _prompt(self, done: TicketCompleted) -> RatingPrompt:
        # The ticket's number is the tail of its id: the engine may have opened a new day (and
        # forgotten yesterday's tickets) by the time this listener runs.
        number = done.ticket_id.rsplit("-", 1)[-1]
        staff = self.config.staff_member(done.staff_id) if done.staff_id else None
        until = done.at.timestamp() + self.config.rating.pad_timeout_seconds
        return RatingPrompt(service_event_id=done.id, ticket_number=number,
                            service_name=self.config.service(done.service_id).name,
                            staff_name=staff.name if staff else None,
                            until=datetime.fromtimestamp(until, UTC), tags=self.config.rating.bad_reason_tags)

    def screen(self, window: int, device: str = HUB_DEVICE) -> PadScreen:
        """What the pads of ``window`` show now."""
        with self.hub.queue.lock:
            view = self.hub.queue.engine.window_view(window)
        staff = self.config.staff_member(view.staff_id) if view.staff_id else None
        prompt = self.prompts.get(window)
        if prompt is not None and prompt.until <= self.clock():
            prompt = None
        return PadScreen(
            device=device, window=window, window_name=view.name, open=view.open, paused=view.paused,
            staff_id=view.staff_id, staff_name=staff.name if staff else None, staff_title=staff.title if staff else "",
            ticket_number=view.ticket.number if view.ticket else None,
            service_name=view.ticket.service_name if view.ticket else None, prompt=prompt,
        )

    def _publish_screen(self, window: int) -> None:
        screen = self.screen(window).model_dump_json()
        for pad in self.pads.get(window, []):
            self.hub.client.publish(self.topics.pad_screen(pad.id), screen, qos=1, retain=True)

    # ---- requests -----------------------------------------------------------------------------

    def _on_request(self, topic: str, payload: bytes, model: type[RatingRequest] | type[CaseStepRequest]) -> None:
        sender = topic.rsplit("/", 1)[-1]
        try:
            raw = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.hub.refuse(topic, None, "hub.not_json", str(exc)[:200])
            return
        # Only ever answered on the sender's own reply topic: never on a topic another device reads.
        own_reply = self.topics.rating_reply(sender)
        reply_to = own_reply if isinstance(raw, dict) and raw.get("reply_to") == own_reply else None
        request_id = _request_id(raw)
        try:
            request = model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            self._refuse(topic, reply_to, request_id, "hub.invalid",
                         f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"[:300])
            return
        if request.device != sender:
            self._refuse(topic, reply_to, request_id, "hub.device_mismatch", f"{request.device} on {topic}")
            return
        device = self.devices.get(sender)
        if device is None:
            self._refuse(topic, reply_to, request_id, "hub.unknown_device", sender)
            return
        if reply_to is None:
            own = self.topics.rating_reply(sender)
            self._refuse(topic, own, request_id, "hub.bad_reply_to", bad_reply_to(request.reply_to, own))
            return
        reply = self.rate(device, request) if isinstance(request, RatingRequest) else self.record_step(device, request)
        if reply.refusal is not None:
            self.refusals[reply.refusal.reason] += 1
            log.info("refused %s from %s: %s / %s", model.__name__, sender, reply.refusal.zh, reply.refusal.en)
        else:
            self.accepted += 1
        self.hub.client.publish(reply_to, reply.model_dump_json(), qos=1)

    def _refuse(self, topic: str, reply_to: str | None, request_id: str | None, reason: str, detail: str) -> None:
        self.hub.refuse(topic, None, reason, detail)  # the error topic and the hub's count
        if reply_to is not None and request_id is not None:
            refusal = Refusal.of(Message(key=reason, params={"detail": detail}))
            reply = RatingReply(device=HUB_DEVICE, request_id=request_id, ok=False, refusal=refusal)
            self.hub.client.publish(reply_to, reply.model_dump_json(), qos=1)

    def rate(self, device: Device, request: RatingRequest, now: datetime | None = None) -> RatingReply:
        """Check and store one rating (and the case it opens), or say why not."""
        submission = request.submission
        answer = _Answer(submission.request_id)
        if (refusal := may_hand_in(device, submission)) is not None:
            return answer(refusal=refusal)
        key = scoped_request_id(device.id, submission.request_id)
        now = now or self.clock()
        window = None
        with self.hub.queue.lock, self.hub.queue.store.transaction() as conn:
            done = store.rating_by_request(conn, key)
            if done is not None:
                case = store.case_of_rating(conn, done.rating_id)
                return answer(receipt=_receipt(done, case.case_id if case else None))
            if submission.service_event_id is not None:
                event = store.event_by_id(conn, submission.service_event_id)
            else:
                event = store.event_by_ticket(conn, submission.ticket_public_id or "")
            if event is None:
                return answer(refusal=Message(key="rating.unknown_event"))
            if (refusal := may_rate(device, event)) is not None:
                return answer(refusal=refusal)
            try:
                rating = accept(event, submission, now, self.config)
            except RatingRefused as refused:
                return answer(refusal=refused.message)
            store.add_rating(conn, rating, key)
            store.set_status(conn, event, EventStatus.RATED)
            self.hub.record(conn, rating)
            case_id = None
            if rating.level.bad:
                case, opened = open_case(rating, event.service_id, self.config.rating,
                                         now.astimezone(self.config.hall.zone).date(), self.config.hall.id)
                store.save_case(conn, case)
                store.add_step(conn, opened, None)
                self.hub.record(conn, opened)
                case_id = case.case_id
            prompt = self.prompts.get(event.window)
            if prompt is not None and prompt.service_event_id == event.service_event_id:
                self._drop_prompt(event.window, prompt)
                window = event.window
        if window is not None:
            self._publish_screen(window)
        log.info("rated %s at window %d: %d (%s)%s", rating.ticket_number, rating.window, rating.level,
                 rating.channel.value, f", case {case_id}" if case_id else "")
        return answer(receipt=_receipt(rating, case_id))

    def record_step(self, device: Device, request: CaseStepRequest, now: datetime | None = None) -> RatingReply:
        command = request.step
        answer = _Answer(command.request_id)
        if device.kind not in CASE_KINDS:
            return answer(refusal=Message(key="case.device_not_allowed", params={"device": device.id}))
        if len(command.case_id) < CASE_ID_SHOWN:
            return answer(refusal=Message(key="case.id_too_short",
                                          params={"case": command.case_id, "length": CASE_ID_SHOWN}))
        if command.by not in self.case_workers():
            return answer(refusal=Message(key="case.unknown_staff", params={"by": command.by}))
        key = scoped_request_id(device.id, command.request_id)
        now = now or self.clock()
        with self.hub.queue.lock, self.hub.queue.store.transaction() as conn:
            done = store.step_by_request(conn, key)
            if done is not None:
                return answer(update=done)
            found = store.cases_by_prefix(conn, command.case_id)
            if len(found) != 1:
                key = "case.ambiguous" if found else "case.unknown"
                return answer(refusal=Message(key=key, params={"case": command.case_id}))
            case = found[0]
            try:
                case, update = take_step(case, command.step, command.by, now, command.note, self.config.hall.id)
            except CaseRefused as refused:
                return answer(refusal=refused.message)
            store.save_case(conn, case)
            store.add_step(conn, update, key)
            self.hub.record(conn, update)
        log.info("case %s: %s by %s", case.case_id, update.step.value, update.by)
        return answer(update=update)

    def case_workers(self) -> set[str]:
        """Who may be named as taking a case step: the hall's staff, and the dashboard's managers
        (the dashboard names its logged-in user; its accounts live in the hub's data folder)."""
        return {s.id for s in self.config.staff} | manager_names(self.hub.data_dir)

    # ---- events nobody rated ----------------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> int:
        """Close the events whose rating period is over; returns how many."""
        now = now or self.clock()
        rules = self.config.rating
        earliest = now - period_length(rules)
        closed = 0
        with self.hub.queue.lock, self.hub.queue.store.transaction() as conn:
            for event in store.pending_served_before(conn, earliest):
                status, rating = close_unrated(event, now, self.config)
                if status is EventStatus.PENDING:
                    continue
                store.set_status(conn, event, status)
                if rating is not None:
                    store.add_rating(conn, rating, None)
                    self.hub.record(conn, rating)
                closed += 1
        if closed:
            log.info("closed %d service events nobody rated (%s)", closed, rules.missing_rating)
        return closed

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.config.rating.sweep_seconds):
            try:
                self.sweep()
            except sqlite3.Error:
                log.exception("closing unrated service events failed; trying again later")
            # A prompt that ran out should leave the pads' screens, even if nothing else happens.
            for window, prompt in list(self.prompts.items()):
                if prompt.until <= self.clock():
                    self._drop_prompt(window, prompt)
                    self._publish_screen(window)

    def _drop_prompt(self, window: int, prompt: RatingPrompt) -> None:
        """Remove ``prompt``, but not the next resident's, set meanwhile by the queue's listener."""
        with self._prompts_lock:
            if self.prompts.get(window) is prompt:
                del self.prompts[window]


class _Answer:
    """Builds the one reply to a request id."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id

    def __call__(self, *, receipt: RatingReceipt | None = None, update: CaseUpdate | None = None,
                 refusal: Message | None = None) -> RatingReply:
        return RatingReply(device=HUB_DEVICE, request_id=self.request_id, ok=refusal is None, receipt=receipt,
                           update=update, refusal=Refusal.of(refusal) if refusal else None)


def _receipt(rating: Rating, case_id: str | None) -> RatingReceipt:
    return RatingReceipt(rating_id=rating.rating_id, service_event_id=rating.service_event_id,
                         ticket_number=rating.ticket_number, level=rating.level, case_id=case_id)


def _request_id(raw: object) -> str | None:
    """The request id inside a rating or case-step request that failed validation, to answer it."""
    if isinstance(raw, dict):
        for inner in ("submission", "step"):
            value = raw.get(inner)
            if isinstance(value, dict) and isinstance(value.get("request_id"), str):
                return str(value["request_id"])
    return None
