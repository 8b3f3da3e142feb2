"""Benchmark of the hub (issues 3 and 16): what a kiosk sees, against what MQTT alone costs.

    .venv/bin/python bench/hub.py [--sync full] [--levels 0,10000,50000] [--rounds 3]
                                  [--pairs 500] [--clients 4] [--storm 5000] [--storm-only]
                                  [--restart-only] [--disconnects N] [--keep DIR] [--code DIR ...]

The hub runs as its own process (``hall hub``, at the default durability: synchronous=full with
group commit, unless ``--sync normal`` says otherwise), against a real Mosquitto, with its modules'
bytecode kept in the bench's folder from its first start on, as an installed hallkit has it. Printed, at each
number of waiting tickets of ``--levels`` (the waiting-ticket curve):

1. take-a-ticket round trips (a kiosk's ``HallClient.request``) **interleaved** one by one with
   raw MQTT round trips (paho → Mosquitto → paho echo client → Mosquitto → paho, the same two hops
   with nothing done in between) and with bare SQLite commits beside the hub's log (what the disk
   alone costs each take at the same durability), in a random order per step, so all see the same
   machine: p50 and p99 of each and take p99 ÷ raw p99 (goal ≤ 3×), and the hub's CPU per take;
2. between two levels, the sustained rate with ``--clients`` kiosks each keeping requests in
   flight (this is what fills the queue to the next level; goal ≥ 2,000 tickets/s with 4), and
   the hub's CPU time per ticket (goal ≤ 250 µs), from /proc;
3. at the end, a restart of the hub on its log (the last level's events): seconds until it is
   online again (goal ≤ 1 s), with the page cache dropped first when run as root (otherwise
   said to be warm), the hub's CPU time to online, and its peak memory while replaying against
   its memory once online (goal ≤ 1.5×); ``--restart-only`` runs this phase alone, on the same
   number of tickets filled by the sustained load without measuring it;
4. a status storm (issue 15), on the hall's broker as ``hall broker config`` writes it (a login per
   process, the ACL, the dynamic-security plugin with which the hub has a flooding device
   disconnected): one device publishes ``--storm`` status changes as fast as it can from its own
   process while a kiosk takes tickets one after the other, against the same hub quiet, each
   storm after the last one's mute is over; takes count as during the storm from its first status
   until the device's connection is over, and for at least a second (what the storm sets off: the
   mute, the disconnect, the telemetry), about as many as quiet: take p99 during the storm ÷ quiet
   p99 (goal ≤ 3×),
   the slowest take then minus the quiet median (goal ≤ 100 ms), how much of each storm the broker
   took before it disconnected the device, and how many telemetry rows the storms left for the
   county (the newest state the broker holds last);
5. ``--disconnects N`` alone: what the hub's request to disconnect a device costs the broker (its
   worst raw round trip in windows with a disconnect and without, beside an fsync load).

Every figure is measured ``--rounds`` times and printed as min / median / max, with the machine's
load average (``os.getloadavg``) beside it. ``--code DIR`` (repeatable) runs the hub from other
source trees too, one after the other in the same run, to compare before and after (with the
tree's own ``.venv`` when it has one: the editable install maps ``hallkit.<part>`` to its own folders).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import random
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hallkit.broker import wire
from hallkit.broker.client import HallClient
from hallkit.broker.flood import MUTE_SECONDS
from hallkit.broker.mosquitto import DYNSEC_CONTROL, let_in_login, lock_out_login, password_line, write_mosquitto_config
from hallkit.broker.testing import Mosquitto
from hallkit.contracts.hall import CommandReply, CommandRequest, DeviceState, DeviceStatus, Topics
from hallkit.contracts.mqtt import BrokerAddress, make_client
from hallkit.contracts.uplink import DeviceTelemetry

from hallkit.config import parse_config
from hallkit.queue.models import TakeTicket
from hallkit.testing import HALL_WITH_DEVICES, free_port, write_hall_config

ROOT = Path(__file__).resolve().parents[1]


HALL = "test-hall"
SERVICES = ("social", "pension", "permit")
GOAL_RATIO = 3.0
GOAL_RATE = 2_000
GOAL_CPU_US = 250
GOAL_RESTART_S = 1.0
GOAL_MEMORY = 1.5
IN_FLIGHT = 64  # requests in flight per kiosk in the sustained phase
TICK = os.sysconf("SC_CLK_TCK")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """min / median / max of the repeats."""
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, all threads


def memory_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def python_of(code: Path) -> Path:
    """The interpreter that runs the hub from ``code``: the tree's own virtual environment if it has
    one. ``PYTHONPATH`` alone is not enough: the editable install maps every ``hallkit.<part>`` to
    this tree's folders, whatever comes first on the path."""
    own = code / ".venv" / "bin" / "python"
    return own if own.exists() else Path(sys.executable)


