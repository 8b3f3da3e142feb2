"""``hall demo``: the whole sample hall on this machine, with simulated traffic."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from hallkit.commandline import CommandFailed

if TYPE_CHECKING:
    from hallkit.demo.demo import Demo


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser("demo", help="run a whole sample hall on this machine, with simulated traffic")
    demo.add_argument("--broker", help="use this broker instead of starting an embedded one")
    demo.add_argument("--config", type=Path, help="hall configuration (default: the sample township hall)")
    demo.add_argument("--logins", type=Path, metavar="FILE",
                      help="with --broker: its credentials.toml (from hall broker config), one login per device")
    demo.add_argument("--data", type=Path, default=Path("var/demo"), help="folder for the demo's state")
    demo.add_argument("--headless", action="store_true",
                      help="no windows (servers and CI): the same hall, its tickets printed on the virtual printer")
    demo.add_argument("--keep", action="store_true", help="go on with the previous run's hall state (default: a fresh one)")
    demo.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: run until Ctrl-C)")
    demo.add_argument("--speed", type=float, default=20.0,
                      help="how many times faster than real life residents arrive and are served")
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from hallkit.demo.demo import Demo, DemoOptions

    # The live summary is what a newcomer reads; per-event logs of the hub and the simulated
    # pads would bury it (they stay available with hall hub / hall pad bridge).
    for name in ("hallkit.hub", "hallkit.pad", "hallkit.ratings"):
        logging.getLogger(name).setLevel(logging.WARNING)
    options = DemoOptions(broker=args.broker, logins=args.logins, config=args.config, data=args.data,
                          headless=args.headless, keep=args.keep,
                          duration=args.duration, speed=args.speed)
    try:
        demo = Demo(options)
    except OSError as exc:
        raise CommandFailed(str(exc)) from None
    # Ctrl-C is how a demo ends. It only asks: a KeyboardInterrupt raised mid-start (in a lock, a
    # join, a half-opened connection) left parts that then never stopped, and the demo hung.
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    try:
        demo.start()
        demo.run(stop)
    except OSError as exc:
        raise CommandFailed(str(exc)) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        stop_quietly(demo)
    return 0


def stop_quietly(demo: Demo) -> None:
    """Stop everything, once, whatever Ctrl-C the impatient press meanwhile; the embedded broker's
    cancelled tasks and the clients' unanswered messages at shutdown are not errors worth a traceback."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("amqtt", "hallkit.broker", "hallkit.demo", "hallkit.pad", "paho"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        demo.stop()
    finally:
        signal.signal(signal.SIGINT, previous)
    print("hallkit demo stopped")
