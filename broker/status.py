"""How the hall's state and the hub's replies read for a person at a terminal."""

from __future__ import annotations

from hallkit.contracts.hall import FLOODING_DETAIL, CommandReply, DeviceStatus, QueueSnapshot
from pydantic import BaseModel

from hallkit.i18n import Lang, bilingual, text


class HallStatus(BaseModel):
    hall: str
    hub: DeviceStatus | None
    queue: QueueSnapshot | None
    devices: list[DeviceStatus]


def render_status(status: HallStatus) -> str:
    lines: list[str] = []
    queue = status.queue
    if queue is not None:
        lines.append(bilingual("status.title", hall=queue.hall_name or queue.hall, hall_id=status.hall, day=queue.day or ""))
    if status.hub is None:
        lines.append(bilingual("status.hub_unknown"))
    elif status.hub.state == "online":
        detail = status.hub.detail
        lines.append(bilingual("status.hub_online", session=status.hub.session,
                               accepted=detail.get("accepted", 0), refused=detail.get("refused", 0)))
        if detail.get(FLOODING_DETAIL):
            lines.append(bilingual("status.flooding", devices=str(detail[FLOODING_DETAIL])))
        lines += _uplink_lines(detail)
    else:
        lines.append(bilingual("status.hub_offline"))
    if queue is not None:
        lines.append(bilingual("status.waiting_total", waiting=queue.waiting_total))
        for service in queue.services:
            if service.waiting:
                lines.append("  " + bilingual(
                    "status.service_line", prefix=service.prefix, name=service.name, waiting=service.waiting,
                    longest=round(service.longest_wait_seconds / 60, 1), estimate=service.estimated_wait_minutes))
        for window in queue.windows:
            state = "window_closed" if not window.open else "window_paused" if window.paused else "window_open"
            ticket = f" · {window.ticket.number}" if window.ticket else ""
            lines.append("  " + bilingual("status.window_line", number=window.number, name=window.name,
                                          state=bilingual(f"status.{state}"), ticket=ticket,
                                          served=window.served_today))
    for device in sorted(status.devices, key=lambda d: d.device):
        lines.append("  " + bilingual("status.device_line", device=device.device, state=device.state.value))
    return "\n".join(lines)


def _uplink_lines(detail: dict[str, str | int | float | bool | None]) -> list[str]:
    """The outbox's backlog (count, age of the oldest item), split into not yet sent and sent but
    awaiting the county's receipt (each with its oldest), and its disk alarm, when it runs."""
    backlog = detail.get("uplink.backlog")
    if backlog is None:
        return []
    oldest = float(detail.get("uplink.oldest_seconds") or 0)
    link = "upstream.link_up" if detail.get("uplink.connected") else "upstream.link_down"
    unsent, awaiting = int(detail.get("uplink.unsent") or 0), int(detail.get("uplink.awaiting_receipt") or 0)

    def minutes(key: str) -> float:
        return round(float(detail.get(key) or 0) / 60, 1)

    def line(lang: Lang) -> str:
        since = text("upstream.status_oldest", lang, minutes=round(oldest / 60, 1)) if backlog else ""
        return text("upstream.status_line", lang, link=text(link, lang), backlog=backlog, oldest=since)

    def split(lang: Lang) -> str:
        return text("upstream.status_split", lang, unsent=unsent, awaiting=awaiting,
                    unsent_oldest=text("upstream.status_unsent_oldest", lang,
                                       minutes=minutes("uplink.oldest_unsent_seconds")) if unsent else "",
                    awaiting_oldest=text("upstream.status_awaiting_oldest", lang,
                                         minutes=minutes("uplink.oldest_awaiting_seconds")) if awaiting else "")

    lines = [f"{line('zh')} / {line('en')}"]
    if backlog:
        lines.append(f"  {split('zh')} / {split('en')}")
    if detail.get("uplink.alarm"):
        lines.append(bilingual("upstream.status_alarm", mb=round(float(detail.get("uplink.bytes") or 0) / 2**20, 1)))
    return lines


def describe_reply(action: str, reply: CommandReply) -> str:
    if not reply.ok:
        refusal = reply.refusal
        if refusal is None:
            return bilingual("counter.refused", reason="?")
        # Each language with its own reason: "未执行：… / Not done: …", each text once.
        return f"{text('counter.refused', 'zh', reason=refusal.zh)} / {text('counter.refused', 'en', reason=refusal.en)}"
    outcome = reply.outcome
    assert outcome is not None
    ticket = outcome.ticket
    window = outcome.window
    params: dict[str, str | int | float] = {"window": window.number if window else ""}
    if ticket is not None:
        params |= {"number": ticket.number, "service": ticket.service_name, "ahead": ticket.ahead,
                   "wait": ticket.estimated_wait_minutes, "windows": ",".join(map(str, ticket.windows))}
    key = f"counter.{action}"
    if action == "skip" and ticket is not None and ticket.state == "waiting":
        key = "counter.skip_requeued"
    if action == "call" and (window is None or window.ticket is None):
        key = "counter.done_none"
    if action == "staff" and window is not None:
        params["staff"] = window.staff_id or ""
    return bilingual(key, **params)
