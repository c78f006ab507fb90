"""The adapter over the state store: reports, recurring-issue alerts, scheduled posts and requester facts."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import pytest

from bot.config import load_config_text
from bot.model import Status
from bot.reports.history import record_snapshot
from bot.reports.schedule import RecurringIssuesSpec, ReportSchedule
from bot.reports.slack import TransportPoster
from bot.reports.source import (
    LAST_RUN_KEY,
    alert_recurring,
    attach_requester_facts,
    make_report,
    run_due_reports,
)
from bot.rules.requester_fields import facts_of
from bot.state import Mode
from bot.state.sqlite import SqliteStore

from .helpers import NOW, H, ticket
from .test_requester_fields import related_ticket

D = timedelta(days=1)
RULES = """
version: 1
teams:
  billing: {group: Billing, members: [ana@example.com, ben@example.com], slack_channel: "#support-alerts"}
  tech: {group: Tech}
rules: []
"""


@pytest.fixture
def store(tmp_path):
    opened = SqliteStore(str(tmp_path / "deskbot.sqlite3"))
    yield opened
    opened.close()


def with_sections(config, **sections):
    """The loaded config with report sections the lead adds to the rules file root."""
    return SimpleNamespace(spec=SimpleNamespace(**{**config.spec.__dict__, **sections}))


def test_a_report_counts_solved_tickets_the_mirror_has_already_forgotten(store) -> None:
    config = load_config_text(RULES, "rules.yaml")
    first = ticket(1, created_at=NOW - 20 * H, group="Billing", updated_at=NOW - 20 * H)
    second = ticket(2, created_at=NOW - 10 * H, group="Tech", status=Status.OPEN)
    record_snapshot(store, [first, second], NOW - 19 * H)
    store.upsert_tickets([first, second])
    solved = replace(first, status=Status.SOLVED, solved_at=NOW - 5 * H, updated_at=NOW - 5 * H)
    record_snapshot(store, [solved], NOW - 4 * H)
    store.remove_tickets([solved.key])
    report = make_report(store, config, "daily", NOW)
    overall, billing, tech = report.scopes
    assert [s.name for s in report.scopes] == ["all teams", "billing", "tech"]
    assert (overall.created, overall.solved, overall.backlog.open) == (2, 1, 1)
    assert (billing.created, billing.solved, billing.backlog.open) == (1, 1, 0)
    assert [a.agent for a in billing.agents] == ["ana@example.com", "ben@example.com"]
    assert (tech.created, tech.backlog.open) == (1, 1)
    assert report.notes == ("ticket history starts 2026-03-01 15:00 UTC: earlier events are not counted",)


def test_without_history_the_report_says_what_the_runner_must_do(store) -> None:
    store.upsert_tickets([ticket(1, created_at=NOW - H)])
    report = make_report(store, load_config_text(RULES, "rules.yaml"), "weekly", NOW, team="billing")
    assert "record_snapshot" in report.notes[0]
    assert report.main.backlog.normal is None


def test_unknown_teams_and_calendars_are_named(store) -> None:
    config = load_config_text(RULES, "rules.yaml")
    with pytest.raises(ValueError, match=r"unknown team 'bill' \(teams: billing, tech\)"):
        make_report(store, config, "daily", NOW, team="bill")
    with pytest.raises(ValueError, match=r"unknown calendar 'office' \(known: 24x7\)"):
        make_report(store, config, "daily", NOW, calendar="office")


def test_team_calendars_measure_ages_in_business_time(store) -> None:
    text = RULES.replace("tech: {group: Tech}", "tech: {group: Tech, calendar: office}") + (
        "calendars:\n  office: {timezone: UTC, hours: {weekdays: '09:00-17:00'}}\n")
    config = load_config_text(text, "rules.yaml")
    store.upsert_tickets([ticket(1, group="Tech", created_at=NOW - 3 * D)])  # Friday 10:00 -> Monday 10:00
    report = make_report(store, config, "daily", NOW)
    tech = report.scopes[2]
    assert tech.time_basis == "business time (office)" and tech.aging == (0, 1, 0, 0)  # 7h + 1h = 1 working day
    assert report.main.aging == (0, 1, 0, 0)
    assert report.main.time_basis == "business time (each team's calendar)"


def test_recurring_issues_are_alerted_once_through_the_outbox(store) -> None:
    config = with_sections(load_config_text(RULES, "rules.yaml"),
                           recurring_issues=RecurringIssuesSpec(channel="#support-alerts"))
    background = [ticket(n, subject=f"Question number {n} about topic{n % 9}", created_at=NOW - n * 3 * H)
                  for n in range(1, 60)]
    record_snapshot(store, [t for t in background if t.created_at < NOW - 8 * D], NOW - 8 * D)
    record_snapshot(store, [t for t in background if t.created_at >= NOW - 8 * D], NOW - 4 * H)
    burst = [ticket(100 + i, subject="Checkout payment declined", created_at=NOW - 2 * H + i * 10 * timedelta(
        minutes=1)) for i in range(8)]
    store.upsert_tickets(burst)  # in the mirror, not yet recorded in history
    first = alert_recurring(store, config, NOW, Mode.LIVE)
    assert first is not None and len(first.enqueued) == 1
    (entry,) = store.outbox()
    assert entry.key.startswith("recurring_issues/spike:") and entry.alert.channel == "#support-alerts"
    again = alert_recurring(store, config, NOW + H, Mode.LIVE)
    assert again is not None and again.enqueued == ()
    (remembered,) = json.loads(store.get_meta("reports.spikes") or "[]")
    assert remembered["key"] == entry.alert.ticket_key.removeprefix("spike:")


def test_no_recurring_section_means_no_detection(store) -> None:
    assert alert_recurring(store, load_config_text(RULES, "rules.yaml"), NOW) is None


def test_scheduled_reports_post_once_per_slot(store, slack, slack_env) -> None:
    schedule = ReportSchedule(name="billing-morning", team="billing", at="09:30", chart=False)
    config = with_sections(load_config_text(RULES, "rules.yaml"), reports=[schedule])
    store.upsert_tickets([ticket(1, group="Billing", created_at=NOW - H)])
    poster = TransportPoster.from_env(slack_env)
    (posted,) = run_due_reports(store, config, NOW, poster)
    assert posted.channel == "C0SUPPORT" and len(slack.posts("support-alerts")) == 1
    assert json.loads(store.get_meta(LAST_RUN_KEY) or "{}") == {"billing-morning": "2026-03-02T09:30:00+00:00"}
    assert run_due_reports(store, config, NOW + 10 * timedelta(minutes=1), poster) == []
    assert len(slack.posts("support-alerts")) == 1


def test_requester_facts_come_from_the_mirror_and_recent_history(store) -> None:
    solved = ticket(1, requester_id=7, created_at=NOW - 5 * D, status=Status.SOLVED, solved_at=NOW - 4 * D)
    record_snapshot(store, [solved], NOW - 4 * D)
    waiting = related_ticket(2, requester_id=7, created_at=NOW - D)
    store.upsert_tickets([ticket(2, requester_id=7, created_at=NOW - D)])
    new = related_ticket(3, requester_id=7, created_at=NOW - H)
    enriched = attach_requester_facts(store, [waiting, new], NOW)
    facts = facts_of(enriched[1])
    assert facts is not None and facts.open_tickets == 1 and facts.tickets_since(NOW - 7 * D, NOW) == 3


def test_deskbot_sla_policies_are_measured_in_their_calendar_with_history_pauses(store) -> None:
    text = RULES + """calendars:
  office: {timezone: UTC, hours: {weekdays: '09:00-17:00'}}
sla_policies:
  - name: standard
    calendar: office
    pause_when: [pending]
    targets: {first_reply: 2h, resolution: 1d}
"""
    config = load_config_text(text, "rules.yaml")
    # Friday 15:00 -> replied Monday 09:30: 2h of Friday plus 30m of Monday = 2h30m of office time, 30m late
    late = ticket(1, group="Billing", created_at=NOW - 67 * H, first_responded_at=NOW - 30 * timedelta(minutes=1))
    on_time = ticket(2, group="Billing", created_at=NOW - H, first_responded_at=NOW - 15 * timedelta(minutes=1))
    record_snapshot(store, [late, on_time], NOW - 70 * H)
    first, _ = make_report(store, config, "daily", NOW).main.sla
    assert (first.completed, first.with_deadline, first.met, first.breached) == (2, 2, 1, 1)
    assert first.median == (timedelta(minutes=45) + timedelta(hours=2, minutes=30)) / 2
    breach = make_report(store, config, "daily", NOW).main.breaches[0]
    assert (breach.key, breach.detail) == ("zendesk:1", "first reply late by 30m")
