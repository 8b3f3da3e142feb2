"""Asking the hub for a ticket until it answers: the ``hub_down`` screen and its retries.

A failed attempt keeps nothing half-done: the same command goes again, and its
``request_id`` makes the hub answer with the ticket it may already have issued.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol

from hallkit.broker.client import HubError
from hallkit.contracts.hall import CommandReply
from hallkit.kiosk.hub import Answer
from hallkit.kiosk.screens.ports import Screens, Visit
from hallkit.kiosk.timers import Timers

from hallkit.queue.models import Command, TakeTicket

RETRY_SECONDS = 3.0
"""Pause between attempts while the hub cannot be reached."""
BUSY_AFTER_SECONDS = 0.4
"""The hub usually answers in milliseconds; only a slower answer shows "taking your ticket"."""


class CommandLink(Protocol):
    """The hub link's request (:meth:`kiosk.hub.HubLink.ask`); ``done`` runs on the UI thread."""

    def ask(self, command: Command, done: Callable[[Answer], None]) -> None: ...


class RetryFlow:
    """Sends one command at a time and hands its reply on; shows ``hub_down`` and retries while it fails."""

    def __init__(self, visit: Visit, hub: CommandLink, screens: Screens, timers: Timers,
                 replied: Callable[[str, CommandReply], None]) -> None:
        self.visit = visit
        self.hub = hub
        self.screens = screens
        self.timers = timers
        self._replied = replied
        self.pending: TakeTicket | None = None

    def ask(self, command: TakeTicket) -> None:
        self.pending = command
        self.visit.hub_attempts = 0
        self._send()

    def drop(self) -> None:
        """Nobody waits for the answer any more (the visit was reset): it is ignored when it comes."""
        self.pending = None
        self.visit.busy = self.visit.busy_shown = False

    def _send(self) -> None:
        command = self.pending
        if command is None:
            return
        self.visit.busy = True
        self.timers.after(BUSY_AFTER_SECONDS, self._show_busy)
        self.hub.ask(command, partial(self._answered, command.request_id))

    def _show_busy(self) -> None:
        self.visit.busy_shown = self.visit.busy

    def _answered(self, request_id: str, answer: Answer) -> None:
        if self.pending is None or self.pending.request_id != request_id:
            return  # the visit was reset while the hub was asked: nobody is waiting for this
        self.visit.busy = self.visit.busy_shown = False
        if isinstance(answer, HubError):
            self.visit.hub_attempts += 1
            self.screens.show("hub_down")
            self.timers.after(RETRY_SECONDS, self._retry)
            return
        self.pending = None
        self._replied(request_id, answer)

    def _retry(self) -> None:
        # Same command, same request id: if the hub did issue the ticket, it answers with that one.
        if self.screens.current == "hub_down" and self.pending is not None and not self.visit.busy:
            self._send()
