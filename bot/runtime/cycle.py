"""One helpdesk's cycle: read changes -> mirror -> evaluate changed and due tickets -> record -> act.

Changed tickets enter the mirror marked due *now*, in the same write, before
the feed's cursor moves on; evaluation then takes every due ticket from the
mirror. So a crash anywhere leaves either an unread page (read again) or a due
ticket (evaluated next time), never a change that is neither. The local tick
(`evaluate`) runs the same evaluation with zero API calls unless something
fires. Solved, closed and deleted tickets leave the mirror after their last
evaluation, and their Slack threads are marked resolved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.config import Config
from bot.connectors.base import ChangePage, Connector, sync
from bot.errors import ConnectorError
from bot.executor import ExecutionReport, Executor
from bot.logging_setup import event, get_logger
from bot.model import Firing, Plan, Ticket
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
        self._fresh: set[str] = set()  # tickets read in the current poll: no need to re-read them

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
            plan, tickets = self._confirm(plan, tickets, now, config, memory, facts)
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

    def _confirm(self, plan: Plan, tickets: dict[str, Ticket], now: datetime, config: Config,
                 memory: Mapping[tuple[str, str], Firing], facts: Any) -> tuple[Plan, dict[str, Ticket]]:
        """Re-read tickets whose alert time alone triggered, and plan them again on the fresh copy.

        The mirror can be a minute behind (Zendesk hides the last minute from its
        export): a reply sent seconds before a deadline must not cause a breach
        alert. Tickets read in this very poll are fresh already; the others are
        read in one batch. A re-read that fails raises, leaving them due.
        """
        stale = sorted({a.ticket_key for a in plan.actions if a.kind == "notify" and a.ticket_key not in self._fresh
                        and (rule := config.rule(a.rule)) is not None and rule.time_based})
        if not stale:
            return plan, tickets
        found = {t.key: t for t in self.connector.get_tickets([tickets[key].id for key in stale])}
        crash_point("after_confirm_read")
        with self.store.transaction():
            self.store.upsert_tickets(found.values(), due_at=now)
            gone = [key for key in stale if key not in found]
            if gone:
                self.store.remove_tickets(gone)
        fresh = list(found.values()) if facts is None else attach_facts(found.values(), facts)
        again = self.planner(fresh, now, config, memory)
        redo = set(stale)
        kept = tuple(m for m in plan.matches if m.ticket_key not in redo)
        if len(again.matches) < sum(1 for m in plan.matches if m.ticket_key in redo):
            event(self.log, "alert withdrawn after re-read", helpdesk=self.platform,
                  tickets=",".join(sorted(redo)))
        merged = Plan(
            kept + again.matches,
            {**{k: v for k, v in plan.memory.items() if k[1] not in redo}, **again.memory},
            {**{k: v for k, v in plan.next_check_at.items() if k not in redo}, **again.next_check_at},
            plan.held,
        )
        updated = {key: found.get(key, ticket) for key, ticket in tickets.items() if key not in gone}
        return merged, updated

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
