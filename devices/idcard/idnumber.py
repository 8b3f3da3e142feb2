"""The 18-character citizen ID number (GB 11643-1999) and its ISO 7064 MOD 11-2 check character.

Layout: 6-digit address code, 8-digit birth date, 3-digit sequence (odd for
men, even for women), 1 check character. The same check applies to the
residence permits of Hong Kong, Macao and Taiwan residents and to the 2023
foreign permanent resident card.
"""

from __future__ import annotations

import re
from datetime import date

WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
"""7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2: the weight of position i is 2^(17−i) mod 11."""
CHECK_CHARACTERS = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")


def check_character(first17: str) -> str:
    """The check character for the first 17 digits.

    Raises:
        ValueError: if ``first17`` is not 17 digits.
    """
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARACTERS[total % 11]


def is_valid(number: str) -> bool:
    """True for 17 digits followed by their right check character (x and X alike)."""
    value = number.strip().upper()
    return bool(_SHAPE.match(value)) and check_character(value[:17]) == value[17]


def compose(region: str, birth: date, sequence: int) -> str:
    """An ID number with a correct check character, for simulators and tests.

    Args:
        region: the 6-digit address code.
        birth: date of birth.
        sequence: 0–999; odd for a man, even for a woman.
    """
    if len(region) != 6 or not region.isdigit() or not 0 <= sequence <= 999:
        raise ValueError("region must be 6 digits and sequence 0-999")
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)
