"""The platform-neutral vocabulary every part of deskbot speaks.

Connectors turn Zendesk and Freshdesk payloads into these frozen objects at the
boundary; the rules engine reads them and answers with a `Plan` of
`PlannedAction`s; the executor, notifiers and the state store consume that plan.
Nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, Any] = MappingProxyType({})


class Status(enum.StrEnum):
    """Ticket status, normalised across helpdesks (Zendesk `hold` becomes `on_hold`)."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    SOLVED = "solved"
    CLOSED = "closed"

    @property
    def is_resolved(self) -> bool:
        """Solved and closed tickets need no more work from an agent."""
        return self in (Status.SOLVED, Status.CLOSED)


class Priority(enum.StrEnum):
    """Ticket priority, normalised (Freshdesk `Medium` is `normal`)."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """Order for comparisons such as `priority: {gte: high}`."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


@dataclass(frozen=True, slots=True)
class SlaDeadlines:
    """Deadlines the helpdesk itself computed (Zendesk SLA policy metrics, Freshdesk *_due_by)."""

    first_reply_due_at: datetime | None = None
    next_reply_due_at: datetime | None = None
    resolution_due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    """One helpdesk ticket as deskbot sees it, whatever the platform.

    `group` and `assignee` are human names (what coordinators write in rules);
    the `*_id` fields are the platform's ids, used when writing back.
    """

    platform: str
    id: int
    subject: str = ""
    status: Status = Status.NEW
    priority: Priority = Priority.NORMAL
    created_at: datetime | None = None
    updated_at: datetime | None = None
    url: str = ""
    description: str = ""
    type: str | None = None
    channel: str | None = None
    tags: frozenset[str] = frozenset()
    group_id: int | None = None
    group: str | None = None
    assignee_id: int | None = None
    assignee: str | None = None
    assignee_email: str | None = None
    requester_id: int | None = None
    requester: str | None = None
    requester_email: str | None = None
    organization_id: int | None = None
    organization: str | None = None
    custom: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    first_responded_at: datetime | None = None
    last_agent_update_at: datetime | None = None
    last_customer_update_at: datetime | None = None
    assigned_at: datetime | None = None
    status_changed_at: datetime | None = None
    solved_at: datetime | None = None
    sla: SlaDeadlines = field(default_factory=SlaDeadlines)
    raw: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    #: Facts derived from the whole mirror (e.g. the requester's other open tickets), filled by the
    #: runner before planning; never stored and not part of the ticket's identity.
    related: Mapping[str, Any] = field(default_factory=lambda: EMPTY, compare=False)
    #: Identity across platforms, e.g. `zendesk:1042`; made once, because the planner, the memory and
    #: the due index all key by it (one shared string per ticket instead of one per use).
    key: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.platform}:{self.id}")


@dataclass(frozen=True, slots=True)
class Agent:
    """A helpdesk agent who can be assigned tickets."""

    platform: str
    id: int
    name: str
    email: str | None = None
    group_ids: frozenset[int] = frozenset()
    active: bool = True
    available: bool | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """A helpdesk group (team queue)."""

    platform: str
    id: int
    name: str
    agent_ids: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Directory:
    """Agents and groups of one helpdesk, with lookups by the names coordinators write."""

    agents: tuple[Agent, ...] = ()
    groups: tuple[Group, ...] = ()

    def agent(self, name_or_email: str) -> Agent | None:
        """The agent whose email or name matches (case-insensitive), if any."""
        wanted = name_or_email.casefold()
        for agent in self.agents:
            if (agent.email or "").casefold() == wanted or agent.name.casefold() == wanted:
                return agent
        return None

    def agent_by_id(self, agent_id: int | None) -> Agent | None:
        """The agent with this platform id, if known."""
        return next((a for a in self.agents if a.id == agent_id), None)

    def group(self, name: str) -> Group | None:
        """The group with this name (case-insensitive), if any."""
        wanted = name.casefold()
        return next((g for g in self.groups if g.name.casefold() == wanted), None)

    def group_by_id(self, group_id: int | None) -> Group | None:
        """The group with this platform id, if known."""
        return next((g for g in self.groups if g.id == group_id), None)

    def members(self, group_id: int) -> tuple[Agent, ...]:
        """Active agents in a group, by either side of the membership."""
        group = self.group_by_id(group_id)
        ids = group.agent_ids if group else frozenset()
        return tuple(a for a in self.agents if a.active and (group_id in a.group_ids or a.id in ids))


class Target(enum.StrEnum):
    """Which edge performs a planned action."""

    HELPDESK = "helpdesk"
    NOTIFIER = "notifier"


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """An action the engine decided on; the executor performs it, exactly once per `key`.

    `key` is `rule/ticket/kind/occurrence`: stable across re-evaluations and
    restarts, so claiming it in the state store makes the effect idempotent.
    """

    key: str
    ticket_key: str
    platform: str
    ticket_id: int
    rule: str
    kind: str
    target: Target
    params: Mapping[str, Any]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Firing:
    """What the engine remembers about one (rule, ticket) pair between evaluations."""

    matching: bool
    occurrence: int = 0
    fired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """One rule that fired on one ticket, with the actions it produced and why."""

    ticket_key: str
    rule: str
    actions: tuple[PlannedAction, ...]
    reason: str
    occurrence: int


@dataclass(frozen=True, slots=True)
class Plan:
    """The engine's answer: what to do, what to remember, and when to look again.

    `memory` holds the new `Firing` of every (rule, ticket key) pair whose entry
    changed; the caller stores it together with the actions' intents.
    `next_check_at` maps a ticket key to the earliest instant at which a rule's
    verdict could change with no change to the ticket (absent: never).
    """

    matches: tuple[RuleMatch, ...] = ()
    memory: Mapping[tuple[str, str], Firing] = field(default_factory=lambda: EMPTY)
    next_check_at: Mapping[str, datetime] = field(default_factory=lambda: EMPTY)
    held: tuple[str, ...] = ()

    @property
    def actions(self) -> tuple[PlannedAction, ...]:
        """Every planned action, in rule order per ticket."""
        return tuple(action for match in self.matches for action in match.actions)
