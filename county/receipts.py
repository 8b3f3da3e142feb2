"""The county's receipts: what one committed group tells each hall it may delete. Pure, no I/O.

A receipt names every item of every batch the group accepted, whether its
``msg_id`` was new or already known: a hall that resends did not get the
earlier receipt, so it must get one now. For a message the county kept in
quarantine it names the items too, apart, when the message's header can still
be read (an ``up`` topic and a payload with ``epoch`` and ``items[].seq``): the
items are kept at the county, and the hall would otherwise send the same
refused message again for ever. A refused message the quarantine did not keep
(over its hall's budget) is named nowhere: the hall sends it again later,
when it may fit. The hall named is the topic's, not the payload's: the topic
is the one the sender's login may write (docs/upstream.md), so its outbox is
the one holding them.
"""

from __future__ import annotations

from hallkit.contracts.uplink import Receipt, UpTopics, parse_topic, seq_ranges
from hallkit.county.store import Accepted, Parsed, Rejected
from pydantic import BaseModel, ConfigDict, Field, ValidationError

HallEpoch = tuple[str, str, str]
"""``(county, hall, epoch)``: one receipt each."""


class _Seq(BaseModel):
    model_config = ConfigDict(extra="ignore")
    seq: int = Field(ge=1)


class _Header(BaseModel):
    """As much of a refused batch as a receipt needs; everything else may be wrong."""

    model_config = ConfigDict(extra="ignore")
    epoch: str = Field(min_length=1, max_length=64)
    items: list[_Seq]


def receipts(parsed: list[Parsed], kept: list[Rejected]) -> list[tuple[str, Receipt]]:
    """``(topic, receipt)`` per hall and epoch of a group whose transaction committed: the batches
    ``parsed`` accepted, and the refused messages the quarantine ``kept``."""
    stored: dict[HallEpoch, list[int]] = {}
    quarantined: dict[HallEpoch, list[int]] = {}
    for item in parsed:
        if isinstance(item, Accepted):
            batch = item.batch
            stored.setdefault((batch.county, item.hall, batch.epoch), []).extend(i.seq for i in batch.items)
    for reject in kept:
        readable = _readable(reject)
        if readable is not None:
            key, seqs = readable
            quarantined.setdefault(key, []).extend(seqs)
    found: list[tuple[str, Receipt]] = []
    for key in sorted(stored.keys() | quarantined.keys()):
        county, hall, epoch = key
        try:
            receipt = Receipt(hall=hall, county=county, epoch=epoch, stored=seq_ranges(stored.get(key, [])),
                              quarantined=seq_ranges(quarantined.get(key, [])))
        except ValidationError:
            continue  # a topic naming no valid hall id: no hall's outbox can hold it
        found.append((UpTopics(county, hall).receipt, receipt))
    return found


def _readable(rejected: Rejected) -> tuple[HallEpoch, list[int]] | None:
    parts = parse_topic(rejected.topic)
    if parts is None or parts.leaf != "up":
        return None
    try:
        header = _Header.model_validate_json(rejected.payload)
    except (ValidationError, ValueError, RecursionError):
        return None
    if not header.items:
        return None
    return (parts.county, parts.hall, header.epoch), [item.seq for item in header.items]
