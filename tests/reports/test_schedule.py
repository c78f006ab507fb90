"""Report schedules: which are due when, in the team's time zone, and how mistakes are reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from bot.reports.schedule import (
    RecurringIssuesSpec,
    ReportSchedule,
    due_reports,
    expand_days,
    report_problems,
    resolve_schedules,
)
from bot.rules.schema import TeamSpec


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


MORNING = ReportSchedule(name="billing-morning", team="billing", at="08:30", timezone="Europe/London",
                         channel="#billing-leads")


def test_a_weekday_report_is_due_just_after_its_local_time_and_once_only() -> None:
    now = utc("2026-03-02T08:31")  # Monday; London is on GMT
    (due,) = due_reports([MORNING], {}, now)
    assert due.scheduled_at == utc("2026-03-02T08:30")
    assert due_reports([MORNING], {"billing-morning": due.scheduled_at}, now + timedelta(minutes=5)) == []
    assert due_reports([MORNING], {}, utc("2026-03-02T08:29")) == [], "Friday's slot is long past its grace"


def test_summer_time_moves_the_slot_in_utc() -> None:
    (due,) = due_reports([MORNING], {}, utc("2026-03-30T07:31"))  # Monday after the clocks went forward
    assert due.scheduled_at == utc("2026-03-30T07:30")


def test_no_weekday_report_on_saturday_and_a_weekly_one_on_monday_by_default() -> None:
    assert due_reports([MORNING], {}, utc("2026-03-07T08:31")) == []
    weekly = ReportSchedule(name="weekly", kind="weekly", at="09:00", channel="#leads")
    assert weekly.weekdays == (0,)
    assert [d.scheduled_at for d in due_reports([weekly], {}, utc("2026-03-02T09:00"))] == [utc("2026-03-02T09:00")]
    assert due_reports([weekly], {}, utc("2026-03-03T09:00")) == []


def test_a_bot_started_after_the_grace_period_skips_the_missed_report() -> None:
    assert due_reports([MORNING], {}, utc("2026-03-02T15:00")) == []
    assert len(due_reports([MORNING], {}, utc("2026-03-02T15:00"), grace=timedelta(hours=8))) == 1


def test_a_report_last_run_yesterday_is_due_again_today() -> None:
    runs = {"billing-morning": utc("2026-03-02T08:30")}
    assert [d.scheduled_at for d in due_reports([MORNING], runs, utc("2026-03-03T09:00"))] == [utc("2026-03-03T08:30")]


def test_schedules_take_the_team_time_zone_and_channel_when_they_name_none() -> None:
    teams = {"billing": TeamSpec(group="Billing", slack_channel="#billing", timezone="America/New_York")}
    plain = ReportSchedule(name="b", team="billing")
    (resolved,) = resolve_schedules([plain], teams)
    assert (resolved.timezone, resolved.channel) == ("America/New_York", "#billing")
    (due,) = due_reports([resolved], {}, utc("2026-03-02T13:31"))
    assert due.scheduled_at == utc("2026-03-02T13:30"), "08:30 in New York"


@pytest.mark.parametrize(("raw", "message"), [
    ({"name": "x", "at": "8.30"}, "'8.30' is not a time of day (write HH:MM, e.g. 08:30)"),
    ({"name": "x", "days": ["mon", "funday"]}, "'funday' is not a day (use mon..sun, weekdays, weekend, daily or "
                                               "a range such as mon-fri)"),
    ({"name": "x", "timezone": "Europe/Londn"}, "unknown time zone 'Europe/Londn'; did you mean Europe/London"),
    ({"name": "x", "every": "day"}, "Extra inputs are not permitted"),
])
def test_schedule_mistakes_are_refused_with_what_to_write(raw: dict, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        ReportSchedule.model_validate(raw)
    assert message in str(raised.value)


def test_day_names_ranges_and_groups_expand_to_weekday_numbers() -> None:
    assert expand_days("weekdays") == (0, 1, 2, 3, 4)
    assert expand_days(["sat", "mon-wed"]) == (0, 1, 2, 5)
    assert expand_days("fri-mon") == (0, 4, 5, 6)


def test_cross_section_problems_name_the_schedule_and_the_fix() -> None:
    teams = {"billing": TeamSpec(group="Billing")}
    schedules = [
        ReportSchedule(name="a", team="biling", channel="#x"),
        ReportSchedule(name="a", team="billing"),
        ReportSchedule(name="c", channel="#x", calendar="office"),
    ]
    assert report_problems(schedules, teams, ["uk-office"]) == [
        (("reports", 0, "team"), "unknown team 'biling'; did you mean 'billing'?"),
        (("reports", 1, "name"), "report name 'a' is used twice"),
        (("reports", 1, "channel"), "report 'a' has nowhere to go: give it a channel, or a team with a slack_channel"),
        (("reports", 2, "calendar"), "unknown calendar 'office' (known: 24x7, uk-office)"),
    ]


def test_recurring_issue_settings_become_detector_settings() -> None:
    spec = RecurringIssuesSpec(channel="#leads", window="4h", baseline="14d", factor=4, min_count=6,
                               ignore_terms=["Acme", "orders"], ignore_tags=["Web"])
    settings = spec.settings()
    assert (settings.window, settings.baseline, settings.factor, settings.min_count) == (
        timedelta(hours=4), timedelta(days=14), 4, 6)
    assert {"acme", "orders", "order"} <= settings.ignore_terms and settings.ignore_tags == {"web"}
    with pytest.raises(ValidationError, match="greater than 1"):
        RecurringIssuesSpec(channel="#leads", factor=1)
