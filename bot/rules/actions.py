"""Every action a rule's `then` can list, in one registry.

Each entry in `then` is a one-key mapping `verb: options`:

    then:
      - assign: {team: billing, strategy: round_robin}
      - set_priority: urgent
      - add_tags: [bot_routed]
      - add_note: "Routed by deskbot: {{ subject }}"
      - notify: {team: billing, message: "{{ priority }} ticket waits {{ unanswered_for }}"}

Actions do not act: `build()` returns the parameters of a `PlannedAction` that
the executor performs (helpdesk writes) or hands to a notifier (alerts). Adding
an action is one `@action(...)` class here (and, for a new helpdesk verb, one
method in each connector).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.model import Priority, Status, Target, Ticket
from bot.rules.conditions import Problem
from bot.rules.operators import suggest
from bot.rules.templates import Template, TemplateError, parse
from bot.rules.validation import validate
from bot.rules.yamlsource import Path


class Strict(BaseModel):
    """Options models refuse unknown keys so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Context:
    """What actions may refer to while loading: the file's teams and their settings."""

    teams: Mapping[str, Any]
    spec: Any = None


@dataclass(frozen=True)
class CompiledAction:
    """A checked action: its verb, target and how to build its parameters for a ticket."""

    kind: str
    target: Target
    build: Callable[[Ticket, datetime, str], dict[str, Any]]
    summary: str


@dataclass(frozen=True)
class ActionType:
    """A registered verb: how to read its options from YAML."""

    name: str
    doc: str
    example: str
    target: Target
    compile: Callable[[Any, Path, Context, list[Problem]], CompiledAction | None]
    schema: dict[str, Any]


ACTIONS: dict[str, ActionType] = {}


def action(name: str, target: Target, doc: str, example: str, schema: dict[str, Any]):
    """Register `compile(raw, path, context, problems)` as the action `name`."""

    def wrap(fn: Callable[[Any, Path, Context, list[Problem]], CompiledAction | None]):
        ACTIONS[name] = ActionType(name, doc, example, target, fn, schema)
        return fn

    return wrap


def compile_action(raw: Any, path: Path, context: Context, problems: list[Problem]) -> CompiledAction | None:
    """Check one `then` entry and compile it."""
    if not isinstance(raw, dict) or len(raw) != 1:
        problems.append(Problem(path, "an action is one 'verb: options' entry, e.g. 'set_priority: urgent' "
                                      f"(actions: {', '.join(ACTIONS)})"))
        return None
    (verb, options), = raw.items()
    kind = ACTIONS.get(str(verb))
    if kind is None:
        problems.append(Problem((*path, verb), f"unknown action '{verb}'{suggest(str(verb), list(ACTIONS))}"))
        return None
    return kind.compile(options, (*path, verb), context, problems)


def _template(text: Any, path: Path, problems: list[Problem], context: Context) -> Template | None:
    try:
        return parse(text, context.spec)
    except TemplateError as error:
        problems.append(Problem(path, str(error), at_value=True))
        return None


def _team(name: str, path: Path, context: Context, problems: list[Problem]) -> Any:
    team = context.teams.get(name)
    if team is None:
        known = list(context.teams)
        hint = suggest(name, known) if known else " (no teams are defined under 'teams')"
        problems.append(Problem(path, f"unknown team '{name}'{hint}", at_value=True))
    return team


# ---- helpdesk actions -----------------------------------------------------------------------

class AssignOptions(Strict):
    """Options of `assign`: a named agent, or a team and how to pick its agent."""

    agent: str | None = None
    team: str | None = None
    strategy: Literal["round_robin", "least_loaded", "skills", "group_only"] = "round_robin"
    fallback: Literal["queue", "notify", "assign_anyway"] = "queue"
    skills: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_target(self) -> AssignOptions:
        if bool(self.agent) == bool(self.team):
            raise ValueError("give either 'agent' (an email or name) or 'team' (a team from 'teams')")
        return self


@action("assign", Target.HELPDESK, "Assign to an agent, or to a team's agent by strategy.",
        "assign: {team: billing, strategy: least_loaded}",
        {"anyOf": [{"type": "string"}, {"type": "object"}]})
def _assign(raw: Any, path: Path, context: Context, problems: list[Problem]) -> CompiledAction | None:
    options = validate(AssignOptions, {"agent": raw} if isinstance(raw, str) else raw, path, problems)
    if options is None:
        return None
    if options.team:
        team = _team(options.team, (*path, "team"), context, problems)
        if team is None:
            return None
        params = {"team": options.team, "group": team.group, "strategy": options.strategy,
                  "fallback": options.fallback, "skills": list(options.skills),
                  "members": list(team.members)}
        summary = f"assign to team {options.team} ({options.strategy})"
    else:
        params = {"agent": options.agent}
        summary = f"assign to {options.agent}"
    return CompiledAction("assign", Target.HELPDESK, lambda t, now, rule: dict(params), summary)


