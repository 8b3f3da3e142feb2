"""``hall kiosk`` and ``hall display``: the resident kiosk and the hall display on this machine.

Kivy is imported inside the handlers: ``hall --help`` loads every part and must stay fast,
and Kivy's configuration has to be set (:mod:`kiosk.boot`) before it opens a window.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from hallkit.broker.login import add_broker_options, address_from_args
from hallkit.broker.pad_cli import add_pad_identity
from hallkit.devices.sim_cli import pad_commands

from hallkit.commandline import CommandFailed
from hallkit.config import DeviceKind, HallConfig
from hallkit.i18n import bilingual

if TYPE_CHECKING:
    from hallkit.kiosk.boot import Placement, WindowMode



def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kiosk = commands.add_parser("kiosk", help="the self-service kiosk (自助取号机): take tickets, guides, staff board")
    kiosk.add_argument("--config", type=Path, help="hall configuration")
    add_broker_options(kiosk, login="kiosk-1", logins=False)
    kiosk.add_argument("--device", help="this kiosk's device id (default: the first kiosk in the configuration)")
    kiosk.add_argument("--printer", metavar="URL", help="ticket printer URL instead of the configured one")
    kiosk.add_argument("--idcard", metavar="URL", help="ID card reader URL (serial:///dev/ttyUSB0) instead of the configured one")
    kiosk.add_argument("--logins", type=Path, metavar="FILE",
                       help="credentials.toml with the logins of this kiosk (unless --password-file gives its own), "
                            "its printer and its card reader (each publishes its status under its own login)")
    kiosk.add_argument("--windowed", action="store_true", help="an ordinary window with a cursor (for a desk, not the hall)")
    kiosk.add_argument("--hash-pin", metavar="PIN", help="print the staff_pin_hash line for this PIN and exit")
    add_placement(kiosk)
    kiosk.set_defaults(handler=run_kiosk)

    display = commands.add_parser("display", help="the hall display (叫号大屏) with Mandarin voice calling")
    display.add_argument("--config", type=Path, required=True, help="hall configuration")
    add_broker_options(display, login="display-1")
    display.add_argument("--device", help="the display's device id (default: the login's name, else display)")
    display.add_argument("--windowed", action="store_true", help="an ordinary window with a cursor")
    display.add_argument("--no-voice", action="store_true", help="show calls without speaking them")
    add_placement(display)
    display.set_defaults(handler=run_display)

    touch = pad_commands(commands).add_parser("touch", help="a touch tablet at the window as its rating pad (Kivy): window, staff, "
                                             "ticket, five rating buttons, reasons, thanks; staff keys if asked")
    add_pad_identity(touch)
    touch.add_argument("--size", default="1280x800", help="screen size WIDTHxHEIGHT (1280x800, 800x480 …)")
    touch.add_argument("--window-mode", choices=["borderless", "fullscreen", "windowed"], default="borderless")
    touch.add_argument("--staff-keys", action="store_true",
                       help="show the staff's keys (呼叫, 重呼, 过号, 暂停, 办结) on the tablet")
    touch.set_defaults(handler=run_touch)


def add_placement(parser: argparse.ArgumentParser) -> None:
    """Where the screen's window goes: a kiosk and a display may share one machine with two monitors."""
    parser.add_argument("--fullscreen", action="store_true", help="real full screen instead of a borderless window")
    parser.add_argument("--screen", type=int, metavar="N", help="on monitor N (0 = the first), covering it")
    parser.add_argument("--position", metavar="X,Y", help="top-left corner on the desktop (instead of --screen)")
    parser.add_argument("--size", metavar="WxH", help="window size instead of the configured one (1920x1080 …)")


def _pair(value: str, option: str, separator: str) -> tuple[int, int]:
    try:
        first, second = (int(n) for n in value.lower().split(separator))
    except ValueError:
        raise CommandFailed(bilingual("kiosk.cli.bad_pair", option=option, value=value,
                                      example=f"1920{separator}1080"), 2) from None
    return first, second


