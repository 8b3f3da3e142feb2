"""The hall's configuration: one TOML file, validated on load.

Every part of the hall (hub, kiosk, devices, dashboard, uplink) reads its
settings from here. Facts that differ by province or are not confirmed by a
national rule (rating scores, rating deadlines, late-rating windows) are
settings, not constants.
"""

from __future__ import annotations

import re
import string
import tomllib
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""Ids travel in MQTT topics and URLs: lowercase letters, digits and dashes."""

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HallLevel(StrEnum):
    TOWNSHIP = "township"
    VILLAGE = "village"
    COMMUNITY = "community"


class Handling(StrEnum):
    """What this hall does with a service: accept it for the county (受理) or complete it (办理)."""

    ACCEPT = "accept"
    COMPLETE = "complete"


class Hall(_Strict):
    id: Identifier
    name: str = Field(min_length=1)
    level: HallLevel
    region_code: str = Field(pattern=r"^\d{12}$", description="12-digit administrative division code")
    county_id: Identifier = "county"
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use a name such as 'Asia/Shanghai'") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Guide(_Strict):
    """The eight public fields of a service guide (八公开)."""

    legal_basis: str = ""
    conditions: str = ""
    materials: list[str] = []
    process: str = ""
    time_limit: str = ""
    fees: str = "不收费"
    contacts: str = ""
    location: str = ""


LOOKALIKE_PREFIXES = frozenset("IO")
"""Letters residents read as 1 and 0 in a ticket number."""
READABLE_PREFIXES = "".join(c for c in string.ascii_uppercase if c not in LOOKALIKE_PREFIXES)


class Service(_Strict):
    id: Identifier
    name: str = Field(min_length=1)
    prefix: str = Field(pattern=r"^[A-Z]$", description="ticket prefix letter")
    category: str = "公共服务"
    department: str = ""
    counter_group: str = Field("", description="the window group named in the county catalogue")
    handling: Handling = Handling.ACCEPT
    catalogue_no: str = Field("", description="the county's code for it (事项编码); two services never share one")
    default_service_minutes: float = Field(5.0, gt=0, le=240)
    guide: Guide = Guide()

    @field_validator("prefix")
    @classmethod
    def _readable_prefix(cls, prefix: str) -> str:
        if prefix in LOOKALIKE_PREFIXES:
            raise ValueError(f"prefix {prefix!r} reads as a digit on the board and the ticket "
                             f"(I021 as 1021, O021 as 0021): choose another letter")
        return prefix

    @property
    def upstream_code(self) -> str:
        """The code its ratings carry to the county: the catalogue number, or the id when it has none."""
        return self.catalogue_no or self.id


ALL_SERVICES = "*"


class Window(_Strict):
    number: int = Field(ge=1, le=999)
    name: str = Field(min_length=1)
    services: list[str] = Field(
        [], description='service ids, or ["*"] for a comprehensive window (综合窗口)'
    )
    groups: list[str] = Field([], description="counter groups of the catalogue whose services it serves")
    staff_a: Identifier | None = None
    staff_b: Identifier | None = None
    open: bool = True

    @model_validator(mode="after")
    def _serves_something(self) -> Self:
        if not self.services and not self.groups:
            raise ValueError(f"window {self.number} serves nothing: give services or groups")
        return self

    @property
    def comprehensive(self) -> bool:
        return ALL_SERVICES in self.services


class Staff(_Strict):
    id: Identifier
    name: str = Field(min_length=1)
    phone: str = ""
    photo: str = ""
    title: str = ""


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Period(_Strict):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    open: time
    close: time
    note: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.close <= self.open:
            raise ValueError(f"close {self.close} must be after open {self.open}")
        return self

    def covers(self, moment: datetime) -> bool:
        return WEEKDAYS[moment.weekday()] in self.days and self.open <= moment.time() < self.close


class Hours(_Strict):
    """Opening hours: regular periods plus extended/off-hours service (错时延时服务)."""

    regular: list[Period] = []
    extended: list[Period] = []
    closed_dates: list[date] = []

    def is_open(self, local: datetime) -> bool:
        """Open now? A hall with no periods configured is always open."""
        if local.date() in self.closed_dates:
            return False
        if not self.regular and not self.extended:
            return True
        return any(p.covers(local) for p in (*self.regular, *self.extended))

    def next_opening(self, local: datetime) -> datetime | None:
        """The next moment (local time) the hall opens, looking up to two weeks ahead."""
        periods = (*self.regular, *self.extended)
        for offset in range(15):
            day = local.date() + timedelta(days=offset)
            if day in self.closed_dates:
                continue
            starts = sorted(
                datetime.combine(day, p.open, local.tzinfo)
                for p in periods
                if WEEKDAYS[day.weekday()] in p.days
            )
            for start in starts:
                if start > local:
                    return start
        return None


class QueueRules(_Strict):
    reset_hour: int = Field(0, ge=0, le=23, description="local hour at which ticket numbers start again")
    max_priority_in_a_row: int = Field(
        3, ge=1, description="priority calls a window makes in a row before it must call a normal ticket"
    )
    no_show_requeue: int = Field(1, ge=0, le=3, description="times a skipped ticket goes back to the queue")
    accept_outside_hours: bool = False
    recent_service_samples: int = Field(20, ge=1, le=500)
    elderly_age: int = Field(65, ge=50, le=100, description="age from the ID card that gets a priority ticket")


class TicketLayout(_Strict):
    paper_width_mm: Literal[58, 80] = 80
    encoding: Literal["gb18030", "gbk", "big5", "utf-8"] = "gb18030"
    chinese_mode: bool = Field(True, description="send FS & to switch the printer into Chinese mode")
    footer: str = "请对我们的服务作出评价 · 投诉电话 12345"

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        if isinstance(data, dict) and "qr_base_url" in data:
            raise ValueError("qr_base_url has moved: set [web] public_url, the phone page's address "
                             "(tickets link to <public_url>/t/<token>)")
        return data


class RatingRules(_Strict):
    """好差评 rules. Scores and deadlines differ by province (see docs/glossary.md)."""

    scores: list[int] = Field([5, 4, 3, 2, 1], min_length=5, max_length=5,
                              description="score of 非常满意 … 非常不满意")
    pad_timeout_seconds: int = Field(60, ge=5, le=3600)
    late_rating_hours: int = Field(168, ge=0, description="0 means no late rating by the ticket's QR")
    missing_rating: Literal["none", "very_satisfied", "satisfied"] = "none"
    bad_reason_tags: list[str] = ["态度不好", "效率低", "办事不便", "多次跑腿", "材料要求不清", "其他"]
    case_deadline_working_days: int = Field(5, ge=1, le=60)
    # The working-day calendar of case deadlines: weekends are off unless listed as 调休 working days.
    holidays: list[date] = Field([], description="public holidays (法定节假日) that fall on weekdays")
    working_weekends: list[date] = Field([], description="weekend days worked in exchange (调休上班)")
    sweep_seconds: float = Field(30.0, gt=0, le=3600,
                                 description="how often the hub closes events whose rating period is over")


class DeviceKind(StrEnum):
    KIOSK = "kiosk"
    PRINTER = "printer"
    IDCARD = "idcard"
    SCANNER = "scanner"
    PAD = "pad"
    DISPLAY = "display"
    COUNTER = "counter"
    WEB = "web"  # the phone page behind each ticket's QR code (``hall web``)


class Device(_Strict):
    id: Identifier
    kind: DeviceKind
    url: str = Field("", description="how to reach it, e.g. tcp://10.0.0.5:9100 or serial:///dev/ttyUSB0")
    window: int | None = Field(None, description="the window a pad or counter belongs to")
    kiosk: Identifier | None = Field(None, description="the kiosk a printer, reader or scanner is attached to")


class Privacy(_Strict):
    id_hash_key: str = Field(
        min_length=16,
        description="secret for the keyed hash (HMAC-SHA256) of ID numbers; keep it in this hall only",
    )

    @field_validator("id_hash_key")
    @classmethod
    def _not_placeholder(cls, value: str) -> str:
        if "change-me" in value:
            raise ValueError("replace the placeholder with a random secret (hall config example makes one)")
        return value


class DashboardSettings(_Strict):
    """The hall manager's dashboard (``hall dashboard``): where it listens, logins, alert thresholds."""

    host: str = Field("127.0.0.1", description="address to listen on: this computer only; 0.0.0.0 for the hall LAN")
    port: int = Field(8080, ge=1, le=65535)
    session_hours: float = Field(8.0, gt=0, le=168, description="a login lasts this long, then asks again")
    max_failed_logins: int = Field(5, ge=1, le=100, description="failed logins per account before a lockout (an address: four times as many)")
    lockout_minutes: float = Field(15.0, gt=0, le=1440)
    alert_queue_length: int = Field(15, ge=1, description="alert when this many wait for one service")
    alert_wait_minutes: float = Field(30.0, gt=0, description="alert when someone has waited this long")
    case_warning_days: int = Field(1, ge=0, le=30, description="warn this many days before a case deadline")


