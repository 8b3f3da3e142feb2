"""The 好差评 rules: score mapping, one rating per event, timing windows, the missing-rating default."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hallkit.config import parse_config
from hallkit.rating.models import Level, RatingChannel, RatingSubmission
from hallkit.rating.rules import EventStatus, RatingRefused, ServiceEvent, accept, check, close_unrated, score
from hallkit.testing import MONDAY, SMALL_HALL

GUANGXI = SMALL_HALL.replace("[queue]", """[rating]
scores = [10, 8, 6, 3, 0]
pad_timeout_seconds = 60
late_rating_hours = 168
missing_rating = "very_satisfied"

[queue]""")


def event(**changes) -> ServiceEvent:
    base = ServiceEvent(
        service_event_id="e1", ticket_id="20261123-A001", ticket_number="A001", ticket_public_id="qr1",
        service_id="social", service_code="social", service_name="低保申请", department="民政", window=1,
        window_name="综合窗口", staff_id="a1", staff_name="张三", called_at=MONDAY, served_at=MONDAY,
    )
    return base.model_copy(update=changes)


def submit(level: int = 5, channel: RatingChannel = RatingChannel.PAD, tags: list[str] | None = None):
    return RatingSubmission(service_event_id="e1", channel=channel, level=Level(level), tags=tags or [])


@pytest.fixture
def guangxi():
    return parse_config(GUANGXI)


def test_scores_follow_the_province(small_config, guangxi):
    assert [score(Level(n), small_config.rating) for n in (5, 4, 3, 2, 1)] == [5, 4, 3, 2, 1]
    assert [score(Level(n), guangxi.rating) for n in (5, 4, 3, 2, 1)] == [10, 8, 6, 3, 0]
    rating = accept(event(), submit(4), MONDAY + timedelta(seconds=5), guangxi)
    assert rating.score == 8 and rating.level is Level.SATISFIED and rating.region_code == "652323100201"


def test_the_record_carries_what_upstream_needs(small_config):
    rating = accept(event(resident_hash="ab" * 32), submit(1, tags=["态度不好"]), MONDAY + timedelta(seconds=3),
                    small_config)
    assert (rating.service_event_id, rating.ticket_number, rating.window, rating.staff_name) == \
        ("e1", "A001", 1, "张三")
    assert rating.served_at == MONDAY and rating.rated_at == MONDAY + timedelta(seconds=3)
    assert rating.resident_hash == "ab" * 32 and rating.tags == ["态度不好"]


def test_one_rating_per_event(small_config):
    with pytest.raises(RatingRefused) as refused:
        check(event(status=EventStatus.RATED), submit(), MONDAY, small_config.rating)
    assert refused.value.message.key == "rating.already_rated"
    assert "已经评价过" in refused.value.message.render("zh")


def test_reasons_only_from_the_list_and_only_for_a_bad_rating(small_config):
    with pytest.raises(RatingRefused, match="reason"):
        check(event(), submit(1, tags=["太热了"]), MONDAY, small_config.rating)
    with pytest.raises(RatingRefused) as refused:
        check(event(), submit(5, tags=["态度不好"]), MONDAY, small_config.rating)
    assert refused.value.message.key == "rating.tags_only_for_bad"


def test_timing_pad_then_qr_then_closed(small_config):
    rules = small_config.rating  # pad 60 s, late 168 h
    check(event(), submit(channel=RatingChannel.PAD), MONDAY + timedelta(seconds=60), rules)
    with pytest.raises(RatingRefused) as refused:
        check(event(), submit(channel=RatingChannel.PAD), MONDAY + timedelta(seconds=61), rules)
    assert refused.value.message.key == "rating.pad_time_over"
    check(event(), submit(channel=RatingChannel.QR), MONDAY + timedelta(hours=167), rules)
    with pytest.raises(RatingRefused) as refused:
        check(event(), submit(channel=RatingChannel.QR), MONDAY + timedelta(hours=169), rules)
    assert refused.value.message.key == "rating.period_over"


def test_no_late_rating_where_the_province_has_none(small_config):
    rules = small_config.rating.model_copy(update={"late_rating_hours": 0})
    with pytest.raises(RatingRefused) as refused:
        check(event(), submit(channel=RatingChannel.QR), MONDAY + timedelta(seconds=61), rules)
    assert refused.value.message.key == "rating.period_over"


def test_missing_rating_is_nothing_or_the_province_default(small_config, guangxi):
    late = MONDAY + timedelta(hours=168, seconds=1)
    assert close_unrated(event(), MONDAY + timedelta(hours=1), guangxi) == (EventStatus.PENDING, None)
    assert close_unrated(event(), late, small_config) == (EventStatus.LAPSED, None)
    status, rating = close_unrated(event(), late, guangxi)
    assert status is EventStatus.DEFAULTED and rating is not None
    assert rating.channel is RatingChannel.DEFAULT and rating.level is Level.VERY_SATISFIED and rating.score == 10
    assert rating.rated_at == MONDAY + timedelta(hours=168)


def test_a_submission_names_one_event():
    with pytest.raises(ValueError):
        RatingSubmission(channel=RatingChannel.PAD, level=Level(5))
    with pytest.raises(ValueError):
        RatingSubmission(service_event_id="e", ticket_public_id="q", channel=RatingChannel.PAD, level=Level(5))
    with pytest.raises(ValueError):
        RatingSubmission(service_event_id="e", channel=RatingChannel.DEFAULT, level=Level(5))
