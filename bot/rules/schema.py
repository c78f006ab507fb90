"""The shape of config/rules.yaml, as pydantic models, and its JSON Schema for editors.

Conditions (`when`) and actions (`then`) are checked by their registries in
`conditions.py` and `actions.py`, which phrase errors better than a generic
schema could; here they are typed loosely and described precisely in the
JSON Schema that `deskbot schema` prints.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

import bot.rules.assignment_fields
import bot.rules.requester_fields
import bot.rules.sla_fields  # noqa: F401  (registers the `sla.` field family)
from bot.reports.schedule import RecurringIssuesSpec, ReportSchedule
from bot.rules import fields as field_registry
from bot.rules.actions import ACTIONS
from bot.rules.durations import DurationError, parse_duration
from bot.rules.fields import Kind
from bot.rules.operators import ALIASES, OPERATORS
from bot.shifts import AgentSpec, AssignmentSpec, ShiftSpec
from bot.sla import CalendarSpec, SlaPolicySpec


class Strict(BaseModel):
    """Unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


def _duration(value: Any) -> Any:
    if value is None:
        return value
    try:
        parse_duration(value)
    except DurationError as error:
        raise ValueError(str(error)) from None
    return value


class TeamSpec(Strict):
    """A team: its helpdesk group, members, Slack channel and supervisors."""

    group: str = Field(description="The helpdesk group (queue) this team works, by name.")
    members: list[str] = Field(default_factory=list, description="Agents' emails.")
    slack_channel: str | None = Field(None, description="Where alerts for this team go, e.g. '#billing'.")
    supervisors: list[str] = Field(default_factory=list,
                                   description="Mentioned in escalations: emails, or '@handle' user groups.")
    timezone: str = Field("UTC", description="IANA time zone for times shown to this team.")
    calendar: str | None = Field(None, description="The team's business hours (a name under 'calendars').")
    shift: str | None = Field(None, description="When the team's agents are on shift (a name under 'shifts').")


class Settings(Strict):
    """How the bot runs; every value has a sensible default."""

    poll_interval: str = Field("30s", description="How often each helpdesk is asked for changes.")
    tick_interval: str = Field("10s", description="How often time-based rules are re-checked (no API calls).")
    directory_refresh: str = Field("1h", description="How often agents and groups are re-read.")
    api_share: float = Field(0.5, gt=0, le=1, description="Share of the account's API limit deskbot may use.")
    digest_threshold: int = Field(5, ge=2, description="Alerts of one rule in one cycle above which a digest "
                                                       "is sent instead.")
    blast_radius: float = Field(0.25, gt=0, le=1, description="A new rule matching more than this share of "
                                                              "the queue is held until confirmed.")
    admin_channel: str | None = Field(None, description="Slack channel for deskbot's own problems.")
    state_path: str = Field("deskbot-state/deskbot.sqlite3", description="SQLite state file.")
    log_format: Literal["text", "json"] = "text"

    _durations = field_validator("poll_interval", "tick_interval", "directory_refresh")(_duration)


class LadderStep(Strict):
    """One rung: at `at` relative to the deadline (-30m before, 0 at breach, 1h after), do `then`."""

    at: str = Field(description="Offset from the deadline: -30m (before), 0 (at breach), +1h (after).")
    then: list[Any] = Field(min_length=1, description="Actions, each 'verb: options'.")
    repeat: str | None = Field(None, description="Do this step again every this long until acknowledged.")

    _at = field_validator("at", mode="before")(lambda v: _duration("0s" if v in (0, "0") else v))
    _repeat = field_validator("repeat")(_duration)


class LadderSpec(Strict):
    """An escalation ladder on one SLA clock: each step fires once per ticket and per run of the clock."""

    clock: Literal["first_reply", "next_reply", "resolution"]
    acknowledged: Any = Field(None, description="A condition that stops the ladder, e.g. {tags: {has: ack}}.")
    steps: list[LadderStep] = Field(min_length=1)


