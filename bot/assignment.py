"""Smart assignment: which agent of a team gets a ticket, or which fallback runs, and why.

    assign: {team: billing, strategy: skills, skills: [french], fallback: notify}

`choose_assignee(...)` is pure: the directory, the open-ticket workload, the
instant, the rotation position and the ticket's deskbot assignment history are
all inputs; the answer (`Decision`) names the agent or the fallback, the new
rotation position for the store to persist, and a sentence listing every agent
considered with why each was passed over. Strategies:

- round_robin: the first eligible member after the last one handed out (by
  agent id, wrapping), so nobody gets a second ticket before the others got one;
- least_loaded: the smallest open workload weighted by priority;
- skills: members whose skills cover the ticket's required skills, then least loaded;
- group_only: just queue the ticket in the team's group.

Eligible = known to the helpdesk, active, in the team's group, not marked
unavailable there, on shift, not out of office, under capacity and (when skills
are required) skilled. The ticket's current assignee is passed over unless
nobody else is eligible, in which case it stays put. If nobody is eligible the
rule's fallback runs: queue (set the group only), notify (the team), or
assign_anyway (least loaded member who is active and in the group). A ping-pong
guard holds back an assignment once deskbot has assigned the ticket `max`
times within the window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.model import Agent, Directory, Priority, Status, Ticket
from bot.shifts import (  # re-exported: the rules-file sections live with the roster
    OPEN_STATUSES,
    AgentSpec,
    AssignmentSpec,
    CapacitySpec,
    OutOfOfficeSpec,
    PingPongSpec,
    PriorityWeights,
    Roster,
    ShiftSpec,
    SkillsFromSpec,
    roster_for,
    roster_problems,
)

__all__ = [
    "OPEN_STATUSES", "AgentSpec", "AssignmentBatch", "AssignmentSpec", "Candidate", "CapacitySpec", "Decision",
    "GuardVerdict", "OutOfOfficeSpec", "PingPongSpec", "PriorityWeights", "Roster", "ShiftSpec", "SkillsFromSpec",
    "Workload", "choose_assignee", "ping_pong_guard", "pool_key", "required_skills", "roster_for",
    "roster_problems", "with_ticket", "workload_from",
]

Workload = Mapping[int, Mapping[Priority, int]]  # agent id -> open tickets per priority
Outcome = Literal["assign", "keep", "queue", "notify", "held", "none"]


# ---- workload, skills, ping-pong ------------------------------------------------------------


def workload_from(tickets: Iterable[Ticket], *, platform: str | None = None,
                  statuses: Iterable[Status] = OPEN_STATUSES) -> dict[int, dict[Priority, int]]:
    """Open tickets per assignee id and priority, from the mirror (one platform's agents when given)."""
    counted = frozenset(statuses)
    load: dict[int, dict[Priority, int]] = {}
    for ticket in tickets:
        if ticket.assignee_id is None or ticket.status not in counted:
            continue
        if platform is not None and ticket.platform != platform:
            continue
        per = load.setdefault(ticket.assignee_id, {})
        per[ticket.priority] = per.get(ticket.priority, 0) + 1
    return load


def with_ticket(workload: Workload, agent_id: int, priority: Priority,
                delta: int = 1) -> dict[int, dict[Priority, int]]:
    """A copy of `workload` with one ticket added to (or, delta=-1, taken from) an agent."""
    out = {agent: dict(counts) for agent, counts in workload.items()}
    counts = out.setdefault(agent_id, {})
    counts[priority] = max(0, counts.get(priority, 0) + delta)
    return out


def required_skills(ticket: Ticket, mapping: SkillsFromSpec, explicit: Iterable[str] = ()) -> tuple[str, ...]:
    """Skills the ticket needs: the action's own list plus those its tags and custom fields map to."""
    wanted = {s.casefold() for s in explicit}
    tags = {t.casefold() for t in ticket.tags}
    for tag, skills in mapping.tags.items():
        if tag.casefold() in tags:
            wanted.update(s.casefold() for s in skills)
    for name, by_value in mapping.custom.items():
        raw = ticket.custom.get(name)
        values = raw if isinstance(raw, list | tuple | set | frozenset) else [raw]
        seen = {(str(v).lower() if isinstance(v, bool) else str(v)).casefold() for v in values if v is not None}
        for value, skills in by_value.items():
            if str(value).casefold() in seen:
                wanted.update(s.casefold() for s in skills)
    return tuple(sorted(wanted))


@dataclass(frozen=True)
class GuardVerdict:
    """What the ping-pong guard says: whether it holds an assignment back, and until when."""

    held: bool
    count: int = 0
    limit: int | None = None
    until: datetime | None = None
    reason: str = ""


def ping_pong_guard(history: Iterable[Any], now: datetime, policy: PingPongSpec | None) -> GuardVerdict:
    """Hold when deskbot already assigned the ticket `max` times within the window.

    `history` holds the instants deskbot changed the ticket's assignee (datetimes,
    or records with an `at`); `until` is when an assignment would pass again.
    """
    if policy is None:
        return GuardVerdict(False, reason="ping-pong guard off")
    start = now - policy.within
    recent = sorted(at for at in (getattr(h, "at", h) for h in history) if start < at <= now)
    if len(recent) < policy.max:
        return GuardVerdict(False, len(recent), policy.max)
    until = recent[len(recent) - policy.max] + policy.within
    return GuardVerdict(True, len(recent), policy.max, until,
                        f"held by the ping-pong guard: deskbot assigned this ticket {len(recent)} times in the "
                        f"last {_span(policy.within)} (max {policy.max}); allowed again at {until.isoformat()}")


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g}h" if hours < 48 or hours % 24 else f"{hours / 24:g}d"


