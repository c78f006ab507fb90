"""Turning a planned helpdesk action into the concrete write, and recognising that write on a ticket.

The engine plans "assign to team billing, round robin"; the executor needs
"assignee_id 4711". That choice is made once, stored with the claim, and
reused after a crash, so a recovered action writes the same thing and can be
recognised (`visible`) on a fresh read of the ticket. `moot` says when a human
changed the ticket after evaluation in a way that makes the action pointless.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.connectors.base import TicketChange
from bot.model import Agent, Directory, Priority, Status, Ticket
from bot.state import Intent


class Unresolvable(Exception):
    """The action names something the helpdesk does not have (agent, group); retrying cannot help."""


@dataclass(frozen=True)
class Resolution:
    """The concrete write for one intent, and the round-robin step it takes."""

    change: dict[str, Any]
    summary: str
    rotation: tuple[str, str] | None = None


@dataclass
class Picker:
    """Chooses agents for team assignments within one batch, so round robin advances per ticket."""

    platform: str
    directory: Directory
    last: Mapping[str, str | None]  # pool -> last member handed out, as stored
    load: dict[int, int] = field(default_factory=dict)  # agent id -> open tickets (least_loaded)
    _taken: dict[str, str] = field(default_factory=dict)

    def round_robin(self, pool: str, agents: list[Agent]) -> Agent:
        """The member after the last one this pool handed out (by id order, wrapping)."""
        ordered = sorted(agents, key=lambda a: a.id)
        last = self._taken.get(pool) or self.last.get(pool)
        chosen = next((a for a in ordered if last is not None and a.id > int(last)), ordered[0])
        self._taken[pool] = str(chosen.id)
        return chosen

    def least_loaded(self, agents: list[Agent]) -> Agent:
        """The member with the fewest open tickets (ties by id); counts this batch's picks."""
        chosen = min(agents, key=lambda a: (self.load.get(a.id, 0), a.id))
        self.load[chosen.id] = self.load.get(chosen.id, 0) + 1
        return chosen


def resolve(intent: Intent, ticket: Ticket, picker: Picker) -> Resolution:
    """The write an intent makes on this ticket; raises Unresolvable for unknown agents or groups."""
    p, kind, directory = intent.params, intent.kind, picker.directory
    if kind == "assign":
        return _assign(intent, ticket, picker)
    if kind == "set_group":
        group = directory.group(str(p.get("group", "")))
        if group is None:
            raise Unresolvable(f"group '{p.get('group')}' does not exist in {intent.platform}")
        return Resolution({"group_id": group.id}, f"moved to group {group.name}")
    if kind == "set_priority":
        return Resolution({"priority": Priority(p["priority"]).value}, f"priority set to {p['priority']}")
    if kind == "set_status":
        return Resolution({"status": Status(p["status"]).value}, f"status set to {p['status']}")
    if kind == "add_tags":
        return Resolution({"add_tags": sorted(p.get("tags") or ())}, f"tagged {', '.join(p.get('tags') or ())}")
    if kind == "remove_tags":
        return Resolution({"remove_tags": sorted(p.get("tags") or ())},
                          f"untagged {', '.join(p.get('tags') or ())}")
    if kind == "add_note":
        body = f"{p.get('body', '')}\n\n(deskbot {note_reference(intent.key)})"
        return Resolution({"note": body}, "private note added")
    raise Unresolvable(f"deskbot does not know how to perform '{kind}' on {intent.platform}")


def note_reference(key: str) -> str:
    """A short reference to an action, put in its note so a later read can tell the note was written."""
    return "ref " + hashlib.sha256(key.encode()).hexdigest()[:10]


def _assign(intent: Intent, ticket: Ticket, picker: Picker) -> Resolution:
    p, directory = intent.params, picker.directory
    if p.get("agent"):
        agent = directory.agent(str(p["agent"]))
        if agent is None:
            raise Unresolvable(f"agent '{p['agent']}' is not an agent in {intent.platform}")
        change: dict[str, Any] = {"assignee_id": agent.id}
        if ticket.group_id is not None and agent not in directory.members(ticket.group_id) and agent.group_ids:
            change["group_id"] = min(agent.group_ids)  # the helpdesk refuses an assignee outside the group
        return Resolution(change, f"assigned to {agent.name}")
    group = directory.group(str(p.get("group", "")))
    team = p.get("team") or p.get("group")
    if group is None:
        raise Unresolvable(f"group '{p.get('group')}' of team '{team}' does not exist in {intent.platform}")
    members = directory.members(group.id)
    wanted = {str(m).casefold() for m in p.get("members") or ()}
    if wanted:
        members = tuple(a for a in members if (a.email or "").casefold() in wanted or a.name.casefold() in wanted)
    strategy = p.get("strategy", "round_robin")
    available = [a for a in members if a.available is not False]
    if strategy == "group_only" or not members:
        return Resolution({"group_id": group.id}, f"moved to group {group.name}")
    if not available:
        if p.get("fallback") != "assign_anyway":
            return Resolution({"group_id": group.id},
                              f"no available agent in team {team}; left in the {group.name} queue")
        available = list(members)
    pool = f"{intent.platform}:{team}"
    if strategy == "least_loaded":
        agent, rotation = picker.least_loaded(available), None
    else:  # round_robin, and skills (agent skills are not in the directory yet)
        agent = picker.round_robin(pool, available)
        rotation = (pool, str(agent.id))
    return Resolution({"assignee_id": agent.id, "group_id": group.id},
                      f"assigned to {agent.name} ({team}, {strategy})", rotation)


