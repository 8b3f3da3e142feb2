"""Commands for installers: ``hall idcard read``, ``hall devices scan`` and ``hall sim idcard``."""

from __future__ import annotations

import argparse
import glob
import secrets
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from hallkit.devices.idcard.codec import Cmd, Command
from hallkit.devices.idcard.problems import IdCardError
from hallkit.devices.idcard.reader import SPEEDS, ReaderSettings, SerialIdCardReader
from hallkit.devices.idcard.records import CardRules
from hallkit.devices.idcard.simulator import Fault, IdCardSimulator
from hallkit.devices.sim_cli import device_commands, sim_commands
from pydantic import BaseModel

from hallkit.commandline import CommandFailed, add_json_flag, emit
from hallkit.commands import load_or_fail
from hallkit.config import QueueRules
from hallkit.i18n import bilingual

PROBE_PATTERNS = ("/dev/ttyUSB*", "/dev/ttyACM*")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    idcard = commands.add_parser("idcard", help="resident ID card reader (身份证阅读器)")
    actions = idcard.add_subparsers(metavar="ACTION", required=True)
    read = actions.add_parser("read", help="wait for a card and print the masked resident record")
    read.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0, or a pyserial URL")
    read.add_argument("--baud", type=int, default=115200, choices=SPEEDS)
    read.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for a card (default 15)")
    read.add_argument("--config", type=Path, help="hall configuration: its hash key, elderly age and time zone")
    read.add_argument("--accept-permit", action="store_true",
                      help="read HK/Macao/Taiwan residence permits (layout reported, not confirmed)")
    add_json_flag(read)
    read.set_defaults(handler=read_command)

    scan = device_commands(commands).add_parser(
        "scan", help="find ID card readers on /dev/ttyUSB* and /dev/ttyACM* by asking each for its status")
    scan.add_argument("--port", action="append", default=[], help="also probe this port (repeatable)")
    scan.add_argument("--all-speeds", action="store_true", help="try every speed, not only 115200")
    add_json_flag(scan)
    scan.set_defaults(handler=scan_command)

    sim = sim_commands(commands).add_parser(
        "idcard", help="a simulated ID card reader on a pseudo-terminal; type 'help' for its orders")
    sim.add_argument("--card", help="place this test card at once")
    sim.add_argument("--fault", action="append", default=[], metavar="FAULT[:TIMES]",
                     help=f"inject a fault at once (repeatable): {', '.join(f.value for f in Fault)}")
    sim.add_argument("--link", type=Path, help="also reach the port by this path (a symlink)")
    sim.set_defaults(handler=sim_command)


class ReadFailure(BaseModel):
    """``hall idcard read --json`` when no record came out."""

    problem: str
    message: str


def read_command(args: argparse.Namespace) -> int:
    if args.config:
        config = load_or_fail(args.config)
        key, elderly_age, zone = config.privacy.id_hash_key, config.queue.elderly_age, config.hall.zone
    else:
        print(bilingual("idcard.one_off_key"), file=sys.stderr)
        key, elderly_age, zone = secrets.token_hex(16), QueueRules().elderly_age, None
    settings = ReaderSettings(port=args.port, baud=args.baud, rules=CardRules(accept_permit=args.accept_permit))
    try:
        with SerialIdCardReader(settings, key, elderly_age,
                                today=lambda: datetime.now(zone).date()) as reader:
            read = reader.read_card(args.timeout)
    except IdCardError as exc:
        if args.json:
            emit(args, ReadFailure(problem=exc.problem.value, message=exc.message.bilingual()), "")
            return 1
        raise CommandFailed(exc.message.bilingual()) from None
    record = read.record
    lines = [bilingual("idcard.card_read", name=record.name_masked, id=record.id_masked, age=record.age),
             f"card={record.card.value} gender={record.gender.value} hash={record.id_hash}"]
    if record.elderly:
        lines.append(bilingual("idcard.elderly", age=elderly_age))
    emit(args, record, "\n".join(lines))
    return 0


class ReaderFound(BaseModel):
    """A port where something answered in the reader's protocol."""

    port: str
    baud: int
    sam_ok: bool


