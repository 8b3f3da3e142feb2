"""Colours and sizes of the hall's screens: high contrast, big targets, for elderly residents.

Text on buttons and on the page background has a contrast ratio of at least 7:1 (WCAG AAA);
sizes are in dp/sp so they hold on any screen density.
"""

BACKGROUND = (0.96, 0.97, 0.98, 1)
TEXT = (0.07, 0.09, 0.13, 1)
MUTED = (0.22, 0.25, 0.30, 1)
HEADER = (0.04, 0.17, 0.33, 1)
ON_DARK = (1, 1, 1, 1)
PRIMARY = (0.02, 0.29, 0.58, 1)
PRIMARY_DOWN = (0.01, 0.18, 0.38, 1)
SECONDARY = (1, 1, 1, 1)
SECONDARY_DOWN = (0.85, 0.89, 0.94, 1)
BORDER = (0.02, 0.29, 0.58, 1)
WARN = (0.66, 0.07, 0.07, 1)
WARN_DOWN = (0.45, 0.04, 0.04, 1)
WARN_LIGHT = (1.0, 0.93, 0.90, 1)
GOOD = (0.05, 0.40, 0.15, 1)
HIGHLIGHT = (1.0, 0.84, 0.25, 1)
HIGHLIGHT_DOWN = (0.88, 0.70, 0.10, 1)
TICKET = (0.70, 0.05, 0.05, 1)
CARD = (1, 1, 1, 1)

TARGET_DP = 96
"""Smallest touch target: a finger that trembles still lands on it."""
TEXT_SP = 32
"""Smallest text a resident reads."""
ELDER_SCALE = 1.5
"""Elder mode (长辈模式) text and targets are this much larger, with fewer items a screen."""
