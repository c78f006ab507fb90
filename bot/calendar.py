"""Business-hours calendars: when a team works, and exact arithmetic in business time.

A `Calendar` is a time zone, working hours per weekday and holidays. Shifts are
wall-clock times on the date they start (split shifts such as 09:00-12:30 and
13:30-18:00, overnight shifts such as 22:00-06:00, whole days as 00:00-24:00).
Each shift is turned into a UTC interval per date, so clock changes are exact:
a 09:00-17:00 day is 8 hours on the day the clocks change, and a 22:00-06:00
shift across the spring-forward jump really lasts 7 hours. A wall time the
clocks skip means the instant they jump; a wall time that happens twice means
its first occurrence.

A holiday (from the `holidays` package by country and subdivision, or an
explicit date) cancels every shift that starts on that date; an overnight shift
from the evening before still runs into it.

Arithmetic is two binary searches. Each calendar keeps a timeline of its merged
working intervals as epoch microseconds, with the business time accumulated
before each, for a window of whole local months built lazily around the
instants asked about (holidays and clock changes applied per date, as above).
`between(a, b)` is F(b) - F(a), where F counts business time up to an instant,
and `add(start, d)` finds the first instant at which F reaches F(start) + d.
The window grows to cover what is asked and is rebuilt from scratch past
twenty years, so its memory stays bounded in a long-running bot. Every
datetime in or out is tz-aware UTC; the `*_us` methods take and give epoch
microseconds, for callers that do many sums (SLA clocks).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_package

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_GROUPS = {"weekdays": WEEKDAYS[:5], "weekend": WEEKDAYS[5:], "daily": WEEKDAYS}
_LONG_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 1440  # minutes
WEEK = 7 * DAY
ZERO = timedelta(0)
_SHIFT = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_MAX_SCAN_DAYS = 3700  # ten years: a calendar with no change for longer is a definition error
_MAX_WINDOW_MONTHS = 240  # a timeline wider than twenty years starts again from what is asked
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)
_DAY_US = 86_400_000_000


class CalendarError(ValueError):
    """A calendar that cannot be built or used; the message says what to fix."""


@dataclass(frozen=True, slots=True, order=True)
class Shift:
    """One working period in minutes after local midnight of its start day; past 1440 means next day."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not (0 <= self.start < DAY and self.start < self.end <= self.start + DAY):
            raise CalendarError(f"shift minutes {self.start}-{self.end} are out of range")

    @classmethod
    def parse(cls, text: object) -> Shift:
        """Read `09:00-17:00`, `22:00-06:00` (overnight) or `00:00-24:00` (whole day)."""
        if isinstance(text, Shift):
            return text
        match = _SHIFT.match(text) if isinstance(text, str) else None
        if match is None:
            raise CalendarError(f"{text!r} is not a shift (write HH:MM-HH:MM: 09:00-17:00, 22:00-06:00)")
        start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
        if start_h > 23 or start_m > 59 or end_m > 59 or end_h > 24 or (end_h == 24 and end_m):
            raise CalendarError(f"{text!r} has an impossible time (hours 00-23, minutes 00-59, or end 24:00)")
        start, end = start_h * 60 + start_m, end_h * 60 + end_m
        if start == end:
            raise CalendarError(f"{text!r} starts and ends at the same time (00:00-24:00 is a whole day)")
        if end < start:
            end += DAY  # overnight: ends the next day
        return cls(start, end)

    def __str__(self) -> str:
        end = self.end if self.end <= DAY else self.end - DAY
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def parse_weekday(name: object) -> int:
    """Monday=0 ... Sunday=6 from `mon`, `monday`, `Mon` or an int."""
    if isinstance(name, int) and not isinstance(name, bool) and 0 <= name <= 6:
        return name
    key = str(name).strip().lower()
    for index, short in enumerate(WEEKDAYS):
        if key in (short, _LONG_NAMES[index]):
            return index
    raise CalendarError(f"{name!r} is not a weekday (use mon, tue, wed, thu, fri, sat, sun)")


