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
