"""Scenarios the kiosk tests run in a child process (see harness.py); each taps like a resident.

A scenario is a generator over a :class:`~tests.kiosk.harness.Context`: it taps, then
yields the condition to wait for — a screen shown and laid out, a ticket printed, the card
reader polled — and asserts what the screen and the devices show. It never waits a number
of seconds: the kiosk's own timers run on ``ctx.timers`` (a fake clock the scenario moves),
and everything else is waited for by its effect. Measurements go into ``ctx.result``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from hallkit.broker.appointments import add_appointment
from hallkit.broker.client import HallClient
from hallkit.contracts.hall import AppointmentView
from hallkit.kiosk.screens.appointment_flow import check_in_command
from hallkit.kiosk.screens.base import KioskScreen
from hallkit.kiosk.screens.retry_flow import RETRY_SECONDS
from hallkit.kiosk.testing import Scenario, Step, find_text, layout_problems, settled, tap, texts

from hallkit.queue.models import CallNext, Pause, Recall, Resume, TakeTicket
from hallkit.testing import KIOSK_PIN
from tests.kiosk.harness import Context


def screen(ctx: Context, name: str) -> KioskScreen:
    return ctx.app.manager.get_screen(name)


def on(ctx: Context, name: str) -> Callable[[], bool]:
    def check() -> bool:
        return ctx.app.current == name
    check.__doc__ = f"screen {name}"
    return check


def laid_out(ctx: Context) -> Step:
    """Everything on the window in place and drawn with its current text (before a tap or a shot)."""
    return settled(ctx.app.root)


def arrive(ctx: Context, name: str) -> Scenario:
    """Wait for the screen, then for its new widgets to be laid out before a tap."""
    yield on(ctx, name)
    yield laid_out(ctx)


def ready(ctx: Context) -> Scenario:
    """Home shown, hub online, devices open."""
    app = ctx.app
    yield lambda: app.current == "home" and app.hub_online and app.devices.spooler is not None \
        and app.devices.watcher is not None
    yield laid_out(ctx)


def hub_ticket(ctx: Context, number: str) -> object:
    assert ctx.hub is not None
    return next(r.ticket for r in ctx.hub.queue.engine.state.tickets.values() if r.ticket.number == number)


def enter_pin(ctx: Context) -> Scenario:
    pad = screen(ctx, "pin").ids.pad
    for digit in KIOSK_PIN:
        tap(find_text(pad, digit))
    yield lambda: screen(ctx, "pin").entered == KIOSK_PIN
    tap(find_text(pad, ctx.app.t("kiosk.pin.ok")))


def take_ticket(ctx: Context) -> Scenario:
    """Elderly card on the home screen → window group → service → confirm → ticket printed."""
    app = ctx.app
    yield from ready(ctx)
    ctx.shot("home")
    ctx.idcard.place("elderly")
    yield lambda: app.resident is not None
    yield laid_out(ctx)
    card = ctx.shot("home_card")
    ctx.result["elder_by_card"] = app.elder
    assert app.resident.elderly and app.resident.age >= 65
    assert any("长辈优先" in line for line in card["texts"]), card["texts"]
    assert not any("马秀兰" in line for line in card["texts"]), "the full name must never be shown"
    tap(find_text(screen(ctx, "home").ids.groups, "社会救助"))
    yield from arrive(ctx, "services")
    yield laid_out(ctx)
    ctx.shot("services")
    tap(find_text(screen(ctx, "services"), "城乡最低生活保障对象认定"))
    yield from arrive(ctx, "confirm")
    yield laid_out(ctx)
    ctx.shot("confirm")
    tap(screen(ctx, "confirm").ids.take)
    yield from arrive(ctx, "ticket")
    yield lambda: app.print_state == "printed"
    yield lambda: len(ctx.printer.tickets()) >= 1
    yield laid_out(ctx)
    shot = ctx.shot("ticket")
    view = app.ticket
    issued = hub_ticket(ctx, view.number)
    printed = ctx.printer.tickets()[0]
    ctx.result.update(
        number=view.number, priority=str(view.priority), channel=str(issued.channel),
        id_hash_matches=issued.id_hash == app.resident.id_hash, printed_large=printed.large_text,
        printed_qr=printed.qr_codes, public_id=view.public_id, texts=shot["texts"],
    )
    tap(screen(ctx, "ticket").ids.done)
    yield from arrive(ctx, "home")
    ctx.result["resident_after_done"] = app.resident is not None
    ctx.result["elder_after_done"] = app.elder
    ctx.idcard.remove()


def elder_mode(ctx: Context) -> Scenario:
    """The elder-mode switch: larger text, fewer items a page; the switch survives navigation."""
    app = ctx.app
    yield from ready(ctx)
    normal_font = screen(ctx, "home").ids.guides.font_size
    normal_height = screen(ctx, "home").ids.guides.height
    tapped = time.perf_counter()
    tap(screen(ctx, "home").ids.elder_button)
    yield lambda: app.elder
    yield laid_out(ctx)
    ctx.result["elder_applied_s"] = time.perf_counter() - tapped  # a figure to report, not a deadline
    ctx.result["target_ratio"] = screen(ctx, "home").ids.guides.height / normal_height
    ctx.shot("home_elder")
    ctx.result["font_ratio"] = screen(ctx, "home").ids.guides.font_size / normal_font
    tap(find_text(screen(ctx, "home").ids.groups, "劳动保障"))
    yield from arrive(ctx, "services")
    yield laid_out(ctx)
    ctx.shot("services_elder")
    grid = screen(ctx, "services").ids.services
    ctx.result["elder_items"] = sum(1 for w in grid.children if w.__class__.__name__ == "BigButton")
    ctx.result["elder_pages"] = screen(ctx, "services").ids.pager.pages
    heights = [w.height for w in grid.children if w.__class__.__name__ == "BigButton"]
    ctx.result["min_button_px"] = min(heights)
    tap(screen(ctx, "services").ids.pager.ids.next)
    yield laid_out(ctx)
    ctx.shot("services_elder_page2")
    tap(screen(ctx, "services").ids.lang_button)
    yield lambda: app.lang == "en"
    yield laid_out(ctx)
    ctx.shot("services_elder_english")
    ctx.result["english_texts"] = texts(screen(ctx, "services"))


def printer_out(ctx: Context) -> Scenario:
    """No paper: the number and QR are shown to be photographed; the ticket prints once paper is back."""
    from hallkit.devices.printer.simulator import StateChange

    app = ctx.app
    yield from ready(ctx)
    ctx.printer.change_state(StateChange(paper="out"))
    tap(find_text(screen(ctx, "home").ids.groups, "劳动保障"))
    yield from arrive(ctx, "services")
    tap(find_text(screen(ctx, "services"), "失业登记"))
    yield from arrive(ctx, "confirm")
    tap(screen(ctx, "confirm").ids.take)
    yield from arrive(ctx, "no_paper")
    yield laid_out(ctx)
    shot = ctx.shot("no_paper")
    ctx.result.update(number=app.ticket.number, texts=shot["texts"], printed_while_out=len(ctx.printer.tickets()))
    ctx.printer.change_state(StateChange(paper="ok"))
    yield lambda: len(ctx.printer.tickets()) >= 1
    ctx.result["printed_after"] = ctx.printer.tickets()[0].large_text


def hub_down(ctx: Context) -> Scenario:
    """Hub stopped: no number on screen, retries by itself, and gets the one ticket once the hub is back."""
    app = ctx.app
    yield from ready(ctx)
    ctx.stop_hub()
    tap(find_text(screen(ctx, "home").ids.groups, "社会救助"))
    yield from arrive(ctx, "services")
    tap(find_text(screen(ctx, "services"), "临时救助对象认定"))
    yield from arrive(ctx, "confirm")
    tap(screen(ctx, "confirm").ids.take)
    yield from arrive(ctx, "hub_down")
    ctx.timers.advance(RETRY_SECONDS)  # the retry goes to the hub link's thread, which fails again
    yield lambda: app.hub_attempts >= 2
    yield laid_out(ctx)
    shot = ctx.shot("hub_down")
    ctx.result.update(texts=shot["texts"], ticket_while_down=app.ticket is not None)
    ctx.start_hub()
    yield lambda: app.hub_online and not app.busy
    ctx.timers.advance(RETRY_SECONDS)
    yield from arrive(ctx, "ticket")
    ctx.result["number"] = app.ticket.number
    ctx.result["issued"] = sum(ctx.hub.queue.engine.state.counters.values())
    yield laid_out(ctx)
    ctx.shot("ticket_after_hub_back")


def bad_card(ctx: Context) -> Scenario:
    """An expired card: what happened and what to do; carry on without the card."""
    app = ctx.app
    yield from ready(ctx)
    ctx.idcard.place("expired")
    yield from arrive(ctx, "card_problem")
    yield laid_out(ctx)
    shot = ctx.shot("card_problem")
    ctx.result.update(texts=shot["texts"], resident=app.resident is not None)
    ctx.idcard.remove()
    tap(screen(ctx, "card_problem").ids.skip)
    yield from arrive(ctx, "home")


def idle_reset(ctx: Context) -> Scenario:
    """A resident who keeps tapping stays in the visit; no touch for the idle time: back to home
    with the card record and choices dropped."""
    app = ctx.app
    yield from ready(ctx)
    ctx.idcard.place("valid")
    yield lambda: app.resident is not None
    tap(find_text(screen(ctx, "home").ids.groups, "劳动保障"))
    yield from arrive(ctx, "services")
    tap(find_text(screen(ctx, "services"), "就业登记"))
    yield from arrive(ctx, "confirm")
    tap(screen(ctx, "confirm").ids.elder_button)
    yield lambda: app.elder
    masked = app.resident.name_masked
    ctx.result["before"] = {"resident": app.resident is not None, "service": app.service_id, "elder": app.elder}
    idle = ctx.config.kiosk.idle_seconds
    for _ in range(18):  # a tap every 10 s for three minutes: the count starts again at each
        ctx.timers.advance(10)
        tap(screen(ctx, "confirm").ids.card_banner)
    ctx.result["after_tapping"] = {"screen": app.current, "resident": app.resident is not None}
    # Quiet for a while: "还在吗？" counts down; a touch then keeps the visit.
    ctx.timers.advance(idle - 10)
    yield laid_out(ctx)
    warning = ctx.shot("idle_warning")
    ctx.result["warning"] = {"left": app.idle_left, "shown": [t for t in warning["texts"] if "还在吗" in t]}
    tap(screen(ctx, "confirm").ids.card_banner)
    ctx.result["after_touch_in_warning"] = {"left": app.idle_left, "screen": app.current}
    ctx.timers.advance(idle - 1)
    ctx.result["countdown_end"] = app.idle_left
    ctx.result["just_before_idle"] = app.current
    ctx.timers.advance(1)
    yield from arrive(ctx, "home")
    yield laid_out(ctx)
    shot = ctx.shot("home_after_idle")
    ctx.result["after"] = {"resident": app.resident is not None, "service": app.service_id, "elder": app.elder,
                           "name_on_screen": any(masked in line for line in shot["texts"])}
    ctx.idcard.remove()


def staff_and_guides(ctx: Context) -> Scenario:
    """Guides, scanning, staff board, the hidden gesture, PIN, maintenance test print, agent service."""
    app = ctx.app
    yield from ready(ctx)
    tap(screen(ctx, "home").ids.guides)
    yield from arrive(ctx, "services")
    yield laid_out(ctx)
    ctx.shot("guide_index")
    tap(find_text(screen(ctx, "services"), "城乡最低生活保障对象认定"))
    yield from arrive(ctx, "guide")
    yield laid_out(ctx)
    guide = ctx.shot("guide")
    ctx.result["guide_texts"] = guide["texts"]
    tap(screen(ctx, "guide").ids.pager.ids.next)
    yield laid_out(ctx)
    ctx.result["guide_page2"] = texts(screen(ctx, "guide"))
    tap(screen(ctx, "guide").ids.scan)
    yield from arrive(ctx, "scan")
    yield lambda: app.devices.scanner is not None
    tap(screen(ctx, "scan").ids.shoot)
    yield lambda: screen(ctx, "scan").count >= 1
    yield laid_out(ctx)
    ctx.shot("scan")
    ctx.result["scanned_files"] = len(list((ctx.work / "scans").glob("dibao-*.png")))
    app.home()
    yield from arrive(ctx, "home")
    tap(screen(ctx, "home").ids.staff)
    yield from arrive(ctx, "staff")
    yield laid_out(ctx)
    ctx.result["staff_texts"] = ctx.shot("staff")["texts"]
    app.home()
    yield from arrive(ctx, "home")
    for _ in range(5):
        tap(screen(ctx, "home").ids.hall_name)  # five taps at one instant of the kiosk's clock
    yield from arrive(ctx, "pin")
    yield laid_out(ctx)
    ctx.shot("pin")
    yield from enter_pin(ctx)
    yield from arrive(ctx, "maintenance")
    starting = app.t("kiosk.maint.starting")
    yield lambda: screen(ctx, "maintenance").lines and starting not in screen(ctx, "maintenance").lines
    yield laid_out(ctx)
    ctx.result["maintenance_texts"] = ctx.shot("maintenance")["texts"]
    before = len(ctx.printer.tickets())
    tap(screen(ctx, "maintenance").ids.test_print)
    yield lambda: len(ctx.printer.tickets()) > before
    tap(screen(ctx, "maintenance").ids.back)
    yield from arrive(ctx, "home")
    tap(screen(ctx, "home").ids.agent)
    yield from arrive(ctx, "pin")
    yield from enter_pin(ctx)
    yield lambda: app.agent and app.current == "home"
    yield laid_out(ctx)
    ctx.shot("home_agent")
    tap(find_text(screen(ctx, "home").ids.groups, "劳动保障"))
    yield from arrive(ctx, "services")
    tap(find_text(screen(ctx, "services"), "失业登记"))
    yield from arrive(ctx, "confirm")
    tap(screen(ctx, "confirm").ids.take)
    yield from arrive(ctx, "ticket")
    ctx.result["agent_channel"] = str(hub_ticket(ctx, app.ticket.number).channel)


def book(ctx: Context, card: str, service_id: str) -> datetime:
    """An appointment today for the holder of a simulator card, kept in the hub by keyed hash only."""
    assert ctx.hub is not None
    now = datetime.now(ctx.config.hall.zone)
    starts = now.replace(minute=now.minute // 30 * 30, second=0, microsecond=0)
    with ctx.hub.queue.lock, ctx.hub.queue.store.transaction() as conn:
        add_appointment(conn, ctx.config, ctx.idcard.card(card).holder.id_number, service_id, starts,
                        starts + timedelta(minutes=30))
    return starts


def offers(ctx: Context) -> list[str]:
    return texts(screen(ctx, "home").ids.offers)


def lift_card(ctx: Context) -> Scenario:
    """Take the card away until the watcher has seen the empty reader (two polls after the one in flight)."""
    polls = ctx.idcard.commands
    ctx.idcard.remove()
    yield lambda: ctx.idcard.commands >= polls + 3


def appointment_check_in(ctx: Context) -> Scenario:
    """A card with an appointment today: offered on home, one tap and confirm check it in; again: same ticket."""
    app = ctx.app
    yield from ready(ctx)
    starts = book(ctx, "elderly", "dibao")
    ctx.result["slot"] = f"{starts:%H:%M}–{starts + timedelta(minutes=30):%H:%M}"
    # A card without appointments: no offer, no appointment wording.
    ctx.idcard.place("valid")
    yield lambda: app.resident is not None and app.appointment_lookup == "done"
    yield laid_out(ctx)
    plain = ctx.shot("home_card_no_appointment")
    ctx.result.update(plain_offers=offers(ctx), plain_texts=plain["texts"])
    yield from lift_card(ctx)
    app.reset_session()
    # The card of the resident who booked: the appointment is offered with the priority channel.
    ctx.idcard.place("elderly")
    yield lambda: app.resident is not None and app.appointment_lookup == "done"
    yield laid_out(ctx)
    home = ctx.shot("home_appointment")
    ctx.result.update(offers=offers(ctx), home_texts=home["texts"],
                      offer_height=min(w.height for w in screen(ctx, "home").ids.offers.children))
    # Elder mode (on by itself for an elderly card) and English: the offer follows, and stays big.
    ctx.result["elder_by_card"] = app.elder
    tap(screen(ctx, "home").ids.lang_button)
    yield lambda: app.lang == "en"
    yield laid_out(ctx)
    ctx.result["english_offers"] = ctx.shot("home_appointment_elder_english") and offers(ctx)
    ctx.result["elder_offer_height"] = min(w.height for w in screen(ctx, "home").ids.offers.children)
    tap(screen(ctx, "home").ids.lang_button)
    tap(screen(ctx, "home").ids.elder_button)
    yield lambda: not app.elder and app.lang == "zh"
    yield laid_out(ctx)
    # "Something else": the window tiles; the booked service chosen there is still the check-in.
    tap(screen(ctx, "home").ids.others)
    yield lambda: not screen(ctx, "home").focus
    yield laid_out(ctx)
    ctx.result["others_texts"] = ctx.shot("home_appointment_others")["texts"]
    tap(find_text(screen(ctx, "home").ids.groups, "社会救助"))
    yield from arrive(ctx, "services")
    tap(find_text(screen(ctx, "services"), "城乡最低生活保障对象认定"))
    yield from arrive(ctx, "confirm")
    ctx.result["confirm_by_service"] = texts(screen(ctx, "confirm"))
    app.home()
    yield from arrive(ctx, "home")
    ctx.result["home_after_others"] = offers(ctx)
    # A new visit with the same card: the offer first again; one tap, then confirm.
    yield from lift_card(ctx)
    app.reset_session()
    ctx.idcard.place("elderly")
    yield lambda: app.resident is not None and app.appointment_lookup == "done"
    yield laid_out(ctx)
    tap(find_text(screen(ctx, "home").ids.offers, "点此签到"))
    yield from arrive(ctx, "confirm")
    yield laid_out(ctx)
    ctx.result["confirm_texts"] = ctx.shot("confirm_appointment")["texts"]
    tap(screen(ctx, "confirm").ids.take)
    yield from arrive(ctx, "ticket")
    yield laid_out(ctx)
    ctx.result["ticket_texts"] = ctx.shot("ticket_appointment")["texts"]
    view = app.ticket
    issued = hub_ticket(ctx, view.number)
    ctx.result.update(number=view.number, priority=str(issued.priority), channel=str(issued.channel),
                      service=issued.service_id, id_hash_matches=issued.id_hash == app.resident.id_hash)
    record = app.resident
    checked_in = ctx.result["offered_id"] = ctx.hub.queue.store.conn.execute(
        "SELECT appointment_id FROM appointments").fetchone()[0]
    tap(screen(ctx, "ticket").ids.done)
    yield from arrive(ctx, "home")
    ctx.result["after_done"] = {"resident": app.resident is not None, "appointments": len(app.appointments)}
    # The same card again: checked in, so no longer offered.
    yield from lift_card(ctx)
    ctx.idcard.place("elderly")
    yield lambda: app.resident is not None and app.appointment_lookup == "done"
    yield laid_out(ctx)
    ctx.result["offers_again"] = offers(ctx)
    # A second check-in of the same appointment (another kiosk that offered it before): the same ticket.
    again = AppointmentView(appointment_id=checked_in, service_id="dibao", service_name="", starts=starts,
                            ends=starts + timedelta(minutes=30))
    with HallClient(ctx.broker, ctx.config.hall.id, "console") as other:
        reply = other.request(check_in_command(again, record))
    ctx.result["second_number"] = reply.outcome.ticket.number
    ctx.result["issued"] = sum(ctx.hub.queue.engine.state.counters.values())
    # Idle reset drops the appointments with the card record.
    app.reset_session()
    yield laid_out(ctx)
    ctx.result["after_reset"] = {"resident": app.resident is not None, "appointments": len(app.appointments)}
    ctx.idcard.remove()


def display(ctx: Context) -> Scenario:
    """The hall display shows a call within a second and speaks it (a WAV is written)."""
    app = ctx.app
    yield lambda: not app.status_text  # connected, snapshot in
    hall_now = datetime.now(ctx.config.hall.zone)
    ctx.result["clock"] = {"shown": app.clock, "hall": [f"{hall_now:%H:%M}", f"{hall_now - timedelta(minutes=1):%H:%M}"],
                           "machine": f"{datetime.now().astimezone():%H:%M}"}
    yield laid_out(ctx)
    ctx.shot("display_idle")
    with HallClient(ctx.broker, ctx.config.hall.id, "console") as console:
        for service in ("dibao", "yanglao", "yanglao", "shiye", "dibao"):
            console.request(TakeTicket(service_id=service))
        console.request(CallNext(window=3))
    yield lambda: app.calls_shown >= 1
    ctx.result["call_frames"] = app.last_call_frames
    ctx.result["shown"] = app.latest_number
    with HallClient(ctx.broker, ctx.config.hall.id, "console") as console:
        console.request(CallNext(window=2))
        console.request(Recall(window=3))
        console.request(Pause(window=4))
    yield lambda: app.calls_shown >= 3 and "暂停" in texts(app.board.ids.windows)
    yield laid_out(ctx)
    ctx.result["texts"] = ctx.shot("display")["texts"]
    yield lambda: app.announcer.spoken >= 3 and len(list((ctx.work / "voice").glob("call-*.wav"))) >= 3
    ctx.result["wavs"] = sorted(str(p) for p in (ctx.work / "voice").glob("call-*.wav"))


def display_busy(ctx: Context) -> Scenario:
    """A busy board at the harness's screen size: every service waiting, windows calling and paused."""
    app = ctx.app
    yield lambda: not app.status_text
    with HallClient(ctx.broker, ctx.config.hall.id, "console") as console:
        for round_ in range(3):
            for service in ctx.config.services[round_:]:
                console.request(TakeTicket(service_id=service.id))
        for window in (1, 2, 3, 2, 1, 3):
            console.request(CallNext(window=window))
        console.request(Pause(window=4))
    yield lambda: app.calls_shown >= 6 and "暂停" in texts(app.board.ids.windows) and len(app.board.ids.waiting.children) > 0
    yield laid_out(ctx)
    ctx.result["texts"] = ctx.shot(f"display-{int(app.root.width)}x{int(app.root.height)}")["texts"]
    ctx.result["problems"] = layout_problems(app.root, ignore=(app.board.ids.notice,))
    ctx.result["waiting_shown"] = len(app.board.ids.waiting.children)
    ctx.result["numbers_font"] = app.board.ids.latest_number.font_name


