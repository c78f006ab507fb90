"""The roster's clock: shifts in the right time zone, overnight and DST-exact, absences, and when duty flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.rules.schema import TeamSpec
from bot.shifts import AgentSpec, AssignmentSpec, OutOfOfficeSpec, Roster, ShiftSpec, roster_problems

H = timedelta(hours=1)
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # Monday; London is on GMT, New York moves to EDT on Sunday 8 March


class Team(TeamSpec):
    """TeamSpec plus the `shift` key this work proposes for it."""

    shift: str | None = None


def at(day: int, hour: float = 0) -> datetime:
    """An instant `day` days and `hour` hours after Monday 2026-03-02 00:00 UTC."""
    return MONDAY + timedelta(days=day, hours=hour)


def roster(agents: dict[str, Any] | None = None, shifts: dict[str, Any] | None = None,
           teams: dict[str, Any] | None = None) -> Roster:
    return Roster.build(
        {email: AgentSpec.model_validate(spec) for email, spec in (agents or {}).items()},
        {name: ShiftSpec.model_validate(spec) for name, spec in (shifts or {}).items()},
        AssignmentSpec(),
        {name: Team.model_validate(spec) for name, spec in (teams or {}).items()},
    )


DAY = {"hours": {"weekdays": "09:00-17:00"}}  # no zone of its own


# -- time zones ------------------------------------------------------------------------------------


def test_a_shift_without_a_zone_runs_in_the_agents_zone_else_the_teams_else_utc() -> None:
    r = roster(agents={"kenji@x.com": {"shift": "day", "timezone": "Asia/Tokyo"}, "lea@x.com": {"shift": "day"}},
               shifts={"day": DAY},
               teams={"support": {"group": "Support", "members": ["kenji@x.com", "lea@x.com"],
                                  "timezone": "America/New_York"}})
    kenji, lea = r.schedule("kenji@x.com", "support"), r.schedule("lea@x.com", "support")
    assert kenji.on_duty(at(0, 1)) and not kenji.on_duty(at(0, 8))  # 10:00 and 17:00 in Tokyo
    assert not lea.on_duty(at(0, 13.9)) and lea.on_duty(at(0, 14))  # 09:00 EST is 14:00 UTC
    assert r.schedule("lea@x.com").on_duty(at(0, 9))  # no team context: UTC


def test_a_shift_with_its_own_zone_wins_over_the_agents_and_the_teams() -> None:
    r = roster(agents={"ana@x.com": {"shift": "tokyo_day", "timezone": "Europe/London"}},
               shifts={"tokyo_day": {"timezone": "Asia/Tokyo", **DAY}},
               teams={"t": {"group": "G", "members": ["ana@x.com"], "timezone": "America/New_York"}})
    schedule = r.schedule("ana@x.com", "t")
    assert schedule.on_duty(at(0, 0)) and not schedule.on_duty(at(0, 9))


def test_an_overnight_shift_crosses_midnight_and_belongs_to_the_day_it_starts() -> None:
    r = roster(agents={"yuki@x.com": {"shift": "night"}},
               shifts={"night": {"timezone": "Asia/Tokyo", "hours": {"mon-fri": "22:00-06:00"}}})
    night = r.schedule("yuki@x.com")
    assert not night.on_duty(at(0, 12.99)) and night.on_duty(at(0, 13))  # Monday 22:00 in Tokyo
    assert night.on_duty(at(0, 20.99)) and not night.on_duty(at(0, 21))  # Tuesday 06:00 in Tokyo
    assert night.on_duty(at(4, 20))  # Saturday 05:00 in Tokyo: still Friday's shift
    assert not night.on_duty(at(5, 13))  # Saturday 22:00: no Saturday shift
    assert night.next_change(at(4, 21)) == at(7, 13)  # from Saturday morning to Monday 22:00 Tokyo


def test_shift_boundaries_follow_daylight_saving_time() -> None:
    r = roster(agents={"sam@x.com": {"shift": "day"}}, shifts={"day": DAY},
               teams={"ny": {"group": "NY", "members": ["sam@x.com"], "timezone": "America/New_York"}})
    sam = r.schedule("sam@x.com", "ny")
    assert sam.next_change(at(4, 12)) == at(4, 14)  # Friday 09:00 EST
    assert sam.next_change(at(4, 22)) == at(7, 13)  # Monday 09:00 EDT, an hour earlier in UTC


def test_the_team_shift_applies_unless_the_agent_has_one_and_24x7_means_always() -> None:
    r = roster(agents={"ana@x.com": {}, "bob@x.com": {"shift": "24x7"}},
               shifts={"day": {"timezone": "UTC", **DAY}},
               teams={"t": {"group": "G", "members": ["ana@x.com", "bob@x.com", "cy@x.com"], "shift": "day"}})
    assert not r.schedule("ana@x.com", "t").on_duty(at(0, 20))
    assert not r.schedule("cy@x.com", "t").on_duty(at(0, 20))  # not under agents: still the team's shift
    always = r.schedule("bob@x.com", "t")
    assert always.on_duty(at(5, 3)) and always.next_change(at(5, 3)) is None
    assert r.schedule("ana@x.com").next_change(at(0)) is None  # no team, no shift: always on


def test_a_shift_can_carry_holidays() -> None:
    r = roster(agents={"ana@x.com": {"shift": {"timezone": "UTC", "hours": {"weekdays": "09:00-17:00"},
                                               "holidays": {"dates": ["2026-03-03"]}}}})
    schedule = r.schedule("ana@x.com")
    assert schedule.on_duty(at(0, 10)) and not schedule.on_duty(at(1, 10)) and schedule.on_duty(at(2, 10))
    assert schedule.shift == "ana@x.com's shift"


def test_the_team_of_an_agent_is_the_one_working_the_tickets_group() -> None:
    r = roster(teams={"first": {"group": "Sales", "members": ["Ana@x.com"]},
                      "second": {"group": "Billing", "members": ["ana@x.com"]}})
    assert r.team_of("ana@x.com", "billing") == "second"
    assert r.team_of("ana@x.com", "Other") == "first"
    assert r.team_of("zed@x.com", "Billing") is None


# -- out of office ----------------------------------------------------------------------------------


def test_whole_days_off_are_local_to_the_agent_and_include_the_last_day() -> None:
    r = roster(agents={"max@x.com": {"timezone": "Europe/Berlin",
                                     "out_of_office": [{"from": "2026-03-03", "to": "2026-03-04"}]}})
    away = r.schedule("max@x.com")
    assert away.on_duty(at(0, 22.99)) and not away.on_duty(at(0, 23))  # Tuesday 00:00 in Berlin
    assert not away.on_duty(at(2, 22.99)) and away.on_duty(at(2, 23))  # back Thursday 00:00 in Berlin
    assert away.next_change(at(0, 12)) == at(0, 23)
    assert away.off_duty_reason(at(1)) == "out of office until Thu 2026-03-05 00:00 Europe/Berlin"


def test_exact_absences_read_naive_times_in_the_agents_zone_and_respect_offsets() -> None:
    r = roster(agents={"ana@x.com": {"timezone": "Asia/Tokyo", "out_of_office": [
        {"from": "2026-03-02 13:00", "to": "2026-03-02 15:00", "note": "dentist"},
        {"from": "2026-03-03T10:00:00+00:00", "to": "2026-03-03T11:00:00+00:00"}]}})
    schedule = r.schedule("ana@x.com")
    assert schedule.on_duty(at(0, 3.99)) and not schedule.on_duty(at(0, 4)) and schedule.on_duty(at(0, 6))
    assert not schedule.on_duty(at(1, 10)) and schedule.on_duty(at(1, 11))
    assert schedule.off_duty_reason(at(0, 5)) == "out of office (dentist) until Mon 2026-03-02 15:00 Asia/Tokyo"


def test_duty_changes_skip_shift_flips_inside_an_absence() -> None:
    r = roster(agents={"ana@x.com": {"shift": "day", "out_of_office": [{"from": "2026-03-02", "to": "2026-03-04"}]}},
               shifts={"day": {"timezone": "UTC", **DAY}})
    schedule = r.schedule("ana@x.com")
    assert schedule.next_change(at(-3, 12)) == at(-3, 17)  # Friday: the shift ends as usual
    assert schedule.next_change(at(-3, 17)) == at(3, 9)  # then nothing until Thursday's shift
    assert schedule.next_change(at(0, 10)) == at(3, 9)
    assert schedule.off_duty_reason(at(-1)) == "off shift (day; back Thu 2026-03-05 09:00 UTC)"


def test_absence_ranges_are_validated() -> None:
    with pytest.raises(ValidationError, match=r"ends .* before it starts"):
        OutOfOfficeSpec.model_validate({"from": "2026-03-04", "to": "2026-03-03"})
    with pytest.raises(ValidationError, match="is not a date"):
        OutOfOfficeSpec.model_validate({"from": "next tuesday", "to": "2026-03-03"})
    one_day = OutOfOfficeSpec.model_validate({"from": "2026-03-03", "to": "2026-03-03"})
    assert one_day.interval(UTC) == (at(1), at(2))


# -- definitions --------------------------------------------------------------------------------------


def test_shift_definitions_say_what_to_fix() -> None:
    with pytest.raises(ValidationError, match="did you mean Europe/London"):
        ShiftSpec.model_validate({"timezone": "Europe/Londn", **DAY})
    with pytest.raises(ValidationError, match="is not a shift"):
        ShiftSpec.model_validate({"hours": {"mon": "9-17"}})
    with pytest.raises(ValidationError, match="no working hours at all"):
        ShiftSpec.model_validate({"hours": {"mon": []}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        ShiftSpec.model_validate({"hours": "24x7", "zone": "UTC"})
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        AgentSpec.model_validate({"capacity": {"urgent": -1}})
    assert AgentSpec.model_validate({"capacity": 20, "skills": "french"}).capacity.total == 20  # type: ignore


def test_roster_problems_name_unknown_shifts_the_builtin_and_duplicate_agents() -> None:
    spec = type("Spec", (), {
        "shifts": {"day": ShiftSpec.model_validate(DAY), "24x7": ShiftSpec.model_validate({"hours": "24x7"})},
        "agents": {"ana@x.com": AgentSpec(shift="dya"), "Ana@X.com": AgentSpec(), "bob@x.com": AgentSpec()},
        "teams": {"t": Team(group="G", shift="nite")},
    })()
    assert roster_problems(spec) == [
        (("shifts", "24x7"), "'24x7' is built in (always on shift); use another name"),
        (("agents", "ana@x.com", "shift"), "unknown shift 'dya'; did you mean 'day'?"),
        (("teams", "t", "shift"), "unknown shift 'nite' (known: 24x7, day)"),
        (("agents", "Ana@X.com"), "'Ana@X.com' is listed twice (also as 'ana@x.com')"),
    ]


# -- a property: duty is constant until the announced change, and flips exactly there --------------


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(min_value=0, max_value=23), length=st.integers(min_value=1, max_value=23),
    days=st.sets(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1),
    absences=st.lists(st.tuples(st.integers(0, 20 * 24), st.integers(1, 72)), max_size=3),
    now=st.integers(min_value=0, max_value=35 * 24 * 4)  # crosses the end of March DST change,
)
def test_next_change_is_the_first_flip(start: int, length: int, days: set[str],
                                       absences: list[tuple[int, int]], now: int) -> None:
    end = (start + length) % 24
    hours = {day: f"{start:02d}:00-{end:02d}:00" for day in days}
    ooo = [{"from": (at(0, s)).isoformat(), "to": (at(0, s + n)).isoformat()} for s, n in absences]
    schedule = roster(agents={"a@x.com": {"shift": {"timezone": "Europe/London", "hours": hours},
                                          "out_of_office": ooo}}).schedule("a@x.com")
    instant = at(0, now / 4)
    flip = schedule.next_change(instant)
    assert flip is not None and flip > instant
    before = schedule.on_duty(instant)
    assert schedule.on_duty(flip) != before
    probe = instant
    while probe < flip:  # every quarter hour in between agrees with `instant`
        assert schedule.on_duty(probe) == before
        probe += timedelta(minutes=15)