# ---- decisions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One agent considered: their load and every reason they were passed over (none = eligible)."""

    agent: Agent | None
    label: str
    load: float = 0.0
    open: int = 0
    excluded: tuple[str, ...] = ()
    hard: bool = False  # never eligible, not even for assign_anyway

    @property
    def eligible(self) -> bool:
        """True when nothing excludes this agent."""
        return not self.excluded

    def describe(self) -> str:
        """`Ana <ana@x> (load 3, 2 open): at capacity (urgent 3/3)`, or `Dan: inactive`."""
        state = ", ".join(self.excluded) if self.excluded else "eligible"
        if self.hard:
            return f"{self.label}: {state}"
        return f"{self.label} (load {self.load:g}, {self.open} open): {state}"


@dataclass(frozen=True)
class Decision:
    """The answer: assign `agent`, keep, queue in `group`, notify the team, held, or nothing; with why.

    `rotation_position` is the round-robin position to store (unchanged unless a
    round-robin pick was made); `guard` says whether the ping-pong guard held it.
    """

    outcome: Outcome
    reason: str
    agent: Agent | None = None
    group: str | None = None
    team: str | None = None
    strategy: str | None = None
    rotation_position: str | None = None
    candidates: tuple[Candidate, ...] = ()
    required_skills: tuple[str, ...] = ()
    fallback: str | None = None
    guard: GuardVerdict | None = None

    @property
    def held_until(self) -> datetime | None:
        """When the ping-pong guard would let this assignment through (held decisions only)."""
        return self.guard.until if self.outcome == "held" and self.guard else None


def label(agent: Agent) -> str:
    """`Name <email>` (or the name alone)."""
    return f"{agent.name} <{agent.email}>" if agent.email else agent.name



def pool_key(platform: str, team: str) -> str:
    """The store key of a team's round-robin position on one helpdesk (agent ids differ per helpdesk)."""
    return f"{platform}:{team}"


@dataclass(frozen=True)
class _Ask:
    ticket: Ticket
    directory: Directory
    workload: Workload
    now: datetime
    roster: Roster
    position: str | None
    guard: GuardVerdict


def choose_assignee(params: Mapping[str, Any], ticket: Ticket, directory: Directory, workload: Workload,
                    now: datetime, roster: Roster, rotation_position: str | None = None,
                    history: Iterable[Any] = ()) -> Decision:
    """Decide an `assign` action's params (`agent`, or `team` + `group` + `strategy` ...) for a ticket; pure."""
    ask = _Ask(ticket, directory, workload, now, roster, rotation_position,
               ping_pong_guard(history, now, roster.settings.ping_pong))
    if params.get("agent"):
        return _named(ask, str(params["agent"]))
    return _team(ask, params)


def _named(ask: _Ask, name: str) -> Decision:
    agent = ask.directory.agent(name)
    base: dict[str, Any] = {"rotation_position": ask.position, "guard": ask.guard}
    if agent is None:
        return Decision("none", f"'{name}' is not an agent in {ask.ticket.platform}; nothing assigned", **base)
    if not agent.active:
        return Decision("none", f"{label(agent)} is inactive in {ask.ticket.platform}; nothing assigned", **base)
    if agent.id == ask.ticket.assignee_id:
        return Decision("keep", f"already assigned to {label(agent)}", agent=agent, **base)
    roster = ask.roster
    team = roster.team_of(roster.key(agent.email, agent.name) or agent.name, ask.ticket.group)  # for its shift
    seen = _judge(ask, agent, label(agent), None, team, ())
    note = f" (note: {', '.join(seen.excluded)}; a named agent is assigned regardless)" if seen.excluded else ""
    return _guarded(ask, Decision("assign", f"assigned to {label(agent)}{note}", agent=agent, candidates=(seen,),
                                  **base))


