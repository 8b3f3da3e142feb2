"""Commands of the hub: run it, look at it, and work a counter without hardware."""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from hallkit.broker.login import add_broker_options, add_hall_option, address_from_args

from hallkit.commandline import (
    CommandFailed,
    add_json_flag,
    emit,
    failure,
    listening_scope,
    say_listening,
    writable_folder,
)
from hallkit.i18n import LANGS, bilingual, text

if TYPE_CHECKING:
    from hallkit.broker.client import HallClient
    from hallkit.broker.embedded import EmbeddedBroker
    from hallkit.broker.hub import Hub
    from hallkit.contracts.mqtt import BrokerAddress

    from hallkit.config import HallConfig
    from hallkit.store.sqlite import Synchronous

T = TypeVar("T")

WINDOW_ACTIONS = {
    "call": "call the next resident to this window (叫号)",
    "recall": "call the current ticket again (重呼)",
    "skip": "the called resident did not come (过号)",
    "done": "the current ticket is completed (办结); the pad asks for a rating",
    "pause": "pause the window (暂停)",
    "resume": "resume a paused window",
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hub = commands.add_parser("hub", help="run the hall hub (queue, MQTT, durable state)")
    hub.add_argument("--config", required=True, type=Path, help="hall configuration file")
    add_broker_options(hub, login="hub", default=None, logins=True,
                       extra="; without it the hub starts an embedded broker on 127.0.0.1:1883, with logins in "
                             "DATA/broker/credentials.toml")
    hub.add_argument("--data", type=Path, help="folder for the hall's state (default: ./var/<hall id>)")
    hub.add_argument("--sync", choices=["full", "normal"], default="full",
                     help="SQLite synchronous mode: full survives power cuts, normal only process kills")
    hub.set_defaults(handler=run_hub)

    status = commands.add_parser("status", help="show queue lengths, waits, windows and devices of a running hall")
    _add_connection(status)
    add_json_flag(status)
    status.set_defaults(handler=show_status)

    take = commands.add_parser("take", help="take a ticket for a service (as at the counter or for an agent)")
    take.add_argument("--service", required=True, help="service id (see the hall configuration)")
    take.add_argument("--priority", choices=["normal", "priority", "appointment"], default="normal")
    take.add_argument("--channel", choices=["counter", "agent", "appointment", "kiosk"], default="counter")
    _add_connection(take)
    add_json_flag(take)
    take.set_defaults(handler=counter_command, action="take")

    for action, help_text in WINDOW_ACTIONS.items():
        cmd = commands.add_parser(action, help=help_text)
        cmd.add_argument("--window", required=True, type=int)
        _add_connection(cmd)
        add_json_flag(cmd)
        cmd.set_defaults(handler=counter_command, action=action)

    transfer = commands.add_parser("transfer", help="send the current ticket to another service or window (转办)")
    transfer.add_argument("--window", required=True, type=int)
    transfer.add_argument("--to-service")
    transfer.add_argument("--to-window", type=int)
    _add_connection(transfer)
    add_json_flag(transfer)
    transfer.set_defaults(handler=counter_command, action="transfer")

    staff = commands.add_parser("staff", help="hand a window to its other post (AB岗)")
    staff.add_argument("--window", required=True, type=int)
    staff.add_argument("--staff", required=True, help="staff id")
    _add_connection(staff)
    add_json_flag(staff)
    staff.set_defaults(handler=counter_command, action="staff")

    schema = commands.add_parser("schema", help="write the JSON Schemas of every MQTT payload")
    schema.add_argument("--out", type=Path, default=Path("schemas"), help="folder (default: ./schemas)")
    schema.set_defaults(handler=write_schemas)

    broker = commands.add_parser("broker", help="Mosquitto configuration for a hall")
    broker_cmds = broker.add_subparsers(metavar="ACTION", required=True)
    conf = broker_cmds.add_parser("config", help="write mosquitto.conf, per-device passwords and topic ACLs")
    conf.add_argument("--config", required=True, type=Path, help="hall configuration file")
    conf.add_argument("--out", required=True, type=Path, help="folder to write into")
    conf.add_argument("--port", type=int, default=1883)
    conf.add_argument("--bind", default="0.0.0.0", help="address to listen on (default 0.0.0.0: the devices reach it over the hall LAN)")
    add_rewrite_flags(conf)
    conf.set_defaults(handler=write_broker_config)


def add_rewrite_flags(parser: argparse.ArgumentParser) -> None:
    """--add and --force of a broker configuration writer: an existing one is never replaced silently."""
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--add", action="store_true",
                        help="the folder holds this broker's configuration: keep its logins and passwords, "
                             "give only new devices (halls) a login")
    choice.add_argument("--force", action="store_true",
                        help="replace the configuration in the folder: every login gets a new password")


def check_rewrite(args: argparse.Namespace) -> None:
    if (args.out / "mosquitto.conf").exists() and not (args.add or args.force):
        raise failure("errors.broker_config_exists", out=args.out)


