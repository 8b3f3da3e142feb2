"""``hall doctor``: a hall checked end to end, each finding with what to fix.

What it looks at comes in through :class:`Observations` (gathered by :func:`observe`, the only
part that talks to the broker and the machine); :func:`diagnose` turns them into findings and
is pure. The doctor never logs in as another process's login: a login's client id is its name,
so that would knock the running process off the broker. A login is checked instead by its
password file against the broker's password file, and live by its device's retained status.
"""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from hallkit.broker.client import HubError, read_hall
from hallkit.broker.mosquitto import hall_users, password_matches, read_passwords
from hallkit.contracts.hall import DeviceState, DeviceStatus
from hallkit.contracts.mqtt import BrokerAddress
from pydantic import BaseModel

from hallkit.config import DeviceKind, HallConfig
from hallkit.filemodes import TooOpen, exposed_secrets
from hallkit.i18n import Message

PAPER_TROUBLE = {"near_end": "doctor.paper_low", "out": "doctor.paper_out"}
CLOCK_DRIFT_SECONDS = 60
"""A hub status this far ahead of this machine's clock means one of the two clocks is wrong."""


STATUSLESS = {DeviceKind.COUNTER, DeviceKind.WEB}
"""Kinds that publish no status of their own: terminals, the dashboard, the phone page."""


def note(key: str, **params: str | int | float) -> Message:
    return Message(key=key, params=params)


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class Finding(BaseModel):
    check: str
    verdict: Verdict
    message: Message
    fix: Message | None = None


class LoginFile(BaseModel):
    """A login's password file beside the broker's password file (``hall broker config --out``)."""

    login: str
    found: bool
    matches: bool


class Observations(BaseModel):
    config_file: Path = Path("hall.toml")
    exposed: list[TooOpen] = []
    """The configuration and its password file where others may read them (the hub refuses them)."""
    broker_error: Message | None = None
    hub: DeviceStatus | None = None
    devices: dict[str, DeviceStatus] = {}
    logins: list[LoginFile] = []
    utc_offset_seconds: int
    ntp_synchronised: bool | None = None
    now: datetime


def observe(config: HallConfig, config_file: Path, address: BrokerAddress, broker_folder: Path | None,
            timeout: float) -> Observations:
    """Everything :func:`diagnose` judges: the hall's retained statuses, the login files, the clock."""
    broker_error = None
    hub = None
    devices: dict[str, DeviceStatus] = {}
    try:
        view = read_hall(address, config.hall.id, timeout=timeout)
        hub, devices = view.hub, view.devices
    except HubError as exc:
        broker_error = exc.message
    return Observations(config_file=config_file, exposed=exposed_secrets(config_file, config),
                        broker_error=broker_error, hub=hub, devices=devices,
                        logins=login_files(config, broker_folder) if broker_folder else [],
                        utc_offset_seconds=time.localtime().tm_gmtoff, ntp_synchronised=ntp_synchronised(),
                        now=datetime.now().astimezone())


def login_files(config: HallConfig, folder: Path) -> list[LoginFile]:
    hashes = read_passwords((folder / "passwords").read_text("utf-8"))
    found = []
    for login in hall_users(config):
        secret = folder / "secrets" / login
        password = secret.read_text("utf-8").strip() if secret.exists() else ""
        found.append(LoginFile(login=login, found=bool(password),
                               matches=bool(password) and password_matches(hashes.get(login, ""), password)))
    return found


