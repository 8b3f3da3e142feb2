"""Pad commands: ``hall pad listen``, ``hall pad bridge`` and ``hall sim pad``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hallkit.broker.login import add_broker_options, add_hall_option, address_from_args
from hallkit.devices.sim_cli import pad_commands, sim_commands

from hallkit.commandline import CommandFailed, add_json_flag
from hallkit.i18n import Message, bilingual

if TYPE_CHECKING:
    from hallkit.broker.pad_script import Behaviour
    from hallkit.devices.evaluator.keypad import KeypadPad
    from hallkit.devices.evaluator.serial_pad import SerialPad

PAD_URL_HELP = ("serial:///dev/ttyUSB0?address=1&baud=9600 (button pad, docs/pad-protocol.md) or "
                "keypad:///dev/input/event5?display=/dev/tty2 (USB keypad)")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = pad_commands(commands)

    listen = actions.add_parser("listen", help="show each key press and frame a pad sends, in words (for installers)")
    listen.add_argument("--pad", required=True, help=PAD_URL_HELP)
    listen.add_argument("--passive", action="store_true",
                        help="serial only: do not poll, just decode the line (a bus another host polls)")
    listen.add_argument("--seconds", type=float, default=0, help="stop after this long (0: until Ctrl-C)")
    add_json_flag(listen)
    listen.set_defaults(handler=listen_to_pad)

    bridge = actions.add_parser("bridge", help="run the bridge of one pad: keys to counter commands, ratings to "
                                               "the hub, screen from the hub, device status with a Last Will")
    bridge.add_argument("--pad", required=True, help=PAD_URL_HELP)
    add_pad_identity(bridge)
    bridge.set_defaults(handler=run_bridge)

    sim = sim_commands(commands).add_parser(
        "pad", help="a simulated rating pad at a window, with a scripted staff member and residents")
    sim.add_argument("--kind", choices=["serial", "keypad", "network"], default="network",
                     help="serial: a pty with the pad protocol; keypad: a FIFO of input events; network: a tablet")
    sim.add_argument("--script", default="5,4,1:态度不好+效率低,walk",
                     help="what each resident does, repeated: 5 … 1 (with :reason+reason) or walk")
    sim.add_argument("--count", type=int, default=0, help="serve this many residents, then stop (0: until Ctrl-C)")
    sim.add_argument("--service-seconds", type=float, default=2.0, help="how long each service takes")
    sim.add_argument("--hardware-only", action="store_true",
                     help="serial or keypad: only the simulated device, for `hall pad listen` or `hall pad bridge`")
    sim.add_argument("--folder", type=Path, help="where the pty link or FIFO goes (default: a new temporary folder)")
    add_pad_identity(sim, window_required=True)
    sim.set_defaults(handler=run_sim_pad)


def add_pad_identity(parser: argparse.ArgumentParser, window_required: bool = True) -> None:
    parser.add_argument("--window", type=int, required=window_required, help="the window the pad belongs to")
    parser.add_argument("--device", help="the pad's device id in the hall configuration (default: pad-<window>)")
    add_broker_options(parser, login="pad-N")
    add_hall_option(parser)
    parser.add_argument("--config", type=Path,
                        help="hall configuration, for the bad-rating reasons (default: the built-in list)")


@contextmanager
def _until_stopped(seconds: float = 0) -> Iterator[threading.Event]:
    """An event set by Ctrl-C, SIGTERM or after ``seconds``; the previous signal handlers come back after."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    timer = threading.Timer(seconds, stop.set) if seconds else None
    if timer is not None:
        timer.start()
    try:
        yield stop
    finally:
        if timer is not None:
            timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---- listen -------------------------------------------------------------------------------------------


def listen_to_pad(args: argparse.Namespace) -> int:
    from hallkit.devices.evaluator.keypad import KeypadPad
    from hallkit.devices.evaluator.pad import PadUnplugged, PadUrlError, open_pad
    from hallkit.devices.evaluator.serial_pad import SerialPad

    try:
        pad = open_pad(args.pad)
        pad.open()
    except (PadUrlError, ValueError) as exc:
        raise CommandFailed(str(exc)) from None
    except PadUnplugged as exc:
        raise CommandFailed(bilingual("pad.listen.lost", detail=str(exc))) from None
    print(bilingual("pad.listen.start", url=pad.url), flush=True)
    try:
        with _until_stopped(args.seconds) as stop:
            say = _json_line if args.json else _words
            if isinstance(pad, SerialPad):
                _listen_serial(pad, args.passive, stop, say)
            elif isinstance(pad, KeypadPad):
                _listen_keypad(pad, stop, say)
    except PadUnplugged as exc:
        raise CommandFailed(bilingual("pad.listen.lost", detail=str(exc))) from None
    finally:
        pad.close()
    return 0


def _words(message: Message) -> None:
    print(message.bilingual(), flush=True)


def _json_line(message: Message) -> None:
    """One JSON object a line (key, params, both texts), for scripts that watch a pad."""
    print(json.dumps({"key": message.key, "params": message.params, "zh": message.render("zh"),
                      "en": message.render("en")}, ensure_ascii=False), flush=True)


