"""Durations are written the way coordinators speak; anything ambiguous is refused."""

from datetime import timedelta

import pytest

from bot.rules.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2 hours", timedelta(hours=2)),
        ("90 minutes", timedelta(minutes=90)),
        ("1 day and 4 hours", timedelta(days=1, hours=4)),
        ("1w", timedelta(weeks=1)),
        ("45s", timedelta(seconds=45)),
        ("1.5h", timedelta(minutes=90)),
        ("-30m", timedelta(minutes=-30)),
        ("+1h", timedelta(hours=1)),
        ("2 HOURS", timedelta(hours=2)),
    ],
)
def test_human_durations_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "4", "2 hourz", "h", "soon", "1h 30", None, 5])
def test_non_durations_are_refused_with_examples(text):
    with pytest.raises(DurationError, match=r"is not a duration \(try 90m, 2h, 1d, 1h30m or 2 hours\)"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=45), "45m"),
        (timedelta(hours=2, minutes=30), "2h 30m"),
        (timedelta(days=1, hours=4, minutes=10), "1d 4h"),
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=-90), "-1h 30m"),
        (timedelta(0), "0s"),
    ],
)
def test_durations_format_short(delta, text):
    assert format_duration(delta) == text
