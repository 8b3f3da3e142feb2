"""What may be kept of a resident: a masked form for display, a keyed hash for matching.

A resident's full ID number and name never leave the kiosk that read them
(house rule 4). Records that must be matched (appointments, repeat visits)
carry :func:`id_hash`, an HMAC with the hall's own secret, so a hash cannot
be reversed by hashing every possible ID number without that secret.
"""

from __future__ import annotations

import hashlib
import hmac

KEPT_HEAD = 6
"""Characters of an ID number a mask keeps at the front (the region code)."""
KEPT_TAIL = 4
"""Characters kept at the end (the check part)."""


def id_hash(key: str, id_number: str) -> str:
    """Keyed hash of an ID number (HMAC-SHA256, hex), case-folded so 'x' and 'X' agree."""
    normalised = id_number.strip().upper()
    return hmac.new(key.encode("utf-8"), normalised.encode("ascii", "replace"), hashlib.sha256).hexdigest()


def mask_id(id_number: str) -> str:
    """Keep the first 6 and last 4 characters: the region and the check part."""
    value = id_number.strip()
    if len(value) <= KEPT_HEAD + KEPT_TAIL:
        return "*" * len(value)
    return f"{value[:KEPT_HEAD]}{'*' * (len(value) - KEPT_HEAD - KEPT_TAIL)}{value[-KEPT_TAIL:]}"


def mask_name(name: str) -> str:
    """Surname and one star per remaining character (张**)."""
    value = name.strip()
    if not value:
        return ""
    if " " in value:  # Latin names on foreign cards: keep the family name only
        family = value.split()[0]
        return f"{family} *"
    return value[0] + "*" * max(1, len(value) - 1)
