"""Recurring issues: many new tickets about the same thing in a short window, alerted once per spike.

Each new ticket is reduced to features: its terms (`bot.reports.text`) and its
tags (`tag:<name>`). A feature spikes when its count in the window (6 hours)
reaches `min_count` and `factor` times its usual count per window over the
baseline (the 7 days before). Spiking features whose tickets largely overlap
are one spike, named after the biggest. A spike already alerted is remembered
(`ActiveSpike`) and not alerted again while it keeps being detected, nor
until it has been quiet for `quiet_after` (the window length by default).

`detect_spikes` is pure: memory goes in and comes back out; the adapter keeps
it in the state store's meta table. `spike_plan` turns new spikes into
`notify` actions for the usual outbox path.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.model import Plan, PlannedAction, RuleMatch, Target, Ticket
from bot.reports.report import TicketRef
from bot.reports.text import DESCRIPTION_CHARS, words

RULE = "recurring_issues"
_TAG = "tag:"
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class SpikeSettings:
    """Thresholds and destination of recurring-issue alerts (the rules file's `recurring_issues:`)."""

    channel: str | None = None
    window: timedelta = timedelta(hours=6)
    baseline: timedelta = timedelta(days=7)
    factor: float = 3.0
    min_count: int = 5
    overlap: float = 0.5
    common_share: float = 0.6
    examples: int = 3
    quiet_after: timedelta | None = None
    ignore_terms: frozenset[str] = frozenset()
    ignore_tags: frozenset[str] = frozenset()
    severity: str = "warning"
    mention: tuple[str, ...] = ()

    @property
    def quiet(self) -> timedelta:
        """How long a spike must go undetected before a new one on the same topic is alerted."""
        return self.quiet_after if self.quiet_after is not None else self.window


@dataclass(frozen=True)
class ActiveSpike:
    """Memory of an alerted spike: what it was about and when it was last seen."""

    key: str
    started_at: datetime
    last_seen_at: datetime
    features: frozenset[str]
    tickets: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the state store's meta table."""
        return {"key": self.key, "started_at": self.started_at.isoformat(),
                "last_seen_at": self.last_seen_at.isoformat(), "features": sorted(self.features),
                "tickets": sorted(self.tickets)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActiveSpike:
        """Inverse of `to_dict`."""
        return cls(str(data["key"]), datetime.fromisoformat(data["started_at"]),
                   datetime.fromisoformat(data["last_seen_at"]), frozenset(data.get("features") or ()),
                   frozenset(data.get("tickets") or ()))


@dataclass(frozen=True)
class Spike:
    """One detected spike: how many, against how many usually, about what, with examples."""

    key: str
    count: int
    expected: float
    terms: tuple[str, ...]
    tags: tuple[str, ...]
    examples: tuple[TicketRef, ...]
    suggested_tag: str
    started_at: datetime
    tickets: frozenset[str] = field(default_factory=frozenset)
    platform: str = ""
    ticket_id: int = 0


@dataclass(frozen=True)
class SpikeResult:
    """New spikes to alert, spikes still running, and the memory to keep."""

    new: tuple[Spike, ...]
    ongoing: tuple[Spike, ...]
    memory: dict[str, ActiveSpike]


def features(ticket: Ticket, settings: SpikeSettings) -> tuple[frozenset[str], dict[str, str]]:
    """A ticket's features (stems and `tag:` tags) and the surface word seen for each stem."""
    surface: dict[str, str] = {}
    found: set[str] = set()
    for stemmed, word in words(f"{ticket.subject}\n{ticket.description[:DESCRIPTION_CHARS]}"):
        if stemmed in settings.ignore_terms or word in settings.ignore_terms:
            continue
        found.add(stemmed)
        surface.setdefault(stemmed, word)
    found.update(_TAG + tag.casefold() for tag in ticket.tags if tag.casefold() not in settings.ignore_tags)
    return frozenset(found), surface


def detect_spikes(tickets: Iterable[Ticket], now: datetime, settings: SpikeSettings,
                  memory: Mapping[str, ActiveSpike] | None = None,
                  history_since: datetime | None = None) -> SpikeResult:
    """Spikes among tickets created in the window ending `now`, judged against the baseline before it."""
    memory = dict(memory or {})
    window_start = now - settings.window
    baseline_start = max(window_start - settings.baseline, history_since or window_start - settings.baseline)
    covered = window_start - baseline_start
    if covered < settings.window:  # not enough history yet to know what is usual
        return SpikeResult((), (), _forget(memory, {}, now, settings))
    recent: dict[str, tuple[Ticket, frozenset[str], dict[str, str]]] = {}
    usual: Counter[str] = Counter()
    for ticket in {t.key: t for t in tickets}.values():
        created = ticket.created_at
        if created is None or not baseline_start < created <= now:
            continue
        found, surface = features(ticket, settings)
        if created > window_start:  # the window is (now - window, now]
            recent[ticket.key] = (ticket, found, surface)
        else:
            usual.update(found)
    holding: dict[str, set[str]] = {}
    for key, (_, found, _) in recent.items():
        for feature in found:
            holding.setdefault(feature, set()).add(key)
    scale = settings.window / covered
    spiking = [f for f, keys in holding.items()
               if len(keys) >= settings.min_count and len(keys) >= settings.factor * usual[f] * scale]
    # the most surprising first: most tickets above the usual count, then the rarest usually
    spiking.sort(key=lambda f: (-(len(holding[f]) - usual[f] * scale), -len(holding[f]) / (1 + usual[f] * scale),
                                f.startswith(_TAG), f))
    spikes: list[Spike] = []
    absorbed: set[str] = set()
    for feature in spiking:
        if feature in absorbed:
            continue
        core = [other for other in spiking if other not in absorbed and
                len(holding[feature] & holding[other]) >= settings.overlap * len(holding[other])]
        absorbed.update(core)
        # members hold most of the core features: a word shared with everyday tickets pulls none of them in
        needed = (len(core) + 1) // 2
        members = {key for key in set().union(*(holding[f] for f in core))
                   if sum(1 for f in core if f in recent[key][1]) >= needed}
        if len(members) >= settings.min_count:
            spikes.append(_spike(feature, members, recent, usual[feature] * scale, settings, now))
    new: list[Spike] = []
    ongoing: list[Spike] = []
    seen: dict[str, ActiveSpike] = {}
    for spike in spikes:
        active = _match(spike, memory, settings)
        if active is None:
            new.append(spike)
            active = ActiveSpike(spike.key, now, now, _features_of(spike), spike.tickets)
        else:
            ongoing.append(spike)
            active = ActiveSpike(active.key, active.started_at, now, active.features | _features_of(spike),
                                 active.tickets | spike.tickets)
        seen[active.key] = memory[active.key] = active
    return SpikeResult(tuple(new), tuple(ongoing), _forget(memory, seen, now, settings))


def _spike(feature: str, members: set[str], recent: Mapping[str, tuple[Ticket, frozenset[str], dict[str, str]]],
           expected: float, settings: SpikeSettings, now: datetime) -> Spike:
    counts: Counter[str] = Counter()
    surfaces: dict[str, Counter[str]] = {}
    in_subject: Counter[str] = Counter()
    position: Counter[str] = Counter()
    for key in members:
        ticket, found, surface = recent[key]
        counts.update(found)
        for stemmed, word in surface.items():
            surfaces.setdefault(stemmed, Counter())[word] += 1
        for index, (stemmed, _) in enumerate(dict.fromkeys(words(ticket.subject))):
            in_subject[stemmed] += 1
            position[stemmed] += index
    # most shared first; among equals, subject words before description words, in subject order
    order = sorted(counts, key=lambda f: (-counts[f], -in_subject[f], position[f] / max(in_subject[f], 1), f))
    common = [f for f in order if counts[f] >= settings.common_share * len(members)]
    words_ = tuple(surfaces[f].most_common(1)[0][0] for f in common if not f.startswith(_TAG))
    tags = tuple(f.removeprefix(_TAG) for f in common if f.startswith(_TAG))
    newest = sorted((recent[k][0] for k in members), key=lambda t: (t.created_at, t.key), reverse=True)
    examples = tuple(TicketRef(t.key, t.subject, t.url) for t in newest[: settings.examples])
    label = words_[:2] or tags[:1] or (feature.removeprefix(_TAG),)
    return Spike(feature, len(members), round(expected, 2), words_, tags, examples,
                 "spike_" + _SLUG.sub("_", "_".join(label).casefold()).strip("_"), now, frozenset(members),
                 newest[0].platform, newest[0].id)


def _features_of(spike: Spike) -> frozenset[str]:
    return frozenset({spike.key, *(_TAG + t for t in spike.tags)})


def _match(spike: Spike, memory: Mapping[str, ActiveSpike], settings: SpikeSettings) -> ActiveSpike | None:
    """The remembered spike this one continues: same lead feature, or mostly the same tickets."""
    for active in memory.values():
        shared = len(spike.tickets & active.tickets)
        if spike.key in active.features or shared >= settings.overlap * len(spike.tickets):
            return active
    return None


def _forget(memory: dict[str, ActiveSpike], seen: Mapping[str, ActiveSpike], now: datetime,
            settings: SpikeSettings) -> dict[str, ActiveSpike]:
    """Drop spikes quiet for longer than `quiet`; keep the rest."""
    return {key: active for key, active in memory.items()
            if key in seen or now - active.last_seen_at < settings.quiet}


def spike_message(spike: Spike, settings: SpikeSettings) -> str:
    """The alert text: count against the usual, the common terms, examples and a tag to use."""
    about = ", ".join(spike.terms) or ", ".join(spike.tags) or spike.key
    hours = settings.window.total_seconds() / 3600
    lines = [f"Recurring issue: {spike.count} new tickets about “{about}” in the last {hours:g}h "
             f"(usually {spike.expected:g}).", f"Suggested tag: {spike.suggested_tag}"]
    if spike.tags:
        lines.append("Common tags: " + ", ".join(spike.tags))
    lines += [f"• {ref.key}: {ref.subject}" for ref in spike.examples]
    return "\n".join(lines)


def spike_action(spike: Spike, settings: SpikeSettings) -> PlannedAction:
    """A `notify` action for one new spike, keyed so it is queued once."""
    message = spike_message(spike, settings)
    reason = f"{spike.count} tickets in {settings.window} (usually {spike.expected:g})"
    ticket_key = f"spike:{spike.key}"
    example = spike.examples[0] if spike.examples else TicketRef(ticket_key)
    params = {
        "channel": settings.channel, "user": None, "mention": list(settings.mention),
        "severity": settings.severity, "template": "",
        "values": {"count": str(spike.count), "expected": f"{spike.expected:g}", "terms": ", ".join(spike.terms),
                   "tags": ", ".join(spike.tags), "suggested_tag": spike.suggested_tag},
        "message": message,
        "ticket": {"subject": f"Recurring issue: {', '.join(spike.terms) or ', '.join(spike.tags)}",
                   "url": example.url, "status": "", "priority": "", "group": "", "assignee": "", "requester": "",
                   "tags": [spike.suggested_tag]},
        "rule": RULE, "reason": reason, "occurrence": 1,
    }  # fmt: skip
    return PlannedAction(
        key=f"{RULE}/{ticket_key}/{spike.started_at.strftime('%Y%m%dT%H%M%S')}/0:notify",
        ticket_key=ticket_key, platform=spike.platform, ticket_id=spike.ticket_id, rule=RULE, kind="notify",
        target=Target.NOTIFIER, params=params, reason=reason,
    )


def spike_plan(spikes: Sequence[Spike], settings: SpikeSettings) -> Plan:
    """A plan holding one alert per new spike, for `StateStore.record_plan` like any rule's plan."""
    matches = []
    for spike in spikes:
        action = spike_action(spike, settings)
        matches.append(RuleMatch(action.ticket_key, RULE, (action,), action.reason, 1))
    return Plan(tuple(matches))
