"""The ticket-numbering rule: a letter per service group and a daily, gapless sequence.

Numbers start again every business day. A business day begins at the
configured reset hour in the hall's time zone, so a hall that resets at 04:00
keeps late-evening extended-service tickets on the same day.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

PUBLIC_ID_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
"""No 0/o, 1/l/i: a resident may have to type it from a photo of the ticket."""


def business_day(now: datetime, zone: ZoneInfo, reset_hour: int) -> date:
    local = now.astimezone(zone)
    return (local - timedelta(hours=reset_hour)).date()


def ticket_number(prefix: str, seq: int) -> str:
    """A001 … A999, then A1000: never fewer than three digits, never truncated."""
    return f"{prefix}{seq:03d}"


def ticket_id(day: date, number: str) -> str:
    return f"{ticket_id_prefix(day)}{number}"


def ticket_day(ticket_id: str) -> date:
    """The business day a ticket was issued on: the date its id starts with (see :func:`ticket_id`).

    It is the day of the queue's ``day_opened`` the ticket was issued under, whatever the clock
    said later; a ticket never outlives its day (the next ``day_opened`` abandons it), so this is
    also the business day of the ticket's service and of its rating.
    """
    return datetime.strptime(ticket_id.split("-", 1)[0], "%Y%m%d").date()


def ticket_id_prefix(day: date) -> str:
    """What every ticket id of ``day`` starts with (the county selects a day's ratings by it)."""
    return f"{day:%Y%m%d}-"


def public_id(length: int = 10) -> str:
    # One draw from the OS instead of one per character: this runs for every ticket.
    value = secrets.randbelow(len(PUBLIC_ID_ALPHABET) ** length)
    chars = []
    for _ in range(length):
        value, digit = divmod(value, len(PUBLIC_ID_ALPHABET))
        chars.append(PUBLIC_ID_ALPHABET[digit])
    return "".join(chars)
