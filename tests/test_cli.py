"""The command line as a coordinator uses it: exit codes and what is printed."""

import json

from click.testing import CliRunner

from bot.cli import cli

RULES = "version: 1\nrules:\n  - name: Hot\n    when: {priority: urgent}\n    then: [{add_tags: hot}]\n"


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_check_prints_a_summary_and_exits_0(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    result = run("check", str(path))
    assert result.exit_code == 0
    assert result.output == f"{path}: OK: 1 rules (0 time-based), 0 teams, mode dry_run\n"


def test_check_prints_every_problem_and_exits_1(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace("priority", "priorty").replace("add_tags", "add_tag"))
    result = run("check", str(path))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{path}:4:12: rules[0].when.priorty: unknown field 'priorty'; did you mean 'priority'?",
        f"{path}:5:13: rules[0].then[0].add_tag: unknown action 'add_tag'; did you mean 'add_tags'?",
        f"{path}: 2 problems; nothing was loaded",
    ]


def test_schema_is_json_with_rules_and_conditions():
    result = run("schema")
    schema = json.loads(result.output)
    assert "Condition" in schema["$defs"] and "rules" in schema["properties"]


def test_explain_shows_values_and_verdicts(tmp_path):
    rules, ticket = tmp_path / "rules.yaml", tmp_path / "t.json"
    rules.write_text(RULES)
    ticket.write_text(json.dumps({"id": 3, "subject": "Down", "priority": "high"}))
    result = run("explain", str(ticket), "--config", str(rules), "--now", "2026-03-02T10:00:00Z")
    assert result.exit_code == 0
    assert "no match Hot" in result.output
    assert "priority is urgent   actual: high" in result.output


def test_test_command_passes_and_fails_like_pytest(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.yaml").write_text(
        "cases:\n"
        "  - name: urgent is tagged\n    tickets: [{id: 1, priority: urgent}]\n"
        "    expect: [{ticket: 1, rule: Hot, actions: [{add_tags: [hot]}]}]\n"
        "  - name: wrong expectation\n    tickets: [{id: 1, priority: urgent}]\n"
        "    expect: [{ticket: 1, rule: Hot, actions: [{add_tags: [cold]}]}]\n"
    )
    result = run("test", "--config", str(rules))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].endswith("t.yaml::urgent is tagged PASSED")
    assert lines[1].endswith("t.yaml::wrong expectation FAILED")
    assert "-  - cold" in result.output and "+  - hot" in result.output, result.output
    assert lines[-1] == "1 passed, 1 failed"


def test_test_command_without_files_fails(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    assert run("test", "--config", str(rules)).exit_code == 1


def test_explain_reads_a_ticket_by_id_through_the_zendesk_connector(tmp_path, monkeypatch):
    from bot.sandbox import seed
    from bot.sandbox.server import serve
    from bot.sandbox.zendesk import ZendeskSandbox

    queue = seed.generate(3, tickets=5)
    sandbox = ZendeskSandbox(queue, email="bot@x.example", api_token="tok")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    ticket_id = queue.tickets[0].id
    with serve(sandbox) as server:
        for name in ("FRESHDESK_DOMAIN", "FRESHDESK_API_KEY", "FRESHDESK_URL", "ZENDESK_OAUTH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("ZENDESK_URL", server.url)
        monkeypatch.setenv("ZENDESK_SUBDOMAIN", "sandbox")
        monkeypatch.setenv("ZENDESK_EMAIL", "bot@x.example")
        monkeypatch.setenv("ZENDESK_API_TOKEN", "tok")
        result = run("explain", str(ticket_id), "--config", str(rules))
    assert result.exit_code == 0, result.output
    assert f"zendesk:{ticket_id}" in result.output
    assert "priority is urgent   actual:" in result.output


def test_explain_by_id_without_credentials_says_which_variables_to_set(tmp_path, monkeypatch):
    for name in ("ZENDESK_SUBDOMAIN", "ZENDESK_URL", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN", "ZENDESK_OAUTH_TOKEN",
                 "FRESHDESK_DOMAIN", "FRESHDESK_URL", "FRESHDESK_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    result = run("explain", "42", "--config", str(rules))
    assert result.exit_code == 1
    assert "set ZENDESK_SUBDOMAIN, ZENDESK_EMAIL and ZENDESK_API_TOKEN" in result.output


def test_check_against_mirror_shows_each_rules_reach_and_what_would_be_held(tmp_path):
    from bot.model import Priority
    from bot.state.sqlite import SqliteStore
    from tests.fakes import make_ticket

    state = tmp_path / "state.sqlite3"
    store = SqliteStore(str(state))
    store.upsert_tickets([make_ticket(i, priority=Priority.URGENT if i <= 8 else Priority.LOW) for i in range(1, 11)])
    store.close()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("version: 1\n", "version: 1\nsettings: {blast_radius: 0.5}\n"))
    result = run("check", str(rules), "--against-mirror", "--state", str(state))
    assert result.exit_code == 1
    assert "Hot: matches 8 of 10 open tickets (80%); HELD until confirmed (confirm with: deskbot confirm 'Hot')" \
        in result.output
    assert result.output.splitlines()[-1] == "1 rule would be held until confirmed (limit: 50% of the queue)"
    assert run("confirm", "Hot", "--config", str(rules), "--state", str(state)).exit_code == 0
    assert run("check", str(rules), "--against-mirror", "--state", str(state)).exit_code == 0


def test_explain_shows_each_sla_clock_with_its_deadline_in_the_teams_time_zone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no state store here
    ticket = tmp_path / "t.json"
    ticket.write_text(json.dumps({"id": 9, "subject": "Parcel", "status": "open", "priority": "high",
                                  "group": "Billing", "created_at": "2026-06-01T09:00:00Z"}))
    from pathlib import Path

    rules = Path(__file__).parent.parent / "config" / "rules.yaml"
    result = run("explain", str(ticket), "--config", str(rules), "--now", "2026-06-01T10:40:00Z")
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.output.replace("\n Europe", " Europe").splitlines()]
    assert ("SLA first_reply (Urgent and high, around the clock): due Mon 2026-06-01 12:00 Europe/London: "
            "20m left (83% used)") in " ".join(lines)


def test_explain_says_when_a_guard_held_an_action_back(tmp_path, monkeypatch):
    from datetime import UTC, datetime

    from bot.state import AuditEntry
    from bot.state.sqlite import SqliteStore

    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules.yaml").write_text(RULES)
    store = SqliteStore(str(tmp_path / "deskbot-state" / "deskbot.sqlite3"))
    store.audit([AuditEntry(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "live", "Hot", "test:3", "assign", "k", "skipped",
                            "would assign Bob, but held by the ping-pong guard: 3 times in 24h (max 3)")])
    store.close()
    (tmp_path / "t.json").write_text(json.dumps({"id": 3, "priority": "urgent"}))
    result = run("explain", "t.json", "--config", "rules.yaml", "--now", "2026-03-02T10:00:00Z")
    assert result.exit_code == 0, result.output
    assert "held back: 2026-03-02 09:00 would assign Bob, but held by the ping-pong guard" in \
        " ".join(result.output.split())
