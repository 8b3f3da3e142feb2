"""systemd units for a hall PC, its kiosk and display, and a county machine (``hall install systemd``).

Services run as user ``hallkit`` (a system user, ``hallkit.conf`` for systemd-sysusers), never
root; each gets its broker password through ``LoadCredential=`` from the broker folder's
``secrets/<login>`` (root-only files stay root-only: systemd hands the service a private copy) and
reads it through ``$HALLKIT_BROKER_PASSWORD_FILE``. Mosquitto runs as root from its unit and
drops to user mosquitto itself. The kiosk and the display are user units of the desktop session
that shows them, started with the graphical session.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from pydantic import BaseModel

SERVICE_USER = "hallkit"
CREDENTIAL = "broker-password"
MOSQUITTO_BIN = "/usr/sbin/mosquitto"


class HallPlan(BaseModel):
    hall_bin: Path
    config: Path
    hall_id: str
    broker_folder: Path
    broker_port: int
    web: bool
    """Whether the hall has a ``web`` device, the phone page."""
    hub_host: str
    """Where the kiosk and the display reach the hall broker."""
    kiosk: str | None
    display: str | None


class CountyPlan(BaseModel):
    hall_bin: Path
    broker_folder: Path
    broker_url: str
    """Without the login: ``mqtts://HOST:8883``; each worker logs in as ``ingest-N``."""
    ca_file: Path | None
    db: str
    workers: int


class Unit(BaseModel):
    name: str
    text: str
    user_unit: bool = False
    """A unit of a desktop session (``/etc/systemd/user``), not of the system."""


def sysusers() -> str:
    return f'# The user hallkit\'s services run as (systemd-sysusers).\nu {SERVICE_USER} - "hallkit services" /var/lib/hallkit\n'


def _service(description: str, exec_start: list[str], *, after: str = "network-online.target",
             login: Path | None = None, extra: tuple[str, ...] = (), user: bool = True,
             wanted_by: str = "multi-user.target", conflicts: str | None = None) -> str:
    lines = ["[Unit]", f"Description={description}", f"After={after}", f"Wants={after}",
             *((f"# Debian's own {conflicts} would take the same port.", f"Conflicts={conflicts}") if conflicts else ()),
             "", "[Service]",
             f"ExecStart={shlex.join(exec_start)}", "Restart=always", "RestartSec=5"]
    if user:
        lines += [f"User={SERVICE_USER}", f"Group={SERVICE_USER}", "StateDirectory=hallkit", "UMask=0077",
                  "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes"]
    if login is not None:
        lines += [f"LoadCredential={CREDENTIAL}:{login}",
                  f"Environment=HALLKIT_BROKER_PASSWORD_FILE=%d/{CREDENTIAL}"]
    lines += [*extra, "", "[Install]", f"WantedBy={wanted_by}", ""]
    return "\n".join(lines)


def hall_units(plan: HallPlan) -> list[Unit]:
    """The broker, hub, dashboard and phone page of the hall PC; the kiosk's and display's session units."""
    hall = str(plan.hall_bin)
    config = str(plan.config)
    secrets = plan.broker_folder / "secrets"
    data = f"/var/lib/hallkit/{plan.hall_id}"

    def broker(login: str) -> list[str]:
        return ["--broker", f"mqtt://{login}@127.0.0.1:{plan.broker_port}"]

    units = [
        Unit(name="hallkit-broker.service", text=_service(
            "hallkit hall broker (Mosquitto, per-device logins)",
            [MOSQUITTO_BIN, "-c", str(plan.broker_folder / "mosquitto.conf")], after="network.target", user=False,
            conflicts="mosquitto.service", extra=("ExecReload=/bin/kill -HUP $MAINPID",))),
        Unit(name="hallkit-hub.service", text=_service(
            f"hallkit hub of hall {plan.hall_id}",
            [hall, "hub", "--config", config, *broker("hub"), "--data", data],
            after="hallkit-broker.service", login=secrets / "hub")),
        Unit(name="hallkit-dashboard.service", text=_service(
            "hallkit manager's dashboard",
            [hall, "dashboard", "--config", config, *broker("dashboard"), "--data", data],
            after="hallkit-hub.service", login=secrets / "dashboard")),
    ]
    if plan.web:
        units.append(Unit(name="hallkit-web.service", text=_service(
            "hallkit phone page behind the tickets' QR codes",
            [hall, "web", "--config", config, *broker("web"), "--data", data],
            after="hallkit-hub.service", login=secrets / "web")))
    # The session's user keeps the kiosk's logins (its own, its printer's, its card reader's) and the
    # display's password in ~/.config/hallkit (%E), readable only by that user.
    hub = f"{plan.hub_host}:{plan.broker_port}"
    if plan.kiosk is not None:
        units.append(Unit(name="hallkit-kiosk.service", user_unit=True, text=_service(
            "hallkit kiosk (starts with the desktop session)",
            [hall, "kiosk", "--config", "%E/hallkit/hall.toml", "--device", plan.kiosk,
             "--broker", f"mqtt://{plan.kiosk}@{hub}", "--logins", "%E/hallkit/logins.toml"],
            after="graphical-session.target", user=False, wanted_by="graphical-session.target")))
    if plan.display is not None:
        units.append(Unit(name="hallkit-display.service", user_unit=True, text=_service(
            "hallkit hall display (starts with the desktop session)",
            [hall, "display", "--config", "%E/hallkit/hall.toml", "--broker", f"mqtt://{plan.display}@{hub}",
             "--password-file", f"%E/hallkit/{plan.display}.password"],
            after="graphical-session.target", user=False, wanted_by="graphical-session.target")))
    return units


def county_units(plan: CountyPlan) -> list[Unit]:
    """The county broker and a template ingest unit, one instance per worker (``hallkit-ingest@1``)."""
    scheme, rest = plan.broker_url.split("://", 1)
    ingest = [str(plan.hall_bin), "county", "ingest", "--broker", f"{scheme}://ingest-%i@{rest}",
              "--worker", "%i", "--db", plan.db]
    if plan.ca_file is not None:
        ingest += ["--ca-file", str(plan.ca_file)]
    return [
        Unit(name="hallkit-county-broker.service", text=_service(
            "hallkit county broker (Mosquitto, dynamic security, TLS)",
            [MOSQUITTO_BIN, "-c", str(plan.broker_folder / "mosquitto.conf")], after="network.target", user=False,
            conflicts="mosquitto.service")),
        Unit(name="hallkit-ingest@.service", text=_service(
            "hallkit county ingest worker %i",
            ingest, after="hallkit-county-broker.service postgresql.service",
            login=plan.broker_folder / "secrets" / "ingest-%i")),
    ]


def instances(plan: CountyPlan) -> list[str]:
    return [f"hallkit-ingest@{n}.service" for n in range(1, plan.workers + 1)]