def probe(port: str, speeds: tuple[int, ...]) -> ReaderFound | None:
    """Ask ``port`` for the security module's status at each speed; any framed reply is a reader."""
    for baud in speeds:
        try:
            with SerialIdCardReader(ReaderSettings(port=port, baud=baud, reply_timeout=0.3, retries=0),
                                    hash_key="", elderly_age=QueueRules().elderly_age) as reader:
                reply = reader.transact(Command.of(Cmd.SAM_STATUS))
        except IdCardError:
            continue
        return ReaderFound(port=port, baud=baud, sam_ok=reply.sw3 == 0x90)
    return None


def scan_command(args: argparse.Namespace) -> int:
    ports = sorted({path for pattern in PROBE_PATTERNS for path in glob.glob(pattern)} | set(args.port))
    if not ports:
        raise CommandFailed(bilingual("idcard.nothing_to_probe"))
    speeds = SPEEDS if args.all_speeds else SPEEDS[:1]
    found = [reader for reader in (probe(port, speeds) for port in ports) if reader is not None]
    if not found:
        if args.json:
            emit(args, [], "")
            return 1
        raise CommandFailed(bilingual("idcard.no_reader_found", ports=", ".join(ports)))
    emit(args, found, "\n".join(
        bilingual("idcard.reader_found", port=r.port, baud=r.baud)
        + ("" if r.sam_ok else " — " + bilingual("idcard.reader_fault", status="SAM")) for r in found))
    return 0


def _fault_order(simulator: IdCardSimulator, spec: str) -> str:
    """Apply 'NAME[:TIMES]' (or 'NAME TIMES'); return what to tell the operator."""
    name, _, times = spec.replace(" ", ":").partition(":")
    try:
        fault = Fault(name)
    except ValueError:
        return bilingual("idcard.sim_unknown_fault", fault=name, faults=", ".join(f.value for f in Fault))
    count = int(times) if times.isdigit() else 1
    simulator.inject(fault, count)
    return bilingual("idcard.sim_fault_added", fault=fault.value, times=count)


def _order(simulator: IdCardSimulator, line: str) -> str | None:
    """Carry out one typed order; None means quit."""
    word, _, rest = line.strip().partition(" ")
    rest = rest.strip()
    if word in ("quit", "exit"):
        return None
    if word == "place":
        if rest not in simulator.card_names:
            return bilingual("idcard.sim_unknown_card", card=rest, cards=", ".join(simulator.card_names))
        simulator.place(rest)
        return bilingual("idcard.sim_placed", card=rest)
    if word == "remove":
        simulator.remove()
        return bilingual("idcard.sim_removed")
    if word == "fault":
        return _fault_order(simulator, rest)
    if word == "clear":
        simulator.clear_faults()
        return bilingual("idcard.sim_cleared")
    if word == "":
        return ""
    return bilingual("idcard.sim_help", cards=", ".join(simulator.card_names),
                     faults=", ".join(f.value for f in Fault))


def _stop_on_term(*_: object) -> NoReturn:
    raise KeyboardInterrupt


def sim_command(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _stop_on_term)
    with IdCardSimulator() as simulator:
        if args.card and args.card not in simulator.card_names:
            raise CommandFailed(bilingual("idcard.sim_unknown_card", card=args.card,
                                          cards=", ".join(simulator.card_names)))
        if args.card:
            simulator.place(args.card)
        for spec in args.fault:
            print(_fault_order(simulator, spec), flush=True)
        if args.link:
            args.link.unlink(missing_ok=True)
            args.link.symlink_to(simulator.port)
        try:
            print(bilingual("idcard.sim_ready", port=args.link or simulator.port), flush=True)
            for line in sys.stdin:
                answer = _order(simulator, line)
                if answer is None:
                    return 0
                if answer:
                    print(answer, flush=True)
            threading.Event().wait()  # stdin closed (run in the background): serve until stopped
        except KeyboardInterrupt:
            return 0
        finally:
            if args.link:
                args.link.unlink(missing_ok=True)
    return 0
