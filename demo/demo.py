"""``hall demo``: a whole sample hall on one machine.

Starts the embedded broker (unless a broker is given), the hub with the
sample township hall built from the Hutubi county catalogue, and a traffic
simulator: residents arriving at the kiosk, and every window calling,
serving and completing on a simulated pad (a network pad with the same bridge
real pads use), where residents rate the service; windows without a pad work
from the console. Everything goes over the same MQTT contract real devices
use, each device under its own login: the embedded broker refuses anonymous
clients, so the demo keeps a login per device in ``DATA/broker/credentials.toml``
and prints how to log in. Prints a live summary. Unless ``--headless``, it also opens
the kiosk and the hall display with the virtual printer and the simulated ID-card
reader (:mod:`kiosk.demo`).
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hallkit.broker.client import HallClient, HubError, read_hall
from hallkit.broker.embedded import EmbeddedBroker, hall_logins
from hallkit.broker.hub import Hub
from hallkit.broker.mosquitto import HUB_USER, Logins
from hallkit.broker.pad_script import PadScript, SimulatedPad, parse_script
from hallkit.broker.parts import hub_parts
from hallkit.contracts.mqtt import BrokerAddress, parse_broker_url
from hallkit.dashboard.server import DEFAULT_DEVICE as DASHBOARD_DEVICE
from hallkit.dashboard.server import DashboardServer, free_port
from hallkit.demo.screens import KIOSK_DEVICE, DemoDevices, DemoScreens, HeadlessKiosk
from hallkit.devices.printer.layout import TicketPrint
from hallkit.web.server import WebServer
from pydantic import BaseModel

from hallkit.accounts import Role
from hallkit.commandline import say_listening, write_atomically
from hallkit.commands import example_config, load_secured_or_fail
from hallkit.config import DeviceKind, HallConfig, parse_config
from hallkit.filemodes import SECRET_MODE
from hallkit.queue.models import CallNext, Complete, Priority, Skip, TakeTicket

log = logging.getLogger("hallkit.demo")

SERVICE_MINUTES = (1.4, 0.5)
"""A service's length: lognormal (mu, sigma) in minutes, about 4.6 minutes on average."""
LOAD = 0.85
"""Arrivals as a share of what the windows can serve: busy, yet the queue does not grow without end."""
BALK_PER_WINDOW = 8
"""A resident who finds more than this many waiting per window goes home and comes back another day."""
PRIORITY_SHARE = 0.1
"""Residents who take a priority ticket (elderly, disabled, servicemen)."""
NO_SHOW_SHARE = 0.05
"""Called residents who never come to the window and are skipped."""

DEMO_RESIDENTS = "5,5,4,5,3,5,4,walk,5,1:态度不好+效率低,5,4,2:多次跑腿,5"
"""How the demo's residents rate, in turn: mostly satisfied, some walk away, a few bad ratings."""


Login = Callable[[str], BrokerAddress]
"""The broker under one device's login."""

CONSOLE = "console"
"""The operator's login (``hall status``, ``hall call``) and that of windows without a pad."""


class DemoOptions(BaseModel):
    broker: str | None = None
    logins: Path | None = None
    """With ``broker``: its ``credentials.toml``; without, the embedded broker's are made in ``data``."""
    config: Path | None = None
    data: Path = Path("var/demo")
    headless: bool = False
    keep: bool = False
    """Go on with the previous run's hall state instead of a fresh one."""
    duration: float = 0
    speed: float = 20.0


ARRIVALS_DEVICE = "demo-residents"
STAFF_DEVICE = "demo-staff"
DEMO_DEVICES = f"""
# The demo's own simulated people. A login is one connection (docs/contract.md): were they to act
# as kiosk-1 or console, the kiosk's window and a `hall status` in another terminal would knock
# them off the broker, and they those.
[[devices]]
id = "{ARRIVALS_DEVICE}"             # residents taking tickets beside the kiosk's screen
kind = "kiosk"

[[devices]]
id = "{STAFF_DEVICE}"                 # staff at windows without a pad; the demo's summary line
kind = "counter"
"""


