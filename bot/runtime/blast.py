"""The blast-radius guard: a new or changed rule that would hit too much of the queue waits for a human.

A rule version is known by a fingerprint of its definition. When the runner
meets a version it has not run before, it counts the mirrored open tickets the
rule's condition matches; above `settings.blast_radius` of the queue (and at
least `minimum` tickets) the rule is held: its firings are dropped from plans
(and not remembered, so they happen once it is confirmed) until an operator
confirms that exact version with `deskbot confirm RULE` or
`deskbot run --confirm RULE`, which records it in the state store.
`deskbot check --against-mirror` shows the same assessment (`assess`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from bot.config import Config
from bot.logging_setup import event, get_logger
from bot.model import Plan, Ticket
from bot.state import StateStore

KNOWN_META = "rules_known"  # meta key: JSON {rule name: fingerprint} of versions that ran


@dataclass(frozen=True)
class Impact:
    """How much of the queue one rule version would match right now."""

    rule: str
    fingerprint: str
    matches: int
    total: int
    new: bool
    held: bool

    @property
    def share(self) -> float:
        """Matched fraction of the open tickets."""
        return self.matches / self.total if self.total else 0.0

    def describe(self) -> str:
        """One line for logs, `status` and `check --against-mirror`."""
        state = "HELD until confirmed" if self.held else ("new, within the limit" if self.new else "running")
        return (f"{self.rule}: matches {self.matches} of {self.total} open tickets ({self.share:.0%}); {state}"
                + (f" (confirm with: deskbot confirm {self.rule!r})" if self.held else ""))


def fingerprints(config: Config) -> dict[str, str]:
    """A stable hash of each rule's definition as written, by rule name.

    A ladder's steps (compiled rules of their own) share their rule's print, so
    confirming the rule confirms every step.
    """
    by_index = {}
    out = {}
    for index, spec in enumerate(config.spec.rules):
        text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, default=str)
        out[spec.name] = by_index[index] = hashlib.sha256(text.encode()).hexdigest()[:16]
    for rule in config.rules:
        out.setdefault(rule.name, by_index.get(rule.index, ""))
    return out


def _written_name(config: Config, rule_name: str) -> str:
    """The name the rule has in the file (a ladder step's rule), for confirmations."""
    rule = config.rule(rule_name)
    if rule is None or rule.index >= len(config.spec.rules):
        return rule_name
    return config.spec.rules[rule.index].name


def assess(config: Config, tickets: Iterable[Ticket], now: datetime, *, known: Mapping[str, str],
           confirmed: Mapping[str, str], share: float | None = None, minimum: int = 5) -> list[Impact]:
    """The impact of every active rule; new, unconfirmed versions over the limit are marked held."""
    limit = config.spec.settings.blast_radius if share is None else share
    prints = fingerprints(config)
    queue = [t for t in tickets if not t.status.is_resolved]
    out = []
    for rule in config.active_rules:
        fingerprint = prints.get(rule.name, "")
        new = known.get(rule.name) != fingerprint
        matches = sum(1 for t in queue if rule.condition.test(t, now)) if new else 0
        was_confirmed = fingerprint in (confirmed.get(rule.name), confirmed.get(_written_name(config, rule.name)))
        held = new and not was_confirmed and matches >= minimum and matches > limit * len(queue)
        out.append(Impact(rule.name, fingerprint, matches, len(queue), new, held))
    return out


def hold(plan: Plan, held: Iterable[str]) -> Plan:
    """The plan without the firings and memory of held rules (so they fire once confirmed)."""
    held = set(held)
    if not held:
        return plan
    return replace(plan, matches=tuple(m for m in plan.matches if m.rule not in held),
                   memory={k: v for k, v in plan.memory.items() if k[0] not in held},
                   held=tuple(sorted(held | set(plan.held))))


class Guard:
    """Keeps the set of held rules current as rules, the mirror and confirmations change."""

    def __init__(self, store: StateStore, *, confirm: Iterable[str] = (), minimum: int = 5,
                 notify: Callable[[str, str], None] | None = None, logger: logging.Logger | None = None):
        self.store = store
        self.confirm = set(confirm)
        self.minimum = minimum
        self.notify = notify
        self.log = logger or get_logger("rules")
        self.held: dict[str, Impact] = {}
        self._state: tuple | None = None

    def refresh(self, config: Config, now: datetime) -> bool:
        """Re-assess when the rules or confirmations changed; True when the whole queue was made due."""
        prints = fingerprints(config)
        for name in sorted(self.confirm & prints.keys()):
            if self.store.confirmations().get(name) != prints[name]:
                self.store.confirm_rule(name, prints[name], now=now)
                event(self.log, "rule confirmed", rule=name, fingerprint=prints[name])
        known = json.loads(self.store.get_meta(KNOWN_META) or "{}")
        confirmed = self.store.confirmations()
        state = (tuple(sorted(prints.items())), tuple(sorted(confirmed.items())), tuple(sorted(known.items())))
        if state == self._state:
            return False
        mirror = self.store.mirror()
        if not mirror:
            return False  # nothing to measure against yet: assess once the first poll filled the mirror
        impacts = assess(config, mirror.values(), now, known=known, confirmed=confirmed, minimum=self.minimum)
        started = {i.rule: i.fingerprint for i in impacts if i.new and not i.held}
        if started:
            known.update(started)
            with self.store.transaction():
                self.store.set_meta(KNOWN_META, json.dumps(known, sort_keys=True))
                self.store.mark_due(now)  # a new rule version looks at the whole queue once
            for impact in impacts:
                if impact.rule in started:
                    event(self.log, "rule version started", rule=impact.rule, matches=impact.matches,
                          total=impact.total)
        held = {i.rule: i for i in impacts if i.held}
        for name, impact in held.items():
            if name not in self.held or self.held[name].fingerprint != impact.fingerprint:
                event(self.log, "rule held by the blast-radius guard", level=logging.WARNING, rule=name,
                      detail=impact.describe())
                if self.notify:
                    self.notify(impact.describe(), f"held/{name}/{impact.fingerprint}")
        self.held = held
        self.store.set_meta("rules_held", json.dumps({n: i.describe() for n, i in held.items()}, sort_keys=True))
        self._state = (state[0], tuple(sorted(self.store.confirmations().items())),
                       tuple(sorted(known.items())))
        return bool(started)

    def filter(self, plan: Plan) -> Plan:
        """The plan without held rules' firings."""
        return hold(plan, self.held)
