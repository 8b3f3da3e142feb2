"""Mosquitto configuration for a hall: listener, persistence, queue limits, per-device logins and ACLs.

Mosquitto's defaults do not suit a hall: ``max_queued_messages 1000`` drops
messages in a burst, even QoS 0 to an online client, and persistence is off.
The limits below are set on purpose (see docs/deployment.md). Each device
gets its own password and may publish only under its own id; the hub may
read and write the whole hall.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

import tomli_w

from hallkit.config import HallConfig

PBKDF2_ITERATIONS = 101
"""What mosquitto_passwd writes for the ``$7$`` (PBKDF2-SHA512) format."""

HUB_USER = "hub"
CONSOLE_USERS = ("console",)


def password_line(user: str, password: str, salt: bytes | None = None) -> str:
    """One line of a Mosquitto password file in the ``$7$`` PBKDF2-SHA512 format."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"{user}:$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


HALL_QUEUE_LIMITS = (
    "# Mosquitto's default (1000) silently drops messages in a burst; a hall's burst is bounded",
    "# by its devices, so allow far more and cap by bytes instead.",
    "max_queued_messages 100000",
    "max_queued_bytes 268435456",
)
COUNTY_QUEUE_LIMITS = (
    "# No cap: after an outage every hall drains its backlog at once, and the halls delete what this",
    "# broker acknowledged. A message dropped here for a busy ingest worker would be lost for good",
    "# (measured: bench/county_scale.py --queue-limits hall). Give the broker RAM for the burst instead.",
    "max_queued_messages 0",
    "max_queued_bytes 0",
)


def mosquitto_conf(data_dir: Path, port: int, bind: str, passwords: Path | None, acl: Path | None,
                   queue_limits: tuple[str, ...] = HALL_QUEUE_LIMITS) -> str:
    lines = [
        "# Written by hallkit. Limits set on purpose: see docs/deployment.md.",
        "per_listener_settings false",
        f"listener {port} {bind}",
        "persistence true",
        f"persistence_location {data_dir}/",
        "autosave_interval 60",
        *queue_limits,
        "max_inflight_messages 100",
        "# Without it every small reply waits for a delayed ACK (about 40 ms on Linux).",
        "set_tcp_nodelay true",
        "persistent_client_expiration 14d",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages true",
    ]
    if passwords is not None and acl is not None:
        lines += ["allow_anonymous false", f"password_file {passwords}", f"acl_file {acl}"]
    else:
        lines += ["allow_anonymous true"]
    return "\n".join(lines) + "\n"


def acl_text(config: HallConfig) -> str:
    base = f"hall/v1/{config.hall.id}"
    lines = [
        "# Written by `hall broker config`: a device may publish only under its own id.",
        f"user {HUB_USER}",
        f"topic readwrite {base}/#",
        "",
        "# every device: its own commands and status out; its replies, queue state and events in",
        f"pattern write {base}/cmd/%u",
        f"pattern readwrite {base}/dev/%u/#",
        f"pattern read {base}/reply/%u",
        f"pattern read {base}/state/#",
        f"pattern read {base}/evt/#",
        f"pattern read {base}/hub/status",
        f"pattern read {base}/dev/+/status",
        "# ratings: a pad or kiosk hands in ratings, a counter case steps; each reads its answers and screen",
        f"pattern write {base}/rating/submit/%u",
        f"pattern write {base}/rating/case/%u",
        f"pattern read {base}/rating/reply/%u",
        f"pattern read {base}/pad/%u/screen",
        f"pattern write {base}/appt/%u",
        f"pattern read {base}/appt-reply/%u",
    ]
    return "\n".join(lines) + "\n"


def write_mosquitto_config(config: HallConfig, out: Path, port: int = 1883, bind: str = "0.0.0.0") -> list[Path]:
    users = [HUB_USER, *sorted({d.id for d in config.devices} | set(CONSOLE_USERS))]
    return _write(out, port, bind, users, acl_text(config), HALL_QUEUE_LIMITS,
                  "# Device logins for the hall broker: give each device its own, then delete this file.\n")


def county_acl_text(county: str) -> str:
    return "\n".join([
        "# Written by `hall county broker-config`: a hall may write only its own uplink.",
        "user ingest",
        "topic read county/v1/#",
        "",
        f"pattern write county/v1/{county}/hall/%u/up/#",
        f"pattern write county/v1/{county}/hall/%u/status",
    ]) + "\n"


def write_county_config(county: str, halls: list[str], out: Path, port: int = 8883,
                        bind: str = "0.0.0.0") -> list[Path]:
    """The county broker: one login per hall (its id), one for the ingest workers, no queue caps."""
    return _write(out, port, bind, ["ingest", *sorted(set(halls))], county_acl_text(county), COUNTY_QUEUE_LIMITS,
                  "# Hall logins for the county broker ([upstream] username/password of each hall) and the\n"
                  "# ingest workers' login: hand each out, then delete this file.\n")


def _write(out: Path, port: int, bind: str, users: list[str], acl_body: str, queue_limits: tuple[str, ...],
           header: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(exist_ok=True)
    credentials = {user: secrets.token_urlsafe(18) for user in users}
    passwords = out / "passwords"
    passwords.write_text("".join(password_line(u, p) + "\n" for u, p in credentials.items()))
    passwords.chmod(0o600)
    acl = out / "acl"
    acl.write_text(acl_body)
    secrets_file = out / "credentials.toml"
    secrets_file.write_text(header + tomli_w.dumps({"broker": {"port": port}, "credentials": credentials}))
    secrets_file.chmod(0o600)
    conf = out / "mosquitto.conf"
    conf.write_text(mosquitto_conf((out / "data").resolve(), port, bind, passwords.resolve(), acl.resolve(),
                                   queue_limits))
    return [conf, passwords, acl, secrets_file]
