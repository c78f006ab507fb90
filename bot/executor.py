"""Performs a `Plan`: intent recorded before effect, effect exactly once, outcome recorded after.

`record()` stores the plan's memory, next checks, helpdesk intents and alerts
(into the outbox) in one transaction. `perform(platform)` then works through
every open helpdesk intent of that helpdesk, this cycle's and any left over:

1. the tickets: after a poll (`synced`), the mirror's copies, which this
   cycle's sync just brought up to date (safe updates refuse a write if a human
   changed the ticket since); one batched fresh read (`connector.get_tickets`)
   for the rest: claims being recovered after a crash, actions whose write met
   a conflict (unless the ticket came in this sync), tickets not in the mirror,
   and every ticket when no sync preceded (the local tick);
2. per intent: ticket gone -> skipped; a claim left by a crash whose effect is
   already visible -> done; too old -> expired; a human changed the field (or
   solved the ticket) since evaluation -> skipped; otherwise resolve the
   concrete write (round robin, least loaded) unless the ticket already shows it;
3. claim them all (with the chosen write) in one transaction;
4. one `connector.apply` with the writes merged per ticket (notes of several
   actions in one private note), then mark each done / failed / skipped; a
   write refused by a safe-update conflict returns its action to planned, so
   the next cycle decides it again on a fresh copy.

If the apply's outcome is unknown (timeout, 5xx after retries, a crash), the
claims stay `claimed` and step 2 of a later cycle settles them by reading the
ticket, so nothing is written twice and nothing is lost.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.assignment import AssignmentBatch, pool_key, workload_from
from bot.config import Config
from bot.connectors.base import ApplyResult, Connector, TicketChange
from bot.errors import AuthError, Conflict, ConnectorError, PermissionDenied, Unavailable
from bot.logging_setup import event, get_logger
from bot.model import EMPTY, Plan, PlannedAction, Target, Ticket
from bot.runtime.crash import crash_point
from bot.runtime.resolve import Picker, Resolution, Unresolvable, fold, merge, moot, note_reference, resolve, visible
from bot.shifts import roster_for
from bot.state import Intent, IntentState, Mode, RecordedPlan, StateStore

CONFLICT = "conflict: "  # how a released intent's error starts when a safe update refused its write
_TRANSIENT = re.compile(r"\b(429|5\d\d)\b|timed? ?out|will be retried|unavailable|connection", re.IGNORECASE)


@dataclass
class ExecutionReport:
    """What one `perform` did, for logs, metrics and the demo."""

    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    error: ConnectorError | None = None

    @property
    def settled(self) -> int:
        """How many intents got a final state."""
        return len(self.done) + len(self.failed) + len(self.skipped) + len(self.expired)


class Settled(Exception):
    """An intent that needs no write: already in place, held by a guard, or handed to humans."""

    def __init__(self, state: IntentState, detail: str):
        self.state, self.detail = state, detail
        super().__init__(detail)


_PING_PONG = timedelta(days=7)  # how far back to read deskbot's own assignments for the ping-pong guard
_ASSIGNED = re.compile(r"(^|: )assigned to ")  # an audit line of a done assignment that moved the ticket


class LeaseLost(Exception):
    """Another runner took the store's lease; this one must stop acting."""