PHONE_PATTERN = r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$"
"""A mainland mobile number, or a landline with its area code: what a 回访 call can reach."""


class WebSettings(_Strict):
    """The phone page behind each ticket's QR code (``hall web``): address, limits, follow-up numbers."""

    host: str = Field("127.0.0.1", description="address to listen on: this computer only (behind a reverse proxy); "
                                               "0.0.0.0 for the hall's Wi-Fi")
    port: int = Field(8090, ge=1, le=65535)
    public_url: str = Field(
        "http://hall.local:8090", pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="where phones reach the page: the hall's Wi-Fi address, or the county's reverse proxy; "
                    "every ticket's QR code is <public_url>/t/<token>")
    device: Identifier = Field("web", description="its device id: a [[devices]] entry of kind web")
    trusted_proxies: list[str] = Field(
        [], description="addresses of reverse proxies whose X-Forwarded-For names the phone's address")
    requests_per_minute_per_token: int = Field(30, ge=1, le=10_000)
    requests_per_minute_per_address: int = Field(120, ge=1, le=100_000)
    ratings_per_hour_per_address: int = Field(20, ge=1, le=10_000,
                                              description="rating forms sent from one address")
    followup_retention_days: int = Field(
        30, ge=1, le=365, description="a follow-up phone number is deleted when its case closes, or after this")
    comment_max_chars: int = Field(300, ge=0, le=500)

    def ticket_url(self, public_id: str) -> str:
        """The ticket's link, as its QR code holds it."""
        return f"{self.public_url.rstrip('/')}/t/{public_id}"


