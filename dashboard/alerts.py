"""Alerts: conditions the manager must see, raised and cleared as the hall changes.

Each alert has an id (kind and subject) that lasts as long as the condition; the
:class:`AlertBook` remembers when each began, so a page and the MQTT notices say "since",
and publishes one notice when an alert is raised and one when it clears.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from hallkit.contracts.hall import FLOODING_DETAIL, DeviceState, DeviceStatus, QueueSnapshot
from hallkit.dashboard.views import AlertKind, AlertView, Severity
from pydantic import BaseModel, ConfigDict, Field

from hallkit.config import DashboardSettings, HallConfig
from hallkit.i18n import text

LOW_PAPER = ("near_end", "out")
"""Printer ``detail.paper`` values that need a new roll (devices/printer/status.py PaperLevel)."""


class CaseDue(BaseModel):
    """An unfinished bad-rating case and its deadline, as the alert rules need it."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    ticket_number: str
    window: int
    deadline: date


class Condition(BaseModel):
    """An alert before it has a 'since': what is wrong now."""

    model_config = ConfigDict(frozen=True)

    kind: AlertKind
    subject: str
    severity: Severity
    params: dict[str, str | int | float]
    variant: str = Field("", description="a finer message than the kind's, e.g. paper out rather than low")

    @property
    def id(self) -> str:
        return f"{self.kind.value}:{self.subject}"


def conditions(config: HallConfig, snapshot: QueueSnapshot | None, hub: DeviceStatus | None,
               devices: list[DeviceStatus], cases: list[CaseDue], today: date) -> list[Condition]:
    """Everything wrong in the hall now, by the thresholds of ``[dashboard]``."""
    limits: DashboardSettings = config.dashboard
    found: list[Condition] = []
    if hub is not None and hub.state is DeviceState.OFFLINE:
        found.append(Condition(kind=AlertKind.HUB_OFFLINE, subject="hub", severity=Severity.CRITICAL, params={}))
    if hub is not None and hub.state is DeviceState.ONLINE:
        # The hub's status watch names the devices it held back for flooding their status.
        flooding = str(hub.detail.get(FLOODING_DETAIL) or "")
        found += [Condition(kind=AlertKind.STATUS_FLOOD, subject=device, severity=Severity.WARNING,
                            params={"device": device}) for device in flooding.split(",") if device]
    if snapshot is not None:
        for service in snapshot.services:
            if service.waiting >= limits.alert_queue_length:
                found.append(Condition(kind=AlertKind.QUEUE_LONG, subject=service.service_id,
                                       severity=Severity.WARNING,
                                       params={"service": service.name, "waiting": service.waiting,
                                               "limit": limits.alert_queue_length}))
            minutes = service.longest_wait_seconds / 60
            if minutes >= limits.alert_wait_minutes:
                found.append(Condition(kind=AlertKind.WAIT_LONG, subject=service.service_id,
                                       severity=Severity.WARNING,
                                       params={"service": service.name, "minutes": round(minutes),
                                               "limit": round(limits.alert_wait_minutes)}))
    for status in devices:
        if status.state is DeviceState.OFFLINE:
            found.append(Condition(kind=AlertKind.DEVICE_OFFLINE, subject=status.device,
                                   severity=Severity.CRITICAL,
                                   params={"device": status.device}))
        paper = status.detail.get("paper")
        if paper in LOW_PAPER:
            out = paper == "out"
            found.append(Condition(kind=AlertKind.PAPER_LOW, subject=status.device,
                                   severity=Severity.CRITICAL if out else Severity.WARNING,
                                   params={"device": status.device}, variant="paper_out" if out else ""))
    warn_until = today + timedelta(days=limits.case_warning_days)
    for case in cases:
        if today > case.deadline:
            found.append(Condition(kind=AlertKind.CASE_OVERDUE, subject=case.case_id, severity=Severity.CRITICAL,
                                   params={"number": case.ticket_number, "window": case.window,
                                           "deadline": case.deadline.isoformat()}))
        elif case.deadline <= warn_until:
            found.append(Condition(kind=AlertKind.CASE_DUE, subject=case.case_id, severity=Severity.WARNING,
                                   params={"number": case.ticket_number, "window": case.window,
                                           "deadline": case.deadline.isoformat()}))
    return found


Publish = Callable[[AlertView, bool], None]
"""Told of every alert raised (True) or cleared (False)."""


class AlertBook:
    """The alerts open now, each with the moment its condition began."""

    def __init__(self, publish: Publish) -> None:
        self.publish = publish
        self.open: dict[str, AlertView] = {}

    def update(self, found: list[Condition], now: datetime) -> list[AlertView]:
        current: dict[str, AlertView] = {}
        for condition in found:
            known = self.open.get(condition.id)
            since = known.since if known is not None else now
            key = f"dashboard.alert.{condition.variant or condition.kind.value}"
            view = AlertView(id=condition.id, kind=condition.kind, subject=condition.subject,
                             severity=condition.severity, key=key, params=condition.params,
                             zh=text(key, "zh", **condition.params), en=text(key, "en", **condition.params),
                             since=since)
            current[view.id] = view
            if known is None:
                self.publish(view, True)
        for gone in self.open.keys() - current.keys():
            self.publish(self.open[gone], False)
        self.open = current
        order = {Severity.CRITICAL: 0, Severity.WARNING: 1}
        return sorted(current.values(), key=lambda a: (order[a.severity], a.since, a.id))