def _listen_serial(pad: SerialPad, passive: bool, stop: threading.Event, say: Callable[[Message], None]) -> None:
    from hallkit.devices.evaluator.codec import PadCommand, PadFrame, describe

    def said(frame: PadFrame) -> None:
        if frame.command not in (PadCommand.NOTHING, PadCommand.POLL):
            say(describe(frame))

    pad.listeners.append(said)
    garbage = 0
    while not stop.is_set():
        if passive:
            for frame in pad.decoder.feed(pad.receive()):
                said(frame)
            stop.wait(0.02)
        else:
            pad.read(0.1)  # polls, and acknowledges what the pad sends so it does not repeat it
        if pad.decoder.discarded > garbage:
            say(Message(key="pad.listen.garbage", params={"bytes": pad.decoder.discarded - garbage}))
            garbage = pad.decoder.discarded


def _listen_keypad(pad: KeypadPad, stop: threading.Event, say: Callable[[Message], None]) -> None:
    import select

    from hallkit.devices.evaluator.keypad import INPUT_EVENT, decode_events, describe_event
    from hallkit.devices.evaluator.pad import PadUnplugged

    assert pad.fd is not None
    buffer = bytearray()
    while not stop.is_set():
        ready, _, _ = select.select([pad.fd], [], [], 0.2)
        if not ready:
            continue
        data = os.read(pad.fd, INPUT_EVENT.size * 64)
        if not data:
            raise PadUnplugged("end of file")
        buffer += data
        for event in decode_events(buffer):
            described = describe_event(event)
            if described is not None:
                say(described)


# ---- bridge and simulator ---------------------------------------------------------------------------------


def pad_connection(args: argparse.Namespace):  # noqa: ANN202 - (BrokerAddress, hall id), imported lazily
    from hallkit.broker.cli import hall_id_of

    address = address_from_args(args)
    return address, hall_id_of(args, address)


def _reasons(args: argparse.Namespace) -> list[str]:
    from hallkit.commands import load_or_fail
    from hallkit.config import RatingRules

    if args.config is None:
        return RatingRules().bad_reason_tags
    return load_or_fail(args.config).rating.bad_reason_tags


def run_bridge(args: argparse.Namespace) -> int:
    from hallkit.broker.pad_bridge import PadBridge
    from hallkit.devices.evaluator.pad import PadUrlError, open_pad

    try:
        pad = open_pad(args.pad)
    except (PadUrlError, ValueError) as exc:
        raise CommandFailed(str(exc)) from None
    address, hall_id = pad_connection(args)
    bridge = PadBridge(pad, address, hall_id, args.device or f"pad-{args.window}", args.window)
    with _until_stopped() as stop:
        bridge.start()
        stop.wait()
        bridge.stop()
    return 0


def run_sim_pad(args: argparse.Namespace) -> int:
    from hallkit.broker.pad_script import parse_script

    try:
        behaviours = parse_script(args.script)
    except ValueError as exc:
        raise CommandFailed(str(exc)) from None
    device = args.device or f"pad-{args.window}"
    with _until_stopped() as stop:
        if args.hardware_only:
            _run_hardware(args, device, stop)
        else:
            _run_pad(args, device, behaviours, stop)
    return 0


def _run_hardware(args: argparse.Namespace, device: str, stop: threading.Event) -> None:
    from hallkit.devices.evaluator.simulator import KeypadSimulator, SerialPadSimulator

    if args.kind == "network":
        raise CommandFailed("--hardware-only is for serial and keypad pads; a network pad is its own bridge")
    folder = args.folder or Path(".")
    hardware = (SerialPadSimulator(folder / f"{device}.tty").start() if args.kind == "serial"
                else KeypadSimulator(folder / f"{device}.events", folder / f"{device}.screen", _reasons(args)).start())
    print(bilingual("pad.listen.sim_ready", kind=args.kind, url=hardware.url), flush=True)
    stop.wait()
    hardware.stop()


def _run_pad(args: argparse.Namespace, device: str, behaviours: list[Behaviour], stop: threading.Event) -> None:
    from hallkit.broker.pad_script import PadScript, SimulatedPad

    address, hall_id = pad_connection(args)
    pad = SimulatedPad(args.kind, address, hall_id, device, args.window, _reasons(args), folder=args.folder)
    pad.start()
    print(bilingual("pad.listen.sim_ready", kind=args.kind, url=pad.pad.url), flush=True)
    script = PadScript(pad.hardware, behaviours, service_seconds=lambda: args.service_seconds)
    served = 0
    try:
        while not stop.is_set() and (not args.count or served < args.count):
            result = script.serve_one(stop)
            if result is None:
                if not stop.is_set():
                    print(bilingual("pad.listen.sim_idle"), flush=True)
                    stop.wait(2)
                continue
            served += 1
            level = result.behaviour.level
            if not result.prompted:
                print(bilingual("pad.listen.sim_no_prompt", number=result.number), flush=True)
            elif level is None:
                print(bilingual("pad.listen.sim_walked", number=result.number), flush=True)
            else:
                print(bilingual("pad.listen.sim_rated", number=result.number, level=int(level),
                                tags="、".join(result.behaviour.tags)), flush=True)
    finally:
        pad.stop()
