"""Child process of the uplink fault test: a hub with its parts that records ratings until told to stop.

Run as ``python -m tests.upstream.producer CONFIG DATA HALL_BROKER COUNT``. Each rating is recorded
through ``hub.record`` in a transaction that also notes its index (as the rating part stores its
own rows beside the outbox's), so after a SIGKILL the next run resumes after the last committed
one. Prints ``done`` once COUNT ratings are committed, then keeps the hub running.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

from hallkit.broker.hub import Hub
from hallkit.broker.parts import hub_parts
from hallkit.contracts.mqtt import parse_broker_url
from hallkit.uplink.testing import rating

from hallkit.config import load_config


def main() -> None:
    config_path, data, broker, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = load_config(config_path)
    hub = Hub(config, parse_broker_url(broker), data, "normal", parts=hub_parts(config))
    hub.start()
    with hub.queue.lock, hub.queue.store.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS produced (i INTEGER PRIMARY KEY)")
        start = conn.execute("SELECT coalesce(max(i) + 1, 0) FROM produced").fetchone()[0]
    for i in range(start, count):
        with hub.queue.lock, hub.queue.store.transaction() as conn:
            hub.record(conn, rating(i, hall=config.hall.id))
            conn.execute("INSERT INTO produced VALUES (?)", (i,))
        if i % 500 == 0:
            print(i, flush=True)
    print("done", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
