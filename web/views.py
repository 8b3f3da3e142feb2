"""What the phone page shows for one ticket: the one model the page, its stream and the tests read.

Nothing here names a resident: a ticket number, a service, windows, a position in the line.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Stage(StrEnum):
    WAITING = "waiting"  # in the line: people ahead, the estimated wait
    CALLED = "called"  # called to a window (also while being served there)
    MISSED = "missed"  # skipped and not put back in the line (过号): see the staff
    RATE = "rate"  # served, not yet rated, still in the rating period: the 好差评 form
    RATED = "rated"  # rated, through any channel: thanks


class WindowLabel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    name: str


class PhoneView(BaseModel):
    """One ticket's page, as JSON on the stream and as the page's first render."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: Stage
    hall_name: str
    number: str
    service_name: str
    windows: list[WindowLabel] = Field(description="windows that serve the ticket (waiting)")
    ahead: int = 0
    wait_minutes: int = 0
    window: WindowLabel | None = Field(None, description="the window it is called to, or was served at")
    rate_until: datetime | None = Field(None, description="the rating period's end (stage rate)")
    reasons: list[str] = Field([], description="bad-rating reasons offered with 不满意 and 非常不满意")