def _team(ask: _Ask, params: Mapping[str, Any]) -> Decision:
    team, group_name = params.get("team"), params.get("group")
    strategy, fallback = str(params.get("strategy", "round_robin")), str(params.get("fallback", "queue"))
    base: dict[str, Any] = {"team": team, "group": group_name, "strategy": strategy,
                            "rotation_position": ask.position, "guard": ask.guard}
    group = ask.directory.group(str(group_name)) if group_name else None
    if group is None:
        return Decision("none", f"team {team}: group '{group_name}' does not exist in {ask.ticket.platform}; "
                                "nothing assigned", **base)
    base["group"] = group.name
    if strategy == "group_only":
        return Decision("queue", f"team {team} (group_only): queued in group {group.name}", **base)
    mapping = ask.roster.settings.skills_from if strategy == "skills" else SkillsFromSpec()
    needed = required_skills(ask.ticket, mapping, params.get("skills") or ())
    base["required_skills"] = needed
    candidates = tuple(_judge(ask, agent, text, group, team, needed) for agent, text in _members(ask, params, group))
    base["candidates"] = candidates
    head = f"team {team} ({strategy}{'; needs ' + ', '.join(needed) if needed else ''})"
    eligible = [c for c in candidates if c.eligible]
    if eligible:
        chosen, why, position = _pick(strategy, eligible, ask.position)
        assert chosen.agent is not None
        return _guarded(ask, Decision("assign", f"{head}: assigned to {chosen.label} ({why}). {_listing(candidates)}",
                                      agent=chosen.agent, **{**base, "rotation_position": position}))
    current = next((c for c in candidates if c.excluded == (_CURRENT,)), None)
    if current is not None:
        return Decision("keep", f"{head}: nobody else is eligible; stays with {current.label}. "
                                f"{_listing(candidates)}", agent=current.agent, **base)
    return _fall_back(ask, fallback, head, candidates, base)


_CURRENT = "current assignee"


def _members(ask: _Ask, params: Mapping[str, Any], group: Any) -> list[tuple[Agent | None, str]]:
    """The team's listed members (or, with none listed, the group's active agents), each once."""
    listed = params.get("members") or ()
    if not listed:
        return [(a, label(a)) for a in sorted(ask.directory.members(group.id), key=lambda a: a.id)]
    out: list[tuple[Agent | None, str]] = []
    seen: set[int] = set()
    for member in listed:
        agent = ask.directory.agent(str(member))
        if agent is None or agent.id not in seen:
            out.append((agent, label(agent) if agent else str(member)))
            seen.add(agent.id if agent else -1)
    return out


def _judge(ask: _Ask, agent: Agent | None, text: str, group: Any, team: str | None,
           needed: Sequence[str]) -> Candidate:
    """Every reason this agent cannot take the ticket now; hard reasons stop the check early."""
    if agent is None:
        return Candidate(None, text, excluded=(f"not an agent in {ask.ticket.platform}",), hard=True)
    if not agent.active:
        return Candidate(agent, text, excluded=("inactive",), hard=True)
    if group is not None and group.id not in agent.group_ids and agent.id not in group.agent_ids:
        return Candidate(agent, text, excluded=(f"not in group {group.name}",), hard=True)
    roster = ask.roster
    settings, profile = roster.settings, roster.profile(agent.email, agent.name)
    counts = dict(ask.workload.get(agent.id, {}))
    ticket = ask.ticket
    if agent.id == ticket.assignee_id and ticket.status in settings.open_statuses and counts.get(ticket.priority):
        counts[ticket.priority] -= 1  # the ticket itself does not add to its holder's load
    reasons: list[str] = []
    if settings.respect_availability and agent.available is False:
        reasons.append("unavailable in the helpdesk")
    away = roster.schedule(roster.key(agent.email, agent.name) or agent.name, team).off_duty_reason(ask.now)
    if away:
        reasons.append(away)
    full = profile.capacity.full(counts, ticket.priority) if profile and profile.capacity else None
    if full:
        reasons.append(f"at capacity ({full})")
    lacking = sorted(set(needed) - {s.casefold() for s in (profile.skills if profile else ())})
    if lacking:
        reasons.append(f"lacks skill {', '.join(lacking)}")
    if agent.id == ticket.assignee_id:
        reasons.append(_CURRENT)
    return Candidate(agent, text, settings.priority_weights.load(counts), sum(counts.values()), tuple(reasons))


