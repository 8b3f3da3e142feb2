"""How much of what a hall sends wrong the county keeps: pure rules, stored by :mod:`county.store`.

Rejected messages are kept only so a person can find the fault. A hall sending junk must not fill
the county's disk (one hall once put 25 MB into quarantine with five messages), so each hall has a
budget of messages per clock minute and bytes per clock hour, each payload is cut to a cap, and
what is over the budget is counted against the hall, not stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

UNPARSED_HALL = "(unparsed)"
"""The quarantine's bucket for messages whose topic names no valid hall (no hall id has brackets)."""


class QuarantineLimits(BaseModel):
    """Each hall's quarantine budget (``hall county ingest --quarantine-…``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages_per_minute: int = Field(default=60, ge=0, description="messages kept per hall and clock minute")
    bytes_per_hour: int = Field(default=4 * 1024 * 1024, ge=0,
                                description="payload bytes kept per hall and clock hour (after truncation)")
    payload_cap: int = Field(default=64 * 1024, ge=0,
                             description="bytes kept of each payload; its full size is recorded")


@dataclass(frozen=True)
class QuarantineUse:
    """One hall's quarantine budget in use: messages kept in its clock minute, bytes in its clock hour."""

    minute_start: datetime
    minute_messages: int
    hour_start: datetime
    hour_bytes: int


@dataclass(frozen=True)
class Admission:
    use: QuarantineUse
    kept: tuple[bool, ...]
    dropped_messages: int
    dropped_bytes: int
    truncated_messages: int


def admit(use: QuarantineUse, payload_sizes: list[int], limits: QuarantineLimits, now: datetime) -> Admission:
    """Which of one hall's rejected messages, in order, fit its budget. Fixed clock windows: a
    window that started before this one counts as empty; one that started later (a worker whose
    clock runs ahead) is shared, so the budget never resets twice."""
    minute, hour = _windows(now)
    used_minute, _ = _windows(use.minute_start)
    _, used_hour = _windows(use.hour_start)
    messages = use.minute_messages if used_minute >= minute else 0
    stored = use.hour_bytes if used_hour >= hour else 0
    kept: list[bool] = []
    for size in payload_sizes:
        keep = min(size, limits.payload_cap)
        fits = messages < limits.messages_per_minute and stored + keep <= limits.bytes_per_hour
        if fits:
            messages += 1
            stored += keep
        kept.append(fits)
    return Admission(
        use=QuarantineUse(max(used_minute, minute), messages, max(used_hour, hour), stored),
        kept=tuple(kept),
        dropped_messages=kept.count(False),
        dropped_bytes=sum(size for size, fits in zip(payload_sizes, kept, strict=True) if not fits),
        truncated_messages=sum(1 for size, fits in zip(payload_sizes, kept, strict=True)
                               if fits and size > limits.payload_cap))


def _windows(moment: datetime) -> tuple[datetime, datetime]:
    """The starts of the clock minute and hour of ``moment``, in UTC (the database may answer in any zone)."""
    minute = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return minute, minute.replace(minute=0)