def describe_written(written) -> str:  # noqa: ANN001 - LoginsWritten, imported lazily (`hall --help`)
    """What a broker configuration writer wrote, and which logins it kept or made."""
    lines = [f"wrote {path}" for path in written.paths]
    if written.kept:
        lines.append(bilingual("errors.logins_kept", count=len(written.kept), users=", ".join(written.kept)))
    lines.append(bilingual("errors.logins_added", count=len(written.added), users=", ".join(written.added) or "-"))
    return "\n".join(lines)


def broker_reach(bind: str, port: int) -> str:
    """Where a written broker configuration listens: a broker is for the other machines (devices,
    halls), so it is open to the network by default, and says so."""
    zh, en = (text("errors.broker_listens", lang, address=f"{bind}:{port}",
                   scope=listening_scope(bind, lang, widen="--bind 0.0.0.0")) for lang in LANGS)
    return f"{zh} / {en}"


def _add_connection(parser: argparse.ArgumentParser) -> None:
    add_broker_options(parser)
    add_hall_option(parser)
    parser.add_argument("--device", help="this terminal's device id (default: the login's name, else console)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the hub")


def device_of(args: argparse.Namespace, address) -> str:  # noqa: ANN001 - BrokerAddress, imported lazily
    """The terminal's device id: its login's name, since a login may publish only as itself."""
    if args.device and address.username and args.device != address.username:
        raise CommandFailed(bilingual("login.device_mismatch", device=args.device, login=address.username), 2)
    return str(args.device or address.username or "console")


def ask_hub(args: argparse.Namespace, ask: Callable[[HallClient], T]) -> T:
    """Connect as the terminal's device to the hall on ``args.broker`` and ask; failures in plain words."""
    from hallkit.broker.client import HallClient, HubError

    address = address_from_args(args)
    device = device_of(args, address)
    hall_id = hall_id_of(args, address)
    try:
        with HallClient(address, hall_id, device) as client:
            return ask(client)
    except HubError as exc:
        raise CommandFailed(str(exc), code=2) from None


def hall_id_of(args: argparse.Namespace, address) -> str:  # noqa: ANN001
    from hallkit.broker.client import HubError, discover_halls

    if args.hall:
        return str(args.hall)
    try:
        halls = discover_halls(address)
    except HubError as exc:
        raise CommandFailed(str(exc)) from None
    online = sorted(h for h, s in halls.items() if s.state == "online") or sorted(halls)
    if not online:
        raise CommandFailed(bilingual("hub.no_hall", broker=address.url))
    if len(online) > 1:
        raise CommandFailed(bilingual("hub.many_halls", halls=", ".join(online)))
    return online[0]


# ---- hub ----------------------------------------------------------------------------------------


def run_hub(args: argparse.Namespace) -> int:
    # The start builds objects that all stay (modules, models, the replayed day's tickets): the
    # cyclic collector is paused until they are frozen, and enabled again only then. Enabled right
    # after the replay, its first collection would scan the day's objects (60 ms for 51k tickets).
    gc.disable()
    try:
        hub, embedded = open_hub_and_broker(args)
        # What the start built lives as long as the process: moved out of the cyclic collector's
        # sight, so that its full collections, which the day's new tickets set off, do not scan
        # all of it again each time.
        gc.freeze()
    finally:
        gc.enable()
    # A request makes a few hundred short-lived objects (models, packets, rows), freed by their
    # reference counts, nearly none in cycles: a collection every 700 new objects, Python's
    # default, is a tenth of the hub's CPU per ticket; every 20,000 is a hundredth.
    gc.set_threshold(20_000, 20, 20)
    hub.start()
    wait_for_signal()
    hub.stop()
    if embedded:
        embedded.stop()
    return 0


def open_hub_and_broker(args: argparse.Namespace) -> tuple[Hub, EmbeddedBroker | None]:
    """The hub of ``hall hub``, its log replayed, and the embedded broker it started, if any."""
    # Only what the hub needs is imported (open_hub imports the hub): a restart is online sooner
    # (the embedded broker pulls in amqtt and asyncio, and only runs without --broker).
    from hallkit.contracts.mqtt import parse_broker_url

    from hallkit.commands import load_secured_or_fail
    from hallkit.store.prefetch import prefetch

    config = load_secured_or_fail(args.config)
    data = writable_folder(args.data or Path("var") / config.hall.id)
    # The hub's log (and its WAL, after a power cut) read into the page cache while the rest of
    # the hub is imported: the replay then reads it from memory (hallkit/store/prefetch.py).
    reading = prefetch([data / "hall.sqlite3", data / "hall.sqlite3-wal"])
    embedded = None
    if args.broker:
        address = address_from_args(args)
    else:
        from hallkit.broker.embedded import EmbeddedBroker, hall_logins
        from hallkit.broker.mosquitto import HUB_USER

        folder = data / "broker"
        logins, access = hall_logins(config, folder, DEFAULT_EMBEDDED_PORT)
        embedded = EmbeddedBroker(access, port=DEFAULT_EMBEDDED_PORT)
        try:
            embedded.start()
        except OSError as exc:
            raise CommandFailed(str(exc)) from None
        address = parse_broker_url(embedded.url).as_login(HUB_USER, logins.credentials[HUB_USER])
        print(f"embedded broker {embedded.url}: one login per device in {folder / 'credentials.toml'}, e.g. "
              f"hall status --broker mqtt://console@127.0.0.1:{embedded.port} --logins {folder / 'credentials.toml'}")
        print(say_listening(embedded.url, embedded.host, widen="errors.embedded_widen"))
    try:
        hub = open_hub(config, address, data, args.sync, reading, can_lock_out=embedded is None)
    except CommandFailed:
        if embedded:
            embedded.stop()
        raise
    if hub.disk_is_full:
        print(bilingual("errors.disk_full_start", folder=data), file=sys.stderr)
    for tightened in hub.tightened:
        print(tightened.bilingual(), file=sys.stderr)
    return hub, embedded


