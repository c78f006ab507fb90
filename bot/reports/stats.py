"""Small, exact statistics the reports need: quantiles, robust z-scores, business-day ages.

Kept here (not numpy) so the numbers are easy to check by hand and the tests
can compare against an independent implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.calendar import Calendar

# 0.6745 is the 75th percentile of the standard normal: it scales MAD to a standard deviation.
_MAD_SCALE = 0.6745
# sqrt(pi/2): scales the mean absolute deviation when more than half the values equal the median.
_MEANAD_SCALE = 1.253314
_WEEK = timedelta(days=7)


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation between order statistics (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float | None:
    """The middle value (mean of the two middle ones for an even count)."""
    return quantile(values, 0.5)


def quantile_duration(values: Sequence[timedelta], q: float) -> timedelta | None:
    """`quantile` over durations."""
    found = quantile([v.total_seconds() for v in values], q)
    return None if found is None else timedelta(seconds=found)


def robust_z(values: Sequence[float]) -> list[float]:
    """Modified z-score of each value (Iglewicz and Hoaglin): distance from the median in MADs.

    When more than half the values are equal (MAD is 0) the mean absolute
    deviation stands in; when every value is equal all scores are 0.
    """
    if not values:
        return []
    center = median(values)
    assert center is not None
    deviations = [abs(v - center) for v in values]
    mad = median(deviations) or 0.0
    if mad > 0:
        return [_MAD_SCALE * (v - center) / mad for v in values]
    mean_ad = sum(deviations) / len(deviations)
    if mean_ad > 0:
        return [(v - center) / (_MEANAD_SCALE * mean_ad) for v in values]
    return [0.0 for _ in values]


def business_day(calendar: Calendar) -> timedelta:
    """The length of an average working day of a calendar (24h for 24x7; 8h for 09:00-17:00 weekdays)."""
    if calendar.always_open:
        return timedelta(days=1)
    minutes = [sum(s.end - s.start for s in day) for day in calendar.week]
    working = [m for m in minutes if m]
    return timedelta(minutes=sum(working) / len(working))


def share(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide."""
    return part / whole if whole else None
