"""The hub: every device in the hall talks to it over MQTT.

It subscribes to command requests, validates them, checks the sender may do
what it asks, runs them through the durable queue (persisted before any
answer), replies, and publishes what changed: the retained queue snapshot,
one notice per queue event, and its own retained status with a Last Will.

Input never crashes it: a payload that is not JSON, fails validation, comes
from an unknown device or asks for something not allowed is refused with a
reason on the error topic (and to the sender, when it said where to answer),
and counted.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import paho.mqtt.client as mqtt
from hallkit.broker.connection import Connection, Incoming
from hallkit.broker.flood import Deadlines
from hallkit.broker.latest import LatestPerKey
from hallkit.broker.mosquitto import (
    DYNSEC_CONTROL,
    HUB_STATUS_USER,
    hub_status_password,
    let_in_login,
    lock_out_login,
)
from hallkit.broker.status_watch import StatusWatch
from hallkit.broker.wire import SUBACK_FAILURE
from hallkit.contracts.hall import (
    CHECK_IN_PREFIX,
    FLOODING_DETAIL,
    CommandReply,
    CommandRequest,
    DeviceState,
    DeviceStatus,
    ErrorNotice,
    QueueEventNotice,
    QueueSnapshot,
    Refusal,
    Topics,
    scoped_request_id,
)
from hallkit.contracts.mqtt import BrokerAddress
from pydantic import BaseModel, ValidationError

from hallkit import __version__
from hallkit.config import Device, DeviceKind, HallConfig
from hallkit.encoding import dump_spliced
from hallkit.filemodes import own_only
from hallkit.i18n import Message
from hallkit.queue.engine import Refused
from hallkit.queue.models import (
    Channel,
    Command,
    Event,
    Outcome,
    TakeTicket,
    TicketIssued,
    TicketView,
    WindowView,
    ticket_of,
)
from hallkit.queue.numbering import business_day
from hallkit.store.durable import Answer, DurableQueue
from hallkit.store.sqlite import LOW_SPACE, Synchronous, disk_full

log = logging.getLogger("hallkit.hub")

HUB_DEVICE = "hub"
MAX_BATCH = 256
"""Requests committed together at most: bounds the reply delay of the first one in a burst."""

SNAPSHOT_MIN_INTERVAL = 0.1
"""Seconds between two queue snapshots: coalesces bursts, still well under the 1 s the boards need."""

STATUS_INTERVAL = 10.0

DEVICE_STATUS_INTERVAL = 2.0
"""Seconds between two statuses of one device the parts see: a flapping device costs one per interval."""

WINDOW_KINDS = (DeviceKind.COUNTER, DeviceKind.PAD)
TAKE_CHANNELS = {
    DeviceKind.KIOSK: {Channel.KIOSK, Channel.APPOINTMENT, Channel.AGENT},
    DeviceKind.COUNTER: set(Channel),
    DeviceKind.PAD: {Channel.COUNTER},
}


class HubPart(Protocol):
    """A piece of the hub beyond the queue (ratings, the uplink outbox, device telemetry).

    ``attach`` runs once before the hub connects: a part may create its tables in the hub's
    SQLite file (``hub.queue.store``), add projectors (rows written in the same transaction as
    queue events) and listeners. ``subscriptions`` are topic filters the hub subscribes to for
    it; a message on one of them is handed to ``handle``, which refuses bad input through
    :meth:`Hub.refuse` and must not raise. ``status`` adds figures to the hub's status.
    """

    def attach(self, hub: Hub) -> None: ...

    def subscriptions(self) -> Sequence[str]: ...

    def handle(self, topic: str, payload: bytes) -> None: ...

    def status(self) -> dict[str, str | int | float | bool | None]: ...

    def close(self) -> None: ...


class _Admitted(NamedTuple):
    request: CommandRequest
    device: Device
    reply_to: str
    keyed: Command
    """The command as the queue runs it: its request id made the hub's idempotency key."""


RecordSink = Callable[[sqlite3.Connection, BaseModel], None]
"""Takes a record for the county (a rating, a case update) inside the transaction that made it."""


