"""SLA policies from the rules file, and the clocks they give each ticket at a fixed instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.calendar import Calendar
from bot.model import Priority, SlaDeadlines, Status, Ticket
from bot.sla import (
    CalendarSpec,
    SlaPolicySpec,
    StatusChange,
    TargetSpec,
    build_calendars,
    clocks,
    next_change_at,
    next_due,
    next_due_change_at,
    policy_for,
    sla_problems,
    ticket_clocks,
)

H = timedelta(hours=1)
M = timedelta(minutes=1)
MONDAY_9 = datetime(2024, 6, 10, 9, tzinfo=UTC)
OFFICE_SPEC = CalendarSpec(timezone="UTC", hours={"weekdays": "09:00-17:00"})
CALENDARS = build_calendars({"office": OFFICE_SPEC})


def at(hours: float, *, day: int = 0) -> datetime:
    """Monday 2024-06-10 09:00 UTC plus `day` days and `hours` hours."""
    return MONDAY_9 + timedelta(days=day, hours=hours)


def ticket(**fields: Any) -> Ticket:
    fields.setdefault("created_at", MONDAY_9)
    fields.setdefault("status", Status.OPEN)
    return Ticket(platform="zendesk", id=1, **fields)


def policy(**fields: Any) -> SlaPolicySpec:
    fields.setdefault("name", "standard")
    fields.setdefault("targets", {"first_reply": {"normal": "4h", "urgent": "1h"},
                                  "next_reply": {"normal": "2h"}, "resolution": {"normal": "1d"}})
    return SlaPolicySpec.model_validate(fields)


def errors(model: type, data: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [e["msg"].removeprefix("Value error, ") for e in caught.value.errors()]


# -- the rules-file sections ---------------------------------------------------------------------


def test_calendar_hours_accept_groups_ranges_and_day_overrides() -> None:
    spec = CalendarSpec(timezone="Europe/London",
                        hours={"weekdays": "09:00-17:00", "fri": ["09:00-12:30", "13:30-16:00"], "sat-sun": []})
    built = spec.build("uk")
    assert {day: [str(s) for s in shifts] for day, shifts in built.hours.items()} == {
        "mon": ["09:00-17:00"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"], "thu": ["09:00-17:00"],
        "fri": ["09:00-12:30", "13:30-16:00"]}
    assert CalendarSpec(hours={"mon-wed": "22:00-06:00"}).build("n").hours.keys() == {"mon", "tue", "wed"}
    assert CalendarSpec(hours="24x7").build("all").always_open


def test_calendar_spec_holidays_are_built_in() -> None:
    spec = CalendarSpec.model_validate({"timezone": "Europe/London", "hours": {"weekdays": "09:00-17:00"},
                                        "holidays": {"country": "GB", "subdivision": "ENG",
                                                     "dates": ["2024-12-24"]}})
    uk = spec.build("uk")
    assert uk.is_holiday(date(2024, 12, 24)) and uk.is_holiday(date(2024, 12, 25))
    assert not uk.is_holiday(date(2024, 12, 23))


@pytest.mark.parametrize(
    ("data", "message"),
    [({"timezone": "Europe/Pari", "hours": "24x7"}, "unknown time zone 'Europe/Pari'; did you mean Europe/Paris"),
     ({"hours": {"mon": "9-5"}}, "'9-5' is not a shift (write HH:MM-HH:MM: 09:00-17:00, 22:00-06:00)"),
     ({"hours": {"mondy": "09:00-17:00"}},
      "'mondy' is not a day (use mon..sun, weekdays, weekend, daily or a range mon-fri)"),
     ({"hours": {"weekdays": "09:00-17:00", "mon-wed": "10:00-11:00"}},
      "mon is given by both 'weekdays' and 'mon-wed'"),
     ({"hours": {"mon": []}}, "no working hours at all (give at least one day a shift, or write 24x7)"),
     ({"hours": "24x7", "holidays": {"country": "ZZ"}}, "no holidays known for country 'ZZ'"),
     ({"hours": "24x7", "holidays": {"subdivision": "ENG"}}, "a holiday 'subdivision' needs a 'country'"),
     ({"hours": "24x7", "tz": "UTC"}, "Extra inputs are not permitted")],
)
def test_calendar_spec_mistakes_say_what_to_fix(data: dict, message: str) -> None:
    assert any(m.startswith(message) for m in errors(CalendarSpec, data)), errors(CalendarSpec, data)


def test_target_durations_are_human_and_a_bare_one_covers_every_priority() -> None:
    target = TargetSpec.model_validate({"urgent": "90 minutes", "high": "1h30m", "normal": "2 hours", "low": "2d"})
    assert [target.goal(p) for p in (Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.LOW)] == [
        90 * M, 90 * M, 2 * H, 48 * H]
    assert TargetSpec.model_validate("4h").goal(Priority.LOW) == 4 * H
    assert TargetSpec.model_validate({"high": "4h"}).goal(Priority.LOW) is None


def test_target_durations_must_be_positive_and_readable() -> None:
    assert errors(TargetSpec, {"urgent": "0m"}) == ["'0m' must be longer than zero"]
    assert errors(TargetSpec, {"urgent": "2 hourz"}) == [
        "'2 hourz' is not a duration (try 90m, 2h, 1d, 1h30m or 2 hours)"]
    assert errors(TargetSpec, {"urgnt": "1h"}) == ["Extra inputs are not permitted"]


def test_a_deskbot_policy_needs_targets_a_platform_one_does_not() -> None:
    assert errors(SlaPolicySpec, {"name": "empty"}) == [
        "policy 'empty' sets no targets (add first_reply, next_reply or resolution)"]
    assert SlaPolicySpec(name="zendesk", source="platform").targets.first_reply is None
    assert errors(SlaPolicySpec, {"name": "p", "source": "platform", "pause_when": ["solved"]}) == [
        "Input should be 'pending' or 'on_hold'"]


def test_the_first_policy_covering_a_ticket_applies() -> None:
    vip = policy(name="vip", applies_to={"tags": ["vip", "enterprise"], "groups": ["Billing"]})
    urgent = policy(name="urgent", applies_to={"priorities": ["urgent"], "types": ["Incident"]})
    rest = policy(name="rest")
    policies = [vip, urgent, rest]
    assert policy_for(ticket(tags=frozenset({"vip"}), group="billing"), policies) is vip
    assert policy_for(ticket(tags=frozenset({"vip"}), group="Sales"), policies) is rest
    assert policy_for(ticket(priority=Priority.URGENT, type="incident"), policies) is urgent
    assert policy_for(ticket(priority=Priority.URGENT), [vip, urgent]) is None


def test_cross_section_problems_point_at_the_key() -> None:
    policies = [policy(calendar="ofice"), policy(calendar="nowhere"), policy(calendar="24x7")]
    assert sla_problems({"office": OFFICE_SPEC, "24x7": OFFICE_SPEC}, policies) == [
        (("calendars", "24x7"), "'24x7' is built in; give your calendar another name"),
        (("sla_policies", 0, "calendar"), "unknown calendar 'ofice'; did you mean 'office'?"),
        (("sla_policies", 1, "calendar"), "unknown calendar 'nowhere' (known: 24x7, office, 24x7)"),
        (("sla_policies", 1, "name"), "policy name 'standard' is used twice"),
        (("sla_policies", 2, "name"), "policy name 'standard' is used twice"),
    ]


def test_build_calendars_includes_the_builtin_24x7() -> None:
    assert set(CALENDARS) == {"24x7", "office"}
    assert isinstance(CALENDARS["office"], Calendar) and CALENDARS["24x7"].always_open


# -- each target ------------------------------------------------------------------------------------


def test_first_reply_runs_from_creation() -> None:
    clock = clocks(ticket(), at(1), policy(), CALENDARS)["first_reply"]
    assert (clock.started_at, clock.deadline, clock.goal) == (MONDAY_9, at(4), 4 * H)
    assert (clock.elapsed, clock.remaining, clock.elapsed_share) == (H, 3 * H, 0.25)
    assert clock.running and not clock.breached and clock.breached_for == timedelta(0)
    assert (clock.policy, clock.source, clock.target) == ("standard", "deskbot", "first_reply")


def test_first_reply_uses_the_ticket_priority() -> None:
    clock = clocks(ticket(priority=Priority.URGENT), at(0.5), policy(), CALENDARS)["first_reply"]
    assert clock.deadline == at(1) and clock.elapsed_share == 0.5


def test_a_priority_without_a_target_has_no_clock() -> None:
    assert "first_reply" not in clocks(ticket(priority=Priority.LOW), at(1), policy(), CALENDARS)


def test_first_reply_on_time_stops_the_clock() -> None:
    clock = clocks(ticket(first_responded_at=at(2)), at(9), policy(), CALENDARS)["first_reply"]
    assert clock.stopped and clock.stopped_at == at(2) and not clock.running
    assert (clock.remaining, clock.breached, clock.deadline) == (2 * H, False, at(4))


def test_a_late_first_reply_stays_breached() -> None:
    clock = clocks(ticket(first_responded_at=at(5)), at(9), policy(), CALENDARS)["first_reply"]
    assert clock.stopped and clock.breached
    assert (clock.remaining, clock.breached_for, clock.elapsed_share) == (-H, H, 1.25)


def test_a_reply_exactly_at_the_deadline_meets_it() -> None:
    clock = clocks(ticket(first_responded_at=at(4)), at(9), policy(), CALENDARS)["first_reply"]
    assert not clock.breached and clock.remaining == timedelta(0)


def test_a_reply_after_closing_time_misses_a_deadline_at_closing_time() -> None:
    """No business time passes after 17:00, yet the deadline (17:00) was passed: late, though nothing more was used."""
    created = at(4)  # 13:00, 4h to reply in office hours: due at 17:00
    clock = clocks(ticket(created_at=created, first_responded_at=at(9)), at(10), policy(calendar="office"),
                   CALENDARS)["first_reply"]
    assert (clock.deadline, clock.remaining) == (at(8), timedelta(0))
    assert clock.breached
    on_time = clocks(ticket(created_at=created, first_responded_at=at(8)), at(10), policy(calendar="office"),
                     CALENDARS)["first_reply"]
    assert not on_time.breached


def test_a_running_clock_breaches_at_the_deadline_instant() -> None:
    assert not clocks(ticket(), at(4) - M, policy(), CALENDARS)["first_reply"].breached
    clock = clocks(ticket(), at(4), policy(), CALENDARS)["first_reply"]
    assert clock.breached and clock.remaining == timedelta(0) and clock.breached_for == timedelta(0)
    later = clocks(ticket(), at(6), policy(), CALENDARS)["first_reply"]
    assert (later.remaining, later.breached_for, later.elapsed_share) == (-2 * H, 2 * H, 1.5)


def test_next_reply_runs_from_the_customers_latest_message_after_the_first_reply() -> None:
    waiting = ticket(first_responded_at=at(1), last_agent_update_at=at(1), last_customer_update_at=at(3))
    clock = clocks(waiting, at(4), policy(), CALENDARS)["next_reply"]
    assert (clock.started_at, clock.deadline, clock.remaining) == (at(3), at(5), H)


def test_next_reply_stops_at_the_next_agent_update() -> None:
    answered = ticket(first_responded_at=at(1), last_customer_update_at=at(3), last_agent_update_at=at(6))
    clock = clocks(answered, at(7), policy(), CALENDARS)["next_reply"]
    assert clock.stopped and clock.stopped_at == at(6) and clock.breached and clock.breached_for == H


def test_next_reply_is_absent_until_the_customer_writes_after_the_first_reply() -> None:
    assert "next_reply" not in clocks(ticket(last_customer_update_at=MONDAY_9), at(1), policy(), CALENDARS)
    replied = ticket(first_responded_at=at(1), last_customer_update_at=MONDAY_9, last_agent_update_at=at(1))
    assert "next_reply" not in clocks(replied, at(2), policy(), CALENDARS)


def test_resolution_stops_when_solved() -> None:
    solved = ticket(status=Status.SOLVED, solved_at=at(20), status_changed_at=at(21), first_responded_at=at(1))
    clock = clocks(solved, at(30), policy(), CALENDARS)["resolution"]
    assert clock.stopped and clock.stopped_at == at(20) and clock.remaining == 4 * H


def test_a_closed_ticket_without_solved_at_stops_at_its_status_change() -> None:
    closed = ticket(status=Status.CLOSED, status_changed_at=at(30), first_responded_at=at(1))
    clock = clocks(closed, at(40), policy(), CALENDARS)["resolution"]
    assert clock.stopped_at == at(30) and clock.breached and clock.breached_for == 6 * H


def test_a_reopened_ticket_runs_again_despite_an_old_solved_at() -> None:
    reopened = ticket(status=Status.OPEN, solved_at=at(2), first_responded_at=at(1))
    assert clocks(reopened, at(5), policy(), CALENDARS)["resolution"].running


def test_solving_without_a_reply_stops_the_first_reply_clock() -> None:
    solved = ticket(status=Status.SOLVED, solved_at=at(2))
    clock = clocks(solved, at(9), policy(), CALENDARS)["first_reply"]
    assert clock.stopped and clock.stopped_at == at(2) and not clock.breached


def test_no_policy_means_no_clocks() -> None:
    assert ticket_clocks(ticket(), at(1), [policy(applies_to={"tags": ["vip"]})], CALENDARS) == {}
    assert set(ticket_clocks(ticket(), at(1), [policy()], CALENDARS)) == {"first_reply", "resolution"}


def test_an_unknown_calendar_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="policy 'standard' names unknown calendar 'mars'"):
        clocks(ticket(), at(1), policy(calendar="mars"), CALENDARS)


# -- business time -----------------------------------------------------------------------------------


def test_business_hours_targets_skip_nights_and_weekends() -> None:
    friday_4pm = at(7, day=4)
    late = ticket(created_at=friday_4pm)
    clock = clocks(late, at(0, day=5), policy(calendar="office"), CALENDARS)["first_reply"]
    assert clock.deadline == at(3, day=7)  # Monday 12:00: 1h on Friday, 3h on Monday
    assert (clock.elapsed, clock.remaining, clock.business_hours) == (H, 3 * H, True)


def test_business_hours_false_counts_wall_time_even_with_a_calendar() -> None:
    wall = policy(calendar="office", targets={"first_reply": {"normal": "4h", "business_hours": False}})
    clock = clocks(ticket(created_at=at(7, day=4)), at(0, day=5), wall, CALENDARS)["first_reply"]
    assert clock.deadline == at(11, day=4) and clock.breached and not clock.business_hours


def test_a_holiday_calendar_moves_the_deadline_past_christmas() -> None:
    uk = build_calendars({"uk": CalendarSpec.model_validate(
        {"timezone": "Europe/London", "hours": {"weekdays": "09:00-17:00"},
         "holidays": {"country": "GB", "subdivision": "ENG"}})})
    eve = datetime(2024, 12, 24, 15, tzinfo=UTC)
    clock = clocks(ticket(created_at=eve), eve + H, policy(calendar="uk"), uk)["first_reply"]
    assert clock.deadline == datetime(2024, 12, 27, 11, tzinfo=UTC)


# -- pausing ------------------------------------------------------------------------------------------


def test_pending_pauses_the_clock_from_the_status_change() -> None:
    pending = ticket(status=Status.PENDING, status_changed_at=at(1))
    clock = clocks(pending, at(10), policy(pause_when=["pending"]), CALENDARS)["first_reply"]
    assert clock.paused and not clock.running and clock.deadline is None
    assert (clock.elapsed, clock.remaining, clock.breached) == (H, 3 * H, False)
    assert next_change_at(clock, at(10)) is None


def test_without_pause_when_pending_keeps_running() -> None:
    pending = ticket(status=Status.PENDING, status_changed_at=at(1))
    clock = clocks(pending, at(10), policy(), CALENDARS)["first_reply"]
    assert clock.running and clock.breached and clock.breached_for == 6 * H


def test_a_clock_paused_after_its_breach_keeps_the_breach() -> None:
    held = ticket(status=Status.ON_HOLD, status_changed_at=at(6))
    clock = clocks(held, at(10), policy(pause_when=["on_hold"]), CALENDARS)["first_reply"]
    assert clock.paused and clock.breached and clock.deadline == at(4) and clock.breached_for == 2 * H


def test_status_history_subtracts_every_past_pause() -> None:
    history = [StatusChange(MONDAY_9, Status.NEW), StatusChange(at(1), Status.PENDING),
               StatusChange(at(2), Status.OPEN), StatusChange(at(3), Status.ON_HOLD),
               StatusChange(at(3.5), Status.PENDING), StatusChange(at(4), Status.OPEN)]
    now_open = ticket(status=Status.OPEN, status_changed_at=at(4))
    paused = policy(pause_when=["pending", "on_hold"])
    with_history = clocks(now_open, at(5), paused, CALENDARS, history)["first_reply"]
    assert (with_history.elapsed, with_history.deadline) == (3 * H, at(6))
    snapshot_only = clocks(now_open, at(5), paused, CALENDARS)["first_reply"]
    assert (snapshot_only.elapsed, snapshot_only.deadline) == (5 * H, at(4))  # errs towards breaching early


def test_history_older_than_the_snapshot_is_completed_by_the_current_status() -> None:
    history = [StatusChange(MONDAY_9, Status.OPEN)]
    pending = ticket(status=Status.PENDING, status_changed_at=at(2))
    clock = clocks(pending, at(5), policy(pause_when=["pending"]), CALENDARS, history)["first_reply"]
    assert clock.paused and clock.elapsed == 2 * H


def test_pauses_are_measured_in_business_time() -> None:
    history = [StatusChange(MONDAY_9, Status.OPEN), StatusChange(at(7), Status.PENDING),
               StatusChange(at(1, day=1), Status.OPEN)]  # pending Mon 16:00 - Tue 10:00: 2 business hours
    reopened = ticket(status=Status.OPEN, status_changed_at=at(1, day=1))
    clock = clocks(reopened, at(2, day=1), policy(calendar="office", pause_when=["pending"]), CALENDARS,
                   history)["resolution"]
    assert clock.elapsed == 8 * H and clock.deadline == at(2, day=3)  # Thu 11:00: 7 + 7 + 8 + 2 business hours


# -- platform deadlines ----------------------------------------------------------------------------


def test_platform_deadlines_are_used_when_present() -> None:
    zendesk = policy(source="platform")
    with_sla = ticket(sla=SlaDeadlines(first_reply_due_at=at(2)))
    found = clocks(with_sla, at(1), zendesk, CALENDARS)
    assert found["first_reply"].source == "platform"
    assert (found["first_reply"].deadline, found["first_reply"].goal, found["first_reply"].remaining) == (
        at(2), 2 * H, H)
    assert found["resolution"].source == "deskbot"  # no platform deadline: the policy's own target


def test_a_platform_policy_without_targets_only_has_platform_clocks() -> None:
    zendesk = SlaPolicySpec(name="zendesk", source="platform")
    found = clocks(ticket(sla=SlaDeadlines(resolution_due_at=at(8))), at(10), zendesk, CALENDARS)
    assert list(found) == ["resolution"]
    assert found["resolution"].breached and found["resolution"].breached_for == 2 * H


def test_platform_pauses_freeze_the_clock_but_not_the_deadline() -> None:
    zendesk = policy(source="platform", pause_when=["pending"])
    pending = ticket(status=Status.PENDING, status_changed_at=at(1),
                     sla=SlaDeadlines(first_reply_due_at=at(2)))
    clock = clocks(pending, at(5), zendesk, CALENDARS)["first_reply"]
    assert clock.paused and not clock.breached and clock.remaining == H and clock.deadline == at(2)
    assert next_change_at(clock, at(5)) is None


def test_deskbot_source_ignores_platform_deadlines() -> None:
    with_sla = ticket(sla=SlaDeadlines(first_reply_due_at=at(2)))
    clock = clocks(with_sla, at(1), policy(), CALENDARS)["first_reply"]
    assert clock.source == "deskbot" and clock.deadline == at(4)


# -- next due and scheduling --------------------------------------------------------------------------


def test_next_due_is_the_earliest_running_unbreached_target() -> None:
    waiting = ticket(first_responded_at=at(1), last_agent_update_at=at(1), last_customer_update_at=at(3))
    found = clocks(waiting, at(4), policy(), CALENDARS)
    assert next_due(found) == "next_reply" and next_due_change_at(found) == at(5)
    later = clocks(waiting, at(6), policy(), CALENDARS)  # next reply breached; resolution still ahead
    assert next_due(later) == "resolution" and next_due_change_at(later) == at(24)
    assert next_due({}) is None and next_due_change_at({}) is None


def test_next_change_defaults_to_the_breach() -> None:
    clock = clocks(ticket(), at(1), policy(), CALENDARS)["first_reply"]
    assert next_change_at(clock, at(1)) == at(4)
    breached = clocks(ticket(), at(5), policy(), CALENDARS)["first_reply"]
    assert next_change_at(breached, at(5)) is None
    stopped = clocks(ticket(first_responded_at=at(2)), at(3), policy(), CALENDARS)["first_reply"]
    assert next_change_at(stopped, at(3)) is None


def test_next_change_finds_each_threshold_crossing() -> None:
    clock = clocks(ticket(), at(1), policy(), CALENDARS)["first_reply"]
    assert next_change_at(clock, at(1), percent=75) == at(3)
    assert next_change_at(clock, at(1), remaining=30 * M) == at(3.5)
    assert next_change_at(clock, at(1), breached_for=H) == at(5)
    assert next_change_at(clock, at(1), breach=True, breached_for=H) == at(4)
    assert next_change_at(clock, at(1), percent=10) is None  # already past 10%


def test_exactly_on_a_threshold_the_strict_side_is_a_microsecond_later() -> None:
    clock = clocks(ticket(), at(3), policy(), CALENDARS)["first_reply"]
    assert next_change_at(clock, at(3), percent=75) == at(3) + timedelta(microseconds=1)


def test_business_time_thresholds_wait_for_opening_hours() -> None:
    clock = clocks(ticket(created_at=at(6)), at(7), policy(calendar="office"), CALENDARS)["first_reply"]
    assert next_change_at(clock, at(7), remaining=H) == at(1, day=1)  # Tue 10:00, not Mon 18:00
    on_mark = clocks(ticket(created_at=at(6)), at(8), policy(calendar="office"), CALENDARS)["first_reply"]
    assert next_change_at(on_mark, at(8), percent=50) == at(0, day=1) + timedelta(microseconds=1)


def test_strict_thresholds_are_announced_when_first_passed() -> None:
    clock = clocks(ticket(), at(1), policy(), CALENDARS)["first_reply"]
    assert next_change_at(clock, at(1), percent=75, after=True) == at(3) + timedelta(microseconds=1)
    assert next_change_at(clock, at(1), remaining=H, after=True) == at(3) + timedelta(microseconds=1)
    third = next_change_at(clock, at(1), percent=100 / 3)  # 80 minutes, not a whole microsecond count
    assert third == next_change_at(clock, at(1), percent=100 / 3, after=True)
    assert at(1) + 20 * M <= third <= at(1) + 20 * M + timedelta(microseconds=1)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 7 * 24 * 60), st.integers(1, 99), st.sampled_from(["office", "24x7"]), st.booleans())
def test_a_share_threshold_is_crossed_exactly_at_the_instant_announced(minutes: int, percent: int,
                                                                     calendar: str, after: bool) -> None:
    now = MONDAY_9 + minutes * M
    standard = policy(calendar=calendar)
    clock = clocks(ticket(), now, standard, CALENDARS)["resolution"]
    crossing = next_change_at(clock, now, percent=percent, after=after)
    if crossing is None:
        assert clock.elapsed_percent > percent
        return
    reached = clocks(ticket(), crossing, standard, CALENDARS)["resolution"].elapsed_percent
    before = clocks(ticket(), crossing - timedelta(microseconds=1), standard, CALENDARS)["resolution"].elapsed_percent
    if after or clock.elapsed_percent == percent:  # announced when `>` starts to hold
        assert before <= percent < reached
    else:  # announced when `>=` starts to hold
        assert before < percent <= reached


def test_the_examples_in_docs_sla_md_load() -> None:
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).parents[1] / "docs" / "sla.md").read_text(encoding="utf-8")
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)]
    calendars = {name: CalendarSpec.model_validate(spec)
                 for block in blocks for name, spec in block.get("calendars", {}).items()}
    policies = [SlaPolicySpec.model_validate(spec) for block in blocks for spec in block.get("sla_policies", [])]
    assert len(calendars) == 3 and len(policies) == 3
    assert sla_problems(calendars, policies) == []
    built = build_calendars(calendars)
    assert [str(s) for s in built["london_support"].hours["fri"]] == ["09:00-12:30", "13:30-16:00"]
    assert built["always_on"].always_open