def drop_page_cache() -> bool:
    if os.geteuid() != 0:
        return False
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    return True


def hall_toml(clients: int) -> str:
    kiosks = "".join(f'\n[[devices]]\nid = "kiosk-{n}"\nkind = "kiosk"\n' for n in range(2, clients + 1))
    return HALL_WITH_DEVICES + kiosks


ECHO_LOGINS = ("bench-echo", "bench-asker")


class BenchBroker:
    """A real Mosquitto: anonymous with the project's settings (``anonymous``), or the hall's broker
    exactly as ``hall broker config`` writes it (``hall``: a login per device, the ACL, the
    dynamic-security plugin), plus logins for the raw round trip's two clients."""

    def __init__(self, mosquitto: Mosquitto, secret_folder: Path | None) -> None:
        self.mosquitto, self.secret_folder = mosquitto, secret_folder

    @classmethod
    def anonymous(cls, folder: Path) -> BenchBroker:
        return cls(Mosquitto(folder).start(), None)

    @classmethod
    def hall(cls, folder: Path, hall_text: str) -> BenchBroker:
        out = folder / "broker"
        port = free_port()
        write_mosquitto_config(parse_config(hall_text), out, port, "127.0.0.1")
        with (out / "passwords").open("a") as passwords, (out / "acl").open("a") as acl:
            for user in ECHO_LOGINS:
                (out / "secrets" / user).write_text(secret := secrets.token_urlsafe(18))
                passwords.write(password_line(user, secret) + "\n")
                acl.write(f"user {user}\ntopic readwrite bench/#\n")
        conf = out / "mosquitto.conf"
        # Stay the user running the bench: as root Mosquitto would become user mosquitto, which
        # cannot enter the bench's temporary folder.
        conf.write_text(conf.read_text() + f"user {getpass.getuser()}\n")
        return cls(Mosquitto(folder / "run", port=port, conf=conf).start(), out / "secrets")

    @property
    def port(self) -> int:
        return self.mosquitto.port

    @property
    def pid(self) -> int:
        assert self.mosquitto.process is not None
        return self.mosquitto.process.pid

    def login(self, user: str) -> BrokerAddress:
        """``user``'s address: with its password on the hall's broker, anonymous on the other."""
        if self.secret_folder is None:
            return self.mosquitto.address
        return self.mosquitto.address.as_login(user, (self.secret_folder / user).read_text().strip())

    def hub_arguments(self) -> list[str]:
        """How ``hall hub`` is told this broker (and its password, in a file, never on the command line)."""
        if self.secret_folder is None:
            return ["--broker", self.mosquitto.url]
        return ["--broker", f"mqtt://hub@127.0.0.1:{self.port}", "--password-file", str(self.secret_folder / "hub")]

    def stop(self) -> None:
        self.mosquitto.stop()


class Echo:
    """The raw round trip: a request out to an echo client and its copy back, nothing in between."""

    def __init__(self, broker: BenchBroker) -> None:
        self.echo = make_client(broker.login(ECHO_LOGINS[0]), ECHO_LOGINS[0])
        self.echo.on_message = lambda c, u, m: c.publish("bench/pong", m.payload, qos=1)
        self.asker = make_client(broker.login(ECHO_LOGINS[1]), ECHO_LOGINS[1])
        self.got = threading.Event()
        self.asker.on_message = lambda c, u, m: self.got.set()
        for client, topic in ((self.echo, "bench/ping"), (self.asker, "bench/pong")):
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            client.subscribe(topic, qos=1)
        time.sleep(0.5)
        self.payload = CommandRequest(device="kiosk-1", reply_to="x",
                                      command=TakeTicket(service_id="social")).model_dump_json()

    def once(self) -> float:
        self.got.clear()
        start = time.perf_counter()
        self.asker.publish("bench/ping", self.payload, qos=1)
        if not self.got.wait(5):
            raise RuntimeError("no echo in 5 s")
        return time.perf_counter() - start

    def close(self) -> None:
        for client in (self.echo, self.asker):
            client.disconnect()
            client.loop_stop()


