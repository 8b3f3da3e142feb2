"""Child process of the crash test: issue tickets and call them until killed.

Run as ``python -m tests.core.crash_child DB RUN SYNCHRONOUS``. Each acknowledged action is
printed as one JSON line and flushed only after ``DurableQueue.execute`` returned, so every
line the parent reads is a promise the store must keep after a SIGKILL.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import timedelta
from typing import cast

from hallkit.config import parse_config
from hallkit.queue.engine import Refused
from hallkit.queue.models import CallNext, Command, TakeTicket, TicketCalled, TicketIssued
from hallkit.store.durable import DurableQueue
from hallkit.store.sqlite import Synchronous
from hallkit.testing import MONDAY, SMALL_HALL


def main() -> None:
    path, run, synchronous = sys.argv[1], int(sys.argv[2]), cast(Synchronous, sys.argv[3])
    rng = random.Random(run)
    # Each run starts later in the same business day, so all runs share one ticket sequence.
    start = MONDAY + timedelta(minutes=20 * run)
    queue = DurableQueue(parse_config(SMALL_HALL), path, synchronous=synchronous)
    print(json.dumps({"ready": True}), flush=True)
    for i in range(1_000_000):
        now = start + timedelta(milliseconds=50 * i)
        command: Command
        if rng.random() < 0.6:
            command = TakeTicket(request_id=f"r{run}-{i}", service_id=rng.choice(["social", "pension", "permit"]))
        else:
            command = CallNext(request_id=f"r{run}-{i}", window=rng.choice([1, 2, 3]))
        try:
            outcome = queue.execute(command, now)
        except Refused:
            continue
        # The ticket issued or called; a call that only completed the last ticket calls none.
        ticket = next((e.ticket.id if isinstance(e, TicketIssued) else e.ticket_id for e in outcome.events
                       if isinstance(e, TicketIssued | TicketCalled)), None)
        print(json.dumps({"request": command.request_id, "action": command.action, "ticket": ticket}),
              flush=True)


if __name__ == "__main__":
    main()