def visible(change: Mapping[str, Any], ticket: Ticket, *, note_seen: bool | None = None) -> bool:
    """True when the ticket already shows every part of this write (done before, by us or a human)."""
    checks: list[bool] = []
    if change.get("assignee_id") is not None:
        checks.append(ticket.assignee_id == change["assignee_id"])
    if change.get("group_id") is not None:
        checks.append(ticket.group_id == change["group_id"])
    if change.get("unassign"):
        checks.append(ticket.assignee_id is None)
    if change.get("priority"):
        checks.append(ticket.priority.value == change["priority"])
    if change.get("status"):
        checks.append(ticket.status.value == change["status"])
    if change.get("add_tags"):
        checks.append(set(change["add_tags"]) <= set(ticket.tags))
    if change.get("remove_tags"):
        checks.append(not set(change["remove_tags"]) & set(ticket.tags))
    if change.get("note") is not None:
        checks.append(bool(note_seen))
    return bool(checks) and all(checks)


_WRITES = {"assign": ("assignee_id",), "set_group": ("group_id",), "set_priority": ("priority",),
           "set_status": ("status",)}


def moot(intent: Intent, ticket: Ticket) -> str | None:
    """Why the action no longer makes sense on the fresh ticket (a human got there first), or None."""
    if ticket.status.is_resolved and intent.kind != "set_status":
        return f"ticket is {ticket.status.value} now"
    seen = intent.seen
    current = {"assignee_id": ticket.assignee_id, "group_id": ticket.group_id,
               "priority": ticket.priority.value, "status": ticket.status.value}
    for name in _WRITES.get(intent.kind, ()):
        if name in seen and seen[name] != current[name]:
            return f"{name.replace('_id', '')} changed by someone else since evaluation " \
                   f"({seen[name]} -> {current[name]})"
    if intent.kind == "assign" and "group_id" in seen and seen["group_id"] != ticket.group_id:
        return f"group changed by someone else since evaluation ({seen['group_id']} -> {ticket.group_id})"
    return None


def merge(parts: list[tuple[str, Mapping[str, Any]]], ticket_id: int) -> list[tuple[TicketChange, list[str]]]:
    """Fold one ticket's writes into as few `TicketChange`s as possible; conflicting fields go in turn."""
    rounds: list[tuple[dict[str, Any], list[str]]] = []
    for key, change in parts:
        for fields, keys in rounds:
            if not any(name in fields and name not in ("add_tags", "remove_tags") for name in change) \
                    and not (set(change.get("add_tags", ())) & set(fields.get("remove_tags", ()))) \
                    and not (set(change.get("remove_tags", ())) & set(fields.get("add_tags", ()))):
                for name, value in change.items():
                    if name in ("add_tags", "remove_tags"):
                        fields[name] = sorted(set(fields.get(name, ())) | set(value))
                    else:
                        fields[name] = value
                keys.append(key)
                break
        else:
            rounds.append((dict(change), [key]))
    out = []
    for fields, keys in rounds:
        note_key = next((k for k, c in parts if k in keys and c.get("note") is not None), keys[0])
        out.append((TicketChange(
            ticket_id=ticket_id, key=note_key,
            assignee_id=fields.get("assignee_id"), group_id=fields.get("group_id"),
            priority=Priority(fields["priority"]) if fields.get("priority") else None,
            status=Status(fields["status"]) if fields.get("status") else None,
            add_tags=frozenset(fields.get("add_tags", ())), remove_tags=frozenset(fields.get("remove_tags", ())),
            note=fields.get("note"), unassign=bool(fields.get("unassign")),
        ), keys))  # fmt: skip
    return out


def fold(rounds: list[tuple[TicketChange, list[str]]]) -> list[tuple[TicketChange, list[str]]]:
    """Fold one ticket's writes into the first that can carry them, so one body per ticket is the rule.

    Two writes fold when every field both set has the same value and no tag is both added and removed;
    their notes become one private note (each keeps its own reference line, so each is recognised later).
    Writes that really disagree (two priorities) stay apart, in order.
    """
    out: list[tuple[TicketChange, list[str]]] = []
    for change, keys in rounds:
        for index, (into, into_keys) in enumerate(out):
            both = _joined(into, change)
            if both is not None:
                out[index] = (both, into_keys + keys)
                break
        else:
            out.append((change, list(keys)))
    return out


def _joined(a: TicketChange, b: TicketChange) -> TicketChange | None:
    for name in ("assignee_id", "group_id", "priority", "status"):
        if getattr(a, name) is not None and getattr(b, name) is not None and getattr(a, name) != getattr(b, name):
            return None
    if (a.unassign and b.assignee_id is not None) or (b.unassign and a.assignee_id is not None):
        return None
    if a.add_tags & b.remove_tags or a.remove_tags & b.add_tags:
        return None
    note = "\n\n".join(n for n in (a.note, b.note) if n) or None
    return replace(a, assignee_id=a.assignee_id if a.assignee_id is not None else b.assignee_id,
                   group_id=a.group_id if a.group_id is not None else b.group_id,
                   priority=a.priority or b.priority, status=a.status or b.status,
                   add_tags=a.add_tags | b.add_tags, remove_tags=a.remove_tags | b.remove_tags,
                   note=note, unassign=a.unassign or b.unassign, key=a.key if a.note or not b.note else b.key)