class Upstream(_Strict):
    """The link to the county: the hub's outbox forwards ratings, cases, statistics and telemetry."""

    broker: str = Field(description="county broker, mqtts://HOST:PORT (or mqtt:// on a trusted network)")
    username: Identifier | None = Field(None, description="this hall's login at the county broker (default: hall id)")
    password: str = Field("", description="prefer password_file, readable only by the hub's user")
    password_file: Path | None = None
    ca_file: Path | None = Field(None, description="CA certificate of the county broker (default: the system's)")
    stats_interval_minutes: float = Field(15, gt=0, le=1440, description="queue statistics this often, and at day close")
    disk_cap_mb: float = Field(512, gt=0, description="outbox size the hub aims to stay under")
    alarm_at: float = Field(0.8, gt=0, le=1, description="share of the cap that raises the alarm and thins telemetry")
    batch_size: int = Field(200, ge=1, le=5000, description="items per message to the county")
    max_inflight: int = Field(20, ge=1, le=500, description="messages handed to the county broker and not yet "
                                                            "acknowledged by it (PUBACK)")
    receipt_window: int = Field(10_000, ge=1, le=1_000_000,
                                description="items sent and awaiting the county's receipt at most: what a county "
                                            "whose ingest is down gets again at each resend, and what its broker "
                                            "holds for this hall")
    receipt_timeout_seconds: float = Field(30.0, gt=0, le=3600,
                                           description="a batch with no receipt this long after it was sent is "
                                                       "sent again; the wait doubles at each try")
    receipt_backoff_max_seconds: float = Field(300.0, gt=0, le=86_400,
                                               description="the longest wait between two tries of one batch")

    @model_validator(mode="after")
    def _backoff_after_timeout(self) -> Self:
        if self.receipt_backoff_max_seconds < self.receipt_timeout_seconds:
            raise ValueError("receipt_backoff_max_seconds must not be shorter than receipt_timeout_seconds")
        return self

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        # What the hub's uplink would refuse at start, said by `hall config check` instead.
        url = urlsplit(value)
        if url.scheme not in ("mqtt", "mqtts"):
            raise ValueError("use mqtts://HOST:PORT (or mqtt://HOST:PORT on a trusted network)")
        if not url.hostname:
            raise ValueError("the URL names no host")
        try:
            url.port  # noqa: B018 - parsing it is the check
        except ValueError:
            raise ValueError("the URL has a bad port") from None
        return value

    def file_problems(self) -> list[str]:
        """What is wrong with the files this section names, which the hub reads when it starts."""
        problems = []
        for key, path in (("password_file", self.password_file), ("ca_file", self.ca_file)):
            if path is None:
                continue
            try:
                content = path.read_bytes()
            except OSError as exc:
                problems.append(f"upstream.{key}: cannot read {path} ({exc.strerror or exc})")
                continue
            if not content.strip():
                problems.append(f"upstream.{key}: {path} is empty")
        return problems

    def secret(self) -> str | None:
        """The password, from password_file when given (its first line)."""
        if self.password_file is not None:
            return self.password_file.read_text("utf-8").strip() or None
        return self.password or None


