"""The upstream contract, hall → county: topics and payload models, imported by both sides.

One MQTT connection per hall to the county broker. The hall's outbox sends
batches of items in its own order (``seq``); the county validates them with
these models and stores each item once (``msg_id`` for the batch, the item's
own id for the item), because QoS 1 and paho's resend both deliver
duplicates. ``docs/upstream.md`` documents every topic and field.

Nothing that identifies a resident travels on this link: a rating's
``resident_hash`` (a keyed hash, linkable across one resident's visits to the
same hall) is cleared by the hall and refused by the county.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from hallkit.rating.models import CaseUpdate, Rating

SCHEMA_VERSION: Final = 1
ROOT = "county/v1"
ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
Identifier = Annotated[str, Field(pattern=ID)]
INGEST_GROUP = "ingest"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UpKind(StrEnum):
    RATING = "rating"
    CASE = "case"
    STATS = "stats"
    TELEMETRY = "telemetry"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- statistics ------------------------------------------------------------------------------


class QueueFigures(_Frozen):
    """Tickets of one business day up to ``as_of``; waits run from taking a ticket to its first call."""

    taken: int = Field(ge=0)
    served: int = Field(ge=0)
    abandoned: int = Field(ge=0, description="not served: no-show after the last skip, or left at day close")
    waiting: int = Field(ge=0)
    # Optional: a county keeps taking the statistics of halls not yet upgraded (docs/upstream.md).
    longest_wait_seconds: float | None = Field(
        None, ge=0, description="最长等候 at as_of: the longest-waiting ticket still in a line, from its taking; "
                                "0 when nobody waits; None from a hall that does not send it yet")
    mean_wait_seconds: float | None
    p90_wait_seconds: float | None


class ServiceStats(QueueFigures):
    service_id: str


class WindowStats(_Frozen):
    window: int
    called: int = Field(ge=0, description="tickets first called to this window")
    served: int = Field(ge=0)
    mean_wait_seconds: float | None
    p90_wait_seconds: float | None
    mean_service_seconds: float | None


class QueueStats(_Frozen):
    """Cumulative for the business day: a later one replaces an earlier one; ``final`` at day close."""

    stats_id: str = Field(min_length=1, max_length=128)
    hall_id: Identifier
    day: date
    as_of: datetime
    final: bool
    total: QueueFigures
    services: list[ServiceStats]
    windows: list[WindowStats]


# ---- device telemetry ------------------------------------------------------------------------


class DeviceTelemetry(_Frozen):
    """A device's state when it changed: online/offline (Last Will), paper, faults, version."""

    telemetry_id: str = Field(min_length=1, max_length=64)
    hall_id: Identifier
    device: Identifier
    kind: str = Field(max_length=32)
    state: Literal["online", "offline"]
    session: int = Field(ge=0)
    version: str = Field("", max_length=64)
    observed_at: datetime
    paper: str | None = Field(None, max_length=16, description="printers: ok, near_end, out or unknown (devices/printer/status.py PaperLevel)")
    faults: list[str] = Field([], description="message keys of what is wrong now")


# ---- batches ---------------------------------------------------------------------------------


class RatingItem(_Frozen):
    seq: int = Field(ge=1)
    body: Rating


class CaseItem(_Frozen):
    seq: int = Field(ge=1)
    body: CaseUpdate


class StatsItem(_Frozen):
    seq: int = Field(ge=1)
    body: QueueStats


class TelemetryItem(_Frozen):
    seq: int = Field(ge=1)
    body: DeviceTelemetry


class _Batch(_Frozen):
    v: Literal[1] = SCHEMA_VERSION
    msg_id: str = Field(min_length=1, max_length=128, description="unique forever; a redelivery repeats it")
    hall: Identifier
    county: Identifier
    epoch: str = Field(min_length=1, max_length=64, description="the hall outbox's identity: seq restarts with it")
    historical: bool = Field(description="every item was made before the current uplink connection")
    sent_at: datetime
    if TYPE_CHECKING:  # each kind of batch declares its own list of items
        items: Sequence[RatingItem | CaseItem | StatsItem | TelemetryItem]

    @model_validator(mode="after")
    def _one_hall(self) -> Self:
        items = self.items
        for item in items:
            if item.body.hall_id != self.hall:
                raise ValueError(f"item {item.seq} belongs to hall {item.body.hall_id!r}, not {self.hall!r}")
        seqs = [item.seq for item in items]
        if seqs != sorted(set(seqs)):
            raise ValueError("item seq must increase within a batch")
        return self


