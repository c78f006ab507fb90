"""A running bot's state in memory, driven the way the runner drives it: cold start, then poll cycles.

`State` keeps what the runner keeps in its store (the mirror of open tickets,
the engine's memory per ticket, each ticket's next check in a due index) and
does what a cycle does: take the changed tickets and the tickets whose next
check has come, evaluate only those with `plan()`, record the plan. Keeping it
in memory isolates the engine's cost from SQLite's; `runner.py` measures the
real runner on the real store.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.config import Config
from bot.model import Firing, Plan, Priority, Status, Ticket
from bot.rules.engine import plan


@dataclass
class CycleTiming:
    """One cycle: how many tickets changed or fell due, and where the time went (seconds)."""

    changed: int
    due: int
    evaluated: int
    fired: int
    select_s: float
    plan_s: float
    record_s: float

    @property
    def total_s(self) -> float:
        """Everything the cycle did in memory: pick the tickets, plan, record."""
        return self.select_s + self.plan_s + self.record_s


CHUNK = 500  # the runner plans due tickets 500 at a time (bot.runtime.cycle.CHUNK)


class State:
    """Mirror, memory and due index, as the runner's store holds them."""

    def __init__(self, tickets: Iterable[Ticket]):
        self.tickets: dict[str, Ticket] = {t.key: t for t in tickets}
        self.memory: dict[str, dict[str, Firing]] = {}
        self.next_at: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []

    def memory_of(self, keys: Iterable[str]) -> dict[tuple[str, str], Firing]:
        """The engine's memory for these tickets (what `store.memory(keys)` returns)."""
        out: dict[tuple[str, str], Firing] = {}
        for key in keys:
            for rule, firing in self.memory.get(key, {}).items():
                out[(rule, key)] = firing
        return out

    def record(self, result: Plan, evaluated: Iterable[str]) -> None:
        """Store a plan's memory and next checks (what `store.record_plan` does, minus the intents)."""
        for (rule, key), firing in result.memory.items():
            self.memory.setdefault(key, {})[rule] = firing
        for key in evaluated:
            at = result.next_check_at.get(key)
            if at is None:
                self.next_at.pop(key, None)
            else:
                self.next_at[key] = at
                heapq.heappush(self._heap, (at, key))
        if len(self._heap) > 2 * len(self.next_at) + 1024:  # as the store's due index: no stale entries kept
            self._heap = [(at, key) for key, at in self.next_at.items()]
            heapq.heapify(self._heap)

    def due(self, now: datetime) -> list[str]:
        """Keys whose next check has come (stale heap entries are skipped, as a re-indexed row would be)."""
        out = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, key = heapq.heappop(heap)
            if self.next_at.get(key) == at:
                del self.next_at[key]
                out.append(key)
        return out

    def evaluate(self, keys: Sequence[str], now: datetime, config: Config) -> tuple[int, float, float]:
        """Plan these tickets in the runner's chunks and record each plan; returns the rule matches and
        the seconds spent planning and recording."""
        matched, plan_s, record_s = 0, 0.0, 0.0
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start:start + CHUNK]
            tickets = [self.tickets[k] for k in chunk]
            memory = self.memory_of(chunk)
            started = time.perf_counter()
            result = plan(tickets, now, config, memory)
            planned = time.perf_counter()
            self.record(result, chunk)
            record_s += time.perf_counter() - planned
            plan_s += planned - started
            matched += len(result.matches)
        return matched, plan_s, record_s




def cold_start(state: State, now: datetime, config: Config) -> tuple[int, float]:
    """Evaluate every ticket (start or rules reload) in the runner's chunks; returns actions fired, seconds."""
    fired, spent, _ = state.evaluate(list(state.tickets), now, config)
    return fired, spent


def converge(state: State, now: datetime, config: Config, passes: int = 6) -> int:
    """Re-evaluate the tickets a `stop` rule left due at once until nothing more fires; returns passes run."""
    for done in range(1, passes + 1):
        due = state.due(now + timedelta(microseconds=1))
        if not due:
            return done
        fired, _, _ = state.evaluate(due, now + timedelta(microseconds=1), config)
        now += timedelta(microseconds=1)
        if not fired:
            return done
    return passes


class Activity:
    """Deterministic helpdesk activity: each cycle, n tickets change the way agents and customers change them."""

    def __init__(self, seed: int = 11):
        self.rng = random.Random(seed)

    def change(self, ticket: Ticket, now: datetime) -> Ticket:
        """One realistic change: a reply either way, a triage edit, a pickup or a new tag."""
        kind = self.rng.choice(("customer", "customer", "agent", "agent", "priority", "assign", "tag"))
        if kind == "customer":
            status = Status.OPEN if ticket.status in (Status.PENDING, Status.NEW) and ticket.assignee else ticket.status
            return replace(ticket, last_customer_update_at=now, updated_at=now, status=status,
                           status_changed_at=now if status != ticket.status else ticket.status_changed_at)
        if kind == "agent":
            return replace(ticket, last_agent_update_at=now, first_responded_at=ticket.first_responded_at or now,
                           updated_at=now, status=Status.PENDING, status_changed_at=now)
        if kind == "priority":
            return replace(ticket, priority=self.rng.choice(list(Priority)), updated_at=now)
        if kind == "assign":
            return replace(ticket, assignee=ticket.assignee or "Ana Almeida", assignee_id=ticket.assignee_id or 201,
                           assigned_at=ticket.assigned_at or now, status=Status.OPEN, updated_at=now)
        return replace(ticket, tags=ticket.tags | {self.rng.choice(("followup", "vip", "billing", "bug"))},
                       updated_at=now)

    def cycle(self, state: State, now: datetime, n: int) -> list[str]:
        """Change n tickets in the mirror (as a poll would bring them in); returns their keys."""
        keys = self.rng.sample(sorted(state.tickets), n) if n < len(state.tickets) else list(state.tickets)
        for key in keys:
            state.tickets[key] = self.change(state.tickets[key], now)
        return keys


def steady_cycle(state: State, activity: Activity, now: datetime, config: Config, changed: int) -> CycleTiming:
    """One poll cycle: n tickets changed, plus every ticket whose next check has come."""
    changed_keys = activity.cycle(state, now, changed)  # the poll's pages, absorbed into the mirror (untimed)
    started = time.perf_counter()
    due = state.due(now)
    keys = list(dict.fromkeys([*changed_keys, *due]))
    selected = time.perf_counter()
    fired, plan_s, record_s = state.evaluate(keys, now, config)
    return CycleTiming(len(changed_keys), len(due), len(keys), fired, selected - started, plan_s, record_s)