class LeaderOnDuty(_Strict):
    """Who leads the hall on given weekdays (领导坐班/值班), shown on the kiosk's staff board."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    name: str = Field(min_length=1)
    title: str = ""
    phone: str = ""


class HallDisplaySettings(_Strict):
    """The hall display (叫号大屏) and its voice."""

    size: tuple[int, int] = Field((1920, 1080), description="width and height in pixels")
    window_mode: Literal["borderless", "fullscreen", "windowed"] = "borderless"
    voice_template: str = Field("请{ticket}号到{window}号窗口办理", min_length=1)
    voice_repeat: int = Field(2, ge=1, le=5, description="times each call is announced")
    voice: Literal["cmn-latn-pinyin", "cmn"] = "cmn-latn-pinyin"
    player: str = Field("auto", description="auto (paplay or aplay), none, or a command taking a WAV path")
    notice: str = "请留意叫号，过号请到窗口重新排队。办事不满意，请拨打 12345。"
    recent_calls: int = Field(5, ge=1, le=5, description="calls listed on the board (five fit its panel)")

    @field_validator("voice_template")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        try:
            value.format(ticket="A001", window=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"use only the placeholders {{ticket}} and {{window}} ({exc})") from None
        return value


class KioskSettings(_Strict):
    """The self-service kiosk (自助取号机) and the hall display it goes with."""

    size: tuple[int, int] = Field((1280, 800), description="width and height of the screen in pixels")
    window_mode: Literal["borderless", "fullscreen", "windowed"] = "borderless"
    idle_seconds: int = Field(60, ge=10, le=900, description="back to the home screen, personal data dropped")
    staff_pin_hash: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 (hex) of the staff PIN for agent service and maintenance; none: no staff entry",
    )
    elder_mode: bool = Field(False, description="start in elder mode (长辈模式): larger text, fewer items")
    scan_folder: str = Field("var/scans", description="where the kiosk keeps pages scanned from the document camera")
    leaders: list[LeaderOnDuty] = []
    display: HallDisplaySettings = HallDisplaySettings()


class HallConfig(_Strict):
    hall: Hall
    hours: Hours = Hours()
    queue: QueueRules = QueueRules()
    ticket: TicketLayout = TicketLayout()
    rating: RatingRules = RatingRules()
    privacy: Privacy
    services: list[Service] = Field(min_length=1)
    windows: list[Window] = Field(min_length=1)
    staff: list[Staff] = []
    devices: list[Device] = []
    kiosk: KioskSettings = KioskSettings()
    upstream: Upstream | None = None
    dashboard: DashboardSettings = DashboardSettings()
    web: WebSettings = WebSettings()

    @model_validator(mode="after")
    def _references(self) -> Self:
        _unique("services", [s.id for s in self.services])
        _unique("windows", [w.number for w in self.windows])
        _unique("staff", [s.id for s in self.staff])
        _unique("devices", [d.id for d in self.devices])
        _distinct_codes(self.services)
        service_ids = {s.id for s in self.services}
        staff_ids = {s.id for s in self.staff}
        for window in self.windows:
            for sid in window.services:
                if sid != ALL_SERVICES and sid not in service_ids:
                    raise ValueError(f"window {window.number} serves unknown service {sid!r}")
            for post in (window.staff_a, window.staff_b):
                if post is not None and post not in staff_ids:
                    raise ValueError(f"window {window.number} names unknown staff {post!r}")
        window_numbers = {w.number for w in self.windows}
        for device in self.devices:
            if device.window is not None and device.window not in window_numbers:
                raise ValueError(f"device {device.id!r} belongs to unknown window {device.window}")
        groups = {s.counter_group for s in self.services}
        for window in self.windows:
            for group in window.groups:
                if group not in groups:
                    raise ValueError(f"window {window.number} names unknown counter group {group!r}")
        orphans = sorted(service_ids - {sid for w in self.windows for sid in self.served_by(w)})
        if orphans:
            raise ValueError(f"no window serves these services: {', '.join(orphans)}")
        return self

    def served_by(self, window: Window) -> frozenset[str]:
        """Ids of the services a window serves."""
        if window.comprehensive:
            return frozenset(s.id for s in self.services)
        return frozenset(
            s.id for s in self.services if s.id in window.services or s.counter_group in window.groups
        )

    def service(self, service_id: str) -> Service:
        for service in self.services:
            if service.id == service_id:
                return service
        raise KeyError(service_id)

    def window(self, number: int) -> Window:
        for window in self.windows:
            if window.number == number:
                return window
        raise KeyError(number)

    def staff_member(self, staff_id: str) -> Staff | None:
        return next((s for s in self.staff if s.id == staff_id), None)

    def windows_serving(self, service_id: str) -> list[Window]:
        return [w for w in self.windows if service_id in self.served_by(w)]


def _unique(section: str, keys: list[object]) -> None:
    seen: set[object] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"{section}: {key!r} appears twice")
        seen.add(key)


def _distinct_codes(services: list[Service]) -> None:
    """The county files ratings by service code: two services under one code would merge there."""
    owner: dict[str, str] = {}
    for service in services:
        first = owner.setdefault(service.upstream_code, service.id)
        if first != service.id:
            raise ValueError(
                f"services {first!r} and {service.id!r} would both go up to the county as code "
                f"{service.upstream_code!r}: give one a catalogue_no of its own (e.g. "
                f"catalogue_no = \"{service.upstream_code}-2\", as 'hall catalog import' does)")


class ConfigError(Exception):
    """A configuration file that cannot be used, with one readable line per problem."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))

    def report(self) -> str:
        lines = [f"配置文件有误 / configuration file has errors: {self.path}"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def load_config(path: Path | str) -> HallConfig:
    """Read and validate a hall configuration file and the files it names, or raise :class:`ConfigError`."""
    file = Path(path)
    try:
        raw = file.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(file, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, [f"cannot read the file: {exc}"]) from None
    config = parse_config(raw, source=file)
    if config.upstream is not None and (problems := config.upstream.file_problems()):
        raise ConfigError(file, problems)
    return config


def parse_config(raw: str, source: Path | str = "<text>") -> HallConfig:
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    try:
        return HallConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, describe_errors(exc, data)) from None