class Executor:
    """Performs plans against the helpdesks through one state store."""

    def __init__(self, store: StateStore, connectors: Mapping[str, Connector], *,
                 expire_after: timedelta = timedelta(hours=2), max_attempts: int = 5,
                 guard: Callable[[], bool] | None = None, on_action: Callable[[Intent, str, str], None] | None = None,
                 logger: logging.Logger | None = None, config: Callable[[], Config] | None = None):
        self.config = config
        self.store = store
        self.connectors = connectors
        self.expire_after = expire_after
        self.max_attempts = max_attempts
        self.guard = guard or (lambda: True)
        self.on_action = on_action
        self.log = logger or get_logger("executor")

    # -- recording ----------------------------------------------------------
    def record(self, plan: Plan, *, now: datetime, mode: Mode, evaluated: Iterable[str] = (),
               seen: Mapping[str, Ticket] = EMPTY) -> RecordedPlan:
        """Store the plan's memory, next checks, intents and alerts atomically (dry run: audit only)."""
        recorded = self.store.record_plan(plan, now=now, mode=mode, evaluated=evaluated, seen=seen)
        crash_point("after_record")
        for action in plan.actions:
            if mode is Mode.DRY_RUN:
                event(self.log, "action", rule=action.rule, ticket=action.ticket_key, kind=action.kind,
                      result="dry_run", detail=_describe(action.kind, action.params))
            elif action.target is Target.NOTIFIER and action.key in recorded.enqueued:
                event(self.log, "action", rule=action.rule, ticket=action.ticket_key, kind=action.kind,
                      result="queued", channel=action.params.get("channel") or action.params.get("user"))
        return recorded

    def execute(self, plan: Plan, *, now: datetime, mode: Mode, evaluated: Iterable[str] = (),
                seen: Mapping[str, Ticket] = EMPTY) -> dict[str, ExecutionReport]:
        """Record a plan, then (live) perform the open intents of every helpdesk it touches."""
        self.record(plan, now=now, mode=mode, evaluated=evaluated, seen=seen)
        if mode is Mode.DRY_RUN:
            return {}
        platforms = sorted({a.platform for a in plan.actions if a.target is Target.HELPDESK})
        return {p: self.perform(p, now=now) for p in platforms}

    # -- performing -------------------------------------------------------------
    def perform(self, platform: str, *, now: datetime, synced: Collection[str] | None = None) -> ExecutionReport:
        """Settle every open helpdesk intent of one helpdesk; connector errors end up in the report.

        `synced`: given right after a complete sync of this helpdesk's changes, the keys of the tickets
        that sync brought; the mirror is then current and its copies are used instead of a fresh read.
        """
        report = ExecutionReport()
        intents = self.store.open_intents(platform, Target.HELPDESK.value)
        if not intents:
            return report
        connector = self.connectors[platform]
        try:
            fresh = self._tickets(intents, connector, synced)
            todo = self._triage(intents, fresh, connector, now, report)
            if todo:
                self._act(connector, todo, fresh, now, report)
        except ConnectorError as error:
            report.error = error
        return report

    def _tickets(self, intents: list[Intent], connector: Connector, synced: Collection[str] | None
                 ) -> dict[int, Ticket]:
        """The copy each intent is decided on: the just-synced mirror's, or one batched fresh read."""
        read: set[str] = set()
        if synced is None:
            read = {i.ticket_key for i in intents}
        else:
            for intent in intents:
                recovering = intent.state is IntentState.CLAIMED and intent.resolved is not None
                conflicted = (intent.error or "").startswith(CONFLICT) and intent.ticket_key not in synced
                if recovering or conflicted:
                    read.add(intent.ticket_key)
        mirrored = self.store.tickets({i.ticket_key for i in intents} - read)
        read |= {i.ticket_key for i in intents if i.ticket_key not in read and i.ticket_key not in mirrored}
        tickets = {t.id: t for t in mirrored.values()}
        if read:
            ids = sorted({i.ticket_id for i in intents if i.ticket_key in read})
            tickets.update((t.id, t) for t in connector.get_tickets(ids))
        return tickets

    def _triage(self, intents: list[Intent], fresh: dict[int, Ticket], connector: Connector, now: datetime,
                report: ExecutionReport) -> list[tuple[Intent, Resolution]]:
        """Decide per intent: settle it now from the fresh read, or write it (with its resolution)."""
        picker: Picker | None = None
        batch: AssignmentBatch | None = None
        todo: list[tuple[Intent, Resolution]] = []
        for intent in intents:
            ticket = fresh.get(intent.ticket_id)
            if ticket is None:
                self._finish(intent, IntentState.SKIPPED, now, "ticket no longer exists", report.skipped)
                continue
            recovering = intent.state is IntentState.CLAIMED and intent.resolved is not None
            if recovering and visible(intent.resolved or {}, ticket,
                                      note_seen=_note_seen(connector, intent, ticket)):
                self._finish(intent, IntentState.DONE, now, "recovered: the write had gone through", report.done)
                report.recovered.append(intent.key)
                continue
            if now - intent.planned_at > self.expire_after:
                self._finish(intent, IntentState.EXPIRED, now,
                             f"not performed within {_human(self.expire_after)} of planning; too late to act",
                             report.expired)
                continue
            if intent.attempts >= self.max_attempts:
                self._finish(intent, IntentState.FAILED, now,
                             f"gave up after {intent.attempts} attempts: {intent.error or 'unknown outcome'}",
                             report.failed)
                continue
            why = moot(intent, ticket)
            if why:
                self._finish(intent, IntentState.SKIPPED, now, why, report.skipped)
                continue
            if recovering:
                todo.append((intent, Resolution(dict(intent.resolved), _describe_change(intent.resolved))))
                continue
            try:
                if intent.kind == "assign" and self.config is not None:
                    if batch is None:
                        batch = self._assignment_batch(connector, intent.platform)
                    resolution = self._assignment(batch, intent, ticket, now)
                else:
                    if picker is None:
                        picker = self._picker(connector, intent.platform)
                    resolution = resolve(intent, ticket, picker)
            except Unresolvable as error:
                self._finish(intent, IntentState.FAILED, now, str(error), report.failed)
                continue
            except Settled as settled:
                self._finish(intent, settled.state, now, settled.detail,
                             report.done if settled.state is IntentState.DONE else report.skipped)
                continue
            if visible(resolution.change, ticket, note_seen=False):  # a new note is never already there
                self._finish(intent, IntentState.DONE, now, f"already in place: {resolution.summary}",
                             report.done)
                continue
            todo.append((intent, resolution))
        return todo

    def _assignment_batch(self, connector: Connector, platform: str) -> AssignmentBatch:
        """Assignment decisions for this perform: the rules' roster, the mirror's workload, stored rotations."""
        roster = roster_for(self.config().spec)  # type: ignore[misc]
        workload = workload_from(self.store.mirror(platform).values(), platform=platform,
                                 statuses=roster.settings.open_statuses)
        return AssignmentBatch(connector.directory(), roster, workload, stored=self.store.rotation)

    def _assignment(self, batch: AssignmentBatch, intent: Intent, ticket: Ticket, now: datetime) -> Resolution:
        """The write an `assign` decision makes; settles the intent itself when nothing is to be written."""
        history = [entry.at for entry in self.store.audit_log(ticket_key=intent.ticket_key, since=now - _PING_PONG)
                   if entry.kind == "assign" and entry.result == "done" and _ASSIGNED.search(entry.detail)]
        decision = batch.choose(intent.params, ticket, now, history)
        pool = pool_key(ticket.platform, str(intent.params["team"])) if intent.params.get("team") else None
        group = batch.directory.group(decision.group) if decision.group else None
        if decision.outcome == "assign" and decision.agent is not None:
            change: dict[str, object] = {"assignee_id": decision.agent.id}
            if group is not None:
                change["group_id"] = group.id
            rotation = (pool, decision.rotation_position) if pool and decision.rotation_position else None
            return Resolution(change, decision.reason, rotation)  # type: ignore[arg-type]
        if decision.outcome == "queue" and group is not None:
            return Resolution({"group_id": group.id}, decision.reason)
        if decision.outcome == "notify":
            self._notify_team(intent, ticket, decision.team, decision.reason, now)
            raise Settled(IntentState.SKIPPED, f"nobody eligible; the team was told: {decision.reason}")
        if decision.outcome in ("keep", "held"):
            state = IntentState.DONE if decision.outcome == "keep" else IntentState.SKIPPED
            raise Settled(state, decision.reason)
        raise Unresolvable(decision.reason)

    def _notify_team(self, intent: Intent, ticket: Ticket, team_name: str | None, reason: str, now: datetime) -> None:
        """`fallback: notify`: one alert to the team's channel saying why nobody could take the ticket."""
        team = self.config().spec.teams.get(team_name or "") if self.config else None  # type: ignore[misc]
        if team is None or not team.slack_channel:
            return
        from bot.notifiers.base import Alert  # the executor only needs alerts for this fallback

        action = PlannedAction(
            key=f"{intent.key}/nobody_eligible", ticket_key=ticket.key, platform=ticket.platform,
            ticket_id=ticket.id, rule=intent.rule, kind="notify", target=Target.NOTIFIER,
            params={"channel": team.slack_channel, "severity": "warning", "team": team_name,
                    "timezone": team.timezone, "rule": intent.rule, "reason": reason,
                    "message": f"Nobody in {team_name} can take ticket #{ticket.id} now: {reason}",
                    "ticket": {"subject": ticket.subject, "url": ticket.url, "status": ticket.status.value,
                               "priority": ticket.priority.value, "group": ticket.group,
                               "assignee": ticket.assignee, "requester": ticket.requester,
                               "tags": sorted(ticket.tags)}},
            reason=reason)
        self.store.enqueue([Alert.from_action(action)])

    def _picker(self, connector: Connector, platform: str) -> Picker:
        load = Counter(t.assignee_id for t in self.store.mirror(platform).values()
                       if t.assignee_id is not None and not t.status.is_resolved)
        return Picker(platform, connector.directory(), _RotationView(self.store), dict(load))

    def _act(self, connector: Connector, todo: list[tuple[Intent, Resolution]], fresh: dict[int, Ticket],
             now: datetime, report: ExecutionReport) -> None:
        """Claim, write in one batch, record outcomes."""
        if not self.guard():
            raise LeaseLost("another deskbot runner holds the state store's lease")
        with self.store.transaction():
            for intent, resolution in todo:
                self.store.claim(intent.key, now=now, resolved=resolution.change, rotation=resolution.rotation)
        crash_point("after_claim")
        by_ticket: dict[int, list[tuple[str, dict]]] = {}
        summaries = {intent.key: resolution.summary for intent, resolution in todo}
        intents = {intent.key: intent for intent, _ in todo}
        for intent, resolution in todo:
            by_ticket.setdefault(intent.ticket_id, []).append((intent.key, resolution.change))
        rounds: list[list[tuple]] = []
        for ticket_id, parts in by_ticket.items():
            for index, (change, keys) in enumerate(fold(merge(parts, ticket_id))):
                while len(rounds) <= index:
                    rounds.append([])
                ticket = fresh.get(ticket_id)
                rounds[index].append((_safe(change, ticket), keys))
        for batch in rounds:
            try:
                results = connector.apply([change for change, _ in batch])
            except (AuthError, PermissionDenied) as error:
                for _, keys in batch:  # refused before any write: nothing changed
                    for key in keys:
                        self.store.release(key, now=now, error=str(error))
                raise
            except Conflict as error:
                for _, keys in batch:
                    for key in keys:
                        self.store.release(key, now=now, error=f"{CONFLICT}{error}")
                raise
            except Unavailable:
                for _, keys in batch:  # outcome unknown: stays claimed, settled by a later read
                    report.unknown.extend(keys)
                raise
            except ConnectorError as error:
                for _, keys in batch:
                    for key in keys:
                        self._finish(intents[key], IntentState.FAILED, now, str(error), report.failed)
                continue
            crash_point("after_apply")
            by_key = {(r.ticket_id, r.key): r for r in results}
            for change, keys in batch:
                result = by_key.get((change.ticket_id, change.key))
                for key in keys:
                    self._settle(intents[key], result, summaries[key], now, report)
            crash_point("after_finish")

    def _settle(self, intent: Intent, result: ApplyResult | None, summary: str, now: datetime,
                report: ExecutionReport) -> None:
        if result is None:
            report.unknown.append(intent.key)  # no answer for it: settled by a later read
        elif result.ok:
            self._finish(intent, IntentState.DONE, now, summary, report.done)
        elif result.conflict:
            # nothing was written; back to planned, decided again next cycle on a re-read copy (moot, visible)
            self.store.release(intent.key, now=now, error=f"{CONFLICT}{result.error}")
            report.conflicts.append(intent.key)
            event(self.log, "action", rule=intent.rule, ticket=intent.ticket_key, kind=intent.kind,
                  result="conflict", detail=result.error)
        elif result.skipped:
            self._finish(intent, IntentState.SKIPPED, now, result.error or "skipped by the helpdesk",
                         report.skipped)
        elif _TRANSIENT.search(result.error or ""):
            # 5xx, 429, timeout on this one change: it may or may not have happened; a later cycle reads the
            # ticket and settles it (done if visible, else written again), up to max_attempts
            report.unknown.append(intent.key)
            event(self.log, "action", level=logging.WARNING, rule=intent.rule, ticket=intent.ticket_key,
                  kind=intent.kind, result="retrying", detail=result.error)
        else:
            self._finish(intent, IntentState.FAILED, now, result.error or "refused by the helpdesk",
                         report.failed)

    def _finish(self, intent: Intent, state: IntentState, now: datetime, detail: str, bucket: list[str]) -> None:
        self.store.finish(intent.key, state, now=now, detail=detail)
        bucket.append(intent.key)
        event(self.log, "action", level=logging.WARNING if state is IntentState.FAILED else logging.INFO,
              rule=intent.rule, ticket=intent.ticket_key, kind=intent.kind, result=state.value, detail=detail)
        if self.on_action:
            self.on_action(intent, state.value, detail)