@action("set_group", Target.HELPDESK, "Move the ticket to a helpdesk group, or to a team's group.",
        "set_group: {team: escalations}", {"anyOf": [{"type": "string"}, {"type": "object"}]})
def _set_group(raw: Any, path: Path, context: Context, problems: list[Problem]) -> CompiledAction | None:
    if isinstance(raw, dict) and set(raw) == {"team"}:
        team = _team(str(raw["team"]), (*path, "team"), context, problems)
        if team is None:
            return None
        group = team.group
    elif isinstance(raw, str) and raw.strip():
        group = raw.strip()
    else:
        problems.append(Problem(path, "set_group takes a group name or {team: <team>}", at_value=True))
        return None
    return CompiledAction("set_group", Target.HELPDESK, lambda t, now, rule: {"group": group},
                          f"move to group {group}")


def _choice(raw: Any, path: Path, problems: list[Problem], choices: list[str], what: str) -> str | None:
    text = str(raw).strip().lower().replace(" ", "_").replace("-", "_")
    text = "on_hold" if text == "hold" else text
    if text not in choices:
        problems.append(Problem(path, f"'{raw}' is not a {what}{suggest(text, choices)}", at_value=True))
        return None
    return text


@action("set_priority", Target.HELPDESK, "Set the priority.", "set_priority: urgent",
        {"enum": [p.value for p in Priority]})
def _set_priority(raw: Any, path: Path, context: Context, problems: list[Problem]) -> CompiledAction | None:
    value = _choice(raw, path, problems, [p.value for p in Priority], "priority")
    if value is None:
        return None
    return CompiledAction("set_priority", Target.HELPDESK, lambda t, now, rule: {"priority": value},
                          f"set priority {value}")


_SETTABLE = [Status.OPEN.value, Status.PENDING.value, Status.ON_HOLD.value, Status.SOLVED.value]


@action("set_status", Target.HELPDESK, "Set the status (open, pending, on_hold, solved).",
        "set_status: open", {"enum": _SETTABLE})
def _set_status(raw: Any, path: Path, context: Context, problems: list[Problem]) -> CompiledAction | None:
    value = _choice(raw, path, problems, _SETTABLE, "status deskbot can set")
    if value is None:
        return None
    return CompiledAction("set_status", Target.HELPDESK, lambda t, now, rule: {"status": value},
                          f"set status {value}")


def _tags(raw: Any, path: Path, problems: list[Problem]) -> list[str] | None:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        problems.append(Problem(path, "expects a tag or a list of tags", at_value=True))
        return None
    bad = [str(t) for t in items if not isinstance(t, str) or not t or any(c.isspace() for c in t)]
    if bad:
        problems.append(Problem(path, f"tags are single words without spaces: {', '.join(bad)}", at_value=True))
        return None
    return sorted(set(items))


_TAGS_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}


@action("add_tags", Target.HELPDESK, "Add tags (tags a human set are kept).", "add_tags: [bot_routed]",
        _TAGS_SCHEMA)
def _add_tags(raw: Any, path: Path, context: Context, problems: list[Problem]) -> CompiledAction | None:
    tags = _tags(raw, path, problems)
    if tags is None:
        return None
    return CompiledAction("add_tags", Target.HELPDESK, lambda t, now, rule: {"tags": list(tags)},
                          f"add tags {', '.join(tags)}")


@action("remove_tags", Target.HELPDESK, "Remove tags.", "remove_tags: needs_triage", _TAGS_SCHEMA)
def _remove_tags(raw: Any, path: Path, context: Context, problems: list[Problem]) -> CompiledAction | None:
    tags = _tags(raw, path, problems)
    if tags is None:
        return None
    return CompiledAction("remove_tags", Target.HELPDESK, lambda t, now, rule: {"tags": list(tags)},
                          f"remove tags {', '.join(tags)}")


@action("add_note", Target.HELPDESK, "Add a private note (agents only) from a template.",
        'add_note: "Escalated by deskbot: waited {{ unanswered_for }}"', {"type": "string"})
def _add_note(raw: Any, path: Path, context: Context, problems: list[Problem]) -> CompiledAction | None:
    template = _template(raw, path, problems, context)
    if template is None:
        return None

    def build(ticket: Ticket, now: datetime, rule: str) -> dict[str, Any]:
        return {"body": template.render(template.values(ticket, now, {"rule": rule}))}

    return CompiledAction("add_note", Target.HELPDESK, build, "add a private note")


# ---- notifications --------------------------------------------------------------------------

