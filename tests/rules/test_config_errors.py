"""Every mistake in a rules file is reported with file, line, column, path, and the nearest valid word.

Each file in tests/fixtures/rules_invalid/ starts with `# expect: <the exact first message>`.
"""

from pathlib import Path

import pytest

from bot.config import load_config, load_config_text
from bot.errors import ConfigError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "rules_invalid"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.yaml")), ids=lambda p: p.stem)
def test_broken_file_gives_the_exact_message(path, monkeypatch):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    monkeypatch.chdir(FIXTURES)
    with pytest.raises(ConfigError) as raised:
        load_config(path.name)
    assert raised.value.problems[0] == expected


def test_all_problems_are_reported_at_once_sorted_by_line():
    text = """\
version: 1
teams:
  billing: {group: Billing}
rules:
  - name: A
    when: {priorty: urgent}
    then: [{notfy: {}}]
  - name: A
    when: {since_created: {over: soon}}
    then: [{assign: {team: biling}}]
"""
    with pytest.raises(ConfigError) as raised:
        load_config_text(text, "r.yaml")
    assert raised.value.problems == [
        "r.yaml:6:12: rules[0].when.priorty: unknown field 'priorty'; did you mean 'priority'?",
        "r.yaml:7:13: rules[0].then[0].notfy: unknown action 'notfy'; did you mean 'notify'?",
        "r.yaml:8:11: rules[1].name: rule name 'A' is already used by rules[0]; names must be unique",
        "r.yaml:9:34: rules[1].when.since_created.over: 'soon' is not a duration (try 90m, 2h, 1d, 1h30m or 2 hours)",
        "r.yaml:10:28: rules[1].then[0].assign.team: unknown team 'biling'; did you mean 'billing'?",
    ]


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "nope.yaml")
    assert raised.value.problems == [f"{tmp_path / 'nope.yaml'}: no such file (create it, or pass --config PATH)"]


def test_version_is_required():
    with pytest.raises(ConfigError) as raised:
        load_config_text("rules: []\n", "r.yaml")
    assert raised.value.problems == ["r.yaml:1:1: (top level): 'the rules file' needs 'version'"]


def test_notify_needs_a_destination():
    text = "version: 1\nrules:\n  - name: A\n    when: {priority: urgent}\n    then: [{notify: {message: hi}}]\n"
    with pytest.raises(ConfigError) as raised:
        load_config_text(text, "r.yaml")
    assert raised.value.problems == [
        "r.yaml:5:21: rules[0].then[0].notify: say where to post: 'channel', 'team' (its Slack channel) "
        "or 'user' (an email)"
    ]


def test_mode_must_be_known():
    with pytest.raises(ConfigError) as raised:
        load_config_text("version: 1\nmode: liev\nrules: []\n", "r.yaml")
    assert raised.value.problems == ["r.yaml:2:7: mode: 'liev' is not one of: dry_run, live; did you mean 'live'?"]


def test_a_valid_file_loads_and_summarises():
    config = load_config_text("version: 1\nrules:\n  - name: A\n    when: {priority: urgent}\n"
                              "    then: [{add_tags: hot}]\n    enabled: false\n", "r.yaml")
    assert config.summary() == "r.yaml: OK: 1 rules (0 time-based, 1 disabled), 0 teams, mode dry_run"
    assert config.mode == "dry_run"
