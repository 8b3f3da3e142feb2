"""Pad tests reuse the rating hub (a pad at each window) from tests/rating."""

from tests.rating.conftest import pads_config, rating_hub  # noqa: F401 - fixtures
