"""Sizing rules of the hall display, kept apart from Kivy so they can be reasoned about and tested."""

from __future__ import annotations

import math
import unicodedata

WIDE_EM = 1.0
"""A Chinese character is one em wide."""
NARROW_EM = 0.62
"""Latin letters, digits and punctuation: a little over half an em (bold, proportional)."""


def text_ems(text: str) -> float:
    return sum(WIDE_EM if unicodedata.east_asian_width(c) in "WF" else NARROW_EM for c in text)


BREAK_AFTER = "·、，,/ ）)"
"""Where a name breaks best: after a separator, not inside a word."""
MARGIN_EM = 0.3
"""Room left at a line's end: glyphs are not all exactly as wide as counted."""


def fit_font(text: str, width: float, base: float, lines: int = 2) -> float:
    """The largest size up to ``base`` at which ``text`` takes at most ``lines`` lines of ``width``.

    Explicit line breaks (:func:`balance`) are kept; otherwise Kivy breaks where a line is
    full and a line may end up to one character short, so each is counted one em narrower.
    """
    if not text or width <= 0:
        return base
    if "\n" in text:
        per_line = max(text_ems(line) for line in text.split("\n")) + MARGIN_EM
    else:
        per_line = text_ems(text) / lines + WIDE_EM
    return max(1.0, min(base, width / per_line))


def balance(text: str, width: float, base: float) -> str:
    """The name on one line if it fits at ``base``, else broken into two halves of about equal width.

    A greedy break leaves one character alone on the second line (城乡最低生活保障对象认 / 定);
    halves read better and keep the type larger. A separator near the middle is preferred.
    """
    if not text or "\n" in text or text_ems(text) + MARGIN_EM <= width / base:
        return text
    total = text_ems(text)
    best, best_score = 1, float("inf")
    running = 0.0
    for index, char in enumerate(text[:-1], start=1):
        running += text_ems(char)
        score = abs(running - total / 2) - (1.0 if char in BREAK_AFTER else 0.0)
        if score < best_score:
            best, best_score = index, score
    return f"{text[:best].rstrip()}\n{text[best:].lstrip()}"


ONE_COLUMN_WINDOWS = 5
"""Windows listed one a row (with their names at full size) up to this many …"""
TWO_COLUMN_WINDOWS = 12
"""… then in two columns up to this many, then three."""


def grid_columns(windows: int) -> int:
    return 1 if windows <= ONE_COLUMN_WINDOWS else 2 if windows <= TWO_COLUMN_WINDOWS else 3


def rows_that_fit(height: float, row: float, spacing: float) -> int:
    """How many rows of ``row`` with ``spacing`` between them fit in ``height``."""
    return max(0, math.floor((height + spacing) / (row + spacing)))
