"""Which parts the hub runs besides the queue: one line each, in the order they attach."""

from __future__ import annotations

from hallkit.config import HallConfig

from broker.hub import HubPart


def hub_parts(config: HallConfig) -> list[HubPart]:
    parts: list[HubPart] = []
    return parts
