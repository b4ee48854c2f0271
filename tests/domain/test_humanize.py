"""Durations and times as people read them in the timeline, the Web UI and the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.humanize import duration, moment


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=0.754728), "0 s"),  # never microseconds
        (timedelta(seconds=45), "45 s"),
        (timedelta(minutes=1, seconds=1), "1 min 1 s"),
        (timedelta(hours=2, minutes=5, seconds=59), "2 h 5 min"),
        (timedelta(hours=1), "1 h"),
        (timedelta(days=3, hours=4, minutes=30), "3 days 4 h"),
        (timedelta(days=1, minutes=3), "1 day"),  # "1 day 3 min" would hide the zero hours
        (timedelta(days=5), "5 days"),
        (timedelta(minutes=-90), "-1 h 30 min"),
    ],
)
def test_a_duration_reads_as_its_two_largest_units(delta: timedelta, words: str) -> None:
    assert duration(delta) == words


def test_a_moment_is_to_the_minute_in_utc_and_says_so() -> None:
    assert moment(datetime(2026, 12, 4, 5, 56, 33, 754728, tzinfo=UTC)) == "2026-12-04 05:56 UTC"
    vienna = timezone(timedelta(hours=1))
    assert moment(datetime(2026, 12, 4, 6, 56, tzinfo=vienna)) == "2026-12-04 05:56 UTC"
    assert moment(datetime(2026, 12, 4, 5, 56)) == "2026-12-04 05:56 UTC"  # noqa: DTZ001 (naive: taken as UTC)