class Hub:
    def __init__(
        self,
        config: HallConfig,
        broker: BrokerAddress,
        data_dir: Path,
        synchronous: Synchronous = "full",
        parts: Sequence[HubPart] = (),
        lockout: float | None = None,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.broker = broker
        self.topics = Topics(config.hall.id)
        # Requests come on command/<device>: a prefix test, not a topic matcher built per message.
        self._command_prefix = self.topics.command("")
        self._device_prefix = self.topics.device_status("").removesuffix("/status")
        self.devices = {d.id: d for d in config.devices}
        # The log holds keyed hashes of ID numbers: for the hub's user only, said where it was not.
        self.tightened = own_only(data_dir)
        self.queue = DurableQueue(config, data_dir / "hall.sqlite3", synchronous)  # FolderInUse: another hub
        self.queue.listeners.append(self._on_events)
        self.session = _next_session(data_dir / "hub-session")
        # Said from the start, not only at the first refused ticket; cleared by the first commit.
        self.disk_is_full = shutil.disk_usage(data_dir).free < LOW_SPACE
        self.parts = list(parts)
        self.record_sinks: list[RecordSink] = []
        self.refusals: Counter[str] = Counter()
        self.disconnects: Counter[str] = Counter()
        """Device → times the hub had the broker disconnect it for flooding."""
        self.lockout = lockout
        """Seconds the broker keeps a flooding device out; None when it cannot (the embedded broker,
        which has no dynamic-security plugin and would take the plugin's commands amiss)."""
        self._locked_out = Deadlines()
        """When the broker is to let each device it keeps out in again (monotonic)."""
        self._lockout_lock = threading.Lock()
        self.accepted = 0
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._publisher = threading.Thread(target=self._publish_loop, name="hub-state", daemon=True)
        # Everything that is not a command request (device statuses, ratings, case steps) is
        # handled here, off the MQTT thread, so no burst of it holds up a request behind it.
        self._part_inbox: queue.Queue[Incoming] = queue.Queue()
        self._statuses: LatestPerKey[bytes] = LatestPerKey(DEVICE_STATUS_INTERVAL)
        self._statuses_lock = threading.Lock()
        self._parts_wake = threading.Event()
        self._parts_worker = threading.Thread(target=self._serve_parts, name="hub-parts", daemon=True)
        self.status_watch = StatusWatch(
            broker.as_login(HUB_STATUS_USER, hub_status_password(broker.password or ""))
            if broker.username else broker,
            HUB_STATUS_USER if broker.username else f"hub-{config.hall.id}-status",
            [self.topics.device_status(d.id) for d in config.devices], self._on_statuses, self._on_statuses_refused,
            on_flood=self._on_flood)
        self._statuses_on_requests = False
        """Set when the broker has no status login for the hub: statuses then share the request
        connection, as before the hub had a connection for them."""
        self.client = Connection(
            broker, f"hub-{config.hall.id}", self._on_publishes,
            clean_session=False,  # the broker keeps our subscription and queues requests while we restart
            will=(self.topics.hub_status, self._status(DeviceState.OFFLINE).model_dump_json().encode()),
            on_up=self._on_up, on_subscribed=self._on_subscribed, on_down=self._on_down,
            on_refused=self._on_refused, name="hub-mqtt")
        self._subscribe_mid: int | None = None
        self._subscriptions: list[tuple[str, int]] = []
        for part in self.parts:
            part.attach(self)

    # ---- life cycle -------------------------------------------------------------------------

    def start(self, wait: float = 10.0) -> None:
        log.info("hub for %s (%s) connecting to %s", self.config.hall.name, self.config.hall.id, self.broker.url)
        self.client.start()
        if any(self.topics.device_statuses in part.subscriptions() for part in self.parts):
            self.status_watch.start()
        self._publisher.start()
        self._parts_worker.start()
        if wait and not self._connected.wait(wait):
            log.warning("broker %s not reachable yet; the hub keeps trying", self.broker.url)

    def stop(self) -> None:
        self._stopping.set()
        self._dirty.set()
        self._parts_wake.set()
        # Everything that publishes ends first: nothing says "online" after the "offline" below.
        if self._publisher.is_alive():
            self._publisher.join(timeout=5)
        self.status_watch.stop()
        if self._parts_worker.is_alive():
            self._parts_worker.join(timeout=5)
        self._let_in()  # a clean stop leaves no device locked out
        # A clean disconnect does not fire the Will: said here instead.
        self.client.publish_confirmed(self.topics.hub_status, self._status(DeviceState.OFFLINE).model_dump_json(),
                                      retain=True)
        self.client.stop()
        for part in self.parts:
            part.close()
        self.queue.close()
        log.info("hub stopped")

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _on_up(self) -> None:
        # A hub stopped while it kept a device out (killed, a power cut) left the device locked out:
        # every configured device not kept out now is given back to the password file.
        # Under the lock, so that a lock-out decided meanwhile reaches the broker after this, not before.
        with self._lockout_lock:
            free = [d for d in self.devices if d not in self._locked_out]
            if free and self.lockout is not None:
                self.client.publish(DYNSEC_CONTROL, let_in_login(*free), qos=1)
        patterns = [self.topics.commands, *(p for part in self.parts for p in part.subscriptions()
                                            if p != self.topics.device_statuses or self._statuses_on_requests)]
        # One SUBSCRIBE for all; the hub says it is online only once the broker confirmed it, so a
        # device that waits for "online" never sends a request the hub is not yet subscribed to.
        # Statuses (when they come here) at QoS 0: they are retained states the broker sends again at
        # every subscription, and a flood of them then costs neither the broker's in-flight window nor
        # an acknowledgement each.
        self._subscriptions = [(pattern, 0 if pattern == self.topics.device_statuses else 1) for pattern in patterns]
        self._subscribe_mid = self.client.subscribe(self._subscriptions)

    def _on_subscribed(self, mid: int, granted: bytes) -> None:
        if mid != self._subscribe_mid or self._stopping.is_set():
            return
        if refused := [pattern for (pattern, _), code in zip(self._subscriptions, granted, strict=False)
                       if code == SUBACK_FAILURE]:
            log.error("the broker %s does not let the hub's login read %s: check its ACL file (hall broker "
                      "config writes one)", self.broker.url, ", ".join(refused))
        self._connected.set()
        self._publish_status()
        self._dirty.set()
        log.info("connected to %s; serving hall %s", self.broker.url, self.config.hall.id)

    def _on_down(self) -> None:
        self._connected.clear()

    def _on_refused(self, reason: str) -> bool:
        log.error("%s", reason)
        return True  # an installer may fix the login and restart the broker: keep trying

    # ---- requests ---------------------------------------------------------------------------

    def _on_publishes(self, messages: list[Incoming]) -> None:
        wake_parts = False
        requests = []
        for message in messages:
            topic = message.topic
            if topic.startswith(self._command_prefix) and "/" not in topic[len(self._command_prefix):]:
                requests.append(message)
            elif topic.startswith(self._device_prefix) and topic.endswith("/status"):
                # A status is a state: only the newest of a device counts, so it is acknowledged now
                # (the broker re-sends the retained one at the next connection anyway). A device's
                # older status still waiting is due when it was: nothing to wake the parts' thread for.
                with self._statuses_lock:
                    wake_parts |= self._statuses.put(topic, message.payload)
                self.client.ack(message)
            else:
                self._part_inbox.put(message)
                wake_parts = True
        if wake_parts:
            self._parts_wake.set()
        # Run here, on the reading thread, a read's requests at a time: what arrives meanwhile waits
        # in the socket and is the next burst (one group commit each), with no hand-over to another
        # thread on the way. Acknowledged to the broker only once committed and answered: a hub
        # killed before that gets the request again when it returns.
        for start in range(0, len(requests), MAX_BATCH):
            batch = requests[start:start + MAX_BATCH]
            with self.client.corked():  # the burst's replies, notices and acknowledgements in one write
                self._serve_burst(batch)
                for m in batch:
                    self.client.ack(m)

    def _on_statuses(self, newest: dict[str, bytes]) -> None:
        """The status watch's newest status per device of one read (see _on_publishes for why)."""
        with self._statuses_lock:
            fresh = [self._statuses.put(topic, payload) for topic, payload in newest.items()]
        if any(fresh):
            self._parts_wake.set()

    def _on_flood(self, device: str) -> None:
        """Have the broker end a flooding device's connections and keep it out a while: muted, it still
        costs the broker every message it sends (and every device and ticket on the broker waits
        behind them); let in at once, it could flood again straight away. A broker without the
        dynamic-security plugin (the embedded one, a configuration from before it) ignores this."""
        if self.lockout is None:
            return  # the mute alone protects the hub
        with self._lockout_lock:  # the broker gets lock-outs and let-ins in the order they are decided
            self._locked_out.set(device, time.monotonic() + self.lockout)
            self.client.publish(DYNSEC_CONTROL, lock_out_login(device), qos=1)
        self.disconnects[device] += 1
        log.warning("device statuses: %s floods the broker; the broker disconnects it and keeps it out for %.0f s "
                    "(%d times so far)", device, self.lockout, self.disconnects[device])
        self._parts_wake.set()  # its thread lets the device in again when due

    def _let_in(self, now: float | None = None) -> float | None:
        """Let in the devices kept out long enough (all with ``now`` None); seconds until the next is due."""
        with self._lockout_lock:
            due = self._locked_out.due(now)
            left = None if now is None else self._locked_out.wait(now)
            if due and now is not None:
                self.client.publish(DYNSEC_CONTROL, let_in_login(*due), qos=1)
        if due:
            log.info("device statuses: %s may log in again", ", ".join(due))
            if now is None:  # stopping: nothing locks out any more, and the let-in must be through first
                self.client.publish_confirmed(DYNSEC_CONTROL, let_in_login(*due))
        return left

    def _on_statuses_refused(self, reason: str) -> None:
        log.warning("device statuses: %s; they now share the request connection (a device flooding its "
                    "status can then delay tickets: run `hall broker config --add` again, with the hub's "
                    "secrets/hub in its folder, and restart the broker to give the hub its status login)",
                    reason)
        self._statuses_on_requests = True
        self.client.subscribe([(self.topics.device_statuses, 0)])

    def _serve_parts(self) -> None:
        """Hand the parts their messages in arrival order, and each device's newest status when due."""
        wait: float | None = None
        while not self._stopping.is_set():
            self._parts_wake.wait(timeout=0.5 if wait is None else wait)
            self._parts_wake.clear()
            while True:
                try:
                    m = self._part_inbox.get_nowait()
                except queue.Empty:
                    break
                self._to_part(m.topic, m.payload)
                self.client.ack(m)
            with self._statuses_lock:
                due = self._statuses.due(time.monotonic())
            for topic, payload in due:
                self._to_part(topic, payload)
            with self._statuses_lock:
                wait = self._statuses.wait(time.monotonic())
            let_in = self._let_in(time.monotonic())
            if let_in is not None:
                wait = let_in if wait is None else min(wait, let_in)

    def _to_part(self, topic: str, payload: bytes) -> None:
        try:
            for part in self.parts:
                if any(mqtt.topic_matches_sub(pattern, topic) for pattern in part.subscriptions()):
                    part.handle(topic, payload)
                    return
        except Exception as exc:  # the hub must outlive any input; this is a bug or a full disk
            if disk_full(exc, self.data_dir):
                self.refuse(topic, None, "hub.disk_full", str(self.data_dir))
            else:
                log.exception("unexpected failure handling a message on %s", topic)
                self.refuse(topic, None, "hub.internal", "see the hub log")

    def _serve_burst(self, batch: list[Incoming]) -> None:
        try:
            self.handle_batch([(m.topic, m.payload) for m in batch])
        except Exception:
            # Run the burst again one by one, so whatever failed (a bug, a full disk) fails
            # only its own request and the others are still carried out and answered.
            log.exception("a burst of %d requests failed; running them one by one", len(batch))
            for m in batch:
                try:
                    self.handle(m.topic, m.payload)
                except Exception:  # the hub must outlive any input; this is a bug, not a refusal
                    log.exception("unexpected failure handling a request on %s", m.topic)
                    self.refuse(m.topic, None, "hub.internal", "see the hub log")

    def handle(self, topic: str, payload: bytes) -> None:
        """Handle one command request (validate, check, run, reply)."""
        self.handle_batch([(topic, payload)])

    def handle_batch(self, messages: Sequence[tuple[str, bytes]]) -> None:
        admitted = [a for topic, payload in messages if (a := self._admit(topic, payload)) is not None]
        if not admitted:
            return
        try:
            results = self.queue.answer_batch([a.keyed for a in admitted])
        except Exception as exc:
            full = disk_full(exc, self.data_dir)
            if len(admitted) > 1 and not full:
                raise  # _serve_burst runs them one by one: only the request at fault fails
            if not full:
                log.exception("unexpected failure running a request from %s", admitted[0].device.id)
            # Nothing of it was committed (the queue rebuilt itself from the log): say so to each sender.
            reason, detail = ("hub.disk_full", str(self.data_dir)) if full else ("hub.internal", "see the hub log")
            self.disk_is_full = full
            for a in admitted:
                self.refuse(self.topics.command(a.device.id), a.reply_to, reason, detail,
                            a.request.command.request_id)
            return
        self.disk_is_full = False
        for a, result in zip(admitted, results, strict=True):
            command = a.request.command
            if isinstance(result, Refused):
                self.refusals[result.message.key] += 1
                self.reply(a.reply_to, command.request_id, refusal=Refusal.of(result.message))
                log.info("refused %s from %s: %s", command.action, a.device.id, result.message.bilingual())
            else:
                self.accepted += 1
                self._answer(a, result)

    def _answer(self, admitted: _Admitted, answer: Answer) -> None:
        """Reply with the outcome: as the queue encoded it when the sender may see all of it."""
        command = admitted.request.command
        if sees_everything(admitted.device, command):
            outcome = answer.json
        else:
            outcome = for_sender(answer.outcome, admitted.device, command).model_dump_json()
        reply = CommandReply(device=HUB_DEVICE, request_id=command.request_id, ok=True)
        self.client.publish(admitted.reply_to, dump_spliced(reply, {"outcome": outcome}), qos=1)

    def _admit(self, topic: str, payload: bytes) -> _Admitted | None:
        """The request, its sender and the command keyed for the queue, or None after refusing it."""
        sender = Topics.device_of(topic)
        own_reply = self.topics.reply(sender)
        try:
            # The common case in one pass from bytes to the model; anything it refuses goes the
            # slow way below, which says exactly what is wrong and answers whom it may.
            request = CommandRequest.model_validate_json(payload)
        except ValidationError:
            return self._admit_slowly(topic, payload, sender, own_reply)
        reply_to = own_reply if request.reply_to == own_reply else None
        return self._check(topic, request, sender, own_reply, reply_to)

    def _admit_slowly(self, topic: str, payload: bytes, sender: str, own_reply: str) -> _Admitted | None:
        """:meth:`_admit` through a parsed object: says whether the bytes or the request are bad."""
        try:
            raw = json.loads(payload)
        except (ValueError, RecursionError) as exc:  # bad bytes, bad JSON, absurd numbers or nesting
            self.refuse(topic, None, "hub.not_json", str(exc)[:200])
            return None
        # Only ever answered on the sender's own reply topic: never on a topic another device reads.
        reply_to = own_reply if isinstance(raw, dict) and raw.get("reply_to") == own_reply else None
        try:
            request = CommandRequest.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            self.refuse(topic, reply_to, "hub.invalid", f"{where}: {first['msg']}"[:300], _request_id(raw))
            return None
        return self._check(topic, request, sender, own_reply, reply_to)

    def _check(self, topic: str, request: CommandRequest, sender: str, own_reply: str,
               reply_to: str | None) -> _Admitted | None:
        """The request admitted, or None after refusing it: sender, reply topic, permission."""
        rid = request.command.request_id
        device = self.devices.get(sender)
        if request.device != sender:
            self.refuse(topic, reply_to, "hub.device_mismatch", f"{request.device} on {topic}", rid)
        elif device is None:
            self.refuse(topic, reply_to, "hub.unknown_device", sender, rid)
        elif reply_to is None:
            self.refuse(topic, own_reply, "hub.bad_reply_to", bad_reply_to(request.reply_to, own_reply), rid)
        elif not_allowed := _permission(device, request.command):
            self.refuse(topic, reply_to, "hub.not_allowed", not_allowed, rid)
        else:
            keyed = request.command.model_copy(update={"request_id": idempotency_key(device, request.command)})
            return _Admitted(request, device, reply_to, keyed)
        return None

    def record(self, conn: sqlite3.Connection, record: BaseModel) -> None:
        """Hand a record the county needs to every sink (the uplink outbox), in the caller's transaction."""
        for sink in self.record_sinks:
            sink(conn, record)

    def reply(self, topic: str, request_id: str, *, refusal: Refusal) -> None:
        """Answer a request that was refused (a carried-out one is answered by :meth:`_answer`)."""
        reply = CommandReply(device=HUB_DEVICE, request_id=request_id, ok=False, refusal=refusal)
        self.client.publish(topic, reply.model_dump_json(), qos=1)

    def refuse(self, topic: str, reply_to: str | None, reason: str, detail: str,
                request_id: str | None = None) -> None:
        """Count a refused message, say why on the error topic, and answer the sender if it can be."""
        self.refusals[reason] += 1
        message = Message(key=reason, params={"detail": detail})
        notice = ErrorNotice(device=HUB_DEVICE, topic=topic, reason=reason, detail=detail,
                             zh=message.render("zh"), en=message.render("en"))
        self.client.publish(self.topics.errors, notice.model_dump_json(), qos=1)
        if reply_to is not None and request_id is not None:
            self.reply(reply_to, request_id, refusal=Refusal.of(message))
        log.warning("refused a message on %s: %s", topic, message.bilingual())

    # ---- publishing -------------------------------------------------------------------------

    def _on_events(self, events: list[Event]) -> None:
        described = []
        logging_events = log.isEnabledFor(logging.INFO)
        for event in events:
            number = None
            if isinstance(event, TicketIssued):
                number = event.ticket.number
            elif (ticket_id := ticket_of(event)) is not None:
                number = ticket_id.rsplit("-", 1)[-1]
            notice = QueueEventNotice(device=HUB_DEVICE, event=_public(event), number=number)
            self.client.publish(self.topics.event(event.type), notice.model_dump_json(), qos=1)
            if logging_events:
                described.append(_describe(event, number))
        if described:
            # One line per burst, not per event: a write and a flush each, a tenth of a ticket's cost.
            log.info("%s", "; ".join(described))
        self._dirty.set()

    def snapshot(self) -> QueueSnapshot:
        now = self.queue.clock()
        with self.queue.lock:
            engine = self.queue.engine
            services = engine.service_queues(now)
            windows = [_hide_window(engine.window_view(w.number)) for w in self.config.windows]
            day = engine.state.day
        today = business_day(now, self.config.hall.zone, self.config.queue.reset_hour)
        if day is not None and day < today:
            # No command has opened today yet: yesterday's leftovers are not today's queue.
            services = [s.model_copy(update={"waiting": 0, "longest_wait_seconds": 0.0}) for s in services]
            windows = [w.model_copy(update={"ticket": None, "served_today": 0, "mean_service_seconds": None})
                       for w in windows]
            day = today
        return QueueSnapshot(device=HUB_DEVICE, hall=self.config.hall.id, hall_name=self.config.hall.name,
                             day=day.isoformat() if day else None,
                             services=services, windows=windows,
                             waiting_total=sum(s.waiting for s in services))

    def _publish_loop(self) -> None:
        last_status = 0.0
        while not self._stopping.is_set():
            self._dirty.wait(timeout=STATUS_INTERVAL)
            if self._stopping.is_set():
                break
            try:
                if self._connected.is_set():
                    if self._dirty.is_set():
                        self._dirty.clear()
                        self.client.publish(self.topics.queue_state, self.snapshot().model_dump_json(),
                                            qos=1, retain=True)
                    if time.monotonic() - last_status >= STATUS_INTERVAL:
                        self._publish_status()
                        last_status = time.monotonic()
            except Exception:  # a bug here must not silence the boards and the heartbeat for good
                log.exception("could not publish the hall's state; trying again")
            time.sleep(SNAPSHOT_MIN_INTERVAL)

    def _status(self, state: DeviceState) -> DeviceStatus:
        return DeviceStatus(
            device=HUB_DEVICE, state=state, session=self.session, kind="hub", version=__version__,
            detail={"accepted": self.accepted, "refused": sum(self.refusals.values()), "disk_full": self.disk_is_full,
                    FLOODING_DETAIL: ",".join(self.status_watch.flooding(time.monotonic())),
                    **{f"refused.{k}": v for k, v in sorted(self.refusals.items())},
                    **{k: v for part in self.parts for k, v in part.status().items()}},
        )

    def _publish_status(self) -> None:
        self.client.publish(self.topics.hub_status, self._status(DeviceState.ONLINE).model_dump_json(),
                            qos=1, retain=True)


def _permission(device: Device, command: Command) -> str:
    """Empty when ``device`` may run ``command``; otherwise why not (for the refusal)."""
    if isinstance(command, TakeTicket):
        allowed = TAKE_CHANNELS.get(device.kind, set())
        if command.channel not in allowed:
            return f"{device.kind.value} {device.id} may not take {command.channel.value} tickets"
        return ""
    if device.kind not in WINDOW_KINDS:
        return f"{device.kind.value} {device.id} may not run counter commands"
    window = command.window
    if device.window is not None and window != device.window:
        return f"{device.id} belongs to window {device.window}, not {window}"
    return ""


WITHHELD = ""
"""What a ticket's QR token reads as wherever it is withheld (it is a required field of the ticket)."""


def idempotency_key(device: Device, command: Command) -> str:
    """The key a command's answer is kept under: (device, request id), so a device that reuses
    another's request id gets a new answer of its own, never the other device's ticket.

    An appointment's check-in is the one exception: it is keyed by the appointment, so checking
    in again (at another kiosk, or a retry) gives the same ticket, never a second one.
    """
    if (isinstance(command, TakeTicket) and command.channel is Channel.APPOINTMENT
            and command.request_id.startswith(CHECK_IN_PREFIX)):
        return command.request_id
    return scoped_request_id(device.id, command.request_id)


def bad_reply_to(given: str, own: str) -> str:
    """The detail of a ``hub.bad_reply_to`` refusal."""
    return f"{given[:200]} (this device's own: {own})"


def for_sender(outcome: Outcome, device: Device, command: Command) -> Outcome:
    """The outcome as the requesting device may see it.

    Only the kiosk that issued a ticket gets its QR token (it prints it on the ticket); every
    other device, staff counters included, could rate in the resident's place with it.
    """
    if sees_everything(device, command):
        return outcome
    return outcome.model_copy(update={
        "ticket": _hide_ticket(outcome.ticket),
        "window": _hide_window(outcome.window) if outcome.window else None,
        "events": [_public(e) for e in outcome.events],
    })


def sees_everything(device: Device, command: Command) -> bool:
    """Whether ``device`` gets the outcome of ``command`` as it is (see :func:`for_sender`)."""
    return isinstance(command, TakeTicket) and device.kind is DeviceKind.KIOSK


def _hide_ticket(view: TicketView | None) -> TicketView | None:
    return view.model_copy(update={"public_id": WITHHELD}) if view else None


def _hide_window(view: WindowView) -> WindowView:
    return view.model_copy(update={"ticket": _hide_ticket(view.ticket)})


def _public(event: Event) -> Event:
    """The event as every device on the LAN may see it: no QR token, no resident hash, no request id.

    The QR token lets its holder rate the service late, so only the resident's own ticket
    carries it; request ids are the keys to stored replies.
    """
    if isinstance(event, TicketIssued):
        ticket = event.ticket.model_copy(update={"public_id": WITHHELD, "id_hash": None})
        return event.model_copy(update={"ticket": ticket, "request_id": None})
    return event.model_copy(update={"request_id": None})


def _request_id(raw: object) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("command"), dict):
        rid = raw["command"].get("request_id")
        return rid if isinstance(rid, str) else None
    return None


def _next_session(path: Path) -> int:
    try:
        session = int(path.read_text().strip()) + 1
    except (OSError, ValueError):
        session = 1
    try:
        path.write_text(str(session))
    except OSError as exc:  # a full disk: the hub still starts, to refuse requests with a reason
        log.error("could not save the session number in %s: %s", path, exc)
    return session


_UNLOGGED = frozenset({"id", "at", "request_id", "type", "ticket"})


def _describe(event: Event, number: str | None) -> str:
    # The fields straight off the event (model_dump would copy all of it, once per event).
    described = [event.type, number or ""]
    for name in type(event).model_fields:
        value = getattr(event, name)
        if name not in _UNLOGGED and value not in (None, [], ""):
            described.append(f"{name}={value}")
    return " ".join(described)