def load_zone(name: str) -> ZoneInfo:
    """The IANA time zone by name, or a CalendarError naming the closest valid ones."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        import difflib
        import zoneinfo

        close = difflib.get_close_matches(str(name), sorted(zoneinfo.available_timezones()), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (use an IANA name such as Europe/London)"
        raise CalendarError(f"unknown time zone {name!r}{hint}")


def check_holiday_region(country: str, subdivision: str | None = None) -> None:
    """Fail with a helpful CalendarError unless the `holidays` package knows this country/subdivision."""
    supported = holidays_package.list_supported_countries()
    if country not in supported:
        raise CalendarError(f"no holidays known for country {country!r} (use an ISO 3166 code: GB, US, DE)")
    if subdivision is not None:
        try:
            holidays_package.country_holidays(country, subdiv=subdivision, years=2000)
        except NotImplementedError:
            names = ", ".join(supported[country]) or "none"
            raise CalendarError(f"{country} has no subdivision {subdivision!r} (known: {names})")


def expand_hours(hours: Mapping[str | int, Any]) -> dict[str, list[Shift]]:
    """Shifts per weekday from keys mon..sun, `weekdays`, `weekend`, `daily` or `mon-fri`; a day beats a group."""
    grouped: dict[str, tuple[str, list[Shift]]] = {}
    single: dict[str, list[Shift]] = {}
    for key, value in hours.items():
        shifts = [Shift.parse(s) for s in ([value] if isinstance(value, str) else list(value or []))]
        name = key if isinstance(key, int) else str(key).strip().lower()
        if isinstance(name, str) and (name in _GROUPS or "-" in name):
            for day in _day_group(name):
                if day in grouped:
                    raise CalendarError(f"{day} is given by both '{grouped[day][0]}' and '{key}'")
                grouped[day] = (str(key), shifts)
        else:
            single[WEEKDAYS[_weekday(name)]] = shifts
    merged = {day: shifts for day, (_, shifts) in grouped.items()} | single
    return {day: merged[day] for day in WEEKDAYS if merged.get(day)}


def _weekday(name: str | int) -> int:
    try:
        return parse_weekday(name)
    except ValueError:
        raise CalendarError(f"'{name}' is not a day (use mon..sun, weekdays, weekend, daily or a range mon-fri)")


def _day_group(name: str) -> tuple[str, ...]:
    if name in _GROUPS:
        return _GROUPS[name]
    first, _, last = (part.strip() for part in name.partition("-"))
    start, end = _weekday(first), _weekday(last)
    return tuple(WEEKDAYS[(start + i) % 7] for i in range((end - start) % 7 + 1))


class Calendar:
    """A named working schedule in one time zone; answers business-time questions exactly."""

    def __init__(
        self,
        name: str,
        timezone: str | ZoneInfo = "UTC",
        hours: Mapping[str | int, Any] | None = None,
        *,
        country: str | None = None,
        subdivision: str | None = None,
        dates: Iterable[date] = (),
    ) -> None:
        self.name = name
        self.timezone = timezone if isinstance(timezone, ZoneInfo) else load_zone(timezone)
        week: list[list[Shift]] = [[] for _ in WEEKDAYS]
        if hours is None:
            week = [[Shift(0, DAY)] for _ in WEEKDAYS]
        else:
            for day, shifts in expand_hours(hours).items():
                week[WEEKDAYS.index(day)].extend(shifts)
        self.week: tuple[tuple[Shift, ...], ...] = tuple(tuple(sorted(day)) for day in week)
        if not any(self.week):
            raise CalendarError(f"calendar {name!r} has no working hours at all")
        if subdivision is not None and country is None:
            raise CalendarError(f"calendar {name!r} names a holiday subdivision but no country")
        if country is not None:
            check_holiday_region(country, subdivision)
        self.country, self.subdivision = country, subdivision
        self.dates = frozenset(dates)
        self.always_open = not self.dates and country is None and _covers_week(self.week)
        self._holiday_years: dict[int, frozenset[date]] = {}
        self._months: dict[int, tuple[tuple[int, int], ...]] = {}  # month number -> raw shift intervals
        self._window = _EMPTY_WINDOW

    def __repr__(self) -> str:
        return f"Calendar({self.name!r}, {self.timezone.key!r})"

    @property
    def hours(self) -> dict[str, tuple[Shift, ...]]:
        """Working shifts per weekday name (days off are absent)."""
        return {WEEKDAYS[i]: shifts for i, shifts in enumerate(self.week) if shifts}

    # -- questions ---------------------------------------------------------

    def is_holiday(self, day: date) -> bool:
        """True when `day` (a local date) is a holiday of this calendar."""
        if day in self.dates:
            return True
        if self.country is None:
            return False
        years = self._holiday_years
        if day.year not in years:
            found = holidays_package.country_holidays(self.country, subdiv=self.subdivision, years=day.year)
            years[day.year] = frozenset(found.keys())
        return day in years[day.year]

    def is_open(self, at: datetime) -> bool:
        """True when `at` falls inside working hours."""
        at = _utc(at)
        if self.always_open:
            return True
        start, _ = self._interval_after(to_us(at))
        return start <= to_us(at)

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when open, else the instant work next starts."""
        at = _utc(at)
        if self.always_open:
            return at
        start, _ = self._interval_after(to_us(at))
        return max(from_us(start), at)

    def next_change(self, at: datetime) -> datetime | None:
        """The first instant after `at` at which open/closed flips; None for a calendar that never closes."""
        at = _utc(at)
        if self.always_open:
            return None
        start, end = self._interval_after(to_us(at))
        return from_us(end if start <= to_us(at) else start)

    def intervals(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working intervals inside [start, end), clipped, in order, adjacent shifts merged."""
        start, end = _utc(start), _utc(end)
        if start >= end:
            return
        if self.always_open:
            yield start, end
            return
        low, high = to_us(start), to_us(end)
        _, _, _, starts, ends, _, _ = self._cover(low, high)
        for index in range(bisect_right(ends, low), len(starts)):
            if starts[index] >= high:
                return
            yield from_us(max(starts[index], low)), from_us(min(ends[index], high))

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in [start, end); negative when `end` is before `start`."""
        start, end = _utc(start), _utc(end)
        return timedelta(microseconds=self.between_us(to_us(start), to_us(end)))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant at which `duration` of business time has passed since `start`."""
        start = _utc(start)
        if duration < ZERO:
            raise ValueError(f"cannot add a negative business duration ({duration})")
        return from_us(self.add_us(to_us(start), duration // _TICK))

    def between_us(self, start: int, end: int) -> int:
        """`between` in epoch microseconds: business microseconds in [start, end), signed."""
        if end < start:
            return -self.between_us(end, start)
        if self.always_open:
            return end - start
        window = self._window
        if not (window[0] <= start and end <= window[1]):
            window = self._cover(start, end)
        _, _, _, starts, ends, cum, _ = window
        i = bisect_right(starts, end) - 1
        if i < 0:
            return 0
        close = ends[i]
        total = cum[i] + (end if end < close else close) - starts[i]
        i = bisect_right(starts, start) - 1
        if i < 0:
            return total
        close = ends[i]
        return total - cum[i] - (start if start < close else close) + starts[i]

    def add_us(self, start: int, amount: int) -> int:
        """`add` in epoch microseconds: the earliest instant `amount` business microseconds after `start`."""
        if amount <= 0:
            if amount < 0:
                raise ValueError(f"cannot add a negative business duration ({timedelta(microseconds=amount)})")
            return start
        if self.always_open:
            return start + amount
        window = self._window
        if not (window[0] <= start and start + amount <= window[1]):
            window = self._cover(start, start + amount)  # business time never outruns wall time
        while True:
            _, high, reach, starts, ends, cum, cum_end = window
            i = bisect_right(starts, start) - 1
            done = 0 if i < 0 else cum[i] + min(start, ends[i]) - starts[i]
            target = done + amount
            if target <= reach:
                i = bisect_left(cum_end, target)
                return starts[i] + target - cum[i]
            self._check_progress(start, ends[-1] if ends else start, high)
            window = self._cover(start, high + (target - reach) + 31 * _DAY_US)

    # -- machinery ---------------------------------------------------------
    #
    # The window is one tuple, replaced whole, so a reader never sees half of a rebuild:
    # (low, high, reach, starts, ends, cum, cum_end). starts/ends are the merged working intervals of the
    # shifts starting in a run of whole local months (epoch microseconds), cum[i] the business time
    # before starts[i] and cum_end[i] the business time at ends[i], counted from the window's start;
    # reach is the business time at `high`. Business time between two instants of [low, high] is exact:
    # a shift from a date before the months ends before `low`, one from a date after starts at `high`
    # or later. Past `high` an interval may be cut short, so nothing beyond it is read.

    def _interval_after(self, at: int) -> tuple[int, int]:
        """The first merged working interval that ends after `at`, known whole (start, end)."""
        window = self._cover(at, at)
        while True:
            _, high, _, starts, ends, _, _ = window
            i = bisect_right(ends, at)
            if i < len(ends) and ends[i] < high:  # a shift starting at or after `high` could extend it
                return starts[i], ends[i]
            self._check_progress(at, starts[i] if i < len(starts) else at, high)
            window = self._cover(at, high + 366 * _DAY_US)

    def _check_progress(self, at: int, last_change: int, high: int) -> None:
        if high - max(at, last_change) > _MAX_SCAN_DAYS * _DAY_US:
            raise CalendarError(f"calendar {self.name!r} does not change between open and closed for "
                                f"ten years after {from_us(at).isoformat()}; check its hours and holidays")

    def _cover(self, low: int, high: int) -> tuple:
        """The window, grown (or rebuilt) so that instants from `low` to `high` are answered exactly."""
        window = self._window
        if window[0] <= low and high <= window[1]:
            return window
        # Shifts of a local date lie between its midnight and the midnight two days later, so whole months
        # from two days before `low` to two days after `high` cover them; checked below all the same.
        first, last = _month_of(self._local_date(low) - 2 * _ONE_DAY), _month_of(self._local_date(high) + 2 * _ONE_DAY)
        while True:
            window = self._build(first, last)
            if window[0] <= low and high <= window[1]:
                return window
            first, last = first - (window[0] > low), last + (high > window[1])

    def _build(self, first: int, last: int) -> tuple:
        months = self._months
        if months:
            wider_first, wider_last = min(first, min(months)), max(last, max(months))
            if wider_last - wider_first < _MAX_WINDOW_MONTHS:
                first, last = wider_first, wider_last
        kept = {m: months[m] if m in months else self._month_intervals(m) for m in range(first, last + 1)}
        starts: list[int] = []
        ends: list[int] = []
        for month in range(first, last + 1):
            for open_at, close_at in kept[month]:
                if ends and open_at <= ends[-1]:  # starts never decrease, so this merges overlaps
                    if close_at > ends[-1]:
                        ends[-1] = close_at
                else:
                    starts.append(open_at)
                    ends.append(close_at)
        low = to_us(self._instant(_month_start(first) + _ONE_DAY, 0))
        high = to_us(self._instant(_month_start(last + 1), 0))
        cum: list[int] = []
        cum_end: list[int] = []
        total = 0
        for open_at, close_at in zip(starts, ends, strict=True):
            cum.append(total)
            total += close_at - open_at
            cum_end.append(total)
        i = bisect_right(starts, high) - 1
        reach = 0 if i < 0 else cum[i] + min(high, ends[i]) - starts[i]
        self._months = kept
        self._window = window = (low, high, reach, starts, ends, cum, cum_end)
        return window

    def _month_intervals(self, month: int) -> tuple[tuple[int, int], ...]:
        """Epoch-microsecond intervals of the shifts starting on each local date of a month, in order."""
        day, end = _month_start(month), _month_start(month + 1)
        found = []
        while day < end:
            found.extend((to_us(a), to_us(b)) for a, b in self._day_intervals(day))
            day += _ONE_DAY
        return tuple(found)

    def _local_date(self, at: int) -> date:
        return from_us(at).astimezone(self.timezone).date()

    def _day_intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """UTC intervals of the shifts starting on local `day` (empty on holidays)."""
        shifts = () if self.is_holiday(day) else self.week[day.weekday()]
        found = []
        for shift in shifts:
            open_at, close_at = self._instant(day, shift.start), self._instant(day, shift.end)
            if close_at > open_at:  # a shift wholly inside a skipped hour is empty
                found.append((open_at, close_at))
        return tuple(found)

    def _instant(self, day: date, minutes: int) -> datetime:
        """The first instant at which the local clock reads `day` + `minutes` (or later)."""
        naive = datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)
        first = naive.replace(tzinfo=self.timezone).astimezone(UTC)  # fold=0: first occurrence
        if first.astimezone(self.timezone).replace(tzinfo=None) == naive:
            return first
        # `naive` falls in a gap (clocks jump forward): the answer is the jump itself.
        low = naive.replace(tzinfo=self.timezone, fold=1).astimezone(UTC)  # before the jump
        before = low.astimezone(self.timezone).utcoffset()
        low_s, high_s = int(low.timestamp()), int(first.timestamp())
        while high_s - low_s > 1:
            middle = (low_s + high_s) // 2
            if datetime.fromtimestamp(middle, self.timezone).utcoffset() == before:
                low_s = middle
            else:
                high_s = middle
        return datetime.fromtimestamp(high_s, UTC)


_ONE_DAY = timedelta(days=1)
_EMPTY_WINDOW: tuple = (1, 0, 0, [], [], [], [])  # covers nothing: low > high


def to_us(at: datetime) -> int:
    """A tz-aware datetime as epoch microseconds (exact)."""
    return (at - _EPOCH) // _TICK


def from_us(at: int) -> datetime:
    """Epoch microseconds as a UTC datetime."""
    return _EPOCH + timedelta(microseconds=at)


def _month_of(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month_start(month: int) -> date:
    return date(month // 12, month % 12 + 1, 1)


def _covers_week(week: tuple[tuple[Shift, ...], ...]) -> bool:
    """True when the shifts leave no minute of the week uncovered (a 24x7 schedule)."""
    spans = sorted((d * DAY + s.start, d * DAY + s.end) for d, shifts in enumerate(week) for s in shifts)
    spans += [(start + WEEK, end + WEEK) for start, end in spans]  # Sunday night runs into Monday
    reach = DAY  # any full week window will do; this one sees Sunday's overnight shift wrap
    for start, end in spans:
        if end <= reach:
            continue
        if start > reach:
            return False
        reach = end
        if reach >= WEEK + DAY:
            return True
    return False


def _utc(at: datetime) -> datetime:
    """`at` in UTC; naive datetimes are refused because their meaning is a guess."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no time zone; pass tz-aware UTC datetimes")
    return at.astimezone(UTC)


_ALWAYS = Calendar("24x7")


def always() -> Calendar:
    """The built-in 24x7 calendar: always open, no holidays."""
    return _ALWAYS