def _pick(strategy: str, eligible: list[Candidate], position: str | None) -> tuple[Candidate, str, str | None]:
    """The chosen candidate, why, and the new rotation position."""
    if strategy == "round_robin":
        ordered = sorted(eligible, key=lambda c: c.agent.id)  # type: ignore[union-attr]
        last = int(position) if position is not None and position.lstrip("-").isdigit() else None
        chosen = next((c for c in ordered if last is not None and c.agent.id > last), ordered[0])  # type: ignore
        why = f"next in rotation after agent #{last}" if last is not None else "first in rotation"
        return chosen, why, str(chosen.agent.id)  # type: ignore[union-attr]
    chosen = _least_loaded(eligible)
    return chosen, f"least loaded: {chosen.load:g}", position


def _least_loaded(candidates: Sequence[Candidate], prefer: int | None = None) -> Candidate:
    """Lowest weighted load, then fewest tickets, then `prefer` (the holder: no churn on a tie), then id."""
    def rank(c: Candidate) -> tuple[float, int, bool, int]:
        agent_id = c.agent.id if c.agent else 0
        return c.load, c.open, agent_id != prefer, agent_id

    return min(candidates, key=rank)


def _fall_back(ask: _Ask, fallback: str, head: str, candidates: tuple[Candidate, ...],
               base: dict[str, Any]) -> Decision:
    listing = _listing(candidates) if candidates else "The team has no members in the group."
    if fallback == "assign_anyway":
        pool = [c for c in candidates if not c.hard]
        if pool:
            chosen = _least_loaded(pool, prefer=ask.ticket.assignee_id)
            if chosen.agent is not None and chosen.agent.id == ask.ticket.assignee_id:
                return Decision("keep", f"{head}: nobody is eligible; assign_anyway keeps {chosen.label}, the "
                                        f"least loaded. {listing}", agent=chosen.agent, fallback=fallback, **base)
            return _guarded(ask, Decision("assign", f"{head}: nobody is eligible; assigned anyway to {chosen.label} "
                                                    f"(least loaded: {chosen.load:g}). {listing}",
                                          agent=chosen.agent, fallback=fallback, **base))
        return Decision("queue", f"{head}: nobody is eligible and nobody active is in the group to assign anyway; "
                                 f"queued in group {base['group']}. {listing}", fallback="queue", **base)
    if fallback == "notify":
        return Decision("notify", f"{head}: nobody is eligible; notifying team {base['team']}. {listing}",
                        fallback=fallback, **base)
    return Decision("queue", f"{head}: nobody is eligible; queued in group {base['group']}. {listing}",
                    fallback="queue", **base)


def _guarded(ask: _Ask, decision: Decision) -> Decision:
    """The decision, or a held one when the ping-pong guard stops this assignment (the rotation stays put)."""
    if not ask.guard.held or decision.agent is None:
        return decision
    return replace(decision, outcome="held", rotation_position=ask.position,
                   reason=f"would assign {label(decision.agent)}, but {ask.guard.reason}. [{decision.reason}]")


def _listing(candidates: Sequence[Candidate]) -> str:
    return "Considered: " + "; ".join(c.describe() for c in candidates) + "."


@dataclass
class AssignmentBatch:
    """Decisions for one batch: each sees the workload and rotation left by the ones before it.

    `stored(pool)` reads a team's persisted rotation position (`pool_key`);
    `changed` holds the positions to persist afterwards.
    """

    directory: Directory
    roster: Roster
    workload: Workload
    stored: Callable[[str], str | None] | None = None
    changed: dict[str, str | None] = field(default_factory=dict)
    _known: dict[str, str | None] = field(default_factory=dict, repr=False)

    def choose(self, params: Mapping[str, Any], ticket: Ticket, now: datetime,
               history: Iterable[Any] = ()) -> Decision:
        """`choose_assignee` with this batch's state, which it then updates."""
        team = params.get("team")
        pool = pool_key(ticket.platform, str(team)) if team else None
        position = None
        if pool is not None:
            if pool not in self._known:
                self._known[pool] = self.stored(pool) if self.stored else None
            position = self._known[pool]
        decision = choose_assignee(params, ticket, self.directory, self.workload, now, self.roster, position, history)
        if decision.outcome == "assign" and decision.agent is not None:
            if ticket.assignee_id is not None and ticket.status in self.roster.settings.open_statuses:
                self.workload = with_ticket(self.workload, ticket.assignee_id, ticket.priority, -1)
            self.workload = with_ticket(self.workload, decision.agent.id, ticket.priority)
        if pool is not None and decision.rotation_position != position:
            self._known[pool] = self.changed[pool] = decision.rotation_position
        return decision
