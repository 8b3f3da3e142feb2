"""Mosquitto configuration for a hall and for the county: listener, persistence, queue limits, logins, ACLs.

Mosquitto's defaults do not suit a hall: ``max_queued_messages 1000`` drops
messages in a burst, even QoS 0 to an online client, and persistence is off.
The limits below are set on purpose (see docs/deployment.md). Each device
gets its own password and may publish only under its own id; the hub may
read and write the whole hall.

A second connection with a client id already in use displaces the first,
whatever its login, so every login is tied to one client id, its own name:
the hall broker replaces the client id by the username
(``use_username_as_clientid``); the county broker, which must also refuse a
hall's ``SUBSCRIBE $share/ingest/...`` (an ``acl_file`` cannot: Mosquitto 2.0
grants every SUBSCRIBE and only drops the messages at the read check, after
the publisher got its PUBACK), runs the dynamic-security plugin, whose clients
have a fixed client id and whose roles grant subscriptions. The same
password and ACL files also drive the embedded broker (:mod:`broker.embedded`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import pwd
import secrets
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import paho.mqtt.client as mqtt
import tomli_w
from pydantic import BaseModel, Field, ValidationError

from hallkit.config import HallConfig

if TYPE_CHECKING:
    # Only the county's broker configuration makes certificates: the hub, which imports this
    # module for its logins, does not load cryptography (about 70 ms of every hub start).
    from hallkit.broker.certificates import TlsFiles

PBKDF2_ITERATIONS = 101
"""What mosquitto_passwd writes for the ``$7$`` (PBKDF2-SHA512) format."""

HUB_USER = "hub"
HUB_STATUS_USER = "hub-status"
"""The hub's second login, for its watch on device statuses (:mod:`broker.status_watch`): it may
only read them. Its password is derived from the hub's, so the hub still takes one secret."""
CONSOLE_USERS = ("console",)
INGEST_USER = "ingest-{n}"
"""One login per county ingest worker: a login has one connection, so workers cannot share one."""
DYNSEC_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
"""Where Debian's mosquitto package puts the plugin (``dpkg -L mosquitto``)."""
DYNSEC_CONTROL = "$CONTROL/dynamic-security/v1"
"""Where the dynamic-security plugin takes its commands (Mosquitto 2.0)."""


def _pbkdf2(password: str, salt: bytes, iterations: int = PBKDF2_ITERATIONS) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


