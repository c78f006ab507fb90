"""`deskbot report`: formats, files, Slack, and the setup mistakes it explains."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bot.cli_reports import COMMANDS, report
from bot.model import Status
from bot.reports.history import record_snapshot
from bot.state.sqlite import SqliteStore

from .helpers import NOW, H, ticket
from .test_source import RULES

AT = ["--at", NOW.isoformat()]


@pytest.fixture
def files(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    state = tmp_path / "deskbot.sqlite3"
    store = SqliteStore(str(state))
    tickets = [ticket(1, group="Billing", created_at=NOW - 5 * H, subject="Card declined"),
               ticket(2, group="Tech", created_at=NOW - 3 * H, status=Status.SOLVED, solved_at=NOW - H)]
    record_snapshot(store, tickets, NOW - 6 * H)
    store.upsert_tickets(tickets[:1])
    store.close()
    return ["--config", str(rules), "--state", str(state)]


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(report, list(args), env=env)


def test_the_command_is_exported_for_the_cli() -> None:
    assert [report] == COMMANDS and report.name == "report"


def test_json_output_carries_every_scope(files) -> None:
    result = run("daily", *files, *AT, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [s["name"] for s in data["scopes"]] == ["all teams", "billing", "tech"]
    assert data["scopes"][0]["created"] == 2 and data["scopes"][0]["solved"] == 1


def test_text_output_is_a_readable_table_for_one_team(files) -> None:
    result = run("weekly", *files, *AT, "--team", "billing")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Weekly queue report: billing\n2026-02-23 10:00 → 2026-03-02 10:00 UTC")
    assert "Unassigned (1), oldest" in result.output and "Card declined" in result.output


def test_output_goes_to_a_file_when_asked(files, tmp_path) -> None:
    target = tmp_path / "report.csv"
    result = run("daily", *files, *AT, "--format", "csv", "--output", str(target))
    assert result.exit_code == 0
    assert target.read_text().startswith("scope,section,item,metric,value\nall teams,flow,,created,2\n")


def test_the_report_is_posted_to_slack_when_asked(files, slack, slack_env) -> None:
    result = run("daily", *files, *AT, "--format", "markdown", "--slack", "#support-alerts", env=slack_env)
    assert result.exit_code == 0, result.output
    summary, chart = slack.posts("support-alerts")
    assert summary.blocks[0]["text"]["text"] == "Daily queue report: all teams" and chart.files
    assert "posted to #support-alerts" in result.output


@pytest.mark.parametrize(("extra", "message"), [
    (["--team", "bill"], "deskbot: unknown team 'bill' (teams: billing, tech)"),
    (["--at", "yesterday"], "deskbot: --at: 'yesterday' is not an ISO 8601 time (e.g. 2026-03-02T08:30:00Z)"),
])
def test_mistakes_exit_2_with_what_to_fix(files, extra, message) -> None:
    result = run("daily", *files, *extra)
    assert result.exit_code == 2 and message in result.output


def test_a_missing_state_file_is_explained(files, tmp_path) -> None:
    result = run("daily", files[0], files[1], "--state", str(tmp_path / "nope.sqlite3"))
    assert result.exit_code == 2
    assert "no state store at" in result.output and "nope.sqlite3" in result.output
    assert not (tmp_path / "nope.sqlite3").exists(), "a report never creates an empty state file"


def test_a_broken_rules_file_is_reported_with_its_line(files, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nteams: [oops]\n", encoding="utf-8")
    result = run("daily", "--config", str(bad), "--state", files[3])
    assert result.exit_code == 2 and f"{bad}:2:" in result.output


def test_slack_without_a_token_is_a_setup_error(files) -> None:
    result = run("daily", *files, "--slack", "#x", env={"SLACK_BOT_TOKEN": ""})
    assert result.exit_code == 2 and "SLACK_BOT_TOKEN" in result.output
