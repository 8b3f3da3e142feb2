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


def mosquitto_conf(data_dir: Path, port: int, bind: str, passwords: Path | None, acl: Path | None) -> str:
    lines = [
        "# Written by `hall broker config`. Limits set on purpose: see docs/deployment.md.",
        "per_listener_settings false",
        f"listener {port} {bind}",
        "persistence true",
        f"persistence_location {data_dir}/",
        "autosave_interval 60",
        "# Mosquitto's default (1000) silently drops messages in a burst; a hall's burst is bounded",
        "# by its devices, so allow far more and cap by bytes instead.",
        "max_queued_messages 100000",
        "max_queued_bytes 268435456",
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
    out.mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(exist_ok=True)
    users = [HUB_USER, *sorted({d.id for d in config.devices} | set(CONSOLE_USERS))]
    credentials = {user: secrets.token_urlsafe(18) for user in users}
    passwords = out / "passwords"
    passwords.write_text("".join(password_line(u, p) + "\n" for u, p in credentials.items()))
    passwords.chmod(0o600)
    acl = out / "acl"
    acl.write_text(acl_text(config))
    secrets_file = out / "credentials.toml"
    secrets_file.write_text(
        "# Device logins for the hall broker: give each device its own, then delete this file.\n"
        + tomli_w.dumps({"broker": {"port": port}, "credentials": credentials})
    )
    secrets_file.chmod(0o600)
    conf = out / "mosquitto.conf"
    conf.write_text(mosquitto_conf((out / "data").resolve(), port, bind, passwords.resolve(), acl.resolve()))
    return [conf, passwords, acl, secrets_file]