class HubProcess:
    def __init__(self, code: Path, folder: Path, broker: BenchBroker, sync: str) -> None:
        self.code, self.folder, self.broker, self.sync = code, folder, broker, sync
        self.config = folder / "hall.toml"
        self.data = folder / "data"
        self.topics = Topics(HALL)
        self.process: subprocess.Popen[bytes] | None = None
        self.session = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> float:
        """Start the hub; seconds until it says it is online with a new session."""
        online = threading.Event()
        expected = self.session + 1

        def on_status(_c: object, _u: object, message: object) -> None:
            status = DeviceStatus.model_validate_json(message.payload)  # type: ignore[attr-defined]
            if status.state is DeviceState.ONLINE and status.session == expected:
                online.set()

        watcher = make_client(self.broker.login("console"), f"bench-watch-{expected}")
        watcher.on_message = on_status
        watcher.connect("127.0.0.1", self.broker.port)
        watcher.loop_start()
        watcher.subscribe(self.topics.hub_status, qos=1)
        started = time.perf_counter()
        with open(self.folder / "hub.log", "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [str(python_of(self.code)), "-m", "hallkit.cli", "hub", "--config", str(self.config),
                 *self.broker.hub_arguments(), "--data", str(self.data), "--sync", self.sync],
                cwd=self.code, stdout=subprocess.DEVNULL, stderr=log,
                env=self.environment(),
            )
        try:
            if not online.wait(120):
                raise RuntimeError(f"the hub did not come online; see {self.folder / 'hub.log'}")
            return time.perf_counter() - started
        finally:
            self.session = expected
            watcher.disconnect()
            watcher.loop_stop()

    def environment(self) -> dict[str, str]:
        """The hub's environment: this tree first on the path, and its modules' bytecode kept.

        An installed hallkit has its bytecode (pip compiles it), so a restart loads it; run from
        a source tree with ``PYTHONDONTWRITEBYTECODE`` set, every start would compile hallkit
        again (0.06-0.08 s of CPU). The bytecode goes to the bench's own folder, not the tree.
        """
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        return {**env, "PYTHONPATH": str(self.code), "PYTHONPYCACHEPREFIX": str(self.folder.parent / "bytecode")}

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None


@dataclass
class Latency:
    take_p50: float
    take_p99: float
    raw_p50: float
    raw_p99: float
    commit_p50: float
    commit_p99: float
    cpu_per_take_us: float

    @property
    def ratio(self) -> float:
        return self.take_p99 / self.raw_p99


