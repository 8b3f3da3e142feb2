"""The 好差评 rules of one rating: which service event it binds to, when it may come, what it becomes.

Pure functions over the hall's settings (``[rating]`` of the configuration):
no clock, no storage. The national rule is 一次一评 (one rating per service
event); everything that differs by province is a setting: the score of each
level, how long the pad waits, whether and how long a late rating by the
ticket's QR code is accepted, and what a missing rating counts as.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from hallkit.config import HallConfig, RatingRules
from hallkit.i18n import Message
from hallkit.queue.models import new_id
from hallkit.rating.models import Level, Rating, RatingChannel, RatingSubmission

LATE_CHANNELS = (RatingChannel.QR, RatingChannel.KIOSK)
"""Channels that find the event by the ticket's QR, so they still work after the resident left the window."""

MISSING_LEVELS = {"very_satisfied": Level.VERY_SATISFIED, "satisfied": Level.SATISFIED}
"""What ``missing_rating`` names, when it names a level (some provinces count silence as content)."""


class EventStatus(StrEnum):
    PENDING = "pending"  # served, may still be rated
    RATED = "rated"  # a resident rated it
    DEFAULTED = "defaulted"  # nobody rated it in time; the province's default level was recorded
    LAPSED = "lapsed"  # nobody rated it in time; nothing is recorded (the default rule)


class ServiceEvent(BaseModel):
    """One completed service (a ``ticket_completed`` event) waiting for its one rating."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_event_id: str
    ticket_id: str
    ticket_number: str
    ticket_public_id: str
    service_id: str
    service_code: str = Field(description="Service.upstream_code: the catalogue number (事项编码) when known, else the service id")
    service_name: str
    department: str
    window: int
    window_name: str
    staff_id: str | None
    staff_name: str | None
    called_at: datetime
    served_at: datetime
    resident_hash: str | None = None
    status: EventStatus = EventStatus.PENDING


class RatingRefused(Exception):
    """A submission the rules do not accept; ``message`` says why, in the catalogue's words."""

    def __init__(self, key: str, **params: str | int | float) -> None:
        self.message = Message(key=key, params=params)
        super().__init__(self.message.render("en"))


def score(level: Level, rules: RatingRules) -> int:
    """The level's score under this province's mapping (``scores`` lists 非常满意 first)."""
    return rules.scores[Level.VERY_SATISFIED - level]


def on_the_spot_until(event: ServiceEvent, rules: RatingRules) -> datetime:
    """End of the rating at the window: the pad waits this long after completion."""
    return event.served_at + timedelta(seconds=rules.pad_timeout_seconds)


def period_length(rules: RatingRules) -> timedelta:
    """How long after completion an event can be rated at all: at the pad, or later by the QR."""
    return max(timedelta(seconds=rules.pad_timeout_seconds), timedelta(hours=rules.late_rating_hours))


def rating_period_end(event: ServiceEvent, rules: RatingRules) -> datetime:
    """After this moment the event can no longer be rated by anyone."""
    return event.served_at + period_length(rules)


def check(event: ServiceEvent, submission: RatingSubmission, now: datetime, rules: RatingRules) -> None:
    """Raise :class:`RatingRefused` unless ``submission`` may rate ``event`` at ``now``."""
    if event.status is EventStatus.RATED:
        raise RatingRefused("rating.already_rated", number=event.ticket_number)
    if event.status is not EventStatus.PENDING:
        raise RatingRefused("rating.period_over", number=event.ticket_number)
    unknown = [t for t in submission.tags if t not in rules.bad_reason_tags]
    if unknown:
        raise RatingRefused("rating.unknown_tag", tag=unknown[0], tags="、".join(rules.bad_reason_tags))
    if submission.tags and not submission.level.bad:
        raise RatingRefused("rating.tags_only_for_bad")
    if now <= on_the_spot_until(event, rules):
        return
    if submission.channel in LATE_CHANNELS and now <= rating_period_end(event, rules):
        return
    if submission.channel is RatingChannel.PAD and rules.late_rating_hours:
        raise RatingRefused("rating.pad_time_over", number=event.ticket_number)
    raise RatingRefused("rating.period_over", number=event.ticket_number)


def _rating(event: ServiceEvent, config: HallConfig, *, channel: RatingChannel, level: Level, tags: list[str],
            text: str, rated_at: datetime) -> Rating:
    return Rating(
        rating_id=new_id(), hall_id=config.hall.id, region_code=config.hall.region_code,
        service_event_id=event.service_event_id, ticket_id=event.ticket_id, ticket_number=event.ticket_number,
        service_code=event.service_code, service_name=event.service_name, department=event.department,
        window=event.window, staff_id=event.staff_id, staff_name=event.staff_name, channel=channel,
        level=level, score=score(level, config.rating), tags=tags, text=text, served_at=event.served_at,
        rated_at=rated_at, resident_hash=event.resident_hash,
    )


def accept(event: ServiceEvent, submission: RatingSubmission, now: datetime, config: HallConfig) -> Rating:
    """The rating record of an accepted submission (raises :class:`RatingRefused` otherwise)."""
    check(event, submission, now, config.rating)
    return _rating(event, config, channel=submission.channel, level=submission.level,
                   tags=list(submission.tags), text=submission.text.strip(), rated_at=now)


def close_unrated(event: ServiceEvent, now: datetime, config: HallConfig) -> tuple[EventStatus, Rating | None]:
    """What an unrated event becomes once its rating period is over: the province's default or nothing.

    Returns the event's status unchanged (and no rating) while the period runs.
    """
    end = rating_period_end(event, config.rating)
    if event.status is not EventStatus.PENDING or now <= end:
        return event.status, None
    level = MISSING_LEVELS.get(config.rating.missing_rating)
    if level is None:
        return EventStatus.LAPSED, None
    return EventStatus.DEFAULTED, _rating(event, config, channel=RatingChannel.DEFAULT, level=level, tags=[],
                                          text="", rated_at=end)
