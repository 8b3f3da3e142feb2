"""The kiosk's requests to the hub, made from one worker thread.

The UI thread never waits on the network: it hands a command to :class:`HubLink`
and gets the answer later through ``deliver`` (on the kiosk, ``Clock.schedule_once``).
A failed attempt keeps nothing half-done: the kiosk asks again with the *same*
command, whose ``request_id`` makes the hub answer with the ticket it may already
have issued instead of a second one. Appointment look-ups (by the card's keyed hash)
go through the same thread, in order with the commands.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from hallkit.broker.client import HallClient, HubError
from hallkit.contracts.hall import AppointmentList, CommandReply
from hallkit.contracts.mqtt import BrokerAddress

from hallkit.queue.models import Command

log = logging.getLogger(__name__)

Answer = CommandReply | HubError
AppointmentsAnswer = AppointmentList | HubError
Deliver = Callable[[Callable[[], None]], None]
"""Runs a callable on the UI thread."""


class HubLink:
    """One connection to the hub for one device, used from a worker thread.

    Args:
        broker: where the hall's broker is.
        hall_id: the hall.
        device_id: this kiosk's device id (the hub checks it may take tickets).
        deliver: how answers get to the UI thread.
        timeout: seconds to wait for the hub's reply to one request.
        connect_timeout: seconds to wait for the broker when (re)connecting.
        lookup_timeout: seconds to wait for an appointment look-up: shorter, as a ticket asked
            for just after the card was laid waits behind it.
    """

    def __init__(self, broker: BrokerAddress, hall_id: str, device_id: str, deliver: Deliver,
                 timeout: float = 5.0, connect_timeout: float = 3.0, lookup_timeout: float = 2.0) -> None:
        self.broker = broker
        self.hall_id = hall_id
        self.device_id = device_id
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.lookup_timeout = lookup_timeout
        self._deliver = deliver
        self._jobs: queue.Queue[tuple[Callable[[HallClient], Any], Callable[[Any], None], str] | None] = \
            queue.Queue()
        self._client: HallClient | None = None
        self._thread = threading.Thread(target=self._run, name="kiosk-hub", daemon=True)

    def start(self) -> HubLink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=self.timeout + self.connect_timeout + 1)

    def ask(self, command: Command, done: Callable[[Answer], None]) -> None:
        """Send ``command``; ``done`` gets the reply or the :class:`HubError`, on the UI thread."""
        self._jobs.put((lambda client: client.request(command, self.timeout), done, command.request_id))

    def appointments(self, id_hash: str, done: Callable[[AppointmentsAnswer], None]) -> None:
        """Ask for the resident's appointments today; ``done`` gets the list or the :class:`HubError`,
        on the UI thread."""
        self._jobs.put((lambda client: client.appointments(id_hash, self.lookup_timeout), done, "appointments"))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            call, done, what = job
            answer = self._call(call, what)
            self._deliver(partial(done, answer))
        if self._client is not None:
            self._client.close()

    def _call(self, call: Callable[[HallClient], Any], what: str) -> Any:
        try:
            if self._client is None:
                self._client = HallClient(self.broker, self.hall_id, self.device_id).connect(self.connect_timeout)
            return call(self._client)
        except HubError as error:
            log.warning("hub request %s failed: %s", what, error)
            # Start afresh next time: a broken session may hold a stale subscription.
            if self._client is not None:
                self._client.close()
                self._client = None
            return error
