"""Human durations as coordinators write them: 30m, 4h, 2d, 1h30m, "2 hours", "90 minutes".

Bare numbers are refused on purpose: `4` could mean minutes or hours, and a
rules file must not be ambiguous.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "wk": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip

_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*,?\s*(?:and\s+)?", re.IGNORECASE)

DURATION_HINT = "try 90m, 2h, 1d, 1h30m or 2 hours"


class DurationError(ValueError):
    """A text that is not a duration; the message says what would be."""


def parse_duration(text: object) -> timedelta:
    """Parse `30m`, `1h30m`, `2 hours`, `1 day and 4 hours`, `-30m` into a timedelta."""
    if isinstance(text, timedelta):
        return text
    if not isinstance(text, str) or not text.strip():
        raise DurationError(f"{text!r} is not a duration ({DURATION_HINT})")
    raw = text.strip()
    sign = 1
    if raw[0] in "+-":
        sign = -1 if raw[0] == "-" else 1
        raw = raw[1:].strip()
    position, seconds = 0, 0.0
    while position < len(raw):
        part = _PART.match(raw, position)
        if not part or part.group(2).lower() not in _UNITS:
            raise DurationError(f"{text!r} is not a duration ({DURATION_HINT})")
        seconds += float(part.group(1)) * _UNITS[part.group(2).lower()]
        position = part.end()
    if position == 0:
        raise DurationError(f"{text!r} is not a duration ({DURATION_HINT})")
    return timedelta(seconds=sign * seconds)


def format_duration(delta: timedelta) -> str:
    """Short human form: 1d 4h, 2h 30m, 45m, 30s; negative values get a minus sign."""
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes and not days:
        parts.append(f"{minutes}m")
    if not parts:
        parts.append(f"{seconds}s" if seconds or not minutes else f"{minutes}m")
    return sign + " ".join(parts)