def gallery(ctx: Context) -> Scenario:
    """The screens a resident sees, for docs/screenshots (scripts/screenshots.py): home, services,
    confirm, ticket, then elder mode; at the harness's screen size."""
    app = ctx.app
    yield from ready(ctx)
    ctx.shot("home")
    ctx.idcard.place("valid")
    yield lambda: app.resident is not None
    tap(find_text(screen(ctx, "home").ids.groups, "劳动保障"))
    yield from arrive(ctx, "services")
    ctx.shot("services")
    tap(find_text(screen(ctx, "services"), "就业登记"))
    yield from arrive(ctx, "confirm")
    ctx.shot("confirm")
    tap(screen(ctx, "confirm").ids.take)
    yield from arrive(ctx, "ticket")
    yield lambda: app.print_state == "printed"
    yield laid_out(ctx)
    ctx.shot("ticket")
    tap(screen(ctx, "ticket").ids.done)
    yield from arrive(ctx, "home")
    ctx.idcard.remove()
    tap(screen(ctx, "home").ids.elder_button)
    yield lambda: app.elder
    yield laid_out(ctx)
    ctx.shot("elder-home")
    tap(find_text(screen(ctx, "home").ids.groups, "社会救助"))
    yield from arrive(ctx, "services")
    ctx.shot("elder-services")