class BareCommit:
    """What the disk alone costs a take: one small SQLite transaction committed the way the hub
    commits (WAL, ``synchronous`` as the hub's), in a file beside the hub's log. A take cannot be
    answered sooner than its commit, so its p99 says how much of the take's p99 is the disk's."""

    def __init__(self, folder: Path, sync: str) -> None:
        self.db = sqlite3.connect(folder / "bare-commit.sqlite3", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={sync.upper()}")
        self.db.execute("CREATE TABLE IF NOT EXISTS t (body TEXT)")
        self.body = "x" * 1500  # about a take's event and reply

    def once(self) -> float:
        start = time.perf_counter()
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("INSERT INTO t VALUES (?)", (self.body,))
        self.db.execute("COMMIT")
        return time.perf_counter() - start


def interleaved(hub: HubProcess, echo: Echo, commit: BareCommit, kiosk: HallClient, pairs: int,
                rng: random.Random) -> Latency:
    """Takes, raw round trips and bare commits, one of each per step in a random order."""
    takes: list[float] = []
    raws: list[float] = []
    commits: list[float] = []
    cpu = cpu_seconds(hub.pid)
    for i in range(pairs):
        command = TakeTicket(service_id=SERVICES[i % 3])

        def take(command: TakeTicket = command) -> None:
            start = time.perf_counter()
            reply = kiosk.request(command)
            takes.append(time.perf_counter() - start)
            if not reply.ok:
                raise RuntimeError(f"refused: {reply.refusal}")

        steps: list[Callable[[], None]] = [take, lambda: raws.append(echo.once()),
                                           lambda: commits.append(commit.once())]
        rng.shuffle(steps)
        for step in steps:
            step()
    cpu = cpu_seconds(hub.pid) - cpu
    return Latency(percentile(takes, 0.5) * 1e3, percentile(takes, 0.99) * 1e3,
                   percentile(raws, 0.5) * 1e3, percentile(raws, 0.99) * 1e3,
                   percentile(commits, 0.5) * 1e3, percentile(commits, 0.99) * 1e3, cpu / pairs * 1e6)


def sustained(hub: HubProcess, broker: BenchBroker, clients: int, tickets: int) -> tuple[float, float]:
    """``tickets`` takes from ``clients`` kiosks at once: (tickets/s, hub CPU µs per ticket)."""
    topics = Topics(HALL)
    each = tickets // clients
    done = threading.Barrier(clients + 1)
    senders = []

    def kiosk(n: int) -> None:
        device = f"kiosk-{n}"
        window = threading.Semaphore(IN_FLIGHT)
        received = 0
        finished = threading.Event()

        def on_reply(_c: object, _u: object, message: object) -> None:
            nonlocal received
            CommandReply.model_validate_json(message.payload)  # type: ignore[attr-defined]
            window.release()
            received += 1
            if received == each:
                finished.set()

        client = make_client(broker.login(device), f"bench-flood-{n}-{time.monotonic_ns()}")
        client.message_callback_add(topics.reply(device), on_reply)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        client.subscribe(topics.reply(device), qos=1)
        payloads = [CommandRequest(device=device, reply_to=topics.reply(device),
                                   command=TakeTicket(service_id=SERVICES[i % 3])).model_dump_json()
                    for i in range(each)]
        time.sleep(0.5)
        done.wait()  # all connected: start together
        for payload in payloads:
            window.acquire()
            client.publish(topics.command(device), payload, qos=1)
        if not finished.wait(600):
            raise RuntimeError(f"{device}: {received} of {each} replies")
        client.disconnect()
        client.loop_stop()
        done.wait()

    for n in range(1, clients + 1):
        sender = threading.Thread(target=kiosk, args=(n,), daemon=True)
        sender.start()
        senders.append(sender)
    done.wait()
    cpu = cpu_seconds(hub.pid)
    start = time.perf_counter()
    done.wait()
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(hub.pid) - cpu
    for sender in senders:
        sender.join()
    return each * clients / elapsed, cpu / (each * clients) * 1e6


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def full_run_tickets(args: argparse.Namespace) -> int:
    """The tickets the full run's log holds at its restart: what ``run_tree`` fills and takes."""
    waiting = 0
    for level in args.levels:
        if level > waiting:
            chunk = max(args.clients, (level - waiting) // args.rounds)
            waiting += args.rounds * (chunk // args.clients * args.clients)
        waiting += args.rounds * args.pairs
    return waiting


def run_tree(code: Path, folder: Path, broker: BenchBroker, echo: Echo, args: argparse.Namespace) -> None:
    print(f"\n== hub from {code} (synchronous={args.sync}) ==")
    folder.mkdir(parents=True)
    hub = HubProcess(code, folder, broker, args.sync)
    write_hall_config(hub.config, hall_toml(args.clients))
    hub.start()
    rng = random.Random(16)
    commit = BareCommit(folder, args.sync)
    waiting = 0
    try:
        if args.restart_only:
            # The same log as the full run's, filled by the sustained load alone (no figures).
            rate, _ = sustained(hub, broker, args.clients, full_run_tickets(args))
            waiting = full_run_tickets(args) // args.clients * args.clients
            print(f"  filled the log with {waiting:,} tickets at {rate:,.0f} tickets/s ({load()})")
        else:
            measure_load(hub, broker, echo, commit, rng, args)
            waiting = full_run_tickets(args)
        hub.stop()
        restart(hub, waiting, args)
        if args.keep:
            # The hall's configuration and log, to profile the hub's start on (docs/queue.md).
            shutil.copytree(folder, args.keep / folder.name, ignore=shutil.ignore_patterns("*.lock", "bare-commit*"))
    finally:
        hub.stop()


def measure_load(hub: HubProcess, broker: BenchBroker, echo: Echo, commit: BareCommit, rng: random.Random,
                 args: argparse.Namespace) -> None:
    """Phases 1 and 2: the sustained rate filling the queue to each level, and the interleaved
    round trips at each level."""
    waiting = 0
    with HallClient(broker.login("kiosk-1"), HALL, "kiosk-1") as kiosk:
        for level in args.levels:
            if level > waiting:
                # Fill in --rounds chunks with the sustained load: each chunk is one repeat.
                chunk = max(args.clients, (level - waiting) // args.rounds)
                rates, cpus = [], []
                for _ in range(args.rounds):
                    rate, cpu = sustained(hub, broker, args.clients, chunk)
                    waiting += chunk // args.clients * args.clients
                    rates.append(rate)
                    cpus.append(cpu)
                print(f"  sustained, {args.clients} kiosks, filling to {waiting:,} waiting ({load()}): "
                      f"{spread(rates, '{:,.0f}')} tickets/s (goal >= {GOAL_RATE:,}: "
                      f"{verdict(statistics.median(rates) >= GOAL_RATE)}); hub CPU per ticket "
                      f"{spread(cpus, '{:.0f}')} us (goal <= {GOAL_CPU_US}: "
                      f"{verdict(statistics.median(cpus) <= GOAL_CPU_US)})")
            runs = []
            for _ in range(args.rounds):
                runs.append(interleaved(hub, echo, commit, kiosk, args.pairs, rng))
                waiting += args.pairs
            print(f"  at {level:,}+ waiting, {args.pairs} interleaved pairs x {args.rounds} ({load()}): "
                  f"take p50 {spread([r.take_p50 for r in runs])} ms, p99 {spread([r.take_p99 for r in runs])} "
                  f"ms; raw p50 {spread([r.raw_p50 for r in runs])} ms, p99 "
                  f"{spread([r.raw_p99 for r in runs])} ms; take p99 / raw p99 "
                  f"{spread([r.ratio for r in runs])}x (goal <= {GOAL_RATIO:.0f}x: "
                  f"{verdict(statistics.median([r.ratio for r in runs]) <= GOAL_RATIO)}); bare commit beside the "
                  f"log p50 {spread([r.commit_p50 for r in runs])} ms, p99 {spread([r.commit_p99 for r in runs])} ms; "
                  f"hub CPU per take {spread([r.cpu_per_take_us for r in runs], '{:.0f}')} us")


def restart(hub: HubProcess, waiting: int, args: argparse.Namespace) -> None:
    """Phase 3: the stopped hub started again on its log, ``--rounds`` times."""
    restarts, peaks, cpus = [], [], []
    for _ in range(args.rounds):
        cold = drop_page_cache()
        seconds = hub.start()
        cpus.append(cpu_seconds(hub.pid))  # its CPU to online, give or take the bench's notice of it
        time.sleep(1.0)  # settle: what it holds once serving
        peak, steady = memory_kb(hub.pid, "VmHWM"), memory_kb(hub.pid, "VmRSS")
        hub.stop()
        restarts.append(seconds)
        peaks.append(peak / steady)
    print(f"  restart on the log of {waiting:,} tickets, {'cold' if cold else 'WARM'} page cache ({load()}): "
          f"{spread(restarts, '{:.2f}')} s to online (goal <= {GOAL_RESTART_S:.0f} s: "
          f"{verdict(statistics.median(restarts) <= GOAL_RESTART_S)}), hub CPU to online {spread(cpus)} s; "
          f"peak memory while starting / memory once online {spread(peaks)} (goal <= {GOAL_MEMORY}: "
          f"{verdict(statistics.median(peaks) <= GOAL_MEMORY)}; last: peak {peak / 1024:.0f} MB, "
          f"online {steady / 1024:.0f} MB)")


STORM_DEVICE = "display-1"
AFTER_STORM = 1.0
"""Seconds after a storm in which takes are measured apart (what the storm set off)."""
GOAL_STORM_RATIO = 3.0


def storm_publisher(port: int, count: int, user: str) -> None:
    """``--storm-publisher``: one device's ``count`` status changes as fast as the network takes them,
    on a line from stdin, under its own login (its password in ``HALLKIT_BROKER_PASSWORD``).

    Raw MQTT 3.1.1 packets sent in one go, not paho: the storming device is another machine in a
    hall, and a Python client here would spend one of the hub's two cores making packets, which
    measures this machine, not the hub. Raw packets also arrive faster than paho makes them: a
    harder storm for the hub, not a gentler one. Prints how many the broker acknowledged, and
    whether it ended the connection before the storm was through.
    """
    topic = Topics(HALL).device_status(user)
    packets = b"".join(
        wire.publish(topic, DeviceStatus(device=user, state=DeviceState.ONLINE, session=1, kind="display",
                                         version="1", detail={"paper": str(n)}).model_dump_json().encode(),
                     packet_id=n % 65535 + 1, retain=True)  # retained, as every device's status
        for n in range(count))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(wire.connect(user, 60, user, os.environ["HALLKIT_BROKER_PASSWORD"]))
        if _read_exactly(sock, 4)[3] != wire.ConnackCode.ACCEPTED:
            raise RuntimeError("the broker refused the storming device")
        print("ready", flush=True)
        sys.stdin.readline()
        received, cut = 0, False
        try:
            sock.sendall(packets)
            while received // 4 < count:  # the PUBACKs (4 bytes each): the broker has taken that much
                chunk = sock.recv(65536)
                if not chunk:
                    cut = True
                    break
                received += len(chunk)  # a PUBACK may straddle two reads
            else:
                sock.sendall(wire.DISCONNECT)
        except ConnectionError:  # reset with part of the storm still unread
            cut = True
        print(received // 4, "cut" if cut else "whole", flush=True)
    sys.stdin.readline()  # exits when told: its own teardown is not part of the storm


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise RuntimeError("the broker closed the storming device's connection")
        data += chunk
    return bytes(data)


def pairs_while(kiosk: HallClient, echo: Echo, busy: Callable[[], bool], least: int) -> tuple[list[float], list[float]]:
    """Take-a-ticket and raw round trips, alternating, while ``busy()``, and at least ``least`` pairs."""
    takes, raws = [], []
    while busy() or len(takes) < least:
        start = time.perf_counter()
        if not kiosk.request(TakeTicket(service_id=SERVICES[len(takes) % 3])).ok:
            raise RuntimeError("a take was refused")
        takes.append(time.perf_counter() - start)
        raws.append(echo.once())
    return takes, raws


def storm_tree(code: Path, folder: Path, args: argparse.Namespace) -> None:
    """Take-a-ticket p99 while one device publishes ``--storm`` status changes, against quiet, same hub,
    each beside the raw round trip measured in the same moments (what the broker and the machine
    alone do under the storm).

    On the hall's broker as ``hall broker config`` writes it, with every process under its own
    login: what a hall has, the broker's part in a storm included (the hub may have it disconnect
    the device). The hall has an ``[upstream]`` (a county that does not answer), so the hub's
    outbox turns statuses into telemetry for the county, as in a real hall.
    """
    print(f"\n== status storm: {args.storm:,} changes from {STORM_DEVICE}, hub from {code}, on the hall's "
          f"broker as `hall broker config` writes it ==")
    folder.mkdir(parents=True)
    with socket.socket() as probe:  # a county broker that is not there: telemetry stays in the outbox
        probe.bind(("127.0.0.1", 0))
        county = f"mqtt://127.0.0.1:{probe.getsockname()[1]}"
    hall_text = hall_toml(1) + f'\n[upstream]\nbroker = "{county}"\npassword = "x"\n'
    broker = BenchBroker.hall(folder / "mosquitto", hall_text)
    echo = Echo(broker)
    hub = HubProcess(code, folder, broker, args.sync)
    write_hall_config(hub.config, hall_text)
    hub.start()
    take_ratios, raw_ratios, storm_p99, slowest, alone_ratios = [], [], [], [], []
    last_end: float | None = None
    try:
        with HallClient(broker.login("kiosk-1"), HALL, "kiosk-1") as kiosk:
            for _ in range(args.rounds):
                # Each storm meets a hub that hears the device again (the last one's mute is over) and
                # a broker that lets it in (the hub has it keep a flooding device out a while).
                time.sleep(MUTE_SECONDS + 1)
                wait_until_it_may_log_in(broker, STORM_DEVICE)
                kept_out = "" if last_end is None else f" (let in {time.monotonic() - last_end:.0f} s after the last storm)"
                quiet, quiet_raw = pairs_while(kiosk, echo, lambda: False, args.pairs)
                device = broker.login(STORM_DEVICE)
                publisher = subprocess.Popen(
                    [sys.executable, __file__, "--storm-publisher", str(broker.port), str(args.storm), STORM_DEVICE],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                    env={**os.environ, "HALLKIT_BROKER_PASSWORD": device.password or ""})
                assert publisher.stdin is not None and publisher.stdout is not None
                publisher.stdout.readline()
                outcome: list[str] = []
                over = threading.Event()  # the device's connection is over: all acknowledged, or cut
                reader = threading.Thread(target=lambda out=publisher.stdout, got=outcome, done=over: (
                    got.append(out.readline()), done.set()), daemon=True)
                reader.start()
                cpu_before = cpu_seconds(hub.pid), cpu_seconds(broker.pid)
                publisher.stdin.write("go\n")
                publisher.stdin.flush()
                # During the storm: until the device's connection is over (all acknowledged, or cut).
                # Then what it sets off (the mute, the disconnect, the telemetry), measured apart.
                started = time.monotonic()
                stormy, stormy_raw = pairs_while(kiosk, echo, lambda storm=over: not storm.is_set(), 1)
                window = time.monotonic() - started
                hub_cpu, broker_cpu = (cpu_seconds(pid) - before for pid, before
                                       in zip((hub.pid, broker.pid), cpu_before, strict=True))
                ended = last_end = time.monotonic()
                after, after_raw = pairs_while(kiosk, echo, lambda t0=ended: time.monotonic() - t0 < AFTER_STORM, 1)
                publisher.stdin.write("bye\n")
                publisher.stdin.flush()
                if publisher.wait(120) or not outcome[0].strip():
                    raise RuntimeError("the storming device failed")
                acknowledged, ending = outcome[0].split()
                # The storm and what it sets off, about as many takes as quiet: the storm alone is over in
                # milliseconds once the broker cuts the device, and holds one or two takes.
                take_ratios.append(percentile([*stormy, *after], 0.99) / percentile(quiet, 0.99))
                raw_ratios.append(percentile([*stormy_raw, *after_raw], 0.99) / percentile(quiet_raw, 0.99))
                alone_ratios.append(percentile(stormy, 0.99) / percentile(quiet, 0.99))
                storm_p99.append(percentile(stormy, 0.99) * 1e3)
                slowest.append((max(*stormy, *after) - statistics.median(quiet)) * 1e3)
                fate = (f"disconnected by the broker ({int(acknowledged):,} acknowledged before)" if ending == "cut"
                        else f"all {int(acknowledged):,} acknowledged")
                print(f"    round: {len(quiet)} quiet pairs (take p99 {percentile(quiet, 0.99) * 1e3:.2f} ms, raw "
                      f"{percentile(quiet_raw, 0.99) * 1e3:.2f} ms), {len(stormy)} during the storm's "
                      f"{window * 1e3:.0f} ms (take p99 "
                      f"{percentile(stormy, 0.99) * 1e3:.2f} ms, raw {percentile(stormy_raw, 0.99) * 1e3:.2f} ms); "
                      f"the storming device {fate}{kept_out}; CPU in the storm: hub {hub_cpu * 1e3:.0f} ms, Mosquitto "
                      f"{broker_cpu * 1e3:.0f} ms; {len(after)} in the second after (take p99 "
                      f"{percentile(after, 0.99) * 1e3:.2f} ms) ({load()})")
        newest, rows, newest_after = newest_state_reaches_the_outbox(broker, hub, last_end or time.monotonic())
    finally:
        hub.stop()
        echo.close()
        broker.stop()
    print(f"  take p99 during the storm and the second after ÷ quiet {spread(take_ratios)}x (goal <= "
          f"{GOAL_STORM_RATIO:.0f}x: {verdict(statistics.median(take_ratios) <= GOAL_STORM_RATIO)}); the raw round "
          f"trip's, the same moments {spread(raw_ratios)}x; the storm alone (the takes while the device is "
          f"connected): take p99 {spread(storm_p99)} ms, ÷ quiet {spread(alone_ratios)}x")
    print(f"  slowest take during a storm or the second after, minus the quiet median {spread(slowest, '{:.0f}')} ms (goal <= 100 ms: "
          f"{verdict(max(slowest) <= 100)})")
    reached = (f"yes, {newest_after:.1f} s after the last storm" if newest_after <= DEVICE_STATUS_WAIT
               else f"NO, not within {DEVICE_STATUS_WAIT:.0f} s")
    print(f"  telemetry rows for the county after {args.rounds} storms of {args.storm:,}: {rows}, the last with "
          f"the newest state the broker holds (paper {newest}): {reached}")


def disconnect_cost(folder: Path, tries: int) -> None:
    """``--disconnects``: what the hub's request to disconnect a device costs the broker. Beside a
    process committing to SQLite with fsync as fast as it can (as a busy hub does), the raw round
    trip runs in a loop, and its worst in each 0.15 s window is taken with a disconnect sent in the
    window and without, alternately, ``tries`` times each."""
    print(f"\n== what a disconnect costs the broker, {tries} tries, beside an fsync load ==")
    broker = BenchBroker.hall(folder / "mosquitto", hall_toml(1))
    echo = Echo(broker)
    hub = make_client(broker.login("hub"), "hub")
    hub.connect("127.0.0.1", broker.port)
    hub.loop_start()
    load_folder = folder / "fsync-load"
    load_folder.mkdir()
    fsyncs = subprocess.Popen([sys.executable, __file__, "--fsync-load", str(load_folder)])

    def worst_round_trip(disconnect: bool) -> float:
        stop, worst = threading.Event(), [0.0]

        def loop() -> None:
            while not stop.is_set():
                worst[0] = max(worst[0], echo.once())

        pinger = threading.Thread(target=loop)
        pinger.start()
        time.sleep(0.05)
        if disconnect:
            # Out and in again, as a lock-out and its end: four rewrites of the plugin's file.
            hub.publish(DYNSEC_CONTROL, lock_out_login(STORM_DEVICE), qos=1).wait_for_publish(5)
            hub.publish(DYNSEC_CONTROL, let_in_login(STORM_DEVICE), qos=1).wait_for_publish(5)
        time.sleep(0.1)
        stop.set()
        pinger.join()
        return worst[0] * 1e3

    try:
        pairs = [(worst_round_trip(True), worst_round_trip(False)) for _ in range(tries)]
    finally:
        fsyncs.terminate()
        fsyncs.wait()
        hub.disconnect()
        hub.loop_stop()
        echo.close()
        broker.stop()
    with_, without = [w for w, _ in pairs], [w for _, w in pairs]
    print(f"  worst raw round trip in a window with a disconnect {spread(with_, '{:.1f}')} ms (over 10 ms: "
          f"{sum(w > 10 for w in with_)} of {tries}); without {spread(without, '{:.1f}')} ms (over 10 ms: "
          f"{sum(w > 10 for w in without)} of {tries}) ({load()})")


def fsync_load(folder: Path) -> None:
    """``--fsync-load``: the bare commit with fsync, as fast as it goes, until killed."""
    commit = BareCommit(folder, "full")
    while True:
        commit.once()


def wait_until_it_may_log_in(broker: BenchBroker, user: str, bound: float = 120.0) -> float:
    """Seconds until the broker accepts ``user``'s login again (tried every half second)."""
    address = broker.login(user)
    started = time.monotonic()
    while True:
        with socket.create_connection(("127.0.0.1", broker.port)) as sock:
            sock.sendall(wire.connect(user, 60, address.username, address.password))
            accepted = _read_exactly(sock, 4)[3] == wire.ConnackCode.ACCEPTED
            if accepted:
                sock.sendall(wire.DISCONNECT)
        waited = time.monotonic() - started
        if accepted:
            return waited
        if waited > bound:
            raise RuntimeError(f"the broker kept {user} out for more than {bound:.0f} s")
        time.sleep(0.5)


def newest_state_reaches_the_outbox(broker: BenchBroker, hub: HubProcess, ended: float) -> tuple[str, int, float]:
    """The storming device's newest status as the broker holds it (its retained one: the broker may
    have cut the storm short), the telemetry rows for it in the hub's outbox, and the seconds until
    the last of them carried that status, from ``ended``, the last storm's end (more than
    ``DEVICE_STATUS_WAIT``: it did not)."""
    retained: list[str] = []
    reader = make_client(broker.login("console"), "bench-retained")
    reader.on_message = lambda _c, _u, m: retained.append(
        DeviceStatus.model_validate_json(m.payload).detail.get("paper", ""))
    reader.connect("127.0.0.1", broker.port)
    reader.loop_start()
    reader.subscribe(Topics(HALL).device_status(STORM_DEVICE), qos=1)
    try:
        while True:
            with sqlite3.connect(hub.data / "hall.sqlite3") as db:
                rows = db.execute("SELECT body FROM outbox WHERE kind = 'telemetry' AND body LIKE ?",
                                  (f'%"device":"{STORM_DEVICE}"%',)).fetchall()
            last = DeviceTelemetry.model_validate_json(rows[-1][0]).paper if rows else None
            waited = time.monotonic() - ended
            if (retained and last == retained[-1]) or waited > DEVICE_STATUS_WAIT:
                return (retained[-1] if retained else "?"), len(rows), waited
            time.sleep(0.1)
    finally:
        reader.disconnect()
        reader.loop_stop()


DEVICE_STATUS_WAIT = 15.0
"""Seconds the newest status may take to reach the outbox after a storm: a mute (2 s) and the
device's interval (2 s) at most, with room for a loaded machine."""


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--storm-publisher":  # noqa: PLR2004 (its three arguments)
        storm_publisher(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--fsync-load":  # noqa: PLR2004 (its one argument)
        fsync_load(Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sync", choices=["full", "normal"], default="full")
    parser.add_argument("--levels", default="0,10000,50000",
                        help="waiting tickets at which to measure round trips (comma-separated, rising)")
    parser.add_argument("--rounds", type=int, default=3, help="repeats of every figure")
    parser.add_argument("--pairs", type=int, default=500, help="take/raw pairs per round")
    parser.add_argument("--clients", type=int, default=4, help="kiosks in the sustained phase")
    parser.add_argument("--storm", type=int, default=5000,
                        help="status changes of one device in the storm phase (0: skip it)")
    parser.add_argument("--storm-only", action="store_true", help="run only the status storm phase")
    parser.add_argument("--restart-only", action="store_true",
                        help="run only the restart: the same log as the full run's, filled by the sustained "
                             "load alone (no status storm either)")
    parser.add_argument("--disconnects", type=int, metavar="N",
                        help="only measure what N disconnects of a device cost the broker, beside an fsync load")
    parser.add_argument("--keep", type=Path,
                        help="copy each tree's hall (configuration and log) into this folder at the end")
    parser.add_argument("--code", type=Path, action="append", default=[],
                        help="also run the hub from this source tree (before/after in one run)")
    args = parser.parse_args()
    args.levels = [int(level) for level in args.levels.split(",")]
    if args.restart_only:
        args.storm = 0
    print(f"{os.cpu_count()} cores, {load()}; Mosquitto with the project's config; the hub as its own "
          f"process, synchronous={args.sync} with group commit; figures are min / median / max of "
          f"{args.rounds} repeats")
    if args.disconnects:
        with tempfile.TemporaryDirectory() as tmp:
            disconnect_cost(Path(tmp), args.disconnects)
        print(f"\ndone ({load()})")
        return
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        if not args.storm_only:  # the storm phase brings its own broker, the hall's
            broker = BenchBroker.anonymous(Path(tmp) / "mosquitto")
            stack.callback(broker.stop)
            echo = Echo(broker)
            stack.callback(echo.close)
        for i, code in enumerate([ROOT, *args.code]):
            if not args.storm_only:
                run_tree(code.resolve(), Path(tmp) / f"hub-{i}", broker, echo, args)
            if args.storm:
                storm_tree(code.resolve(), Path(tmp) / f"storm-{i}", args)
    print(f"\ndone ({load()})")


if __name__ == "__main__":
    main()
