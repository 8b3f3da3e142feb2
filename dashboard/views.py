"""What the pages show, as pydantic models: the JSON the browser gets is one of these."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class ServiceRow(_View):
    service_id: str
    name: str
    prefix: str
    waiting: int
    longest_wait_minutes: float
    mean_wait_minutes: float | None
    estimated_wait_minutes: float
    issued_today: int
    served_today: int


class WindowRow(_View):
    number: int
    name: str
    open: bool
    paused: bool
    calling: str | None
    staff_on_duty: str | None
    staff_a: str | None
    staff_b: str | None
    served_today: int
    mean_service_minutes: float | None
    mean_wait_minutes: float | None


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class AlertKind(StrEnum):
    QUEUE_LONG = "queue_long"
    WAIT_LONG = "wait_long"
    DEVICE_OFFLINE = "device_offline"
    PAPER_LOW = "paper_low"
    CASE_DUE = "case_due"
    CASE_OVERDUE = "case_overdue"
    HUB_OFFLINE = "hub_offline"
    STATUS_FLOOD = "status_flood"


class AlertView(_View):
    """One condition that needs the manager; ``id`` stays the same while it lasts."""

    id: str
    kind: AlertKind
    subject: str
    severity: Severity
    key: str
    params: dict[str, str | int | float]
    zh: str
    en: str
    since: datetime


class BoardView(_View):
    """Everything the live board and the alert bar show; pushed to every open page on a change."""

    hall: str
    hall_name: str
    day: str | None
    at: datetime
    connected: bool
    hub_online: bool
    waiting_total: int
    served_today: int
    services: list[ServiceRow]
    windows: list[WindowRow]
    alerts: list[AlertView]


class DetailItem(_View):
    """One fact a device reports, named in words: 按键数 7, not ``keys=7``."""

    label: str
    value: str


class DeviceRow(_View):
    device: str
    kind: str
    kind_label: str
    configured: bool
    state: str
    last_seen: datetime | None
    version: str
    paper: str | None
    problems: list[str]
    detail: list[DetailItem]


class ChartSeries(_View):
    name: str
    values: list[float | None]


class RatingSlice(_View):
    """Ratings of one window or staff member by level, and their satisfaction rate."""

    name: str
    levels: list[int]
    satisfaction: float | None
    coverage: float | None
    served: int
    rated: int


class ChartsView(_View):
    day: date
    times: list[str]
    queue: list[ChartSeries]
    wait: list[ChartSeries]
    hours: list[str]
    tickets_per_hour: list[int]
    by_window: list[RatingSlice]
    by_staff: list[RatingSlice]
    coverage: float | None
    served: int
    rated: int
    ratings_available: bool


class ReportRow(_View):
    """One line of the daily performance report (绩效考核)."""

    kind: str
    key: str
    name: str
    served: int
    mean_service_minutes: float | None
    mean_wait_minutes: float | None
    rated: int
    satisfaction: float | None
    bad: int
    open_cases: int


class CaseStepView(_View):
    step: str
    by: str = Field(description="who took the step: a staff member's name or a login; empty when the bad rating opened it")
    at: datetime
    note: str


class CaseView(_View):
    case_id: str
    ticket_number: str
    window: int
    staff: str | None
    service: str
    level: int
    state: str
    deadline: date
    overdue: bool
    due_soon: bool
    opened_at: datetime
    next_steps: list[str]
    steps: list[CaseStepView]
    channel: str = Field(description="where the resident rated: pad, qr, kiosk")
    tags: list[str] = []
    text: str = ""
    followup_phone: str | None = Field(None, description="the 回访 number left on the phone page; managers only")


class RatingLine(_View):
    rated_at: datetime
    ticket_number: str
    window: int
    staff: str | None
    service: str
    level: int
    channel: str
    tags: list[str]
    text: str
    case_id: str | None
