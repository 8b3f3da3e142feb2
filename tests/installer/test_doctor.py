"""`hall doctor`'s judgement: each observation of a hall becomes a finding with what to fix (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hallkit.broker.doctor import LoginFile, Observations, Verdict, diagnose, render
from hallkit.contracts.hall import DeviceState, DeviceStatus

from hallkit.config import parse_config
from hallkit.i18n import Message
from hallkit.testing import HALL_WITH_DEVICES

UPSTREAM = '\n[upstream]\nbroker = "mqtts://county.example:8883"\npassword_file = "/etc/hallkit/upstream.secret"\n'
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SHANGHAI = 8 * 3600


def status(device: str, state: DeviceState = DeviceState.ONLINE, **detail: object) -> DeviceStatus:
    return DeviceStatus(device=device, state=state, detail=detail, ts=NOW)  # type: ignore[arg-type]


def verdicts(findings) -> dict[str, Verdict]:  # noqa: ANN001
    return {f.check: max((g.verdict for g in findings if g.check == f.check),
                         key=[Verdict.OK, Verdict.WARN, Verdict.FAIL].index) for f in findings}


def test_a_healthy_hall_is_all_ok():
    config = parse_config(HALL_WITH_DEVICES + UPSTREAM)
    hub = status("hub", **{"uplink.connected": True, "uplink.backlog": 3, "uplink.oldest_awaiting_seconds": 1.0})
    devices = {d.id: status(d.id, paper="ok") for d in config.devices}
    seen = Observations(hub=hub, devices=devices, logins=[LoginFile(login="hub", found=True, matches=True)],
                        utc_offset_seconds=SHANGHAI, ntp_synchronised=True, now=NOW)
    findings = diagnose(config, seen)
    assert set(verdicts(findings).values()) == {Verdict.OK}, render(findings)
    assert "→" not in render(findings)


def test_each_problem_is_named_with_its_fix():
    config = parse_config(HALL_WITH_DEVICES + UPSTREAM)
    hub = status("hub", **{"uplink.connected": True, "uplink.oldest_awaiting_seconds": 600.0,
                           "uplink.awaiting_receipt": 40})
    devices = {d.id: status(d.id) for d in config.devices}
    devices["kiosk-1"] = status("kiosk-1", DeviceState.OFFLINE)
    devices["pad-2"] = status("pad-2", paper="out")
    del devices["display-1"]
    seen = Observations(hub=hub, devices=devices,
                        logins=[LoginFile(login="pad-1", found=True, matches=False),
                                LoginFile(login="pad-2", found=False, matches=False)],
                        utc_offset_seconds=0, ntp_synchronised=False, now=NOW)
    findings = diagnose(config, seen)
    found = verdicts(findings)
    assert found["device kiosk-1"] is Verdict.FAIL and found["device display-1"] is Verdict.FAIL
    assert found["device pad-2"] is Verdict.FAIL and found["login pad-1"] is Verdict.FAIL
    assert found["login pad-2"] is Verdict.WARN and found["uplink"] is Verdict.WARN and found["clock"] is Verdict.WARN
    text = render(findings)
    assert "timedatectl set-timezone Asia/Shanghai" in text and "timedatectl set-ntp true" in text
    assert "receipts are 600 s overdue (40 items await one)" in text and "load paper into pad-2" in text
    assert all(f.fix is not None for f in findings if f.verdict is not Verdict.OK)
    assert "{" not in text  # every message has its parameters


def test_an_unreachable_broker_or_a_dead_hub_stops_there():
    config = parse_config(HALL_WITH_DEVICES + UPSTREAM)
    refused = Message(key="login.refused_not_authorised", params={"broker": "mqtt://h:1883", "login": "console"})
    seen = Observations(broker_error=refused, utc_offset_seconds=SHANGHAI, now=NOW)
    found = verdicts(diagnose(config, seen))
    assert found["broker"] is Verdict.FAIL and not any(check.startswith("device") for check in found)
    down = Observations(hub=status("hub", **{"uplink.connected": False, "uplink.backlog": 12}),
                        utc_offset_seconds=SHANGHAI, now=NOW + timedelta(seconds=1))
    text = render(diagnose(config, down))
    assert "the uplink to mqtts://county.example:8883 is down; 12 items wait" in text
