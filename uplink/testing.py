"""Support for the tests and the benches (not used by the hall itself): ratings, case updates and
hall configurations with an uplink, made the way the rating part makes them."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime, timedelta

from hallkit.config import HallConfig, parse_config
from hallkit.rating.models import CaseStep, CaseUpdate, Level, Rating, RatingChannel
from hallkit.testing import HALL_WITH_DEVICES, HALL_WITH_PADS

SERVED = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def hall_toml(county_url: str, hall_id: str = "test-hall", **upstream: object) -> str:
    settings = {"broker": county_url, "stats_interval_minutes": 60, **upstream}
    lines = "\n".join(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {v}"
                      for k, v in settings.items())
    text = HALL_WITH_DEVICES.replace('id = "test-hall"', f'id = "{hall_id}"', 1)
    text = text.replace('region_code = "652323100201"', 'region_code = "652323100201"\ncounty_id = "test-county"', 1)
    return text + f"\n[[devices]]\nid = \"printer-1\"\nkind = \"printer\"\n\n[upstream]\n{lines}\n"


def hall_config(county_url: str, hall_id: str = "test-hall", **upstream: object) -> HallConfig:
    """The hall with devices and a printer in county ``test-county``, its uplink to ``county_url``
    with ``upstream``'s settings (``[upstream]`` keys)."""
    return parse_config(hall_toml(county_url, hall_id, **upstream))


def pads_hall_config(county: str | None, broker_url: str = "") -> HallConfig:
    """The hall with a pad at each window in ``county``, its uplink to ``broker_url``; without an
    uplink (and in ``county-a``) when ``county`` is None."""
    text = HALL_WITH_PADS.replace('region_code = "652323100201"',
                                  f'region_code = "652323100201"\ncounty_id = "{county or "county-a"}"', 1)
    if county is None:
        return parse_config(text)
    return parse_config(text + f'\n[upstream]\nbroker = "{broker_url}"\nstats_interval_minutes = 600\n')


def unreachable_url() -> str:
    """A broker URL nothing answers at (a port the kernel just handed out and took back): an uplink
    that stays offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"mqtt://127.0.0.1:{s.getsockname()[1]}"


def rating(i: int, hall: str = "test-hall", level: Level = Level.VERY_SATISFIED, day: int = 0) -> Rating:
    served = SERVED + timedelta(days=day, seconds=i)
    return Rating(
        rating_id=f"{hall}-r{i:06d}", hall_id=hall, region_code="652323100201",
        service_event_id=f"ev-{i}", ticket_id=f"{served:%Y%m%d}-A{i:03d}", ticket_number=f"A{i % 1000:03d}",
        service_code="social", service_name="低保申请", department="民政", window=1 + i % 3,
        staff_id="a1", staff_name="张三", channel=RatingChannel.PAD, level=level, score=int(level),
        tags=["态度不好"] if level.bad else [], text="", served_at=served,
        rated_at=served + timedelta(seconds=30), resident_hash="ab" * 32)


def case(i: int, rating_id: str, step: CaseStep, hall: str = "test-hall", deadline: date = date(2026, 11, 30),
         at: datetime | None = None) -> CaseUpdate:
    return CaseUpdate(update_id=f"{hall}-u{i:06d}", case_id=f"case-{rating_id}", rating_id=rating_id, hall_id=hall,
                      step=step, by="manager", at=at or SERVED + timedelta(hours=1, seconds=i), deadline=deadline)
