"""Which parts the hub runs besides the queue: one line each, in the order they attach."""

from __future__ import annotations

from hallkit.broker.appointments import AppointmentsPart
from hallkit.broker.hub import HubPart
from hallkit.broker.ratings import RatingsPart

from hallkit.config import HallConfig


def hub_parts(config: HallConfig) -> list[HubPart]:
    parts: list[HubPart] = []
    parts.append(RatingsPart(config))
    parts.append(AppointmentsPart(config))
    if config.upstream is not None:
        # Imported only for a hall with a county to report to: the outbox brings the uplink's
        # contracts and the day's figures, which a hall on its own never loads.
        from hallkit.uplink.outbox import Outbox  # noqa: PLC0415

        parts.append(Outbox(config, config.upstream))
    return parts
