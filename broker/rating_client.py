"""A device's side of the rating topics (and the counter commands), with replies matched by request id.

Used by pads (through their bridge), the QR page and kiosks to hand in
ratings, and by ``hall cases`` to record case steps. A pad also hears its
screen on the same connection (``extra``) and leaves a Last Will (``will``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ValidationError

from broker.client import HubError
from broker.contract import CaseStepRequest, CommandReply, CommandRequest, RatingReply, RatingRequest, Topics
from broker.mqtt import BrokerAddress, make_client
from hallkit.queue.models import Command, new_id
from hallkit.rating.models import CaseStepCommand, RatingSubmission


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    reply: BaseModel | None = None


class RatingClient:
    def __init__(self, broker: BrokerAddress, hall_id: str, device_id: str, *,
                 will: tuple[str, bytes] | None = None,
                 extra: Sequence[tuple[str, mqtt.CallbackOnMessage]] = ()) -> None:
        self.broker = broker
        self.topics = Topics(hall_id)
        self.device_id = device_id
        self.ready = threading.Event()
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._subscriptions = [self.topics.reply(device_id), self.topics.rating_reply(device_id),
                               *(topic for topic, _ in extra)]
        self.client = make_client(broker, client_id=f"{device_id}-{new_id()[:8]}", will=will)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.ready.clear()
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.message_callback_add(self.topics.reply(device_id), self._on_reply(CommandReply))
        self.client.message_callback_add(self.topics.rating_reply(device_id), self._on_reply(RatingReply))
        for topic, callback in extra:
            self.client.message_callback_add(topic, callback)

    def connect(self, timeout: float = 5.0, *, must: bool = True) -> RatingClient:
        """Connect and wait for the subscriptions; with ``must=False`` keep trying in the background."""
        try:
            self.client.connect_async(self.broker.host, self.broker.port, keepalive=15)
        except OSError as exc:
            raise HubError("hub.unreachable", broker=self.broker.url, detail=str(exc)) from None
        self.client.loop_start()
        if not self.ready.wait(timeout) and must:
            self.close()
            raise HubError("hub.unreachable", broker=self.broker.url, detail="no answer from the broker")
        return self

    def __enter__(self) -> RatingClient:
        return self.connect()

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object) -> None:
        if not reason.is_failure:
            client.subscribe([(topic, 1) for topic in self._subscriptions])

    def _on_reply(self, model: type[CommandReply] | type[RatingReply]) -> mqtt.CallbackOnMessage:
        def on_reply(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            try:
                reply = model.model_validate_json(message.payload)
            except ValidationError:
                return
            with self._lock:
                pending = self._pending.get(reply.request_id)
            if pending is not None and not pending.done.is_set():
                pending.reply = reply
                pending.done.set()
        return on_reply

    def _ask(self, topic: str, request: BaseModel, request_id: str, timeout: float) -> BaseModel:
        pending = _Pending()
        with self._lock:
            self._pending[request_id] = pending
        try:
            self.client.publish(topic, request.model_dump_json(), qos=1)
            if not pending.done.wait(timeout):
                raise HubError("hub.timeout", seconds=timeout)
            assert pending.reply is not None
            return pending.reply
        finally:
            with self._lock:
                self._pending.pop(request_id, None)

    def request(self, command: Command, timeout: float = 5.0) -> CommandReply:
        """A counter command (a pad's staff keys)."""
        request = CommandRequest(device=self.device_id, reply_to=self.topics.reply(self.device_id), command=command)
        reply = self._ask(self.topics.command(self.device_id), request, command.request_id, timeout)
        assert isinstance(reply, CommandReply)
        return reply

    def rate(self, submission: RatingSubmission, timeout: float = 5.0) -> RatingReply:
        request = RatingRequest(device=self.device_id, reply_to=self.topics.rating_reply(self.device_id),
                                submission=submission)
        reply = self._ask(self.topics.rating_submit(self.device_id), request, submission.request_id, timeout)
        assert isinstance(reply, RatingReply)
        return reply

    def record_step(self, step: CaseStepCommand, timeout: float = 5.0) -> RatingReply:
        request = CaseStepRequest(device=self.device_id, reply_to=self.topics.rating_reply(self.device_id),
                                  step=step)
        reply = self._ask(self.topics.case_step(self.device_id), request, step.request_id, timeout)
        assert isinstance(reply, RatingReply)
        return reply
