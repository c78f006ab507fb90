"""One helpdesk's cycle: read changes -> mirror -> evaluate changed and due tickets -> record -> act.

Changed tickets enter the mirror marked due *now*, in the same write, before
the feed's cursor moves on; evaluation then takes every due ticket from the
mirror. So a crash anywhere leaves either an unread page (read again) or a due
ticket (evaluated next time), never a change that is neither. The local tick
(`evaluate`) runs the same evaluation with zero API calls unless something
fires. A time-triggered alert waits until the feed covers the instant it
became true (`Cycle._hold`), so a change the helpdesk has not served yet
cannot raise a false one. Solved, closed and deleted tickets leave the mirror after their last
evaluation, and their Slack threads are marked resolved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.config import Config
from bot.connectors.base import ChangePage, Connector, sync
from bot.errors import ConnectorError
from bot.executor import ExecutionReport, Executor
from bot.logging_setup import event, get_logger
from bot.model import Plan, Ticket
from bot.reports.history import record_snapshot
from bot.reports.source import requester_universe
from bot.rules.requester_fields import PREFIX as REQUESTER_PREFIX
from bot.rules.requester_fields import attach_facts, requester_facts
from bot.runtime.blast import Guard
from bot.runtime.crash import crash_point
from bot.runtime.metrics import Metrics
from bot.state import Mode, StateStore, iter_chunks

Planner = Callable[..., Plan]
CHUNK = 500
_SOON = timedelta(microseconds=1)  # due at the next cycle


def uses_requester_facts(config: Config) -> bool:
    """Whether any active rule reads a `requester.*` field (the facts cost a pass over the mirror)."""
    cached = _USES.get(id(config))
    if cached is None or cached[0] is not config:
        used = any(leaf.field.name.startswith(REQUESTER_PREFIX)
                   for rule in config.active_rules for leaf in rule.condition.root.leaves())
        _USES.clear()
        _USES[id(config)] = cached = (config, used)
    return cached[1]


_USES: dict[int, tuple[Config, bool]] = {}


@dataclass
class CycleReport:
    """What one poll or tick of one helpdesk did."""

    platform: str
    fetched: int = 0
    evaluated: int = 0
    planned: int = 0
    execution: ExecutionReport = field(default_factory=ExecutionReport)
    error: Exception | None = None
    api_calls: int = 0
    skipped: bool = False


class Outage:
    """Reports a helpdesk's errors once (and again only when they change), its recovery once, and backs off."""

    def __init__(self, platform: str, interval: timedelta, *, cap: timedelta = timedelta(minutes=5),
                 notify: Callable[[str, str], None] | None = None, logger: logging.Logger | None = None):
        self.platform = platform
        self.interval = interval
        self.cap = cap
        self.notify = notify
        self.log = logger or get_logger("runner")
        self.failures = 0
        self.since: datetime | None = None
        self.signature: str | None = None
        self.retry_at: datetime | None = None

    def ready(self, now: datetime) -> bool:
        """False while backing off after failures (no busy loop against a failing helpdesk)."""
        return self.retry_at is None or now >= self.retry_at

    def failed(self, error: Exception, now: datetime) -> None:
        """Count a failure; log and notify only when the problem is new."""
        self.failures += 1
        self.since = self.since or now
        backoff = min(self.interval * 2 ** (self.failures - 1), self.cap)
        self.retry_at = now + backoff
        signature = f"{type(error).__name__}: {error}"
        if signature == self.signature:
            event(self.log, "helpdesk still failing", level=logging.DEBUG, helpdesk=self.platform,
                  failures=self.failures)
            return
        self.signature = signature
        event(self.log, "helpdesk error", level=logging.ERROR, helpdesk=self.platform, error=signature,
              next_try_in=f"{backoff.total_seconds():.0f}s")
        if self.notify:
            self.notify(f"{self.platform}: {signature}", f"{self.platform}/error/{signature}")

    def succeeded(self, now: datetime) -> None:
        """Clear the failure state; report the recovery once."""
        if self.failures:
            down = (now - self.since).total_seconds() if self.since else 0.0
            event(self.log, "helpdesk recovered", helpdesk=self.platform, failures=self.failures,
                  down_for=f"{down:.0f}s")
            if self.notify:
                self.notify(f"{self.platform}: recovered after {self.failures} failed cycles ({down:.0f}s)",
                            f"{self.platform}/recovered/{now.isoformat()}")
        self.failures, self.since, self.signature, self.retry_at = 0, None, None, None