def password_line(user: str, password: str, salt: bytes | None = None) -> str:
    """One line of a Mosquitto password file in the ``$7$`` PBKDF2-SHA512 format."""
    salt = salt or secrets.token_bytes(12)
    digest = _pbkdf2(password, salt)
    return f"{user}:$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def hub_status_password(hub_password: str) -> str:
    """The status login's password: a keyed hash of the hub's, which it does not reveal."""
    digest = hmac.new(hub_password.encode(), b"hallkit hub-status login", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def read_passwords(text: str) -> dict[str, str]:
    """A Mosquitto password file: user → its ``$7$`` hash."""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def password_matches(hashed: str, password: str) -> bool:
    """Whether ``password`` is the one a ``$7$`` line of :func:`password_line` was made from."""
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7":
            return False
        return hmac.compare_digest(_pbkdf2(password, base64.b64decode(salt), int(iterations)), base64.b64decode(digest))
    except ValueError:  # not five fields, bad number or bad base64: no password matches a broken line
        return False


class Access(StrEnum):
    READ = "read"
    WRITE = "write"


class AclRule(BaseModel):
    user: str | None
    """The ``user`` section the rule is in; None for a ``pattern`` (every login, ``%u`` its name)."""
    access: Literal["read", "write", "readwrite", "deny"]
    topic: str


class AclRules(BaseModel):
    """A Mosquitto ``acl_file`` as Mosquitto 2.0 reads it, for the embedded broker to apply the same rules.

    A topic is allowed when a rule of the login (its ``user`` lines, then every ``pattern``
    with ``%u`` and ``%c`` replaced) grants the access; a matching ``deny`` refuses it.
    """

    rules: list[AclRule] = Field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> AclRules:
        rules: list[AclRule] = []
        user: str | None = None
        for raw in text.splitlines():
            words = raw.split(maxsplit=2)
            if not words or words[0].startswith("#"):
                continue
            match words:
                case ["user", name]:
                    user = name
                    continue
                case ["topic" | "pattern" as kind, topic]:
                    access = "readwrite"
                case ["topic" | "pattern" as kind, access, topic]:
                    pass
                case _:
                    raise ValueError(f"ACL line not understood: {raw!r}")
            if kind == "topic" and user is None:
                continue  # anonymous rules: the hall's brokers have no anonymous clients
            rules.append(AclRule.model_validate({"user": user if kind == "topic" else None,
                                                 "access": access, "topic": topic}))
        return cls(rules=rules)

    def allows(self, user: str, client_id: str, topic: str, access: Access) -> bool:
        granted = False
        for rule in self.rules:
            if rule.user is not None and rule.user != user:
                continue
            pattern = rule.topic if rule.user is not None else rule.topic.replace("%u", user).replace("%c", client_id)
            if not mqtt.topic_matches_sub(pattern, topic):
                continue
            if rule.access == "deny":
                return False
            granted = granted or access.value in rule.access
        return granted


class Logins(BaseModel):
    """``credentials.toml``: the plain passwords of a broker's logins, for whoever hands them out."""

    port: int
    credentials: dict[str, str]

    @classmethod
    def read(cls, path: Path) -> Logins:
        try:
            data = tomllib.loads(path.read_text("utf-8"))
            return cls(port=data["broker"]["port"], credentials=data["credentials"])
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValidationError) as exc:
            raise ValueError(f"{path}: not a logins file written by hallkit ({exc})") from None

    def password(self, user: str) -> str | None:
        return self.credentials.get(user)


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
                   queue_limits: tuple[str, ...] = HALL_QUEUE_LIMITS, tls: TlsFiles | None = None,
                   dynsec: Path | None = None, plugin: str = DYNSEC_PLUGIN) -> str:
    lines = [
        "# Written by hallkit. Limits set on purpose: see docs/deployment.md.",
        "per_listener_settings false",
        f"listener {port} {bind}",
        *(tls_lines(tls) if tls is not None else ()),
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
        lines += ["allow_anonymous false", f"password_file {passwords}", f"acl_file {acl}",
                  "# A login's client id is its name: nobody can displace another login's connection.",
                  "use_username_as_clientid true"]
        if dynsec is not None:
            lines += ["# Holds no logins: the files above do. It lets the hub disconnect a device that floods",
                      "# the broker, and keep it out a while (see broker/mosquitto.py: lock_out_login).",
                      f"plugin {plugin}", f"plugin_opt_config_file {dynsec}"]
    else:
        lines += ["allow_anonymous true"]
    return "\n".join(lines) + "\n"


def tls_lines(tls: TlsFiles) -> list[str]:
    """The listener's TLS: the county's server certificate; clients check it against the county CA."""
    return ["# TLS: halls check this certificate against ca.pem (their [upstream] ca_file).",
            f"certfile {tls.server_cert.resolve()}", f"keyfile {tls.server_key.resolve()}",
            f"cafile {tls.ca_cert.resolve()}", "tls_version tlsv1.2"]


def acl_text(config: HallConfig) -> str:
    base = f"hall/v1/{config.hall.id}"
    shared_reads = [f"{base}/state/#", f"{base}/evt/#", f"{base}/hub/status", f"{base}/dev/+/status"]
    devices = [user for user in hall_users(config) if user != HUB_USER]
    lines = [
        "# Written by `hall broker config`: a device may publish only under its own id.",
        f"user {HUB_USER}",
        f"topic readwrite {base}/#",
        "# the hub may have the broker disconnect a device flooding it (the dynamic-security plugin's commands)",
        f"topic write {DYNSEC_CONTROL}",
        f"user {HUB_STATUS_USER}",
        f"topic read {base}/dev/+/status",
        "",
        "# every device reads the queue state, the events and everyone's status (a pattern without %u",
        "# would do, but Mosquitto warns about each at start)",
        *(line for user in devices for line in (f"user {user}", *(f"topic read {t}" for t in shared_reads))),
        "",
        "# every device: its own commands and status out; its replies in",
        f"pattern write {base}/cmd/%u",
        f"pattern readwrite {base}/dev/%u/#",
        f"pattern read {base}/reply/%u",
        "# ratings: a pad or kiosk hands in ratings, a counter case steps; each reads its answers and screen",
        f"pattern write {base}/rating/submit/%u",
        f"pattern write {base}/rating/case/%u",
        f"pattern read {base}/rating/reply/%u",
        f"pattern read {base}/pad/%u/screen",
        f"pattern write {base}/appt/%u",
        f"pattern read {base}/appt-reply/%u",
    ]
    return "\n".join(lines) + "\n"


HALL_LOGINS_HEADER = "# Device logins for the hall broker: give each device its own, then delete this file.\n"


def hall_users(config: HallConfig) -> list[str]:
    return [HUB_USER, *sorted({d.id for d in config.devices} | set(CONSOLE_USERS))]


class LoginsWritten(BaseModel):
    """What a broker configuration writer did with the logins: kept as they were, or new."""

    paths: list[Path]
    kept: list[str]
    added: list[str]


def write_mosquitto_config(config: HallConfig, out: Path, port: int = 1883, bind: str = "0.0.0.0",
                           add: bool = False) -> LoginsWritten:
    """The hall broker's configuration; with ``add``, the logins of the one already in ``out`` keep
    their passwords (devices keep working) and only new devices get a login, in credentials.toml."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(exist_ok=True)
    users = hall_users(config)
    kept = {u: h for u, h in read_passwords((out / "passwords").read_text()).items()
            if u in users or u == HUB_STATUS_USER} \
        if add and (out / "passwords").exists() else {}
    derived = []
    hub_secret = out / "secrets" / HUB_USER
    if HUB_USER in kept and HUB_STATUS_USER not in kept and hub_secret.exists():
        # A configuration from before the hub had its status login: the hub's own password file,
        # still here, gives it (the hub derives the same from the password it is handed).
        kept[HUB_STATUS_USER] = password_line(HUB_STATUS_USER, hub_status_password(
            hub_secret.read_text("utf-8").strip())).split(":", 1)[1]
        derived = [HUB_STATUS_USER]
    logins = write_logins(out, port, [u for u in users if u not in kept], HALL_LOGINS_HEADER)
    passwords, acl = write_hall_access(config, out, logins, kept)
    dynsec = out / "dynamic-security.json"
    if not dynsec.exists():  # the plugin rewrites it: one already there is the broker's
        dynsec.touch(mode=0o600)
        dynsec.write_text(DynsecConfig(clients=[], roles=[]).model_dump_json(indent=1))
    conf = out / "mosquitto.conf"
    conf.write_text(mosquitto_conf((out / "data").resolve(), port, bind, passwords.resolve(), acl.resolve(),
                                   dynsec=dynsec.resolve()))
    hand_to_broker(out, readable=[conf, passwords, acl], writable=[dynsec])
    secrets_folder = write_password_files(out, logins)
    return LoginsWritten(paths=[conf, passwords, acl, dynsec, out / "credentials.toml", secrets_folder],
                         kept=sorted(set(kept) - set(derived)), added=sorted([*logins.credentials, *derived]))


def write_password_files(out: Path, logins: Logins) -> Path:
    """``secrets/<login>``: each login's password alone, for its process's ``--password-file``
    (or a systemd unit's ``LoadCredential=``); copy each to the machine that logs in with it."""
    folder = out / "secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    for user, password in logins.credentials.items():
        path = folder / user
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(password + "\n")
    return folder


BROKER_USER = "mosquitto"
"""The user Debian's mosquitto drops to when started as root (its ``user`` default)."""


def hand_to_broker(out: Path, readable: list[Path], writable: list[Path]) -> None:
    """Let Mosquitto read (and for ``writable`` write) its files, and nobody else.

    Started as root (Debian's service, or ``sudo mosquitto -c``), Mosquitto drops to user
    ``mosquitto`` before it opens the password, ACL and plugin files and its persistence folder:
    they go to group ``mosquitto``, 0640, the data folder and the plugin's file (which the
    plugin rewrites) to user ``mosquitto``. Run by a plain user, it stays that user: 0600 then.
    ``credentials.toml`` (plain passwords) stays its writer's alone.
    """
    data = out / "data"
    owner = _broker_ids() if os.geteuid() == 0 else None
    for path in readable:
        path.chmod(0o640 if owner else 0o600)
    for path in [*writable, data]:
        path.chmod(0o700 if path.is_dir() else 0o600)
    if owner is not None:
        uid, gid = owner
        out.chmod(0o750)
        for path in [out, *readable]:
            os.chown(path, 0, gid)
        for path in [*writable, data]:
            os.chown(path, uid, gid)


def _broker_ids() -> tuple[int, int] | None:
    try:
        entry = pwd.getpwnam(BROKER_USER)
    except KeyError:  # no Debian mosquitto user: it runs as whoever starts it
        return None
    return entry.pw_uid, entry.pw_gid


def unreachable_folders(out: Path) -> list[Path]:
    """Folders above ``out`` that Mosquitto, once it is user mosquitto, cannot pass through."""
    owner = _broker_ids() if os.geteuid() == 0 else None
    if owner is None:
        return []
    uid, gid = owner
    blocked = []
    for folder in out.resolve().parents:
        st = folder.stat()
        allowed = (st.st_mode & 0o001 or (st.st_gid == gid and st.st_mode & 0o010)
                   or (st.st_uid == uid and st.st_mode & 0o100))
        if not allowed:
            blocked.append(folder)
    return blocked


def write_hall_access(config: HallConfig, out: Path, logins: Logins,
                      kept: dict[str, str] | None = None) -> tuple[Path, Path]:
    """The password file and the ACL of a hall broker (Mosquitto's or the embedded one); ``kept``
    are logins (user → hash) already handed out, written as they were."""
    kept = dict(kept or {})
    hub = logins.credentials.get(HUB_USER)
    if hub is not None:  # a new or re-read hub password: its status login follows it
        kept.pop(HUB_STATUS_USER, None)
    lines = [f"{u}:{h}\n" for u, h in kept.items()]
    lines += [password_line(u, p) + "\n" for u, p in logins.credentials.items()]
    if hub is not None:
        lines.append(password_line(HUB_STATUS_USER, hub_status_password(hub)) + "\n")
    # A hub login kept by hash from a configuration older than the status login: none can be
    # derived; that hub reads statuses on its request connection and says so.
    passwords = out / "passwords"
    passwords.write_text("".join(lines))
    passwords.chmod(0o600)
    acl = out / "acl"
    acl.write_text(acl_text(config))
    return passwords, acl


def write_logins(out: Path, port: int, users: list[str], header: str) -> Logins:
    """``credentials.toml`` with a password for each of ``users``; passwords already in it are kept,
    so running this again does not lock out a device that has its password."""
    path = out / "credentials.toml"
    known = Logins.read(path).credentials if path.exists() else {}
    logins = Logins(port=port, credentials={u: known.get(u) or secrets.token_urlsafe(18) for u in users})
    path.touch(mode=0o600)
    path.chmod(0o600)  # before the passwords go in
    path.write_text(header + tomli_w.dumps({"broker": {"port": port}, "credentials": logins.credentials}))
    return logins


# ---- the county broker: the dynamic-security plugin ---------------------------------------------


class DynsecAcl(BaseModel):
    acltype: Literal["publishClientSend", "publishClientReceive", "subscribeLiteral", "subscribePattern"]
    topic: str
    priority: int = 0
    allow: bool = True


class DynsecRole(BaseModel):
    rolename: str
    acls: list[DynsecAcl]


class DynsecRoleRef(BaseModel):
    rolename: str


class DynsecClient(BaseModel):
    username: str
    clientid: str
    """The only client id this login may connect with (any other gets "not authorised")."""
    password: str
    salt: str
    iterations: int
    roles: list[DynsecRoleRef]


class DynsecDefaults(BaseModel):
    publishClientSend: bool = False  # noqa: N815 - the plugin's JSON names
    publishClientReceive: bool = False  # noqa: N815
    subscribe: bool = False
    unsubscribe: bool = True


class DynsecConfig(BaseModel):
    """The dynamic-security plugin's JSON file (Mosquitto 2.0)."""

    defaultACLAccess: DynsecDefaults = Field(default_factory=DynsecDefaults)  # noqa: N815
    clients: list[DynsecClient]
    groups: list[str] = Field(default_factory=list)
    roles: list[DynsecRole]


class DynsecCommand(BaseModel):
    """One command to the dynamic-security plugin, sent on :data:`DYNSEC_CONTROL`."""

    command: Literal["createClient", "disableClient", "deleteClient"]
    username: str
    password: str | None = None


class DynsecCommands(BaseModel):
    commands: list[DynsecCommand]


def lock_out_login(username: str) -> bytes:
    """The plugin's commands that end every connection of ``username`` and refuse it until
    :func:`let_in_login`.

    MQTT lets no client end another's connection. A hall's logins live in the password file, not
    in the plugin; but the plugin answers for every name it holds, before the password file: given
    a login of that name under a random password nobody holds, and that login disabled (which ends
    its connections), the device's own password is refused. Deleting it gives the name back to
    the password file.
    """
    return DynsecCommands(commands=[
        DynsecCommand(command="createClient", username=username, password=secrets.token_urlsafe(18)),
        DynsecCommand(command="disableClient", username=username),
    ]).model_dump_json(exclude_none=True).encode()


def let_in_login(*usernames: str) -> bytes:
    """The plugin's commands that give ``usernames`` back to the password file (a name the plugin
    does not hold is refused by it, harmlessly)."""
    return DynsecCommands(commands=[DynsecCommand(command="deleteClient", username=u) for u in usernames]
                          ).model_dump_json(exclude_none=True).encode()


def ingest_users(workers: int) -> list[str]:
    return [INGEST_USER.format(n=n) for n in range(1, workers + 1)]


def county_dynsec(county: str, halls: list[str], logins: Logins) -> DynsecConfig:
    """Ingest logins read the uplink and write receipts; each hall writes its uplink and reads its receipts.

    Only ingest logins may subscribe to ``$share/...`` or to another hall's topics: the plugin
    refuses any other SUBSCRIBE (SUBACK 0x80), so a hall cannot take a share of the county's
    traffic. Mosquitto 2.0.11's plugin does not expand ``%u`` in ACLs, so each hall has its own role.
    """
    root = f"county/v1/{county}/hall"
    ingest = DynsecRole(rolename="ingest", acls=[
        DynsecAcl(acltype="subscribePattern", topic="$share/+/county/v1/#"),
        DynsecAcl(acltype="publishClientReceive", topic=f"{root}/+/up/#"),
        DynsecAcl(acltype="publishClientReceive", topic=f"{root}/+/status"),
        DynsecAcl(acltype="publishClientSend", topic=f"{root}/+/receipt"),
    ])
    hall_roles = [DynsecRole(rolename=f"hall-{hall}", acls=[
        DynsecAcl(acltype="publishClientSend", topic=f"{root}/{hall}/up/#"),
        DynsecAcl(acltype="publishClientSend", topic=f"{root}/{hall}/status"),
        DynsecAcl(acltype="subscribeLiteral", topic=f"{root}/{hall}/receipt"),
        DynsecAcl(acltype="publishClientReceive", topic=f"{root}/{hall}/receipt"),
    ]) for hall in halls]
    clients = []
    for user, password in logins.credentials.items():
        salt = secrets.token_bytes(12)
        clients.append(DynsecClient(
            username=user, clientid=user, password=base64.b64encode(_pbkdf2(password, salt)).decode(),
            salt=base64.b64encode(salt).decode(), iterations=PBKDF2_ITERATIONS,
            roles=[DynsecRoleRef(rolename="ingest" if user not in halls else f"hall-{user}")]))
    return DynsecConfig(clients=clients, roles=[ingest, *hall_roles])


def write_county_config(county: str, halls: list[str], out: Path, port: int = 8883, bind: str = "0.0.0.0",
                        workers: int = 2, plugin: str = DYNSEC_PLUGIN, tls_names: list[str] | None = None,
                        add: bool = False) -> LoginsWritten:
    """The county broker: one login per hall (its id), one per ingest worker, no queue caps; with
    ``add``, the logins of the configuration already in ``out`` keep their passwords.

    With ``tls_names`` (the names and addresses halls reach the broker by) the listener speaks
    TLS with a server certificate of the county's own CA, both made here where missing.
    """
    halls = sorted(set(halls))
    if clash := set(halls) & set(ingest_users(workers)):
        raise ValueError(f"hall ids {sorted(clash)} are the names of ingest logins")
    out.mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(exist_ok=True)
    dynsec = out / "dynamic-security.json"
    users = [*ingest_users(workers), *halls]
    before = DynsecConfig.model_validate_json(dynsec.read_text()).clients if add and dynsec.exists() else []
    kept = [c for c in before if c.username in users]
    logins = write_logins(out, port, [u for u in users if u not in {c.username for c in kept}],
                          "# Hall logins for the county broker ([upstream] username/password of each hall) and\n"
                          "# one login per ingest worker (hall county ingest --worker N): hand each out, then\n"
                          "# delete this file.\n")
    access = county_dynsec(county, halls, logins)
    access.clients = kept + access.clients
    dynsec.touch(mode=0o600)
    dynsec.chmod(0o600)
    dynsec.write_text(json.dumps(access.model_dump(), indent=1))
    from hallkit.broker.certificates import ensure_tls  # noqa: PLC0415 (cryptography: not at the hub's start)

    tls, certificates = ensure_tls(out, county, tls_names) if tls_names else (None, [])
    conf = out / "mosquitto.conf"
    text = mosquitto_conf((out / "data").resolve(), port, bind, None, None, COUNTY_QUEUE_LIMITS, tls)
    text = text.replace("allow_anonymous true\n", "\n".join([
        "allow_anonymous false",
        "# Logins, their fixed client ids and their rights; the plugin can refuse a SUBSCRIBE, an acl_file cannot.",
        f"plugin {plugin}",
        f"plugin_opt_config_file {dynsec.resolve()}",
    ]) + "\n")
    conf.write_text(text)
    served = [tls.ca_cert, tls.server_cert, tls.server_key] if tls else []
    hand_to_broker(out, readable=[conf, *served], writable=[dynsec])
    secrets_folder = write_password_files(out, logins)
    return LoginsWritten(paths=[conf, dynsec, out / "credentials.toml", secrets_folder, *certificates],
                         kept=sorted(c.username for c in kept), added=sorted(logins.credentials))
