"""`deskbot run/status/audit/confirm` from the command line, against a fake-free setup where possible."""

from __future__ import annotations

from click.testing import CliRunner

from bot.cli_runtime import audit_command, confirm_command, run_command, status_command
from bot.model import Firing, Plan, PlannedAction, RuleMatch, Target
from bot.state import Mode
from bot.state.sqlite import SqliteStore
from tests.fakes import T0

RULES = "version: 1\nrules:\n  - name: tag urgent\n    when: {priority: urgent}\n    then: [{add_tags: [hot]}]\n"


def test_run_without_credentials_says_exactly_which_variables_to_set(tmp_path, monkeypatch):
    for name in ("ZENDESK_SUBDOMAIN", "ZENDESK_URL", "ZENDESK_API_TOKEN", "ZENDESK_OAUTH_TOKEN", "ZENDESK_EMAIL",
                 "FRESHDESK_DOMAIN", "FRESHDESK_URL", "FRESHDESK_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "rules.yaml").write_text(RULES)
    result = CliRunner().invoke(run_command, ["--config", str(tmp_path / "rules.yaml"), "--once"])
    assert result.exit_code == 2
    assert "set ZENDESK_SUBDOMAIN, ZENDESK_EMAIL and ZENDESK_API_TOKEN" in result.output
    assert "FRESHDESK_DOMAIN and FRESHDESK_API_KEY" in result.output


def test_run_with_a_broken_rules_file_prints_the_check_messages(tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES.replace("add_tags", "add_tagz"))
    result = CliRunner().invoke(run_command, ["--config", str(tmp_path / "rules.yaml"), "--once"])
    assert result.exit_code == 2 and "unknown action 'add_tagz'" in result.output


def _store_with_history(path):
    store = SqliteStore(str(path), clock=lambda: T0)
    action = PlannedAction("tag urgent/zendesk:7/1/0:add_tags", "zendesk:7", "zendesk", 7, "tag urgent", "add_tags",
                           Target.HELPDESK, {"tags": ["hot"]}, "priority is urgent")
    store.record_plan(Plan((RuleMatch("zendesk:7", "tag urgent", (action,), "", 1),),
                           {("tag urgent", "zendesk:7"): Firing(True, 1, T0)}), now=T0, mode=Mode.LIVE)
    store.close()


def test_audit_filters_by_ticket_id_and_rule(tmp_path):
    _store_with_history(tmp_path / "s.sqlite3")
    result = CliRunner().invoke(audit_command, ["--state", str(tmp_path / "s.sqlite3"), "--ticket", "7"])
    assert result.exit_code == 0
    assert "2024-06-10 09:00:00Z planned  tag urgent on zendesk:7 (add_tags): priority is urgent" in result.output
    none = CliRunner().invoke(audit_command, ["--state", str(tmp_path / "s.sqlite3"), "--rule", "other"])
    assert "no audit entries match" in none.output


def test_status_reads_the_store_without_a_running_bot(tmp_path):
    _store_with_history(tmp_path / "s.sqlite3")
    result = CliRunner().invoke(status_command, ["--state", str(tmp_path / "s.sqlite3")])
    assert result.exit_code == 0
    assert "runner: not running" in result.output and "actions: planned 1" in result.output


def test_status_without_a_store_says_where_it_looked(tmp_path):
    result = CliRunner().invoke(status_command, ["--state", str(tmp_path / "none.sqlite3")])
    assert result.exit_code == 2 and "no state store at" in result.output


def test_confirm_records_the_current_version_of_a_rule(tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES)
    state = str(tmp_path / "s.sqlite3")
    result = CliRunner().invoke(confirm_command, ["--config", str(tmp_path / "rules.yaml"), "--state", state,
                                                  "tag urgent", ])
    assert result.exit_code == 0 and "confirmed 'tag urgent'" in result.output
    assert list(SqliteStore(state).confirmations()) == ["tag urgent"]
    wrong = CliRunner().invoke(confirm_command, ["--config", str(tmp_path / "rules.yaml"), "--state", state, "nope"])
    assert wrong.exit_code == 2 and "no rule named 'nope'" in wrong.output
