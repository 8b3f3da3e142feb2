"""Message catalogues: every sentence a resident or staff member reads.

Texts live in ``locales/<lang>.toml`` (the core) and ``locales/<part>.<lang>.toml``
(one file per part of the hall: printer, idcard, kiosk, ...), keyed by a dotted
id such as ``printer.paper_out``, so code names a message, never its wording. Chinese (``zh``) is the first language; English
(``en``) is the second and the fallback for a key a catalogue lacks.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")


@cache
def catalogue(lang: Lang) -> dict[str, str]:
    folder = resources.files("hallkit").joinpath("locales")
    flat: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name == f"{lang}.toml" or entry.name.endswith(f".{lang}.toml"):
            flat.update(_flatten(tomllib.loads(entry.read_text("utf-8"))))
    return flat


def _flatten(tree: dict[str, object], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def text(key: str, lang: Lang = "zh", **params: object) -> str:
    """The message ``key`` in ``lang`` with ``params`` filled in.

    An unknown key returns the key itself so a missing translation shows up
    on screen instead of crashing a kiosk.
    """
    template = catalogue(lang).get(key) or catalogue("en").get(key) or key
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template


def bilingual(key: str, **params: object) -> str:
    """Chinese first, English second, for logs and staff-facing command output."""
    zh = text(key, "zh", **params)
    en = text(key, "en", **params)
    return zh if zh == en else f"{zh} / {en}"


class Message(BaseModel):
    """A message by key with its parameters: what travels in refusals and errors."""

    model_config = ConfigDict(frozen=True)

    key: str
    params: dict[str, str | int | float] = {}

    def render(self, lang: Lang = "zh") -> str:
        return text(self.key, lang, **self.params)

    def bilingual(self) -> str:
        return bilingual(self.key, **self.params)
