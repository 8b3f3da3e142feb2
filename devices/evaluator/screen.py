"""What a rating pad shows, as the pad drivers see it: a device-level model that knows nothing of MQTT.

The hub publishes its own message for each pad (the hall contract's ``PadScreen``);
the pad bridge turns it into a :class:`PadDisplay` and hands that to the driver,
so the drivers, the simulators and their tests need no broker.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from hallkit.rating.models import Level

ALL_LEVELS = (Level(5), Level(4), Level(3), Level(2), Level(1))
"""The whole scale, best first: the order a pad lists the levels in."""


class PadPrompt(BaseModel):
    """Ask the resident at the window to rate the service just given, until ``until``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_number: str
    service_name: str
    staff_name: str | None = None
    until: datetime
    levels: tuple[Level, ...] = Field(ALL_LEVELS, min_length=1, description="the levels offered, in order shown")
    reasons: tuple[str, ...] = Field((), description="the reasons offered with a bad level, numbered from 1")


class PadDisplay(BaseModel):
    """One window's state, on the pad at that window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int
    window_name: str
    open: bool = Field(description="the window is staffed and taking tickets")
    paused: bool = False
    staff_id: str | None = Field(None, description="the staff member on duty (a tablet shows their photo)")
    staff_name: str | None = None
    staff_title: str = ""
    ticket_number: str | None = Field(None, description="the ticket being served")
    service_name: str | None = None
    prompt: PadPrompt | None = None

    def prompt_at(self, now: datetime) -> PadPrompt | None:
        """The rating prompt while it is still open at ``now``."""
        return self.prompt if self.prompt is not None and self.prompt.until > now else None
