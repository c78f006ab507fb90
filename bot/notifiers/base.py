"""What notifiers deliver (`Alert`), how they are driven (`Notifier`) and where alerts wait (`Outbox`).

Flow: the executor turns each `notify` PlannedAction into an `Alert`
(`Alert.from_action`) and calls `notifier.send(alerts)`, which only writes them
to the outbox (idempotent on `Alert.key`, so a re-planned action is never
queued twice). `notifier.deliver(now)` later posts what is due, in enqueue
order, and never raises or sleeps on a failed post: failures stay pending with
a `retry_at`. `notifier.resolve(ticket_key, how, now)` queues an update of the
ticket's open messages ("resolved", "acknowledged").

Outbox contract (`Outbox`, implemented here by `MemoryOutbox`, on SQLite by
the state store): entries move pending -> sending -> sent | dead, with failed
attempts going back to pending with `retry_at`. An entry found in `sending`
(the process died mid-post) is reported by `pending()` with `ambiguous=True`.
Threads map a ticket to the message that opened its conversation in a channel;
a digest message opens a thread for every ticket it lists.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from bot.model import PlannedAction

SEVERITIES = ("info", "warning", "critical")


def _text(value: Any) -> str:
    """A ticket value as text (None becomes empty)."""
    return "" if value is None else str(value)


def _parse_time(value: Any) -> datetime | None:
    """An ISO-8601 string (or datetime) as a tz-aware datetime, None if absent or unreadable."""
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


@dataclass(frozen=True, slots=True)
class TicketInfo:
    """The ticket as the alert shows it; every field is untrusted helpdesk text."""

    subject: str = ""
    url: str = ""
    status: str = ""
    priority: str = ""
    group: str = ""
    assignee: str = ""
    requester: str = ""
    tags: tuple[str, ...] = ()

    @classmethod
    def from_params(cls, raw: Mapping[str, Any] | None) -> TicketInfo:
        """Read the `ticket` entry of notify params, tolerating missing keys."""
        raw = raw or {}
        tags = raw.get("tags") or ()
        if isinstance(tags, str):
            tags = (tags,)
        return cls(**{name: _text(raw.get(name)) for name in
                      ("subject", "url", "status", "priority", "group", "assignee", "requester")},
                   tags=tuple(sorted(_text(t) for t in tags)))


@dataclass(frozen=True, slots=True)
class SlaClock:
    """An SLA target's deadline, shown as "due in" / "breached for" in the team's time zone."""

    target: str
    deadline: datetime | None = None
    remaining_seconds: float | None = None
    timezone: str = "UTC"

    @classmethod
    def from_params(cls, raw: Any, timezone: str = "UTC") -> SlaClock | None:
        """Read the optional `sla` entry; None when it is absent or carries no time at all."""
        if not isinstance(raw, Mapping):
            return None
        deadline = _parse_time(raw.get("deadline"))
        try:
            remaining = float(raw["remaining_seconds"]) if raw.get("remaining_seconds") is not None else None
        except (TypeError, ValueError):
            remaining = None
        if deadline is None and remaining is None:
            return None
        return cls(_text(raw.get("target")) or "sla", deadline, remaining, _text(raw.get("timezone")) or timezone)

    def remaining_at(self, now: datetime) -> float:
        """Seconds left at `now` (negative once breached)."""
        if self.deadline is not None:
            return (self.deadline - now).total_seconds()
        return float(self.remaining_seconds or 0.0)


@dataclass(frozen=True, slots=True)
class Alert:
    """One message to deliver, keyed for dedup: `rule/ticket/notify/occurrence`.

    `kind` is "alert" for a rule's notification and "resolution" for the update
    queued by `Notifier.resolve` (then `reason` says how it was resolved).
    Destination: `channel` (name or id) and/or `user` (an email, as a DM).
    `timezone` is the team's, for the times the message shows.
    `mention` entries come from the rules file (trusted); everything in
    `ticket`, `values`, `message` and `reason` comes from the ticket (untrusted).
    """

    key: str
    ticket_key: str
    rule: str = ""
    kind: str = "alert"
    severity: str = "warning"
    channel: str | None = None
    user: str | None = None
    mention: tuple[str, ...] = ()
    template: str = ""
    values: Mapping[str, str] = field(default_factory=dict)
    message: str = ""
    ticket: TicketInfo = field(default_factory=TicketInfo)
    reason: str = ""
    occurrence: int = 0
    sla: SlaClock | None = None
    timezone: str = "UTC"
    created_at: datetime | None = None

    @classmethod
    def from_action(cls, action: PlannedAction) -> Alert:
        """Build the alert for a `notify` action (see the params contract in docs/slack.md)."""
        if action.kind != "notify":
            raise ValueError(f"Alert.from_action needs a 'notify' action, got {action.kind!r} ({action.key})")
        p = action.params
        mention = p.get("mention") or ()
        if isinstance(mention, str):
            mention = (mention,)
        severity = _text(p.get("severity")).lower()
        timezone = _text(p.get("timezone")) or "UTC"
        return cls(
            key=action.key,
            ticket_key=action.ticket_key,
            rule=_text(p.get("rule")) or action.rule,
            severity=severity if severity in SEVERITIES else "warning",
            channel=_text(p.get("channel")).strip() or None,
            user=_text(p.get("user")).strip() or None,
            mention=tuple(_text(m).strip() for m in mention if _text(m).strip()),
            template=_text(p.get("template")),
            values={_text(k): _text(v) for k, v in (p.get("values") or {}).items()},
            message=_text(p.get("message")),
            ticket=TicketInfo.from_params(p.get("ticket")),
            reason=_text(p.get("reason")) or action.reason,
            occurrence=int(p.get("occurrence") or 0),
            sla=SlaClock.from_params(p.get("sla"), timezone),
            timezone=timezone,
        )

    @classmethod
    def resolution(cls, ticket_key: str, how: str, at: datetime) -> Alert:
        """The update to queue when a ticket is resolved or acknowledged."""
        return cls(key=f"{ticket_key}/resolved/{at.strftime('%Y%m%dT%H%M%S%fZ')}", ticket_key=ticket_key,
                   kind="resolution", reason=how, created_at=at)

    def deliveries(self) -> tuple[Alert, ...]:
        """One alert per destination: a channel and a user each get their own key."""
        if self.channel and self.user:
            return replace(self, user=None), replace(self, channel=None, key=f"{self.key}/dm")
        return (self,)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, for outboxes that persist alerts."""
        data = asdict(self)
        data["values"] = dict(self.values)
        data["created_at"] = self.created_at.isoformat() if self.created_at else None
        if self.sla is not None:
            data["sla"]["deadline"] = self.sla.deadline.isoformat() if self.sla.deadline else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """Inverse of `to_dict`."""
        data = dict(data)
        ticket = data.pop("ticket", None) or {}
        sla = data.pop("sla", None)
        return cls(**{**data, "mention": tuple(data.get("mention") or ()),
                      "values": dict(data.get("values") or {}),
                      "created_at": _parse_time(data.get("created_at"))},
                   ticket=TicketInfo(**{**ticket, "tags": tuple(ticket.get("tags") or ())}),
                   sla=SlaClock.from_params(sla))


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An alert in the outbox with its delivery state.

    `state`: pending | sending | sent | dead. `ambiguous` is sticky: some earlier
    attempt may have reached Slack (timeout, 5xx, crash mid-post), so the next
    successful post may repeat it.
    """

    key: str
    alert: Alert
    seq: int
    state: str = "pending"
    attempts: int = 0
    retry_at: datetime | None = None
    error: str | None = None
    ambiguous: bool = False
    channel: str | None = None
    ts: str | None = None


@dataclass(frozen=True, slots=True)
class Thread:
    """The message that opened a ticket's conversation in one channel.

    `root_keys` are the alert keys rendered in that message (one, or all of a
    digest's); `resolved` holds how the ticket was resolved once it was.
    """

    ticket_key: str
    channel: str
    ts: str
    root_keys: tuple[str, ...]
    resolved: str | None = None
    resolved_at: datetime | None = None


@runtime_checkable
class Outbox(Protocol):
    """Durable queue of alerts plus the ticket -> message map; every method is atomic."""

    def enqueue(self, alerts: Sequence[Alert]) -> list[str]:
        """Add alerts not seen before (by key, whatever their state); return the keys added."""
        ...

    def pending(self) -> list[OutboxEntry]:
        """Entries in state pending or sending, in enqueue order (sending ones as ambiguous)."""
        ...

    def get(self, key: str) -> OutboxEntry | None:
        """The entry with this key, in any state."""
        ...

    def mark_sending(self, keys: Sequence[str]) -> None:
        """Record that a post of these entries starts now (a crash leaves them ambiguous)."""
        ...

    def mark_sent(self, key: str, channel: str | None, ts: str | None) -> None:
        """Record a delivered entry and where its message lives."""
        ...

    def mark_failed(self, key: str, error: str, retry_at: datetime | None, *, ambiguous: bool = False) -> None:
        """Count a failed attempt: back to pending until `retry_at`, or dead when `retry_at` is None."""
        ...

    def thread_for(self, ticket_key: str, channel: str) -> Thread | None:
        """The ticket's unresolved thread in a channel, if any (the latest)."""
        ...

    def set_thread(self, thread: Thread) -> None:
        """Insert or replace a thread, keyed by (ticket_key, channel, ts)."""
        ...

    def open_threads(self, ticket_key: str) -> list[Thread]:
        """The ticket's unresolved threads, in every channel."""
        ...

    def message_threads(self, channel: str, ts: str) -> list[Thread]:
        """Every thread (resolved or not) opened by one message: one, or a digest's tickets."""
        ...


@dataclass
class DeliveryReport:
    """What one `deliver()` round did, by alert key."""

    sent: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    waiting: int = 0
    next_attempt_at: datetime | None = None

    @property
    def all_done(self) -> bool:
        """True when nothing is left to deliver."""
        return not self.retrying and not self.waiting


@runtime_checkable
class Notifier(Protocol):
    """Where `notify` actions go; delivery is at-least-once, deduplicated by alert key."""

    def send(self, alerts: Sequence[Alert]) -> list[str]:
        """Queue alerts in the outbox (nothing is posted yet); return the keys newly queued."""
        ...

    def resolve(self, ticket_key: str, how: str, now: datetime) -> bool:
        """Queue an update of the ticket's open messages; False when there is nothing to update."""
        ...

    def deliver(self, now: datetime) -> DeliveryReport:
        """Post what is due; failures stay pending with a retry time, never raised."""
        ...


class MemoryOutbox:
    """An in-process `Outbox` for tests, the demo and dry runs (lost on exit)."""

    def __init__(self) -> None:
        self._entries: dict[str, OutboxEntry] = {}
        self._threads: dict[tuple[str, str, str], Thread] = {}
        self._seq = 0
        self._lock = threading.Lock()

    def enqueue(self, alerts: Sequence[Alert]) -> list[str]:
        """Add alerts not seen before; return the keys added."""
        added = []
        with self._lock:
            for alert in alerts:
                if alert.key in self._entries:
                    continue
                self._seq += 1
                self._entries[alert.key] = OutboxEntry(alert.key, alert, self._seq)
                added.append(alert.key)
        return added

    def pending(self) -> list[OutboxEntry]:
        """Undelivered entries in enqueue order; leftovers of an interrupted post are ambiguous."""
        with self._lock:
            entries = [e for e in self._entries.values() if e.state in ("pending", "sending")]
        return [replace(e, state="pending", ambiguous=True) if e.state == "sending" else e
                for e in sorted(entries, key=lambda e: e.seq)]

    def get(self, key: str) -> OutboxEntry | None:
        """The entry with this key, in any state."""
        with self._lock:
            return self._entries.get(key)

    def all(self) -> list[OutboxEntry]:
        """Every entry in enqueue order (for tests, `status` and the demo)."""
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: e.seq)

    def _update(self, key: str, **changes: Any) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                raise KeyError(f"no outbox entry {key!r}")
            self._entries[key] = replace(entry, **changes)

    def mark_sending(self, keys: Sequence[str]) -> None:
        """Record that a post of these entries starts now."""
        for key in keys:
            self._update(key, state="sending")

    def mark_sent(self, key: str, channel: str | None, ts: str | None) -> None:
        """Record a delivered entry and where its message lives."""
        self._update(key, state="sent", channel=channel, ts=ts, retry_at=None)

    def mark_failed(self, key: str, error: str, retry_at: datetime | None, *, ambiguous: bool = False) -> None:
        """Count a failed attempt; dead when `retry_at` is None."""
        entry = self.get(key)
        if entry is None:
            raise KeyError(f"no outbox entry {key!r}")
        self._update(key, state="dead" if retry_at is None else "pending", attempts=entry.attempts + 1,
                     retry_at=retry_at, error=error, ambiguous=entry.ambiguous or ambiguous)

    def thread_for(self, ticket_key: str, channel: str) -> Thread | None:
        """The ticket's latest unresolved thread in a channel."""
        with self._lock:
            found = [t for (k, c, _), t in self._threads.items()
                     if k == ticket_key and c == channel and t.resolved is None]
        return max(found, key=lambda t: _ts_order(t.ts), default=None)

    def set_thread(self, thread: Thread) -> None:
        """Insert or replace a thread."""
        with self._lock:
            self._threads[(thread.ticket_key, thread.channel, thread.ts)] = thread

    def open_threads(self, ticket_key: str) -> list[Thread]:
        """The ticket's unresolved threads."""
        with self._lock:
            return [t for t in self._threads.values() if t.ticket_key == ticket_key and t.resolved is None]

    def message_threads(self, channel: str, ts: str) -> list[Thread]:
        """Every thread opened by one message."""
        with self._lock:
            return [t for (_, c, s), t in self._threads.items() if c == channel and s == ts]


def _ts_order(ts: str) -> tuple[int, int]:
    """Slack ts strings compared as numbers without going through float."""
    seconds, _, micros = ts.partition(".")
    return int(seconds or 0), int(micros or 0)
