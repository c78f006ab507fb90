"""Business-hours calendars: shifts, holidays, DST and the arithmetic SLA clocks stand on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.calendar import WEEKDAYS, Calendar, CalendarError, Shift, always, from_us, parse_weekday, to_us

H = timedelta(hours=1)
M = timedelta(minutes=1)
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = {day: ["09:00-17:00"] for day in WEEKDAYS[:5]}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    """A local wall time as a UTC instant (fold=1 picks the second of a repeated hour)."""
    return datetime(*args, tzinfo=zone, fold=fold).astimezone(UTC)


# -- definitions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [("09:00-17:00", 540, 1020), ("22:00-06:00", 1320, 1800), ("00:00-24:00", 0, 1440),
     (" 13:30 - 18:00 ", 810, 1080), ("23:59-00:00", 1439, 1440)],
)
def test_shift_parses_day_overnight_and_whole_day(text: str, start: int, end: int) -> None:
    assert Shift.parse(text) == Shift(start, end)


@pytest.mark.parametrize(
    ("text", "message"),
    [("9-17", "'9-17' is not a shift (write HH:MM-HH:MM: 09:00-17:00, 22:00-06:00)"),
     ("09:00-09:00", "'09:00-09:00' starts and ends at the same time (00:00-24:00 is a whole day)"),
     ("24:00-06:00", "'24:00-06:00' has an impossible time (hours 00-23, minutes 00-59, or end 24:00)"),
     ("09:60-17:00", "'09:60-17:00' has an impossible time (hours 00-23, minutes 00-59, or end 24:00)"),
     ("09:00-24:30", "'09:00-24:30' has an impossible time (hours 00-23, minutes 00-59, or end 24:00)")],
)
def test_shift_refuses_nonsense_saying_what_to_write(text: str, message: str) -> None:
    with pytest.raises(CalendarError) as caught:
        Shift.parse(text)
    assert str(caught.value) == message


def test_shift_prints_as_written() -> None:
    assert [str(Shift.parse(t)) for t in ("22:00-06:00", "00:00-24:00")] == ["22:00-06:00", "00:00-24:00"]


def test_weekdays_accept_short_long_and_any_case() -> None:
    assert [parse_weekday(n) for n in ("mon", "Tuesday", "SUN", 4)] == [0, 1, 6, 4]
    with pytest.raises(CalendarError, match="'mondays' is not a weekday"):
        parse_weekday("mondays")


def test_unknown_time_zone_suggests_close_names() -> None:
    with pytest.raises(CalendarError, match=r"unknown time zone 'Europe/Londn'; did you mean Europe/London"):
        Calendar("uk", "Europe/Londn", OFFICE)


def test_unknown_holiday_country_and_subdivision_are_refused() -> None:
    with pytest.raises(CalendarError, match="no holidays known for country 'XX'"):
        Calendar("x", "UTC", OFFICE, country="XX")
    with pytest.raises(CalendarError, match=r"GB has no subdivision 'XYZ' \(known: ENG, NIR, SCT, WLS\)"):
        Calendar("x", "UTC", OFFICE, country="GB", subdivision="XYZ")
    with pytest.raises(CalendarError, match="names a holiday subdivision but no country"):
        Calendar("x", "UTC", OFFICE, subdivision="ENG")


def test_a_calendar_without_hours_is_refused() -> None:
    with pytest.raises(CalendarError, match="calendar 'never' has no working hours at all"):
        Calendar("never", "UTC", {"mon": []})


def test_naive_datetimes_and_negative_durations_are_refused() -> None:
    office = Calendar("office", "UTC", OFFICE)
    with pytest.raises(ValueError, match="has no time zone"):
        office.is_open(datetime(2024, 1, 1, 10))
    with pytest.raises(ValueError, match="negative business duration"):
        office.add(utc(2024, 1, 1, 10), -H)


# -- weekends, split and overnight shifts, midnight --------------------------------------------------


def test_work_left_on_friday_continues_on_monday() -> None:
    office = Calendar("office", "UTC", OFFICE)
    friday_4pm = utc(2024, 6, 7, 16)
    assert office.add(friday_4pm, 2 * H) == utc(2024, 6, 10, 10)
    assert office.between(friday_4pm, utc(2024, 6, 10, 10)) == 2 * H
    assert office.between(utc(2024, 6, 8, 0), utc(2024, 6, 10, 0)) == timedelta(0)


def test_adding_a_whole_shift_ends_at_the_closing_instant() -> None:
    office = Calendar("office", "UTC", OFFICE)
    assert office.add(utc(2024, 6, 10, 9), 8 * H) == utc(2024, 6, 10, 17)
    assert office.add(utc(2024, 6, 10, 7), 8 * H) == utc(2024, 6, 10, 17)


def test_zero_duration_is_the_start_even_when_closed() -> None:
    office = Calendar("office", "UTC", OFFICE)
    assert office.add(utc(2024, 6, 8, 3), timedelta(0)) == utc(2024, 6, 8, 3)


def test_between_is_signed() -> None:
    office = Calendar("office", "UTC", OFFICE)
    assert office.between(utc(2024, 6, 10, 12), utc(2024, 6, 10, 10)) == -2 * H


def test_split_shift_skips_the_lunch_break() -> None:
    split = Calendar("split", "UTC", {"fri": ["09:00-12:30", "13:30-18:00"]})
    assert split.add(utc(2024, 6, 7, 12), H) == utc(2024, 6, 7, 14)
    assert split.between(utc(2024, 6, 7, 9), utc(2024, 6, 7, 18)) == timedelta(hours=8)
    assert split.next_change(utc(2024, 6, 7, 12)) == utc(2024, 6, 7, 12, 30)
    assert split.next_change(utc(2024, 6, 7, 12, 45)) == utc(2024, 6, 7, 13, 30)
    assert not split.is_open(utc(2024, 6, 7, 13))
    assert split.next_open(utc(2024, 6, 7, 13)) == utc(2024, 6, 7, 13, 30)
    assert split.next_open(utc(2024, 6, 7, 10)) == utc(2024, 6, 7, 10)


def test_overnight_shift_belongs_to_the_day_it_starts() -> None:
    nights = Calendar("nights", "UTC", {"mon": ["22:00-06:00"]})
    assert nights.is_open(utc(2024, 6, 11, 5))  # Tuesday 05:00, Monday's shift
    assert not nights.is_open(utc(2024, 6, 11, 22))  # Tuesday has no shift of its own
    assert nights.between(utc(2024, 6, 10, 0), utc(2024, 6, 12, 0)) == 8 * H
    assert nights.add(utc(2024, 6, 10, 23), 2 * H) == utc(2024, 6, 11, 1)
    assert nights.next_change(utc(2024, 6, 11, 1)) == utc(2024, 6, 11, 6)
    assert nights.next_open(utc(2024, 6, 11, 7)) == utc(2024, 6, 17, 22)


def test_shifts_meeting_at_midnight_are_one_open_stretch() -> None:
    days = Calendar("days", "UTC", {"mon": ["00:00-24:00"], "tue": ["00:00-24:00"]})
    assert days.next_change(utc(2024, 6, 10, 12)) == utc(2024, 6, 12, 0)
    assert days.between(utc(2024, 6, 10, 23), utc(2024, 6, 11, 1)) == 2 * H
    assert days.add(utc(2024, 6, 10, 23, 30), H) == utc(2024, 6, 11, 0, 30)


def test_overnight_shift_overlapping_next_morning_merges() -> None:
    cover = Calendar("cover", "UTC", {"mon": ["22:00-06:00"], "tue": ["05:00-10:00"]})
    assert cover.next_change(utc(2024, 6, 10, 23)) == utc(2024, 6, 11, 10)
    assert cover.between(utc(2024, 6, 10, 0), utc(2024, 6, 12, 0)) == 12 * H


def test_shifts_covering_the_whole_week_make_a_24x7_calendar() -> None:
    rota = Calendar("rota", "UTC", {day: ["06:00-22:00", "22:00-06:00"] for day in WEEKDAYS})
    assert rota.always_open and rota.next_change(utc(2024, 6, 10)) is None
    gap = Calendar("gap", "UTC", {day: ["06:00-22:00", "22:00-05:59"] for day in WEEKDAYS})
    assert not gap.always_open
    assert gap.next_change(utc(2024, 6, 10, 12)) == utc(2024, 6, 11, 5, 59)


def test_24x7_is_always_open_and_counts_wall_time() -> None:
    clock = always()
    assert clock.name == "24x7" and clock.is_open(utc(2024, 12, 25, 3))
    assert clock.next_change(utc(2024, 12, 25, 3)) is None
    assert clock.add(utc(2024, 3, 30, 12), 48 * H) == utc(2024, 4, 1, 12)
    assert clock.between(utc(2024, 1, 1), utc(2024, 1, 2)) == 24 * H


# -- holidays ---------------------------------------------------------------------------------------


def test_english_christmas_and_boxing_day_are_skipped() -> None:
    uk = Calendar("uk", "Europe/London", OFFICE, country="GB", subdivision="ENG")
    christmas_eve_4pm = local(LONDON, 2024, 12, 24, 16)
    assert uk.add(christmas_eve_4pm, 2 * H) == local(LONDON, 2024, 12, 27, 10)
    assert not uk.is_open(local(LONDON, 2024, 12, 25, 10))


def test_substitute_bank_holiday_from_the_holidays_package_is_closed() -> None:
    uk = Calendar("uk", "Europe/London", OFFICE, country="GB", subdivision="ENG")
    assert uk.is_holiday(date(2022, 12, 27))  # Christmas 2022 fell on a Sunday
    assert uk.between(local(LONDON, 2022, 12, 23, 17), local(LONDON, 2022, 12, 28, 9)) == timedelta(0)


def test_scottish_holidays_differ_from_english_ones() -> None:
    scotland = Calendar("scot", "Europe/London", OFFICE, country="GB", subdivision="SCT")
    england = Calendar("eng", "Europe/London", OFFICE, country="GB", subdivision="ENG")
    second_of_january = local(LONDON, 2025, 1, 2, 10)
    assert england.is_open(second_of_january) and not scotland.is_open(second_of_january)


def test_explicit_dates_close_the_office() -> None:
    office = Calendar("office", "UTC", OFFICE, dates=[date(2024, 6, 11)])
    assert office.add(utc(2024, 6, 10, 16), 2 * H) == utc(2024, 6, 12, 10)


def test_a_holiday_cancels_shifts_starting_on_it_not_the_night_before() -> None:
    nights = Calendar("nights", "UTC", {"mon": ["22:00-06:00"], "tue": ["22:00-06:00"]},
                      dates=[date(2024, 6, 11)])
    assert nights.is_open(utc(2024, 6, 11, 3))
    assert not nights.is_open(utc(2024, 6, 11, 23))


def test_holidays_are_looked_up_once_per_year_and_days_once_each() -> None:
    uk = Calendar("uk", "Europe/London", OFFICE, country="GB", subdivision="ENG")
    end = uk.add(local(LONDON, 2024, 12, 2, 9), 30 * 8 * H)  # 30 business days
    assert end == local(LONDON, 2025, 1, 15, 17)  # Dec 25, 26 and Jan 1 are bank holidays
    assert set(uk._holiday_years) == {2024, 2025}
    assert len(uk._months) <= 4  # the working days are laid out once per month asked about, Nov to Feb


def test_the_timeline_stays_bounded_however_far_apart_the_questions() -> None:
    uk = Calendar("uk", "Europe/London", OFFICE, country="GB", subdivision="ENG")
    for year in range(2000, 2060, 7):
        assert uk.between(local(LONDON, year, 6, 1), local(LONDON, year, 6, 30)) > timedelta(0)
        assert len(uk._months) <= 240  # twenty years at most; further questions start a new window
    assert uk.add(local(LONDON, 2024, 12, 2, 9), 30 * 8 * H) == local(LONDON, 2025, 1, 15, 17)


# -- daylight saving --------------------------------------------------------------------------------


def test_london_spring_forward_day() -> None:
    every_day = {day: ["09:00-17:00"] for day in WEEKDAYS}
    assert Calendar("d", LONDON, every_day).between(utc(2024, 3, 31), utc(2024, 4, 1)) == 8 * H
    whole = Calendar("w", LONDON, {"sun": ["00:00-24:00"]})
    assert whole.between(utc(2024, 3, 30), utc(2024, 4, 1)) == 23 * H
    nights = Calendar("n", LONDON, {"sat": ["22:00-06:00"]})
    seven_hours = [(utc(2024, 3, 30, 22), utc(2024, 3, 31, 5))]
    assert list(nights.intervals(utc(2024, 3, 30), utc(2024, 4, 1))) == seven_hours


def test_london_fall_back_day() -> None:
    every_day = {day: ["09:00-17:00"] for day in WEEKDAYS}
    assert Calendar("d", LONDON, every_day).between(utc(2024, 10, 27), utc(2024, 10, 28)) == 8 * H
    whole = Calendar("w", LONDON, {"sun": ["00:00-24:00"]})
    assert whole.between(utc(2024, 10, 26), utc(2024, 10, 28)) == 25 * H
    nights = Calendar("n", LONDON, {"sat": ["22:00-06:00"]})
    assert nights.between(utc(2024, 10, 26), utc(2024, 10, 28)) == 9 * H


def test_new_york_dst_changes_keep_local_office_hours() -> None:
    office = Calendar("nyc", NEW_YORK, OFFICE)
    friday_4pm = local(NEW_YORK, 2024, 3, 8, 16)
    assert office.add(friday_4pm, 2 * H) == local(NEW_YORK, 2024, 3, 11, 10)  # 14:00 UTC, not 15:00
    assert office.add(friday_4pm, 2 * H) == utc(2024, 3, 11, 14)
    assert office.add(local(NEW_YORK, 2024, 11, 1, 16), 2 * H) == utc(2024, 11, 4, 15)
    nights = Calendar("n", NEW_YORK, {"sat": ["22:00-06:00"]})
    assert nights.between(utc(2024, 3, 9), utc(2024, 3, 11)) == 7 * H
    assert nights.between(utc(2024, 11, 2), utc(2024, 11, 4)) == 9 * H


def test_a_shift_starting_in_the_skipped_hour_opens_at_the_jump() -> None:
    early = Calendar("e", NEW_YORK, {"sun": ["02:30-04:00"]})
    from_the_jump = [(utc(2024, 3, 10, 7), utc(2024, 3, 10, 8))]  # 03:00-04:00 EDT
    assert list(early.intervals(utc(2024, 3, 10), utc(2024, 3, 11))) == from_the_jump
    lost = Calendar("l", NEW_YORK, {"sun": ["02:00-02:30"], "mon": ["09:00-10:00"]})
    assert lost.between(utc(2024, 3, 10), utc(2024, 3, 11)) == timedelta(0)


def test_a_shift_ending_in_the_repeated_hour_ends_at_its_first_occurrence() -> None:
    late = Calendar("l", NEW_YORK, {"sun": ["00:00-01:30"]})
    assert late.between(utc(2024, 11, 3), utc(2024, 11, 4)) == timedelta(hours=1, minutes=30)
    assert not late.is_open(local(NEW_YORK, 2024, 11, 3, 1, 15, fold=1))


# -- properties ----------------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


@st.composite
def calendars(draw: st.DrawFn, *, night_safe: bool = False) -> Calendar:
    """Random calendars: 0-3 shifts a day on a 15-minute grid, overnight ones included, maybe holidays.

    `night_safe` keeps shift edges out of 00:00-03:59, where local clocks skip or repeat readings.
    """
    lowest = 16 if night_safe else 0
    hours: dict[str, list[str]] = {}
    for day in WEEKDAYS:
        shifts = []
        for _ in range(draw(st.integers(0, 3))):
            start = draw(st.integers(lowest, 95)) * 15
            end = draw(st.integers(lowest, 96).filter(lambda q, s=start: q * 15 != s)) * 15
            shifts.append(f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}")
        hours[day] = shifts
    if not any(hours.values()):
        hours["wed"] = ["10:00-11:00"]
    country = draw(st.sampled_from([None, "GB", "US"]))
    dates = draw(st.lists(st.dates(date(2024, 1, 1), date(2025, 12, 31)), max_size=5))
    return Calendar("random", draw(st.sampled_from(ZONES)), hours, country=country, dates=dates)


instants = st.datetimes(datetime(2024, 1, 1), datetime(2025, 12, 1), timezones=st.just(UTC))
durations = st.timedeltas(timedelta(0), timedelta(days=20))
FAST = settings(max_examples=100, deadline=None)  # no deadline: never depend on wall-clock speed


@FAST
@given(calendars(), instants, durations)
def test_adding_then_measuring_round_trips(calendar: Calendar, start: datetime, duration: timedelta) -> None:
    end = calendar.add(start, duration)
    assert end >= start
    assert calendar.between(start, end) == duration


@FAST
@given(calendars(), instants, instants, instants)
def test_measuring_is_additive_over_any_split_point(calendar: Calendar, a: datetime, b: datetime,
                                                     c: datetime) -> None:
    assert calendar.between(a, c) == calendar.between(a, b) + calendar.between(b, c)


@FAST
@given(calendars(), instants, instants, durations, durations)
def test_adding_is_monotonic_in_start_and_duration(calendar: Calendar, a: datetime, b: datetime,
                                                    d1: timedelta, d2: timedelta) -> None:
    (a, b), (d1, d2) = sorted((a, b)), sorted((d1, d2))
    assert calendar.add(a, d1) <= calendar.add(b, d1)
    assert calendar.add(a, d1) <= calendar.add(a, d2)
    assert timedelta(0) <= calendar.between(a, b) <= b - a


@FAST
@given(calendars(), instants)
def test_open_state_holds_until_next_change_then_flips(calendar: Calendar, at: datetime) -> None:
    change = calendar.next_change(at)
    if change is None:
        assert calendar.always_open
        return
    assert change > at
    before = calendar.is_open(at)
    assert calendar.is_open(change - timedelta(microseconds=1)) == before
    assert calendar.is_open(change) != before
    assert calendar.between(at, change) == (change - at if before else timedelta(0))


@settings(max_examples=60, deadline=None)
@given(calendars(night_safe=True), st.integers(0, 70_000), st.integers(1, 4 * 96))
def test_measure_matches_sampling_the_wall_clock_every_quarter_hour(calendar: Calendar, offset: int,
                                                                     steps: int) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC) + offset * timedelta(minutes=15)
    quarter = timedelta(minutes=15)
    sampled = sum((quarter for i in range(steps) if _open_by_wall_clock(calendar, start + i * quarter)),
                  timedelta(0))
    assert calendar.between(start, start + steps * quarter) == sampled


def _open_by_wall_clock(calendar: Calendar, at: datetime) -> bool:
    """Independent oracle: read the local clock, find a shift of today or yesterday that covers it."""
    wall = at.astimezone(calendar.timezone).replace(tzinfo=None)
    for back in (0, 1):
        day = wall.date() - timedelta(days=back)
        if calendar.is_holiday(day):
            continue
        minutes = (wall - datetime(day.year, day.month, day.day)) / M
        if any(s.start <= minutes < s.end for s in calendar.week[day.weekday()]):
            return True
    return False


# -- the timeline against a plain walk, day by day -------------------------------------------------------


def _walk(calendar: Calendar, at: datetime):
    """Reference: the merged working intervals ending after `at`, walking local dates one by one."""
    day = at.astimezone(calendar.timezone).date() - timedelta(days=1)
    current = None
    while True:
        for open_at, close_at in calendar._day_intervals(day):
            if current is not None and open_at <= current[1]:
                current[1] = max(current[1], close_at)
                continue
            if current is not None and current[1] > at:
                yield current[0], current[1]
            current = [open_at, close_at]
        day += timedelta(days=1)
        if current is not None and at < current[1] < calendar._instant(day, 0):  # later days cannot touch it
            yield current[0], current[1]
            current = None


def _walk_between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    total = timedelta(0)
    for open_at, close_at in _walk(calendar, start):
        if open_at >= end:
            return total
        total += min(close_at, end) - max(open_at, start)
    raise AssertionError("unreachable")


def _walk_add(calendar: Calendar, start: datetime, duration: timedelta) -> datetime:
    if duration == timedelta(0):
        return start
    for open_at, close_at in _walk(calendar, start):
        open_at = max(open_at, start)
        if duration <= close_at - open_at:
            return open_at + duration
        duration -= close_at - open_at
    raise AssertionError("unreachable")


wide_instants = st.datetimes(datetime(2019, 1, 1), datetime(2031, 1, 1), timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(calendars(), st.lists(wide_instants, min_size=1, max_size=4), st.lists(durations, min_size=1, max_size=3),
       st.sampled_from([None, -30, 30]))
def test_timeline_answers_equal_a_day_by_day_walk(calendar: Calendar, moments: list[datetime],
                                                  amounts: list[timedelta], far: int | None) -> None:
    """Whatever was asked before (the window grows, or starts again far away), answers equal the plain walk."""
    for start in moments:
        if far is not None:  # a question thirty years away: the window starts again there
            calendar.between(start + far * 365 * 24 * H, start + (far * 365 + 3) * 24 * H)
        for end in moments:
            if start <= end:
                assert calendar.between(start, end) == _walk_between(calendar, start, end)
        for amount in amounts:
            assert calendar.add(start, amount) == _walk_add(calendar, start, amount)
        first_open, first_close = next(_walk(calendar, start))
        assert calendar.is_open(start) == (first_open <= start)
        assert calendar.next_change(start) == (first_close if first_open <= start else first_open)


@settings(max_examples=40, deadline=None)
@given(calendars(), wide_instants, durations)
def test_microsecond_arithmetic_equals_the_datetime_one(calendar: Calendar, start: datetime,
                                                         amount: timedelta) -> None:
    start_us, amount_us = to_us(start), amount // timedelta(microseconds=1)
    assert from_us(calendar.add_us(start_us, amount_us)) == calendar.add(start, amount)
    end = calendar.add(start, amount) + timedelta(hours=5)
    assert calendar.between_us(start_us, to_us(end)) == calendar.between(start, end) // timedelta(microseconds=1)
    assert calendar.between_us(to_us(end), start_us) == -calendar.between_us(start_us, to_us(end))