def describe_errors(exc: ValidationError, data: object) -> list[str]:
    """Turn pydantic's errors into 'where: what is wrong (what is allowed)' lines."""
    problems = []
    for error in exc.errors(include_url=False):
        where = _location(error["loc"], data)
        message = error["msg"].removeprefix("Value error, ")
        kind = error["type"]
        if kind == "extra_forbidden":
            message = "unknown key (check its spelling; 'hall config example' lists every key)"
        elif kind == "missing":
            message = "required key is missing"
        elif "input" in error and kind not in ("model_type",) and not isinstance(error["input"], dict):
            message = f"{message} (got {error['input']!r})"
        problems.append(f"{where}: {message}" if where else message)
    return problems


def _location(loc: tuple[int | str, ...], data: object) -> str:
    """A dotted key path; list items are named by their id or number when they have one."""
    parts: list[str] = []
    node = data
    for step in loc:
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            item = node[step]
            label = None
            if isinstance(item, dict):
                label = item.get("id") or item.get("number")
            parts[-1] = f"{parts[-1]}[{label if label is not None else step}]" if parts else f"[{step}]"
            node = item
        elif isinstance(step, str) and step not in ("function-after",) and not re.match(r"^[a-z-]+\[", step):
            parts.append(step)
            node = node.get(step) if isinstance(node, dict) else None
    return ".".join(parts)
