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
from datetime import timedelta
from functools import cached_property
from pathlib import Path as FilePath
from typing import Any

from bot.errors import ConfigError
from bot.reports.schedule import report_problems
from bot.rules.actions import Context, compile_action
from bot.rules.conditions import Problem, compile_condition
from bot.rules.durations import format_duration, parse_duration
from bot.rules.engine import CompiledRule
from bot.rules.operators import suggest
from bot.rules.schema import ConfigSpec, RuleSpec
from bot.rules.validation import validate
from bot.rules.yamlsource import Marks, YamlSyntaxError, format_path, load_with_marks
from bot.shifts import roster_problems
from bot.sla import sla_problems

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
        """The rule with this name (ladder steps included)."""
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, CompiledRule]:
        return {rule.name: rule for rule in self.rules}

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
        problems.extend(Problem(path, message) for path, message in sla_problems(spec.calendars, spec.sla_policies))
        problems.extend(_team_problems(spec))
        problems.extend(Problem(tuple(path), message) for path, message in roster_problems(spec))
        problems.extend(Problem(tuple(path), message)
                        for path, message in report_problems(spec.reports, spec.teams, list(spec.calendars)))
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


def _team_problems(spec: ConfigSpec) -> list[Problem]:
    """Team references that point nowhere: unknown calendars and time zones."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    problems = []
    known = ["24x7", *spec.calendars]
    for name, team in spec.teams.items():
        if team.calendar and team.calendar not in known:
            problems.append(Problem(("teams", name, "calendar"), f"unknown calendar '{team.calendar}'"
                                    f"{suggest(team.calendar, known)}", at_value=True))
        try:
            ZoneInfo(team.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(Problem(("teams", name, "timezone"), f"'{team.timezone}' is not a time zone "
                                    "(use an IANA name such as Europe/London)", at_value=True))
    return problems


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
        if rule.ladder is not None:  # check the parts at their own paths before combining them into steps
            before = len(problems)
            if rule.when is not None:
                compile_condition(rule.when, (*path, "when"), problems, spec)
            if rule.ladder.acknowledged is not None:
                compile_condition(rule.ladder.acknowledged, (*path, "ladder", "acknowledged"), problems, spec)
            if len(problems) > before:
                continue
        for name, when, then, repeat, where in _expand(rule, path):
            condition = compile_condition(when, where, problems, spec)
            actions = [compile_action(raw, (*then[0], i), context, problems) for i, raw in enumerate(then[1])]
            if condition is None or any(a is None for a in actions):
                continue
            compiled.append(CompiledRule(
                name=name, description=rule.description, index=index, condition=condition,
                actions=tuple(actions),  # type: ignore[arg-type]
                repeat=parse_duration(repeat) if repeat else None, stop=rule.stop, enabled=rule.enabled,
            ))  # fmt: skip
    return compiled


def _expand(rule: RuleSpec, path: tuple) -> list[tuple[str, Any, tuple[tuple, list], str | None, tuple]]:
    """A rule as (name, when, (then path, then), repeat, when path); a ladder becomes one rule per step.

    Step k of a ladder on clock C is the rule "<name> › step k": the rule's `when`,
    and C still running, and C past the step's offset, and not acknowledged. The
    step fires on the rising edge like any rule, so it fires once per run of the
    clock: when the clock stops (reply sent, solved) the step is no longer true,
    and when it restarts (customer writes again) a new occurrence begins.
    """
    if rule.ladder is None:
        return [(rule.name, rule.when, ((*path, "then"), rule.then), rule.repeat, (*path, "when"))]
    ladder, out = rule.ladder, []
    clock = f"sla.{ladder.clock}"
    for number, step in enumerate(ladder.steps, start=1):
        offset = parse_duration(step.at)
        if offset < timedelta(0):
            threshold = {f"{clock}.remaining": {"lte": _text(-offset)}}
        elif offset == timedelta(0):
            threshold = {f"{clock}.breached": True}
        else:
            threshold = {f"{clock}.breached_for": {"gte": _text(offset)}}
        parts = [{f"{clock}.running": True}, threshold]
        if rule.when is not None:
            parts.insert(0, rule.when)
        if ladder.acknowledged is not None:
            parts.append({"not": ladder.acknowledged})
        step_path = (*path, "ladder", "steps", number - 1)
        when_text = "at breach" if offset == timedelta(0) else (
            f"{format_duration(-offset)} before" if offset < timedelta(0) else f"{format_duration(offset)} after")
        out.append((f"{rule.name} › step {number} ({when_text})", {"all": parts},
                    ((*step_path, "then"), step.then), step.repeat, (*path, "when")))
    return out


def _text(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())}s"


def _format(problems: Iterable[Problem], marks: Marks) -> list[str]:
    located = []
    for problem in problems:
        line, column = problem.position or marks.locate(problem.path, value=problem.at_value)
        located.append((line, column, f"{marks.filename}:{line}:{column}: {format_path(problem.path)}: "
                                      f"{problem.message}"))
    return [text for _, _, text in sorted(located, key=lambda item: (item[0], item[1]))]
