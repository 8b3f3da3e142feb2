"""Which parts the hub runs besides the queue: one line each, in the order they attach."""

from __future__ import annotations

from hallkit.config import HallConfig

from broker.appointments import AppointmentsPart
from broker.hub import HubPart
from broker.outbox import Outbox
from broker.ratings import RatingsPart


def hub_parts(config: HallConfig) -> list[HubPart]:
    parts: list[HubPart] = []
    parts.append(RatingsPart(config))
    parts.append(AppointmentsPart(config))
    if config.upstream is not None:
        parts.append(Outbox(config, config.upstream))
    return parts