class RuleSpec(Strict):
    """One rule: when its condition becomes true for a ticket, do its actions once."""

    name: str = Field(min_length=1, description="Unique, human name; shown in alerts and the audit log.")
    description: str = ""
    enabled: bool = True
    when: Any = Field(None, description="Condition tree: fields with operators, combined with all / any / not.")
    then: list[Any] = Field(default_factory=list, description="Actions, each 'verb: options'.")
    ladder: LadderSpec | None = Field(None, description="Escalation steps around an SLA deadline.")
    repeat: str | None = Field(None, description="Fire again every this long while the condition holds.")
    stop: bool = Field(False, description="When this rule acts on a ticket, later rules skip it in that pass.")

    _repeat = field_validator("repeat")(_duration)

    @model_validator(mode="after")
    def _needs_actions(self) -> RuleSpec:
        if self.ladder is None and not self.then:
            raise ValueError("a rule needs 'then' (its actions) or a 'ladder'")
        if self.ladder is not None and self.then:
            raise ValueError("give either 'then' or 'ladder', not both (ladder steps have their own 'then')")
        if self.ladder is None and self.when is None:
            raise ValueError("a rule needs 'when' (its condition)")
        return self


class ConfigSpec(Strict):
    """The whole rules file."""

    version: Literal[1]
    mode: Literal["dry_run", "live"] = Field("dry_run", description="dry_run reports the plan and writes "
                                                                    "nothing; live acts.")
    helpdesks: list[Literal["zendesk", "freshdesk"]] = Field(
        default_factory=list, description="Which helpdesks to watch; empty = those with credentials set.")
    settings: Settings = Field(default_factory=Settings)
    teams: dict[str, TeamSpec] = Field(default_factory=dict)
    calendars: dict[str, CalendarSpec] = Field(
        default_factory=dict, description="Business hours and holidays by name; '24x7' is built in.")
    sla_policies: list[SlaPolicySpec] = Field(
        default_factory=list, description="deskbot's own SLA targets; the first policy that applies wins.")
    agents: dict[str, AgentSpec] = Field(default_factory=dict,
                                         description="Per agent (by email): skills, capacity, shift, time off.")
    shifts: dict[str, ShiftSpec] = Field(default_factory=dict, description="Working hours by name.")
    assignment: AssignmentSpec = Field(default_factory=AssignmentSpec,
                                       description="Load weights, ping-pong guard, where skills come from.")
    reports: list[ReportSchedule] = Field(default_factory=list,
                                          description="Queue-health reports posted to Slack on a schedule.")
    recurring_issues: RecurringIssuesSpec | None = Field(
        None, description="Alert when a cluster of similar new tickets rises above its usual rate.")
    rules: list[RuleSpec] = Field(default_factory=list)


def json_schema() -> dict[str, Any]:
    """JSON Schema of the rules file, with conditions and actions spelled out for autocompletion."""
    schema = ConfigSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "deskbot rules file"
    defs = schema.setdefault("$defs", {})
    defs["Condition"], defs["Leaf"] = _condition_schema()
    defs["Action"] = {
        "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
        "properties": {name: {**kind.schema, "description": f"{kind.doc} Example: {kind.example}"}
                       for name, kind in ACTIONS.items()},
    }  # fmt: skip
    rule = defs["RuleSpec"]["properties"]
    rule["when"] = {"$ref": "#/$defs/Condition", "description": rule["when"].get("description", "")}
    rule["then"] = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Action"}}
    return schema


def _condition_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    operators = {}
    for name in [*OPERATORS, *ALIASES]:
        op = OPERATORS[ALIASES.get(name, name)]
        operators[name] = {"description": f"{op.doc} Example: {op.example}"}
    leaf = {
        "anyOf": [
            {"type": ["string", "number", "boolean", "null"]},
            {"type": "array"},
            {"type": "object", "additionalProperties": False,
             "properties": {**operators, "case_sensitive": {"type": "boolean"}}},
        ]
    }  # fmt: skip
    properties: dict[str, Any] = {
        "all": {"type": "array", "items": {"$ref": "#/$defs/Condition"}, "description": "Every one holds."},
        "any": {"type": "array", "items": {"$ref": "#/$defs/Condition"}, "description": "At least one holds."},
        "not": {"$ref": "#/$defs/Condition", "description": "The inner condition does not hold."},
    }
    for name, field in field_registry.FIELDS.items():
        kind = "a duration such as 4h" if field.kind is Kind.DURATION else field.kind.value
        properties[name] = {"$ref": "#/$defs/Leaf", "description": f"{field.doc} ({kind}) Example: {field.example}"}
    patterns = {f"^{prefix.replace('.', '[.]')}.+$": {"$ref": "#/$defs/Leaf"} for prefix in field_registry.PREFIXES}
    condition = {"type": "object", "minProperties": 1, "properties": properties,
                 "patternProperties": patterns, "additionalProperties": False}
    return condition, leaf