class RatingBatch(_Batch):
    kind: Literal["rating"] = "rating"
    items: list[RatingItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _anonymous(self) -> Self:
        if any(item.body.resident_hash is not None for item in self.items):
            raise ValueError("resident_hash must not leave the hall")
        return self


class CaseBatch(_Batch):
    kind: Literal["case"] = "case"
    items: list[CaseItem] = Field(min_length=1)


class StatsBatch(_Batch):
    kind: Literal["stats"] = "stats"
    items: list[StatsItem] = Field(min_length=1)


class TelemetryBatch(_Batch):
    kind: Literal["telemetry"] = "telemetry"
    items: list[TelemetryItem] = Field(min_length=1)


UpBatch = Annotated[RatingBatch | CaseBatch | StatsBatch | TelemetryBatch, Field(discriminator="kind")]
UP_BATCH: TypeAdapter[RatingBatch | CaseBatch | StatsBatch | TelemetryBatch] = TypeAdapter(UpBatch)


class UplinkStatus(_Frozen):
    """Retained per hall, with a Last Will: the hall's link and its backlog, as the hall last said.

    ``backlog`` counts every item the hall still holds; it splits into ``unsent`` (not yet handed to
    the county broker) and ``awaiting_receipt`` (sent, kept until the county's receipt names it).
    ``oldest_unsent_seconds`` is the age of the oldest unsent item since it was made;
    ``oldest_awaiting_seconds`` is how long the oldest batch awaiting a receipt has waited for it
    since it was first sent (kept in the hub's memory: after a hub restart everything is unsent).
    """

    v: Literal[1] = SCHEMA_VERSION
    hall: Identifier
    county: Identifier
    state: Literal["online", "offline"]
    session: int = Field(ge=0)
    ts: datetime = Field(default_factory=utcnow)
    backlog: int = Field(0, ge=0)
    oldest_seconds: float = Field(0.0, ge=0)
    unsent: int = Field(0, ge=0)
    oldest_unsent_seconds: float = Field(0.0, ge=0)
    awaiting_receipt: int = Field(0, ge=0)
    oldest_awaiting_seconds: float = Field(0.0, ge=0)
    alarm: bool = False
    version: str = ""


SeqRange = tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]
"""Inclusive ``(first, last)`` run of outbox ``seq`` numbers."""


class Receipt(_Frozen):
    """County → hall, after the ingest's PostgreSQL transaction committed: the hall may delete these.

    Only this is an end-to-end acknowledgement: a broker's PUBACK means only that the broker holds
    a message for now (docs/upstream.md). Sent for every batch the ingest took, again for a batch it
    already had (a resend), so a hall whose receipt was lost learns it on the next try. Items the
    county kept in quarantine are named apart: they are kept at the county, not in its tables.
    Only the ingest's logins may publish receipts; a hall may read only its own.
    """

    v: Literal[1] = SCHEMA_VERSION
    hall: Identifier
    county: Identifier
    epoch: str = Field(min_length=1, max_length=64, description="the hall outbox's identity the seqs belong to")
    stored: list[SeqRange] = Field([], description="items committed in the county's tables (or already there)")
    quarantined: list[SeqRange] = Field([], description="items kept in the county's quarantine")
    stored_at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _ordered_ranges(self) -> Self:
        for first, last in [*self.stored, *self.quarantined]:
            if first > last:
                raise ValueError(f"range {first}-{last} runs backwards")
        return self

    def seqs(self) -> list[int]:
        """Every seq named, stored or quarantined."""
        return [seq for first, last in [*self.stored, *self.quarantined] for seq in range(first, last + 1)]


def seq_ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive runs of ``seqs`` (a receipt stays small for a batch of 200)."""
    runs: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


def encode_batch(kind: UpKind, msg_id: str, hall: str, county: str, epoch: str, historical: bool,
                 items: Sequence[tuple[int, str | bytes]]) -> bytes:
    """A batch as JSON from items already serialised by their models (``(seq, body JSON)``).

    The hall stores each item as its model's JSON when it is made; joining those strings is what
    lets the forwarder drain a long backlog at tens of thousands of items a second. The forwarder
    reads them as UTF-8 bytes (no decoding into Python strings and encoding back). The result is
    exactly what ``UP_BATCH`` reads (the tests check the round trip).
    """
    header = _Header(msg_id=msg_id, hall=hall, county=county, epoch=epoch, historical=historical,
                     sent_at=utcnow(), kind=kind.value).model_dump_json().encode()
    body = b",".join(b'{"seq":%d,"body":%b}' % (seq, item if isinstance(item, bytes) else item.encode())
                     for seq, item in items)
    return header[:-1] + b',"items":[' + body + b"]}"


class _Header(_Frozen):
    v: Literal[1] = SCHEMA_VERSION
    msg_id: str
    hall: str
    county: str
    epoch: str
    historical: bool
    sent_at: datetime
    kind: str


# ---- topics ----------------------------------------------------------------------------------


class UpTopics:
    """Topic names of one hall's uplink. The hall's username may write only under its own id."""

    def __init__(self, county: str, hall: str) -> None:
        self.base = f"{ROOT}/{county}/hall/{hall}"

    def up(self, kind: UpKind) -> str:
        return f"{self.base}/up/{kind.value}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def receipt(self) -> str:
        """County → hall: :class:`Receipt` messages (written only by the ingest's logins)."""
        return f"{self.base}/receipt"


INGEST_FILTERS = (f"{ROOT}/+/hall/+/up/+", f"{ROOT}/+/hall/+/status")
"""What the county ingest reads; each is subscribed as ``$share/ingest/<filter>``."""


def shared(topic_filter: str, group: str = INGEST_GROUP) -> str:
    return f"$share/{group}/{topic_filter}"


class TopicParts(_Frozen):
    county: str
    hall: str
    leaf: Literal["up", "status"]
    kind: str | None


def parse_topic(topic: str) -> TopicParts | None:
    """The parts of an uplink topic, or None for a topic outside the tree."""
    match topic.split("/"):
        case ["county", "v1", county, "hall", hall, "status"] if county and hall:
            return TopicParts(county=county, hall=hall, leaf="status", kind=None)
        case ["county", "v1", county, "hall", hall, "up", kind] if county and hall:
            return TopicParts(county=county, hall=hall, leaf="up", kind=kind)
        case _:
            return None
