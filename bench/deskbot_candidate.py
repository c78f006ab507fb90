"""deskbot's engine as a `--candidate` of the shared peer harness: neutral rules in, matches out.

    evaluate(tickets, rules_yaml_text) -> {(ticket_id, rule_name), ...}

The harness times this end to end, so everything happens inside `evaluate`:
the neutral YAML is parsed (libyaml), each neutral condition is translated into
a deskbot condition tree (`translate`), the resulting rules document is
validated by deskbot's own schema and compiled by deskbot's own compiler
(`bot.config.compile_rules`: one generated function per rule), and every
ticket is tested against every rule with the compiled `Condition.test`.

The harness's tickets are plain dicts (records), not `bot.model.Ticket`s, and
several neutral fields (requester_domain, replies, created_age_hours,
sla_due_in_minutes, custom_fields.*) have no Ticket attribute. Converting the
records into Tickets would add a conversion the peers do not pay to a timed
region, and would still leave those fields without a home. So this module
registers one bench-only field family, `record.<path>`: a field that reads
`<path>` from a record exactly as the neutral format says (a dot walks into a
nested mapping, a missing key is null), with the kind of the neutral field
(text, number or tags), and an inline read for the compiled path. Everything
else (operators, combinators, compiler, generated code) is deskbot's
production code. `deskbot`'s `Ticket` path, with real fields and `plan()`, is
what bench/cycle.py measures.

Neutral semantics map onto deskbot operators exactly, or the translation
refuses the rule (`TranslationError`) rather than approximate it:

    eq / ne        text: {eq: v, case_sensitive: true}; number: {eq: v}, null -> {is_empty: true}
    in / not_in    {in: [...], case_sensitive: true} / {not_in: [...], case_sensitive: true}
    contains       tags: {has: v}; text: {contains: v, case_sensitive: true} (substring)
    gt gte lt lte  number: {gt: v} ... (false when null, as deskbot's ordering)
    matches        {matches: v, case_sensitive: true} (re.search, flags inline as in the rule)
    all / any / not  all / any / not (plain boolean not: not of a null comparison is true)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import yaml

from bench.harness import import_harness
from bot.config import Config
from bot.errors import ConfigError
from bot.rules import fields as field_registry
from bot.rules.batch import compile_batch
from bot.rules.conditions import Problem
from bot.rules.fields import Field, Kind
from bot.rules.schema import ConfigSpec
from bot.rules.yamlsource import format_path

PREFIX = "record."
#: Any instant: record fields are not time-based (the neutral tickets carry their ages).
NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)
#: The action every translated rule carries; deskbot rules need one, the neutral format has none.
ACTION = {"add_tags": ["bench_match"]}
_KINDS = {"string": Kind.TEXT, "number": Kind.NUMBER, "list": Kind.TAGS}
_SAFE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TranslationError(ValueError):
    """A neutral rule that deskbot cannot express with exactly the same meaning."""


def neutral_kinds() -> dict[str, Kind]:
    """Kind of every neutral ticket field, from the harness's own field table."""
    return {path: _KINDS[kind] for path, kind in import_harness().FIELD_KINDS.items()}


KINDS = neutral_kinds()


# ---- the record field family ----------------------------------------------------------------

_FIELDS: dict[str, Field] = {}


def _record_field(name: str, context: Any = None) -> Field:
    """`record.a.b`: reads t["a"]["b"] from a dict ticket; missing or non-mapping -> None."""
    field = _FIELDS.get(name)
    if field is None:
        field = _FIELDS[name] = _build_record_field(name)
    return field


def _build_record_field(name: str) -> Field:
    path = name.removeprefix(PREFIX)
    kind = KINDS.get(path)
    if kind is None:
        raise ValueError(f"'{path}' is not a field of the neutral tickets (known: {', '.join(KINDS)})")
    keys = tuple(path.split("."))
    if not all(_SAFE_KEY.match(k) for k in keys):
        raise ValueError(f"'{path}': record paths are dot-separated identifiers")

    def getter(ticket: Any, now: datetime) -> Any:
        value = ticket
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        if kind is Kind.TAGS:
            return value or ()
        return value

    def code(bind) -> str:
        read = f"t.get({bind(keys[0])})"
        for key in keys[1:]:
            read = f"(_r.get({bind(key)}) if isinstance(_r := {read}, dict) else None)"
        return f"({read} or ())" if kind is Kind.TAGS else read

    return Field(name, kind, "A field of the benchmark's record-shaped tickets.", f"{name}: x", getter, code=code)


if PREFIX not in field_registry.PREFIXES:
    field_registry.register_prefix(PREFIX, _record_field)


# ---- neutral condition -> deskbot condition ----------------------------------------------------

def translate_condition(node: dict[str, Any], where: str) -> dict[str, Any]:
    """One neutral node as a deskbot condition tree (the `when` of a rules file)."""
    if "all" in node:
        return {"all": [translate_condition(c, f"{where}.all[{i}]") for i, c in enumerate(node["all"])]}
    if "any" in node:
        return {"any": [translate_condition(c, f"{where}.any[{i}]") for i, c in enumerate(node["any"])]}
    if "not" in node:
        return {"not": translate_condition(node["not"], f"{where}.not")}
    return {PREFIX + node["field"]: _leaf(node["field"], node["op"], node["value"], where)}