def placement(args: argparse.Namespace, size: tuple[int, int], mode: WindowMode, *, on_top: bool) -> Placement:
    """The window's placement from the command line over the configuration's size and mode."""
    from hallkit.kiosk.boot import Placement

    if args.windowed and args.fullscreen:
        raise CommandFailed(bilingual("kiosk.cli.windowed_fullscreen"), 2)
    if args.screen is not None and args.position is not None:
        raise CommandFailed(bilingual("kiosk.cli.screen_or_position"), 2)
    if args.screen is not None and args.screen < 0:
        raise CommandFailed(bilingual("kiosk.cli.bad_screen", screen=args.screen), 2)
    chosen: WindowMode = "windowed" if args.windowed else "fullscreen" if args.fullscreen else mode
    return Placement(mode=chosen, size=_pair(args.size, "--size", "x") if args.size else size, screen=args.screen,
                     position=_pair(args.position, "--position", ",") if args.position else None,
                     on_top=on_top and not args.windowed)


def run_touch(args: argparse.Namespace) -> int:
    from hallkit.broker.pad_cli import pad_connection
    from hallkit.kiosk import boot

    from hallkit.commands import load_or_fail

    try:
        width, height = (int(n) for n in args.size.lower().split("x"))
    except ValueError:
        raise CommandFailed(f"--size {args.size!r}: give WIDTHxHEIGHT, e.g. 1280x800", 2) from None
    address, hall_id = pad_connection(args)
    config = load_or_fail(args.config) if args.config is not None else None
    boot.prepare((width, height), args.window_mode, kiosk=True)
    from hallkit.kiosk.touch_pad import TouchPadApp

    TouchPadApp(address, hall_id, args.device or f"pad-{args.window}", args.window, config,
                staff_keys=args.staff_keys).run()
    return 0


def _kiosk_id(config: HallConfig, asked: str | None) -> str:
    kiosks = [d.id for d in config.devices if d.kind is DeviceKind.KIOSK]
    if asked is None:
        if not kiosks:
            raise CommandFailed(bilingual("kiosk.cli.not_kiosk", device="-"))
        return kiosks[0]
    if asked not in kiosks:
        raise CommandFailed(bilingual("kiosk.cli.not_kiosk", device=asked))
    return asked


def run_kiosk(args: argparse.Namespace) -> int:
    if args.hash_pin:
        print(bilingual("kiosk.cli.pin_hash"))
        print(f'staff_pin_hash = "{hashlib.sha256(args.hash_pin.encode()).hexdigest()}"')
        return 0
    if args.config is None:
        raise CommandFailed(bilingual("kiosk.cli.no_config"))
    from hallkit.commands import load_or_fail

    config = load_or_fail(args.config)
    device = _kiosk_id(config, args.device)
    address = address_from_args(args)
    from hallkit.kiosk import boot

    # On top: where the display shares the machine, it must not cover the kiosk.
    boot.prepare(placement(args, config.kiosk.size, config.kiosk.window_mode, on_top=True), kiosk=not args.windowed,
                 design_height=boot.KIOSK_DESIGN_HEIGHT)
    from hallkit.kiosk.app import KioskApp

    if not args.windowed:
        boot.lock_window()

    logins = None
    if args.logins is not None:
        from hallkit.broker.mosquitto import Logins

        try:
            logins = Logins.read(args.logins)
        except ValueError as exc:
            raise CommandFailed(str(exc)) from None
    KioskApp(config, args.config, address, device, printer_url=args.printer, idcard_url=args.idcard,
             logins=logins).run()
    return 0


def run_display(args: argparse.Namespace) -> int:
    from hallkit.commands import load_or_fail

    config = load_or_fail(args.config)
    address = address_from_args(args)
    settings = config.kiosk.display
    from hallkit.kiosk import boot

    boot.prepare(placement(args, settings.size, settings.window_mode, on_top=False), kiosk=not args.windowed)
    from hallkit.kiosk.display.app import DisplayApp
    from hallkit.kiosk.display.voice import Announcer, Voice, find_player

    announcer = None if args.no_voice else Announcer(
        settings.voice_template, Voice(settings.voice, settings.voice_repeat), find_player(settings.player))
    logging.getLogger("kivy").setLevel(logging.WARNING)
    DisplayApp(config, address, announcer, device_id=args.device or address.username or "display").run()
    return 0
