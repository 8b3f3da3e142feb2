"""Alerts from the hub's own status: a device the hub holds back for flooding its status."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hallkit.broker.status import HallStatus, render_status
from hallkit.contracts.hall import FLOODING_DETAIL, DeviceState, DeviceStatus
from hallkit.dashboard.alerts import AlertBook, conditions
from hallkit.dashboard.views import AlertKind, Severity

from hallkit.config import parse_config
from hallkit.testing import HALL_WITH_DEVICES


def hub(flooding: str) -> DeviceStatus:
    return DeviceStatus(device="hub", state=DeviceState.ONLINE, session=3, kind="hub", version="1",
                        detail={"accepted": 5, "refused": 0, FLOODING_DETAIL: flooding})


def test_a_flooding_device_is_an_alert_in_words_and_a_line_of_hall_status():
    config = parse_config(HALL_WITH_DEVICES)
    found = conditions(config, None, hub("display-1"), [], [], date(2026, 11, 29))
    assert [(c.kind, c.subject, c.severity) for c in found] == [(AlertKind.STATUS_FLOOD, "display-1", Severity.WARNING)]
    published: list[tuple[str, bool]] = []
    (alert,) = AlertBook(lambda view, raised: published.append((view.id, raised))).update(
        found, datetime(2026, 11, 29, 9, tzinfo=UTC))
    assert alert.zh.startswith("设备 display-1 每秒多次上报状态") and "check the device" in alert.en
    assert published == [("status_flood:display-1", True)]
    assert conditions(config, None, hub(""), [], [], date(2026, 11, 29)) == []
    shown = render_status(HallStatus(hall="test-hall", hub=hub("display-1"), queue=None, devices=[]))
    assert "状态上报过于频繁、已限流的设备：display-1" in shown and "flooding their status: display-1" in shown
    assert "flooding" not in render_status(HallStatus(hall="test-hall", hub=hub(""), queue=None, devices=[]))