def demo_config(data: Path, path: Path | None) -> HallConfig:
    """The chosen config, or the sample hall open at any hour (written to the data folder to read)."""
    if path is not None:
        return load_secured_or_fail(path)  # the hub's rule: the demo runs one
    data.mkdir(parents=True, exist_ok=True)
    target = data / "hall.toml"
    if not target.exists():
        write_atomically(target, example_config().replace("accept_outside_hours = false", "accept_outside_hours = true")
                         + DEMO_DEVICES, SECRET_MODE)
    # The demo's own file (an earlier version wrote it 0644): it holds the demo hall's id_hash_key.
    target.chmod(SECRET_MODE)
    return parse_config(target.read_text("utf-8"), source=target)


class Traffic:
    """Residents who arrive and windows that serve them, at ``speed`` times real life."""

    def __init__(self, config: HallConfig, login: Login, speed: float, seed: int | None = None) -> None:
        self.config = config
        self.login = login
        self.speed = speed
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.taken = 0
        self.served = 0
        self.skipped = 0
        self.balked = 0
        self.print_ticket: Callable[[TicketPrint], None] | None = None
        """Without windows, the arrivals' tickets print at the headless kiosk (with windows, the kiosk's own
        residents' tickets print there and the simulated ones are not printed)."""
        self.threads: list[threading.Thread] = []
        mu, sigma = SERVICE_MINUTES
        mean_service_seconds = math.exp(mu + sigma * sigma / 2) * 60
        # Arrivals at LOAD of the windows' capacity: the queue stays bounded, as in a real day.
        self.arrival_mean_seconds = mean_service_seconds / max(1, len(config.windows)) / LOAD

    def start(self) -> None:
        ids = {d.id for d in self.config.devices}
        kiosk = ARRIVALS_DEVICE if ARRIVALS_DEVICE in ids else next(
            (d.id for d in self.config.devices if d.kind is DeviceKind.KIOSK), CONSOLE)
        staff = STAFF_DEVICE if STAFF_DEVICE in ids else CONSOLE
        self.threads.append(threading.Thread(target=self._arrivals, args=(kiosk,), name="demo-arrivals",
                                             daemon=True))
        pads = {d.window: d.id for d in self.config.devices if d.kind is DeviceKind.PAD and d.window}
        for window in self.config.windows:
            pad = pads.get(window.number)
            work, device = (self._pad, pad) if pad else (self._window, staff)
            self.threads.append(threading.Thread(target=work, args=(window.number, device),
                                                 name=f"demo-window-{window.number}", daemon=True))
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def _arrivals(self, device: str) -> None:
        services = self.config.services
        weights = arrival_weights(self.config)
        with HallClient(self.login(device), self.config.hall.id, device) as client:
            while not self.stop.wait(self.random.expovariate(1 / self.arrival_mean_seconds) / self.speed):
                if self.waiting > BALK_PER_WINDOW * len(self.config.windows):
                    self.balked += 1
                    continue
                service = self.random.choices(services, weights)[0]
                priority = Priority.PRIORITY if self.random.random() < PRIORITY_SHARE else Priority.NORMAL
                try:
                    reply = client.request(TakeTicket(service_id=service.id, priority=priority))
                except HubError as exc:
                    if not self.stop.is_set():  # the hub going away at Ctrl-C is not news
                        log.warning("kiosk: %s", exc)
                    continue
                self.taken += reply.ok
                if self.print_ticket is not None and reply.outcome is not None and reply.outcome.ticket is not None:
                    self.print_ticket(TicketPrint.from_view(reply.outcome.ticket, self.config))

    @property
    def waiting(self) -> int:
        """Tickets taken and not yet served or skipped (the arrivals' own count: no round trip to the hub)."""
        return self.taken - self.served - self.skipped

    def _service_seconds(self) -> float:
        return self.random.lognormvariate(*SERVICE_MINUTES) * 60 / self.speed

    def _pad(self, number: int, device: str) -> None:
        """A window with a pad: its staff use the pad's keys and residents rate on it (a simulated tablet)."""
        pad = SimulatedPad("network", self.login(device), self.config.hall.id, device, number,
                           self.config.rating.bad_reason_tags).start()
        script = PadScript(pad.hardware, parse_script(DEMO_RESIDENTS), service_seconds=self._service_seconds,
                           wait_seconds=2)
        try:
            while not self.stop.is_set():
                if script.serve_one(self.stop) is None:
                    self.stop.wait(2 / max(1.0, self.speed / 10))
                else:
                    self.served += 1
        finally:
            pad.stop()

    def _window(self, number: int, device: str) -> None:
        with HallClient(self.login(device), self.config.hall.id, device) as client:
            while not self.stop.is_set():
                try:
                    reply = client.request(CallNext(window=number))
                    if not reply.ok or reply.outcome is None or reply.outcome.ticket is None:
                        self.stop.wait(2 / max(1.0, self.speed / 10))
                        continue
                    if self.stop.wait(self._service_seconds()):
                        return
                    no_show = self.random.random() < NO_SHOW_SHARE
                    client.request(Skip(window=number) if no_show else Complete(window=number))
                    self.served += not no_show
                    self.skipped += no_show
                except HubError as exc:
                    if self.stop.is_set():
                        return
                    log.warning("window %d: %s", number, exc)
                    self.stop.wait(1)