DEFAULT_EMBEDDED_PORT = 1883


def open_hub(config: HallConfig, address: BrokerAddress, data: Path, sync: Synchronous,
             reading: threading.Thread, can_lock_out: bool) -> Hub:
    """The hub on ``data``, or a failure naming the process that holds the folder, or the full disk.

    ``reading`` reads the log into the page cache: waited for once the hub's modules are loaded.
    ``can_lock_out``: the broker is Mosquitto, whose dynamic-security plugin (in the configuration
    ``hall broker config`` writes) can keep a flooding device out; the embedded one cannot.
    """
    from hallkit.broker.flood import LOCKOUT_SECONDS
    from hallkit.broker.hub import Hub
    from hallkit.broker.parts import hub_parts

    from hallkit.store.lock import FolderInUse
    from hallkit.store.sqlite import disk_full

    reading.join()
    try:
        return Hub(config, address, data, sync, parts=hub_parts(config),
                   lockout=LOCKOUT_SECONDS if can_lock_out else None)
    except FolderInUse as exc:
        raise failure("errors.folder_in_use", folder=exc.folder, pid=exc.pid or "?") from None
    except (OSError, sqlite3.Error) as exc:
        if not disk_full(exc, data):
            raise
        raise failure("errors.disk_full", folder=data) from None


def wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


# ---- status -------------------------------------------------------------------------------------


def show_status(args: argparse.Namespace) -> int:
    from hallkit.broker.client import HubError, read_hall
    from hallkit.broker.status import HallStatus, render_status

    address = address_from_args(args)
    hall_id = hall_id_of(args, address)
    try:
        view = read_hall(address, hall_id, timeout=args.timeout)
    except HubError as exc:
        raise CommandFailed(str(exc)) from None
    status = HallStatus(hall=hall_id, hub=view.hub, queue=view.queue, devices=list(view.devices.values()))
    emit(args, status, render_status(status))
    return 0 if view.hub is not None and view.hub.state == "online" else 1


# ---- counter commands ---------------------------------------------------------------------------


def counter_command(args: argparse.Namespace) -> int:
    from hallkit.broker.status import describe_reply

    from hallkit.queue import models

    commands: dict[str, Callable[[], models.Command]] = {
        "take": lambda: models.TakeTicket(service_id=args.service, priority=args.priority, channel=args.channel),
        "call": lambda: models.CallNext(window=args.window),
        "recall": lambda: models.Recall(window=args.window),
        "skip": lambda: models.Skip(window=args.window),
        "done": lambda: models.Complete(window=args.window),
        "pause": lambda: models.Pause(window=args.window),
        "resume": lambda: models.Resume(window=args.window),
        "transfer": lambda: models.Transfer(window=args.window, to_service=args.to_service,
                                            to_window=args.to_window),
        "staff": lambda: models.SwitchStaff(window=args.window, staff_id=args.staff),
    }
    try:
        command = commands[args.action]()
    except ValueError as exc:
        raise CommandFailed(str(exc)) from None
    reply = ask_hub(args, lambda client: client.request(command, timeout=args.timeout))
    emit(args, reply, describe_reply(args.action, reply))
    return 0 if reply.ok else 1


# ---- schema and broker config -------------------------------------------------------------------


def write_schemas(args: argparse.Namespace) -> int:
    from hallkit.contracts.hall import PAYLOADS

    args.out.mkdir(parents=True, exist_ok=True)
    for name, model in PAYLOADS.items():
        path = args.out / f"{name}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), ensure_ascii=False, indent=2) + "\n", "utf-8")
    print(f"wrote {len(PAYLOADS)} JSON Schemas to {args.out}/")
    return 0


def write_broker_config(args: argparse.Namespace) -> int:
    from hallkit.broker.mosquitto import unreachable_folders, write_mosquitto_config

    from hallkit.commands import load_or_fail

    config = load_or_fail(args.config)
    check_rewrite(args)
    written = write_mosquitto_config(config, args.out, port=args.port, bind=args.bind, add=args.add)
    print(describe_written(written))
    print(broker_reach(args.bind, args.port))
    for folder in unreachable_folders(args.out):
        print(bilingual("install.folder_closed", folder=folder), file=sys.stderr)
    print(bilingual("broker.config_next", out=args.out.resolve()))
    return 0
