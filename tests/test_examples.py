"""The shipped example and every documented example are valid, and the schema file is current."""

import json
from pathlib import Path

import pytest
import yaml

from bot.config import load_config
from bot.rules.actions import ACTIONS
from bot.rules.conditions import Problem, compile_condition
from bot.rules.fields import FIELDS
from bot.rules.operators import OPERATORS
from bot.rules.schema import json_schema
from bot.rules.testing import run_file
from tests.factories import make_config

ROOT = Path(__file__).parent.parent


def test_the_example_rules_file_loads_in_dry_run():
    config = load_config(ROOT / "config/rules.yaml")
    assert config.mode == "dry_run"
    assert len(config.rules) >= 6


def test_the_example_rules_file_starts_with_the_schema_modeline():
    first = (ROOT / "config/rules.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=rules.schema.json"


def test_the_committed_schema_is_what_deskbot_schema_prints():
    committed = json.loads((ROOT / "config/rules.schema.json").read_text())
    assert committed == json.loads(json.dumps(json_schema())), "run: deskbot schema > config/rules.schema.json"


def test_the_example_rule_tests_pass():
    config = load_config(ROOT / "config/rules.yaml")
    results = [r for f in sorted((ROOT / "config/tests").glob("*.yaml")) for r in run_file(f, config)]
    assert results and all(r.passed for r in results), [r.problems for r in results if not r.passed]


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_every_field_example_compiles(name):
    problems: list[Problem] = []
    assert compile_condition(yaml.safe_load(FIELDS[name].example), ("when",), problems) is not None, problems


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_every_operator_example_compiles(name):
    problems: list[Problem] = []
    assert compile_condition(yaml.safe_load(OPERATORS[name].example), ("when",), problems) is not None, problems


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_every_action_example_compiles(name):
    config = make_config(
        f"- name: R\n  when: {{priority: urgent}}\n  then:\n    - {ACTIONS[name].example}\n",
        teams="billing: {group: Billing, slack_channel: '#b'}\nescalations: {group: Esc, slack_channel: '#e'}\n",
    )
    assert config.rules[0].actions[0].kind == name


def test_the_readme_documents_every_field_operator_and_action():
    readme = (ROOT / "README.md").read_text()
    missing = [f"`{n}`" for n in [*FIELDS, *OPERATORS, *ACTIONS] if f"`{n}`" not in readme]
    assert not missing, f"README lacks {missing}"


def _readme_rule_blocks():
    text = (ROOT / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```yaml\n")[1:]]
    return [block for block in blocks if "\ncases:" not in f"\n{block}"]  # rule-test files are not rules files


@pytest.mark.parametrize("block", _readme_rule_blocks(), ids=lambda b: b.strip().splitlines()[0][:40])
def test_every_rules_file_example_in_the_readme_is_valid(block):
    """Each YAML example in the README loads, set among the example file's teams and an SLA policy."""
    base = yaml.safe_load((ROOT / "config/rules.yaml").read_text())
    data = yaml.safe_load(block)
    if isinstance(data, list):  # rule entries shown on their own
        data = {"rules": data}
    assert isinstance(data, dict), "a README rules example is a mapping or a list of rules"
    if "when" in data:  # a lone condition
        data = {"rules": [{"name": "example", "when": data["when"], "then": [{"add_tags": "x"}]}]}
    merged = {**base, **{k: v for k, v in data.items() if k != "teams"}}
    merged["teams"] = {**base["teams"], **(data.get("teams") or {})}
    merged.setdefault("rules", [])
    from bot.config import load_config_text

    load_config_text(yaml.safe_dump(merged), "README.md")