class Demo:
    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.config = demo_config(options.data, options.config)
        self.embedded: EmbeddedBroker | None = None
        self.logins: Logins | None = None
        self.logins_file: Path | None = options.logins
        if options.broker:
            self.address = parse_broker_url(options.broker)
            if options.logins is not None:
                self.logins = Logins.read(options.logins)
        else:
            port = _free_port_from(1883)
            self.logins_file = options.data / "broker" / "credentials.toml"
            self.logins, access = hall_logins(self.config, self.logins_file.parent, port)
            self.embedded = EmbeddedBroker(access, port=port)
            self.address = parse_broker_url(self.embedded.url)
        self.hub: Hub | None = None
        self.devices: DemoDevices | None = None
        self.screens: DemoScreens | None = None
        self.kiosk: HeadlessKiosk | None = None
        self.dashboard: DashboardServer | None = None
        self.web: WebServer | None = None
        self.traffic = Traffic(self.config, self.login, options.speed)

    def login(self, user: str) -> BrokerAddress:
        """The broker under ``user``'s login (as given, for a broker without logins)."""
        if self.logins is None:
            return self.address
        password = self.logins.password(user)
        if password is None:
            raise OSError(f"{self.logins_file} has no login {user!r}")
        return self.address.as_login(user, password)

    def start(self) -> None:
        state = self.options.data / self.config.hall.id
        if state.exists() and not self.options.keep:
            # Yesterday's queue, paused windows and ratings would greet today's newcomer unexplained.
            shutil.rmtree(state)
            print(f"  fresh hall state in {state} (--keep goes on with the previous run's)")
        if self.embedded is not None:
            self.embedded.start()
            print(f"  {say_listening(self.embedded.url, self.embedded.host, widen='errors.embedded_widen')}")
        self.hub = Hub(self.config, self.login(HUB_USER), self.options.data / self.config.hall.id,
                       parts=hub_parts(self.config))
        for tightened in self.hub.tightened:
            print(f"  {tightened.bilingual()}")
        self.hub.start()
        self.dashboard = self._start_dashboard()
        self.web = WebServer(self.config, self.login("web"), self.options.data / self.config.hall.id,
                             port=free_port(self.config.web.port)).start()
        print(f"  phone page 扫码页: {self.web.url}/t/<token>  (QR codes link to {self.config.web.public_url}/t/<token>)")
        print(f"  {say_listening(self.web.url, self.web.host)}")
        # The same devices with and without windows: the virtual printer and the card reader.
        self.devices = DemoDevices(self.options.data).start()
        if self.options.headless:
            self.kiosk = HeadlessKiosk(self.config, self.devices, self.login(KIOSK_DEVICE), self.logins).start()
            self.traffic.print_ticket = self.kiosk.print_ticket
        self.traffic.start()
        if not self.options.headless:
            config_path = self.options.config or self.options.data / "hall.toml"
            self.screens = DemoScreens(config_path, self.address.url, self.logins_file, self.devices).start()
        print(f"hallkit demo: {self.config.hall.name} on {self.address.url}; "
              f"state in {self.options.data}; Ctrl-C to stop")
        if self.logins_file is None:
            print(f"  try: hall status --broker {self.address.url}    hall call --window 1 --broker {self.address.url}")
            return
        console = f"mqtt://{CONSOLE}@{self.address.host}:{self.address.port} --logins {self.logins_file}"
        print(f"  登录 logins: one per device in {self.logins_file}; the broker refuses anyone else")
        print(f"  try: hall status --broker {console}")
        print(f"       hall call --window 1 --broker {console}")

    def _start_dashboard(self) -> DashboardServer:
        """The manager's dashboard on the first free port from 8080, with a fresh demo login."""
        data = self.options.data / self.config.hall.id
        dashboard = DashboardServer(self.config, self.login(DASHBOARD_DEVICE), data,
                                    port=free_port(self.config.dashboard.port))
        password = secrets.token_urlsafe(9)
        dashboard.users.add_user("demo", Role.MANAGER, password)
        dashboard.start()
        print(f"  dashboard 管理看板: {dashboard.url}  login: demo / {password}")
        print(f"  {say_listening(dashboard.url, dashboard.host)}")
        return dashboard

    def run(self, stop: threading.Event) -> None:
        """Print the summary every few seconds until ``stop`` is set or the duration is over."""
        deadline = time.monotonic() + self.options.duration if self.options.duration else None
        while deadline is None or time.monotonic() < deadline:
            if stop.wait(min(3.0, max(0.1, (deadline or float("inf")) - time.monotonic()))):
                return
            print(self.summary(), flush=True)

    def summary(self) -> str:
        reader = STAFF_DEVICE if any(d.id == STAFF_DEVICE for d in self.config.devices) else CONSOLE
        view = read_hall(self.login(reader), self.config.hall.id, timeout=1.0)
        if view.queue is None:
            return "等待中心服务 / waiting for the hub"
        calling = " ".join(f"{w.number}:{window_word(w.open, w.paused, w.ticket.number if w.ticket else None)}"
                           for w in view.queue.windows)
        balked = f" · 未排队离开 left {self.traffic.balked}" if self.traffic.balked else ""
        return (f"[{time.strftime('%H:%M:%S')}] 取号 taken {self.traffic.taken} · 办结 served "
                f"{self.traffic.served} · 等候 waiting {view.queue.waiting_total}{balked} · 窗口 windows {calling}")

    def stop(self) -> None:
        # The dashboard goes first: it would otherwise raise "offline" alerts for every device
        # the demo shuts down after it.
        if self.dashboard is not None:
            self.dashboard.stop()
        if self.web is not None:
            self.web.stop()
        if self.screens is not None:
            self.screens.stop()
        self.traffic.join()
        if self.kiosk is not None:
            self.kiosk.stop()
        if self.devices is not None:
            self.devices.stop()
        if self.hub is not None:
            self.hub.stop()
        if self.embedded is not None:
            self.embedded.stop()


def arrival_weights(config: HallConfig) -> list[float]:
    """How residents spread over the services: each window's time shared among what it serves.

    Residents for a service served by one busy window must not outnumber what that window can do
    (the queue would grow without end there while other windows idle); within that, the first
    services of a window draw more, as a few services do in a real hall.
    """
    weights = dict.fromkeys((s.id for s in config.services), 0.0)
    for window in config.windows:
        served = [s.id for s in config.services if s.id in config.served_by(window)]
        draw = [1.0 / (rank + 1) for rank in range(len(served))]
        total = sum(draw)
        for service_id, share in zip(served, draw, strict=True):
            weights[service_id] += share / total
    return [weights[s.id] for s in config.services]


def window_word(open_: bool, paused: bool, ticket: str | None) -> str:
    """A window in the summary: its ticket, idle (-), or why it serves no one (暂停 paused, 关闭 closed)."""
    if not open_:
        return "关闭closed"
    if paused:
        return "暂停paused"
    return ticket or "-"


def _free_port_from(port: int) -> int:
    """The first free port at or after ``port``: a demo must not fail because 1883 is taken."""
    for candidate in range(port, port + 100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", candidate)) != 0:
                return candidate
    raise OSError(f"no free port between {port} and {port + 99}")
