"""What can go wrong between a card on the reader and a resident record, each with its message.

The kiosk shows :attr:`IdCardError.message` to the resident; the wording is in
``hallkit/locales/idcard.*.toml`` under the key ``idcard.<problem>``.
"""

from __future__ import annotations

from enum import StrEnum

from hallkit.i18n import Lang, Message


class Problem(StrEnum):
    """Why no resident record came out; the value is the message key under ``idcard.``."""

    NO_CARD = "no_card"
    CARD_MOVED = "card_moved"
    TIMEOUT = "timeout"
    GARBLED = "garbled"
    READER_FAULT = "reader_fault"
    PORT_UNAVAILABLE = "port_unavailable"
    NOT_VERIFIED = "not_verified"
    WRONG_CARD = "wrong_card"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    BAD_NUMBER = "bad_number"
    BAD_DATA = "bad_data"
    UNKNOWN_LAYOUT = "unknown_layout"
    UNCONFIRMED_LAYOUT = "unconfirmed_layout"
    FOREIGN_2023 = "foreign_2023"


RETRYABLE = frozenset({Problem.NO_CARD, Problem.CARD_MOVED, Problem.TIMEOUT, Problem.GARBLED})
"""Problems that a second try (or the resident placing the card again) can cure."""

REFUSALS = frozenset({
    Problem.EXPIRED, Problem.NOT_YET_VALID, Problem.BAD_NUMBER, Problem.BAD_DATA,
    Problem.UNKNOWN_LAYOUT, Problem.UNCONFIRMED_LAYOUT, Problem.FOREIGN_2023, Problem.WRONG_CARD,
    Problem.NOT_VERIFIED,
})
"""The card was there but is not accepted; reading it again gives the same answer."""


class IdCardError(Exception):
    """A reader or card problem, carrying the message a person reads."""

    def __init__(self, problem: Problem, **params: str | int | float) -> None:
        self.problem = problem
        self.message = Message(key=f"idcard.{problem.value}", params=params)
        super().__init__(self.message.bilingual())

    @property
    def retry(self) -> bool:
        return self.problem in RETRYABLE

    @property
    def refused(self) -> bool:
        return self.problem in REFUSALS

    def render(self, lang: Lang = "zh") -> str:
        return self.message.render(lang)
