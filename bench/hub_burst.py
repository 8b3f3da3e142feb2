"""The hub's own CPU per take, one burst at a time: less sensitive to a loaded machine than bench/hub.py.

    .venv/bin/python bench/hub_burst.py [--bursts 40] [--size 64] [--code DIR ...]

A hub in this process against a real Mosquitto is handed ``--bursts`` bursts of ``--size`` take
requests (``Hub.handle_batch``, the request thread's work: parse, check, run, commit, and the
replies and notices written to the broker in one write per burst, as the hub's request thread
does; in a tree from before the hub had its own connection, handed to paho's thread), and the
thread's CPU time per take is printed as min / median / p90, with the load. The reading thread
and the broker are not in it: bench/hub.py measures the whole. ``--code DIR`` runs the same in another source tree (its own ``.venv``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(bursts: int, size: int) -> list[float]:
    # Imported here, in the process that measures: --code runs each tree's own copy of this file.
    from hallkit.broker.hub import Hub
    from hallkit.broker.testing import Mosquitto
    from hallkit.contracts.hall import CommandRequest, Topics

    from hallkit.config import parse_config
    from hallkit.queue.models import TakeTicket
    from hallkit.testing import HALL_WITH_DEVICES

    # Logged as in production (formatted, written, flushed), not shown.
    logging.basicConfig(level=logging.INFO, handlers=[logging.FileHandler(os.devnull)])
    services = ("social", "pension", "permit")
    topics = Topics("test-hall")
    per_take = []
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "mosquitto").start()
        hub = Hub(parse_config(HALL_WITH_DEVICES), broker.address, Path(tmp) / "data")
        hub.start()
        try:
            for _ in range(bursts):
                burst = [(topics.command("kiosk-1"),
                          CommandRequest(device="kiosk-1", reply_to=topics.reply("kiosk-1"),
                                         command=TakeTicket(service_id=services[i % 3])).model_dump_json().encode())
                         for i in range(size)]
                # A tree from before the hub had its own connection has no cork: paho wrote from its thread.
                corked = getattr(hub.client, "corked", contextlib.nullcontext)
                cpu = time.thread_time()
                with corked():
                    hub.handle_batch(burst)
                per_take.append((time.thread_time() - cpu) / size * 1e6)
                time.sleep(0.05)  # let the acknowledgements come back before the next burst
        finally:
            hub.stop()
            broker.stop()
    return per_take


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bursts", type=int, default=40)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--code", type=Path, action="append", default=[])
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # this tree only, no others
    args = parser.parse_args()
    if args.one:
        per_take = sorted(measure(args.bursts, args.size))
        one, five, _ = os.getloadavg()
        print(f"{ROOT}: {statistics.median(per_take):.0f} us median CPU per take (min {per_take[0]:.0f}, p90 "
              f"{per_take[int(len(per_take) * 0.9)]:.0f}; {args.bursts} bursts of {args.size}; load {one:.2f}/{five:.2f})")
        return
    for code in [ROOT, *args.code]:
        own = code / ".venv" / "bin" / "python"
        subprocess.run([str(own if own.exists() else sys.executable), str(code / "bench" / "hub_burst.py"), "--one",
                        "--bursts", str(args.bursts), "--size", str(args.size)], check=True)


if __name__ == "__main__":
    main()