class _RotationView(dict):
    """Last round-robin member per pool, read from the store on first use."""

    def __init__(self, store: StateStore):
        super().__init__()
        self._store = store

    def get(self, pool: str, default: str | None = None) -> str | None:  # type: ignore[override]
        if pool not in self:
            self[pool] = self._store.rotation(pool)
        return super().get(pool, default)


def _note_seen(connector: Connector, intent: Intent, ticket: Ticket) -> bool | None:
    """Whether the helpdesk shows the note this action wrote (by its reference); None if it cannot tell."""
    if not (intent.resolved or {}).get("note"):
        return None
    check = getattr(connector, "has_note", None)
    if check is not None:
        return bool(check(ticket.id, intent.key))
    get_json, api_url = getattr(connector, "get_json", None), getattr(connector, "api_url", None)
    if get_json is None or api_url is None:  # e.g. Freshdesk: a recovered note may be written twice
        return None
    marker = note_reference(intent.key)
    data = get_json(api_url(f"tickets/{ticket.id}/comments"))  # Zendesk: notes are private comments
    return any(marker in str(c.get("body", "")) or intent.key in str(c.get("metadata", ""))
               for c in data.get("comments", []))


def _safe(change: TicketChange, ticket: Ticket | None) -> TicketChange:
    """Ask for a safe update against the copy the decision was made on, where the connector supports it."""
    if ticket is None or ticket.updated_at is None:
        return change
    return replace(change, expected_updated_at=ticket.updated_at)


def _human(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _describe(kind: str, params: Mapping) -> str:
    """Short text of a planned action for logs."""
    if kind == "notify":
        return f"notify {params.get('channel') or params.get('user')}"
    if kind == "assign":
        return f"assign {params.get('agent') or params.get('team')}"
    for name in ("group", "priority", "status", "tags"):
        if name in params:
            return f"{kind} {params[name]}"
    return kind


def _describe_change(change: Mapping) -> str:
    return ", ".join(f"{k}={v}" for k, v in change.items() if k != "note") or "note"