def paused_windows(ctx: Context) -> Scenario:
    """A paused window says so on its tile; a service no open window serves says so, and a tap says why."""
    app = ctx.app
    yield from ready(ctx)
    with HallClient(ctx.broker, ctx.config.hall.id, "console") as console:
        console.request(Pause(window=3))
    yield lambda: "本窗口暂停服务" in find_text(screen(ctx, "home").ids.groups, "劳动保障").text
    yield laid_out(ctx)
    ctx.result["home_texts"] = ctx.shot("home_paused")["texts"]
    tap(find_text(screen(ctx, "home").ids.groups, "劳动保障"))
    yield from arrive(ctx, "services")
    ctx.result["served_elsewhere"] = texts(screen(ctx, "services"))  # window 1 still serves them
    with HallClient(ctx.broker, ctx.config.hall.id, "console") as console:
        console.request(Pause(window=1))
    yield lambda: any("暂停办理" in line for line in texts(screen(ctx, "services")))
    yield laid_out(ctx)
    ctx.result["services_texts"] = ctx.shot("services_paused")["texts"]
    ctx.idcard.place("valid")  # a resident with a card: refused one service, they choose another
    yield lambda: app.resident is not None
    tap(find_text(screen(ctx, "services"), "失业登记"))
    yield from arrive(ctx, "refused")
    ctx.result["refused_texts"] = ctx.shot("refused_paused")["texts"]
    ctx.result["issued"] = sum(ctx.hub.queue.engine.state.counters.values())
    tap(find_text(screen(ctx, "refused"), "选择其他业务"))
    yield from arrive(ctx, "services")
    ctx.result["after_refused"] = {"screen": app.current, "card": app.resident is not None,
                                   "group": app.group.name if app.group else None}
    ctx.idcard.remove()
    with HallClient(ctx.broker, ctx.config.hall.id, "console") as console:
        console.request(Resume(window=1))
        console.request(Resume(window=3))


SCENARIOS = {
    "take_ticket": (take_ticket, "kiosk"),
    "elder_mode": (elder_mode, "kiosk"),
    "printer_out": (printer_out, "kiosk"),
    "hub_down": (hub_down, "kiosk"),
    "bad_card": (bad_card, "kiosk"),
    "idle_reset": (idle_reset, "kiosk"),
    "staff_and_guides": (staff_and_guides, "kiosk"),
    "appointment_check_in": (appointment_check_in, "kiosk"),
    "paused_windows": (paused_windows, "kiosk"),
    "display": (display, "display"),
    "display_busy": (display_busy, "display"),
    "gallery": (gallery, "kiosk"),
}