class NotifyOptions(Strict):
    """Options of `notify`: where to post, what to say, whom to mention."""

    channel: str | None = None
    team: str | None = None
    user: str | None = None
    supervisors: bool = False
    message: str = "{{ subject }}"
    severity: Literal["info", "warning", "critical"] = "warning"
    mention: list[str] = Field(default_factory=list)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("channel is a name such as '#support-leads' or an id such as C0123ABCD")
        return value

    @model_validator(mode="after")
    def _somewhere(self) -> NotifyOptions:
        if not (self.channel or self.team or self.user):
            raise ValueError("say where to post: 'channel', 'team' (its Slack channel) or 'user' (an email)")
        if self.team == TICKETS_TEAM and not (self.channel or self.user):
            raise ValueError("with team: ticket, also give 'channel' for tickets in no team's group")
        return self


#: `notify: {team: ticket}` posts to the team whose group the ticket is in.
TICKETS_TEAM = "ticket"


def _destination(options: NotifyOptions, name: str | None, team: Any) -> dict[str, Any]:
    """Channel, mentions and time zone for one team (or none)."""
    mention = list(options.mention)
    if team is not None and options.supervisors:
        mention.extend(s for s in team.supervisors if s not in mention)
    return {
        "channel": options.channel or (team.slack_channel if team is not None else None),
        "mention": mention, "team": name, "timezone": team.timezone if team is not None else "UTC",
    }  # fmt: skip


def _route_by_group(options: NotifyOptions, context: Context) -> Callable[[Ticket], dict[str, Any]]:
    """Pick the team by the ticket's group at plan time; `channel` is the fallback for other groups."""
    by_group = {team.group.casefold(): (name, team) for name, team in context.teams.items() if team.slack_channel}
    fallback = _destination(options, None, None)

    def route(ticket: Ticket) -> dict[str, Any]:
        found = by_group.get((ticket.group or "").casefold())
        if found is None:
            return fallback
        destination = _destination(options, found[0], found[1])
        if options.channel:  # an explicit channel is only the fallback here
            destination["channel"] = found[1].slack_channel
        return destination

    return route


def _sla_reader(context: Context) -> Callable[[Ticket, datetime, str], dict[str, Any] | None]:
    """The most pressing SLA clock of a ticket for the alert frame: the longest breached, else the next due."""
    if not getattr(context.spec, "sla_policies", None):
        return lambda ticket, now, timezone: None
    from bot.rules.sla_fields import bind

    binding = bind(context.spec)

    def read(ticket: Ticket, now: datetime, timezone: str) -> dict[str, Any] | None:
        running = [c for c in binding.clocks(ticket, now).values() if not c.stopped]
        if not running:
            return None
        clock = min(running, key=lambda c: (not c.breached, -c.breached_for if c.breached else c.remaining))
        return {"target": clock.target, "deadline": clock.deadline.isoformat() if clock.deadline else None,
                "remaining_seconds": clock.remaining.total_seconds(), "timezone": timezone}

    return read


def _ticket_summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "subject": ticket.subject, "url": ticket.url, "status": ticket.status.value,
        "priority": ticket.priority.value, "group": ticket.group, "assignee": ticket.assignee,
        "requester": ticket.requester, "tags": sorted(ticket.tags),
    }  # fmt: skip


@action("notify", Target.NOTIFIER, "Post an alert to Slack: a channel, a team's channel (`team: ticket` = the "
        "team whose group the ticket is in), or a user by email.",
        'notify: {team: billing, message: "Unassigned for {{ since_created }}", severity: warning}',
        {"type": "object"})
def _notify(raw: Any, path: Path, context: Context, problems: list[Problem]) -> CompiledAction | None:
    options = validate(NotifyOptions, raw, path, problems)
    if options is None:
        return None
    template = _template(options.message, (*path, "message"), problems, context)
    if options.team == TICKETS_TEAM:
        route = _route_by_group(options, context)
    elif options.team:
        team = _team(options.team, (*path, "team"), context, problems)
        if team is None:
            return None
        if not options.channel and not team.slack_channel and not options.user:
            problems.append(Problem((*path, "team"), f"team '{options.team}' has no slack_channel to post to"))
            return None
        fixed = _destination(options, options.team, team)
        route = lambda ticket: fixed  # noqa: E731
    elif options.supervisors:
        problems.append(Problem((*path, "supervisors"), "supervisors: true needs 'team' to know whose"))
        return None
    else:
        fixed = _destination(options, None, None)
        route = lambda ticket: fixed  # noqa: E731
    if template is None:
        return None
    where = options.channel or options.user or f"team {options.team}"
    clocks = _sla_reader(context)

    def build(ticket: Ticket, now: datetime, rule: str) -> dict[str, Any]:
        destination = route(ticket)
        values = template.values(ticket, now, {"rule": rule, "team": destination["team"] or ""})
        return {
            **destination, "user": options.user, "severity": options.severity,
            "template": template.text, "values": values, "message": template.render(values),
            "ticket": _ticket_summary(ticket), "rule": rule, "sla": clocks(ticket, now, destination["timezone"]),
        }  # fmt: skip

    return CompiledAction("notify", Target.NOTIFIER, build, f"notify {where}")