class Cycle:
    """Polls, evaluates and acts for one helpdesk."""

    def __init__(self, platform: str, connector: Connector, store: StateStore, executor: Executor, *,
                 rules: Callable[[], Config], planner: Planner, guard: Guard, mode: Callable[[Config], Mode],
                 notifier: object | None = None, metrics: Metrics | None = None,
                 logger: logging.Logger | None = None):
        self.platform = platform
        self.connector = connector
        self.store = store
        self.executor = executor
        self.rules = rules
        self.planner = planner
        self.guard = guard
        self.mode = mode
        self.notifier = notifier
        self.metrics = metrics or Metrics()
        self.log = logger or get_logger("runner")
        self.last_success_at: datetime | None = None
        self._fresh: set[str] = set()  # tickets read in the current poll: current, nothing hidden
        self._known_until: datetime | None = None  # the mirror holds every change made before this instant

    def poll(self, now: datetime) -> CycleReport:
        """Read every change since the cursor, then evaluate and act; connector errors land in the report."""
        report = CycleReport(self.platform)
        before = self.connector.calls.total
        try:
            for page in sync(self.connector, self.store):
                crash_point("after_fetch")
                report.fetched += self._absorb(page, now)
                crash_point("after_mirror")
            self.last_success_at = now
            self._known_until = now - self.connector.feed_lag  # `now` is when this sync started
            self._evaluate(now, report, act=True)
        except ConnectorError as error:
            report.error = error
        finally:
            self._fresh.clear()
            report.api_calls = self.connector.calls.total - before
            self._count(report)
        return report

    def evaluate(self, now: datetime) -> CycleReport:
        """The local tick: evaluate due mirror tickets; API calls only to perform what fires."""
        report = CycleReport(self.platform)
        before = self.connector.calls.total
        try:
            self._evaluate(now, report, act=None)
        except ConnectorError as error:
            report.error = error
        finally:
            report.api_calls = self.connector.calls.total - before
            self._count(report)
        return report

    def _absorb(self, page: ChangePage, now: datetime) -> int:
        """Put a page's tickets in the mirror, due now; drop deleted ones."""
        latest: dict[int, Ticket] = {}
        for ticket in page.tickets:  # a page may repeat a ticket; keep its newest version
            old = latest.get(ticket.id)
            if old is None or (ticket.updated_at or now) >= (old.updated_at or now):
                latest[ticket.id] = ticket
        self._fresh.update(f"{self.platform}:{i}" for i in latest)
        gone = [f"{self.platform}:{i}" for i in page.deleted_ids]
        with self.store.transaction():
            self.store.upsert_tickets(latest.values(), due_at=now)
            if gone:
                self.store.remove_tickets(gone)
        record_snapshot(self.store, latest.values(), now)  # history for reports, solved tickets included
        for key in gone:
            self._resolve_threads(key, "deleted", now)
        return len(latest)

    def _evaluate(self, now: datetime, report: CycleReport, *, act: bool | None) -> None:
        config = self.rules()
        mode = self.mode(config)
        self.guard.refresh(config, now)  # a new or confirmed rule version makes the whole queue due
        due = self.store.due(now, self.platform)
        facts = None
        if due and uses_requester_facts(config):  # mirror-wide facts, computed once per pass, only if a rule reads them
            facts = requester_facts(requester_universe(self.store, now), now)
        for chunk in iter_chunks(due, CHUNK):
            tickets = self.store.tickets(chunk)
            memory = self.store.memory(chunk, mode)
            batch = list(tickets.values()) if facts is None else attach_facts(tickets.values(), facts)
            plan = self.planner(batch, now, config, memory)
            plan = self._hold(plan, batch, now, config)
            plan = self.guard.filter(plan)
            crash_point("after_plan")
            self.executor.record(plan, now=now, mode=mode, evaluated=chunk, seen=tickets)
            report.evaluated += len(tickets)
            report.planned += len(plan.actions)
            resolved = [key for key, t in tickets.items() if t.status.is_resolved]
            if resolved:
                self.store.remove_tickets(resolved)
                for key in resolved:
                    self._resolve_threads(key, tickets[key].status.value, now)
        if mode is Mode.LIVE and (act or self.store.open_intents(self.platform, "helpdesk")):
            # after a poll the mirror is as current as the sync that just ended: the executor writes from it
            report.execution = self.executor.perform(self.platform, now=now, synced=self._fresh if act else None)
            if report.execution.error is not None:
                raise report.execution.error

    def _hold(self, plan: Plan, batch: Sequence[Ticket], now: datetime, config: Config) -> Plan:
        """Withhold time-triggered alerts the change feed cannot vouch for yet, with no API call.

        The mirror holds every change made before `known_until`: the start of the
        last complete sync minus the connector's `feed_lag` (Zendesk hides the
        last minute from its export), so a reply sent seconds before a deadline
        may be missing from it. Tickets this poll brought are current and pass.
        On the others, a match of a time-based rule that notifies stands only if
        the rule's condition already held at `known_until` on the mirror copy:
        the ticket's history up to then is complete, so the alert is true. Else
        the match is withheld (all its actions, and its memory, so the rising
        edge is seen again) and the ticket is due when a poll can first cover
        the instant the rule starts to hold; that poll sends the alert, once.
        The ticket's other matches stand. A withheld rule with `stop` needs no
        more: the engine stopped at it, so no later rule acted in this pass, and
        they run once the stop rule is decided.
        """
        known_until = self._known_until
        withheld: dict[str, set[str]] = {}
        release: dict[str, datetime] = {}
        by_key: dict[str, Ticket] | None = None  # built only when a match needs a look
        for match in plan.matches:
            if match.ticket_key in self._fresh or not any(a.kind == "notify" for a in match.actions):
                continue
            rule = config.rule(match.rule)
            if rule is None or not rule.time_based:
                continue
            if by_key is None:
                by_key = {t.key: t for t in batch}  # with requester facts attached, as the planner saw them
            ticket = by_key[match.ticket_key]
            if known_until is not None and rule.condition.test(ticket, known_until):
                continue
            withheld.setdefault(match.ticket_key, set()).add(match.rule)
            if known_until is None:  # no complete sync since the start: the next poll decides
                at = now + _SOON
            else:  # the first poll whose feed can reach the instant the rule turned true (no later than now)
                turn = rule.condition.next_change(ticket, known_until) or known_until
                at = min(turn, now) + self.connector.feed_lag
            release[match.ticket_key] = min(at, release.get(match.ticket_key, at))
        if not withheld:
            return plan
        event(self.log, "alert held until the feed covers it", helpdesk=self.platform,
              tickets=",".join(sorted(withheld)), known_until=known_until.isoformat() if known_until else "never")
        next_check = dict(plan.next_check_at)
        for key, at in release.items():
            next_check[key] = min(next_check.get(key, at), at)
        return Plan(
            tuple(m for m in plan.matches if m.rule not in withheld.get(m.ticket_key, ())),
            {slot: f for slot, f in plan.memory.items() if slot[0] not in withheld.get(slot[1], ())},
            next_check,
            plan.held,
        )

    def _resolve_threads(self, ticket_key: str, how: str, now: datetime) -> None:
        resolve = getattr(self.notifier, "resolve", None)
        if resolve is not None:
            try:
                resolve(ticket_key, how, now)
            except Exception as error:  # Slack bookkeeping never blocks ticket processing
                event(self.log, "thread resolve failed", level=logging.WARNING, ticket=ticket_key, error=str(error))

    def _count(self, report: CycleReport) -> None:
        m, p = self.metrics, self.platform
        m.inc("deskbot_api_calls_total", report.api_calls, helpdesk=p)
        for result in ("done", "failed", "skipped", "expired"):
            n = len(getattr(report.execution, result))
            if n:
                m.inc("deskbot_actions_total", n, helpdesk=p, result=result)