def ntp_synchronised() -> bool | None:
    """What systemd-timesyncd (or chrony through timedated) says; None where nobody can say."""
    try:
        done = subprocess.run(["timedatectl", "show", "--property=NTPSynchronized", "--value"],
                              capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = done.stdout.strip()
    return {"yes": True, "no": False}.get(answer)


def diagnose(config: HallConfig, seen: Observations) -> list[Finding]:
    findings = [*_broker_and_hub(config, seen), *_secrets(seen), *_logins(seen), *_clock(config, seen)]
    if seen.broker_error is None and seen.hub is not None:
        findings += _devices(config, seen)
        if config.upstream is not None:
            findings += _uplink(config, seen.hub)
    return findings


def _broker_and_hub(config: HallConfig, seen: Observations) -> list[Finding]:
    if seen.broker_error is not None:
        return [Finding(check="broker", verdict=Verdict.FAIL, message=seen.broker_error,
                        fix=note("doctor.fix_broker"))]
    found = [Finding(check="broker", verdict=Verdict.OK, message=note("doctor.broker_ok"))]
    if seen.hub is None:
        return [*found, Finding(check="hub", verdict=Verdict.FAIL,
                                message=note("doctor.hub_never", hall=config.hall.id),
                                fix=note("doctor.fix_hub"))]
    if seen.hub.state is not DeviceState.ONLINE:
        return [*found, Finding(check="hub", verdict=Verdict.FAIL,
                                message=note("doctor.hub_offline", hall=config.hall.id),
                                fix=note("doctor.fix_hub"))]
    return [*found, Finding(check="hub", verdict=Verdict.OK,
                            message=note("doctor.hub_ok", hall=config.hall.id, session=seen.hub.session))]


def _secrets(seen: Observations) -> list[Finding]:
    if not seen.exposed:
        return [Finding(check="secrets", verdict=Verdict.OK, message=note("doctor.secrets_ok", path=str(seen.config_file)))]
    return [Finding(check=f"file {found.path}", verdict=Verdict.FAIL, message=found.problem, fix=found.fix)
            for found in seen.exposed]


def _logins(seen: Observations) -> list[Finding]:
    findings = []
    for login in seen.logins:
        if not login.found:
            findings.append(Finding(check=f"login {login.login}", verdict=Verdict.WARN,
                                    message=note("doctor.login_missing", login=login.login),
                                    fix=note("doctor.fix_login", login=login.login)))
        elif not login.matches:
            findings.append(Finding(check=f"login {login.login}", verdict=Verdict.FAIL,
                                    message=note("doctor.login_mismatch", login=login.login),
                                    fix=note("doctor.fix_login", login=login.login)))
        else:
            findings.append(Finding(check=f"login {login.login}", verdict=Verdict.OK,
                                    message=note("doctor.login_ok", login=login.login)))
    return findings


def _devices(config: HallConfig, seen: Observations) -> list[Finding]:
    findings = []
    for device in config.devices:
        status = seen.devices.get(device.id)
        check = f"device {device.id}"
        if status is None and device.kind in STATUSLESS:
            continue
        if status is None:
            findings.append(Finding(check=check, verdict=Verdict.FAIL,
                                    message=note("doctor.device_never", device=device.id, kind=device.kind.value),
                                    fix=note("doctor.fix_device", device=device.id)))
        elif status.state is not DeviceState.ONLINE:
            findings.append(Finding(check=check, verdict=Verdict.FAIL,
                                    message=note("doctor.device_offline", device=device.id,
                                                    since=status.ts.astimezone(config.hall.zone).strftime("%m-%d %H:%M")),
                                    fix=note("doctor.fix_device", device=device.id)))
        else:
            paper = str(status.detail.get("paper", ""))
            problems = "; ".join(f"{p.zh} / {p.en}" for p in status.problems)
            if paper in PAPER_TROUBLE:
                findings.append(Finding(check=check, verdict=Verdict.FAIL if paper == "out" else Verdict.WARN,
                                        message=note(PAPER_TROUBLE[paper], device=device.id),
                                        fix=note("doctor.fix_paper", device=device.id)))
            elif problems:
                findings.append(Finding(check=check, verdict=Verdict.WARN,
                                        message=note("doctor.device_problems", device=device.id,
                                                        problems=problems)))
            else:
                findings.append(Finding(check=check, verdict=Verdict.OK,
                                        message=note("doctor.device_ok", device=device.id,
                                                        version=status.version or "-")))
    return findings


def _clock(config: HallConfig, seen: Observations) -> list[Finding]:
    findings = []
    hall_offset = seen.now.astimezone(config.hall.zone).utcoffset()
    hall_seconds = int(hall_offset.total_seconds()) if hall_offset is not None else 0
    if hall_seconds != seen.utc_offset_seconds:
        findings.append(Finding(check="clock", verdict=Verdict.WARN,
                                message=note("doctor.zone_differs", zone=config.hall.timezone,
                                                here=f"{seen.utc_offset_seconds / 3600:+g}",
                                                hall=f"{hall_seconds / 3600:+g}"),
                                fix=note("doctor.fix_zone", zone=config.hall.timezone)))
    if seen.hub is not None and (seen.hub.ts - seen.now).total_seconds() > CLOCK_DRIFT_SECONDS:
        findings.append(Finding(check="clock", verdict=Verdict.WARN,
                                message=note("doctor.hub_ahead",
                                                seconds=round((seen.hub.ts - seen.now).total_seconds())),
                                fix=note("doctor.fix_ntp")))
    if seen.ntp_synchronised is False:
        findings.append(Finding(check="clock", verdict=Verdict.WARN, message=note("doctor.ntp_off"),
                                fix=note("doctor.fix_ntp")))
    if not findings:
        findings.append(Finding(check="clock", verdict=Verdict.OK,
                                message=note("doctor.clock_ok", zone=config.hall.timezone,
                                                ntp={True: "NTP", None: "?"}[seen.ntp_synchronised])))
    return findings


def _uplink(config: HallConfig, hub: DeviceStatus) -> list[Finding]:
    assert config.upstream is not None
    detail = hub.detail
    if "uplink.connected" not in detail:
        return [Finding(check="uplink", verdict=Verdict.FAIL, message=note("doctor.uplink_off"),
                        fix=note("doctor.fix_uplink_restart"))]
    backlog = int(detail.get("uplink.backlog") or 0)
    overdue = float(detail.get("uplink.oldest_awaiting_seconds") or 0.0)
    findings = []
    if not detail["uplink.connected"]:
        findings.append(Finding(check="uplink", verdict=Verdict.FAIL,
                                message=note("doctor.uplink_down", broker=config.upstream.broker,
                                                backlog=backlog),
                                fix=note("doctor.fix_uplink")))
    elif overdue > config.upstream.receipt_timeout_seconds:
        findings.append(Finding(check="uplink", verdict=Verdict.WARN,
                                message=note("doctor.receipts_overdue", seconds=round(overdue),
                                                awaiting=int(detail.get("uplink.awaiting_receipt") or 0)),
                                fix=note("doctor.fix_receipts")))
    if detail.get("uplink.alarm") or int(detail.get("uplink.dropped") or 0):
        findings.append(Finding(check="uplink", verdict=Verdict.WARN,
                                message=note("doctor.uplink_full", dropped=int(detail.get("uplink.dropped") or 0)),
                                fix=note("doctor.fix_uplink")))
    if not findings:
        findings.append(Finding(check="uplink", verdict=Verdict.OK,
                                message=note("doctor.uplink_ok", backlog=backlog)))
    return findings


def render(findings: list[Finding]) -> str:
    marks = {Verdict.OK: "✓", Verdict.WARN: "!", Verdict.FAIL: "✗"}
    lines = []
    for finding in findings:
        lines.append(f"{marks[finding.verdict]} {finding.check}: {finding.message.bilingual()}")
        if finding.fix is not None and finding.verdict is not Verdict.OK:
            lines.append(f"    → {finding.fix.bilingual()}")
    return "\n".join(lines)