def _leaf(field: str, op: str, value: Any, where: str) -> dict[str, Any]:
    kind = KINDS.get(field)

    def refuse(why: str) -> TranslationError:
        return TranslationError(f"{where}: {field} {op} {value!r}: {why}")

    if kind is None:
        raise refuse(f"unknown neutral field (known: {', '.join(KINDS)})")
    if op in ("eq", "ne"):
        if kind is Kind.NUMBER:
            if value is None:
                return {"is_empty" if op == "eq" else "is_set": True}
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise refuse("a number field compares with a number or null")
            return {op: value}
        if kind is Kind.TEXT:
            if value is not None and not isinstance(value, str):
                raise refuse("a text field compares with text or null")
            return {op: value, "case_sensitive": True}
        raise refuse("equality on a list field has no deskbot operator")
    if op in ("in", "not_in"):
        if kind is Kind.TAGS:
            raise refuse("membership of a list in a list has no deskbot operator")
        wanted = (str,) if kind is Kind.TEXT else (int, float)
        if any(isinstance(v, bool) or not isinstance(v, wanted) for v in value if v is not None) or (
                kind is Kind.NUMBER and None in value):
            raise refuse(f"the list must hold {kind} values")
        return {op: list(value), "case_sensitive": True}
    if op == "contains":
        if kind is Kind.TAGS and isinstance(value, str):
            return {"has": value}
        if kind is Kind.TEXT and isinstance(value, str) and value:
            return {"contains": value, "case_sensitive": True}
        raise refuse("contains needs a tag on a list field or non-empty text on a text field")
    if op in ("gt", "gte", "lt", "lte"):
        if kind is not Kind.NUMBER or isinstance(value, bool) or not isinstance(value, int | float):
            raise refuse("ordering compares a number field with a number")
        return {op: value}
    if op == "matches":
        if kind is not Kind.TEXT or not isinstance(value, str) or not value:
            raise refuse("matches needs a non-empty regular expression on a text field")
        return {"matches": value, "case_sensitive": True}
    raise refuse("unknown operator")


def translate(neutral: dict[str, Any]) -> dict[str, Any]:
    """A neutral rules document as a deskbot rules document (what config/rules.yaml holds)."""
    if neutral.get("format") != "helpdesk-bench-rules/v1":
        raise TranslationError(f"unsupported neutral format {neutral.get('format')!r}")
    return {"version": 1, "rules": [
        {"name": rule["name"], "when": translate_condition(rule["condition"], f"rules[{i}]"), "then": [ACTION]}
        for i, rule in enumerate(neutral["rules"])
    ]}  # fmt: skip


def translated_yaml(rules_yaml_text: str) -> str:
    """The translated rules as deskbot rules-file YAML (for reading, and for `load_config_text`)."""
    doc = translate(yaml.load(rules_yaml_text, Loader=_Loader))
    return yaml.safe_dump(doc, sort_keys=False, width=120)


def compile_config(document: dict[str, Any]) -> Config:
    """Validate and compile a rules document with deskbot's schema and compiler.

    This is `load_config_text` minus reading YAML with line marks, which only
    serves error messages (`run.py` times the full text path separately).
    """
    from bot.config import compile_rules

    problems: list[Problem] = []
    spec = ConfigSpec.model_validate({**document, "rules": document["rules"]})
    rules = compile_rules(spec, document["rules"], problems)
    if problems:
        raise ConfigError([f"{format_path(p.path)}: {p.message}" for p in problems])
    return Config(spec, tuple(rules), "<bench>", tuple(r for r in rules if r.enabled))


def evaluate(tickets: list[dict[str, Any]], rules_yaml_text: str) -> set[tuple[int, str]]:
    """Every (ticket id, rule name) whose condition holds, the way deskbot's planner tests them.

    The planner compiles all conditions of a rules file into one generated function that returns
    the rules holding for a ticket (`compile_batch`, made of the same per-rule code).
    """
    config = compile_config(translate(yaml.load(rules_yaml_text, Loader=_Loader)))
    names = [rule.name for rule in config.active_rules]
    holding = compile_batch([(i, rule.condition.root) for i, rule in enumerate(config.active_rules)])
    now = NOW
    out: set[tuple[int, str]] = set()
    add = out.add
    for ticket in tickets:
        tid = ticket["id"]
        for position in holding(ticket, now):
            add((tid, names[position]))
    return out


def evaluate_per_rule(tickets: list[dict[str, Any]], rules_yaml_text: str) -> set[tuple[int, str]]:
    """The same with one call per rule (`Condition.test`, what `explain` and tests use): the harness's loop."""
    config = compile_config(translate(yaml.load(rules_yaml_text, Loader=_Loader)))
    rules = [(rule.name, rule.condition.test) for rule in config.active_rules]
    now = NOW
    out: set[tuple[int, str]] = set()
    add = out.add
    for ticket in tickets:
        tid = ticket["id"]
        for name, test in rules:
            if test(ticket, now):
                add((tid, name))
    return out
