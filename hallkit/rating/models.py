"""The rating record and the bad-rating case, as the hall keeps them and sends them to the county.

Fields follow what an upstream 好差评 system needs (see docs/glossary.md and
the domain notes): the rating is bound to one service event (一次一评): the
ticket's completion at a window, with the staff member on duty. The resident
appears only as the keyed hash of the ID number, never by name or number.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import Self
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Level(IntEnum):
    """The five national levels; the last two are a bad rating (差评)."""

    VERY_SATISFIED = 5  # 非常满意
    SATISFIED = 4  # 满意
    BASIC = 3  # 基本满意
    DISSATISFIED = 2  # 不满意
    VERY_DISSATISFIED = 1  # 非常不满意

    @property
    def bad(self) -> bool:
        return self <= Level.DISSATISFIED

    @property
    def label_key(self) -> str:
        """Message key of the level's name (rating.level.5 … rating.level.1)."""
        return f"rating.level.{int(self)}"


class RatingChannel(StrEnum):
    PAD = "pad"  # 评价器 at the window
    QR = "qr"  # the ticket's QR code, from a phone
    KIOSK = "kiosk"  # the self-service kiosk
    DEFAULT = "default"  # no rating given; counted by the province's rule


class Rating(BaseModel):
    """One rating of one service event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rating_id: str
    hall_id: str
    region_code: str
    service_event_id: str = Field(description="id of the ticket_completed event that is rated")
    ticket_id: str
    ticket_number: str
    service_code: str
    service_name: str
    department: str
    window: int
    staff_id: str | None
    staff_name: str | None
    channel: RatingChannel
    level: Level
    score: int = Field(description="the level's score under this province's mapping")
    tags: list[str] = []
    text: str = Field("", max_length=500)
    served_at: datetime
    rated_at: datetime
    resident_hash: str | None = Field(None, description="keyed hash of the ID number, when a card was read")


class CaseStep(StrEnum):
    """Steps of a bad-rating case (差评整改)."""

    OPENED = "opened"
    VERIFIED = "verified"  # 核实
    RECTIFIED = "rectified"  # 整改
    EXPLAINED = "explained"  # 解释说明 (nothing to fix, the rule stands)
    CALLED_BACK = "called_back"  # 回访
    CLOSED = "closed"
    APPEALED = "appealed"  # 申诉复核
    APPEAL_UPHELD = "appeal_upheld"  # the rating was mistaken or malicious: it is voided
    APPEAL_REJECTED = "appeal_rejected"


class CaseUpdate(BaseModel):
    """One step of one case, with who took it and when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    update_id: str
    case_id: str
    rating_id: str
    hall_id: str
    step: CaseStep
    by: str = Field(description="staff or manager id who took the step")
    at: datetime
    note: str = Field("", max_length=1000)
    deadline: date



RESIDENT_CHANNELS = (RatingChannel.PAD, RatingChannel.QR, RatingChannel.KIOSK)
"""Channels a resident rates through; ``default`` is only ever written by the hub."""


class RatingSubmission(BaseModel):
    """What a resident chose on a pad, a kiosk or the ticket's QR page.

    The service event is named by its id (a pad, which was told by the hub) or by
    the ticket's public QR token (a phone or kiosk later on); exactly one of the two.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(default_factory=lambda: uuid4().hex, min_length=1, max_length=64,
                            description="the same id sent again gets the same answer")
    service_event_id: str | None = Field(None, max_length=64)
    ticket_public_id: str | None = Field(None, max_length=64)
    channel: RatingChannel
    level: Level
    tags: list[str] = Field([], max_length=20)
    text: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _one_event(self) -> Self:
        if (self.service_event_id is None) == (self.ticket_public_id is None):
            raise ValueError("name the service event by service_event_id or ticket_public_id, not both")
        if self.channel not in RESIDENT_CHANNELS:
            raise ValueError(f"channel {self.channel.value} is not one a resident rates through")
        return self


class RatingReceipt(BaseModel):
    """What the hub answers to an accepted rating: enough for the pad to thank, no personal data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rating_id: str
    service_event_id: str
    ticket_number: str
    level: Level
    case_id: str | None = Field(None, description="the bad-rating case it opened")


class CaseStepCommand(BaseModel):
    """A staff member or manager records one step of a bad-rating case."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(default_factory=lambda: uuid4().hex, min_length=1, max_length=64)
    case_id: str = Field(min_length=1, max_length=64)
    step: CaseStep
    by: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="staff or manager id")
    note: str = Field("", max_length=1000)
