"""Loading config/rules.yaml into a compiled, trusted `Config`, or every problem at once.

Each problem is one compiler-style line, sorted by position:

    config/rules.yaml:14:9: rules[2].when.all[0].since_created.over: '2 hourz' is not a duration (...)
    config/rules.yaml:21:7: rules[3].then[1].notfy: unknown action 'notfy'; did you mean 'notify'?

A file with any problem is refused whole (`ConfigError`), so a half-understood
rules file can never run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from bot.errors import ConfigError
from bot.rules.actions import Context, compile_action
from bot.rules.conditions import Problem, compile_condition
from bot.rules.durations import parse_duration
from bot.rules.engine import CompiledRule
from bot.rules.schema import ConfigSpec, RuleSpec
from bot.rules.validation import validate
from bot.rules.yamlsource import Marks, YamlSyntaxError, format_path, load_with_marks

DEFAULT_PATH = FilePath("config/rules.yaml")


@dataclass(frozen=True)
class Config:
    """A loaded rules file: its settings, teams and compiled rules."""

    spec: ConfigSpec
    rules: tuple[CompiledRule, ...]
    path: str = "<memory>"
    active_rules: tuple[CompiledRule, ...] = field(default=())

    @property
    def mode(self) -> str:
        """`dry_run` or `live`."""
        return self.spec.mode

    @property
    def teams(self) -> dict[str, Any]:
        """Teams by name."""
        return self.spec.teams

    def rule(self, name: str) -> CompiledRule | None:
        """The rule with this name."""
        return next((r for r in self.rules if r.name == name), None)

    def summary(self) -> str:
        """One line saying what was loaded."""
        time_based = sum(1 for r in self.active_rules if r.time_based)
        disabled = len(self.rules) - len(self.active_rules)
        return (f"{self.path}: OK: {len(self.rules)} rules ({time_based} time-based"
                f"{f', {disabled} disabled' if disabled else ''}), {len(self.spec.teams)} teams, "
                f"mode {self.spec.mode}")


def load_config(path: str | FilePath = DEFAULT_PATH) -> Config:
    """Read and compile a rules file; raise ConfigError listing every problem."""
    file = FilePath(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{file}: no such file (create it, or pass --config PATH)"]) from None
    except OSError as error:
        raise ConfigError([f"{file}: cannot read: {error.strerror}"]) from None
    return load_config_text(text, str(file))


def load_config_text(text: str, filename: str = "<memory>") -> Config:
    """Compile rules from YAML text; `filename` appears in error messages."""
    try:
        data, marks, duplicates = load_with_marks(text, filename)
    except YamlSyntaxError as error:
        raise ConfigError([f"{filename}:{error.line}:{error.column}: YAML syntax: {error}"]) from None
    problems: list[Problem] = [Problem(path, message, position=marks.duplicates.get(path))
                               for path, message in duplicates]
    if not isinstance(data, dict):
        raise ConfigError([f"{filename}:1:1: the rules file must be a mapping with 'version' and 'rules'"])
    spec = _validate_top(data, problems)
    rules: list[CompiledRule] = []
    if spec is not None:
        rules = compile_rules(spec, data.get("rules") or [], problems)
    if problems:
        raise ConfigError(_format(problems, marks))
    assert spec is not None
    return Config(spec, tuple(rules), filename, tuple(r for r in rules if r.enabled))


def _validate_top(data: dict[str, Any], problems: list[Problem]) -> ConfigSpec | None:
    """Check everything but conditions and actions, which the registries check with better words."""
    shallow = dict(data)
    raw_rules = shallow.pop("rules", None)
    rule_specs: list[Any] = []
    if raw_rules is not None and not isinstance(raw_rules, list):
        problems.append(Problem(("rules",), "'rules' is a list of rules, each starting with '- name:'"))
        raw_rules = []
    for index, raw in enumerate(raw_rules or []):
        spec = validate(RuleSpec, raw, ("rules", index), problems, label="rule")
        rule_specs.append(spec)
    top = validate(ConfigSpec, shallow, (), problems, label="the rules file")
    if top is None or any(spec is None for spec in rule_specs):
        return None
    top.rules = rule_specs
    return top


def compile_rules(spec: ConfigSpec, raw_rules: list[Any], problems: list[Problem]) -> list[CompiledRule]:
    """Compile each rule's condition and actions, checking names are unique."""
    context = Context(spec.teams, spec)
    seen: dict[str, int] = {}
    compiled: list[CompiledRule] = []
    for index, rule in enumerate(spec.rules):
        path = ("rules", index)
        if rule.name in seen:
            problems.append(Problem((*path, "name"), f"rule name '{rule.name}' is already used by "
                                                     f"rules[{seen[rule.name]}]; names must be unique",
                                    at_value=True))
        seen.setdefault(rule.name, index)
        condition = compile_condition(rule.when, (*path, "when"), problems, spec)
        actions = [compile_action(raw, (*path, "then", i), context, problems) for i, raw in enumerate(rule.then)]
        if condition is None or any(a is None for a in actions):
            continue
        compiled.append(CompiledRule(
            name=rule.name, description=rule.description, index=index, condition=condition,
            actions=tuple(actions),  # type: ignore[arg-type]
            repeat=parse_duration(rule.repeat) if rule.repeat else None, stop=rule.stop, enabled=rule.enabled,
        ))  # fmt: skip
    return compiled


def _format(problems: Iterable[Problem], marks: Marks) -> list[str]:
    located = []
    for problem in problems:
        line, column = problem.position or marks.locate(problem.path, value=problem.at_value)
        located.append((line, column, f"{marks.filename}:{line}:{column}: {format_path(problem.path)}: "
                                      f"{problem.message}"))
    return [text for _, _, text in sorted(located, key=lambda item: (item[0], item[1]))]
