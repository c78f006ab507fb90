"""Outbox delivery shared by every notifier: order, threads, digests, pacing and retries.

`OutboxNotifier.deliver(now)` walks the outbox in enqueue order. Entries for one
destination (a "lane") go out in order: when one must wait (retry time not
reached, failed, or paced out of this round) every later entry of that lane and
every later update of that ticket waits too. A 429 holds only its own lane
until Retry-After. Any other transient failure (network, 5xx, timeout, a
refused token) means Slack is unwell as a whole: the round ends and no request
at all is made until the backoff has passed, so an outage costs one request
per backoff step, never a blocked bot, and afterwards everything goes out in
the original order. Nothing here sleeps except the pacer, at most `max_wait`
seconds per round.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from bot.errors import NotifierError, NotifierRateLimited
from bot.notifiers.base import Alert, DeliveryReport, MemoryOutbox, Outbox, OutboxEntry, Thread
from bot.notifiers.blocks import Resolved, digest_chunks
from bot.retry import RetryPolicy

log = logging.getLogger(__name__)

MAX_RATE_LIMIT_WAIT = 300.0


@dataclass(frozen=True, slots=True)
class Posted:
    """Where a posted message lives (`ts` is None when the transport cannot tell, e.g. webhooks)."""

    channel: str
    ts: str | None


class Transport(Protocol):
    """One destination platform: resolves destinations, posts and updates formatted messages."""

    supports_threads: bool

    def destination(self, alert: Alert) -> str:
        """The channel id the alert goes to; NotifierError when it cannot be found."""
        ...

    def post_alert(self, channel: str, alert: Alert, *, now: datetime, thread_ts: str | None,
                   repeat: bool) -> Posted:
        """Post one alert (as a reply when `thread_ts` is set)."""
        ...

    def post_digest(self, channel: str, alerts: Sequence[Alert], *, now: datetime, repeat: bool) -> Posted:
        """Post one message listing several alerts of one rule."""
        ...

    def update(self, channel: str, ts: str, alerts: Sequence[Alert], resolved: Mapping[str, Resolved], *,
               now: datetime, digest: bool) -> None:
        """Rewrite a posted message to show which of its tickets are resolved."""
        ...


class Pacer:
    """Keeps each channel under Slack's one message per second; clock and sleep are injectable."""

    def __init__(self, interval: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self._last: dict[str, float] = {}

    def delay(self, channel: str) -> float:
        """Seconds to wait before the next post to `channel`."""
        last = self._last.get(channel)
        return 0.0 if last is None else max(0.0, self.interval - (self.clock() - last))

    def posted(self, channel: str) -> None:
        """Record a post (successful or not) to `channel` now."""
        self._last[channel] = self.clock()


@dataclass
class _Unit:
    """One Slack call to make this round: an alert, a digest of alerts, or a resolution."""

    kind: str
    entries: list[OutboxEntry]
    channel: str = ""
    lane: str = ""

    @property
    def keys(self) -> list[str]:
        return [e.key for e in self.entries]


@dataclass
class _Round:
    """State of one deliver() call."""

    now: datetime
    started: float
    report: DeliveryReport = field(default_factory=DeliveryReport)
    blocked_lanes: set[str] = field(default_factory=set)
    blocked_tickets: set[str] = field(default_factory=set)
    stopped: bool = False

    def hold(self, unit: _Unit) -> None:
        self.blocked_lanes.add(unit.lane)
        self.blocked_tickets.update(e.alert.ticket_key for e in unit.entries)


def lane_of(alert: Alert) -> str:
    """The ordering lane of an alert: its destination as configured."""
    return f"#{alert.channel}" if alert.channel else f"@{alert.user}" if alert.user else "#default"


class OutboxNotifier:
    """A `Notifier` over an `Outbox` and a `Transport` (Slack, console)."""

    def __init__(self, transport: Transport, outbox: Outbox | None = None, *, digest_threshold: int = 5,
                 pacer: Pacer | None = None, max_wait: float = 10.0, backoff: RetryPolicy | None = None):
        if digest_threshold < 1:
            raise ValueError("digest_threshold must be at least 1 (more alerts than this become a digest)")
        self.transport = transport
        self.outbox: Outbox = outbox if outbox is not None else MemoryOutbox()
        self.digest_threshold = digest_threshold
        self.pacer = pacer or Pacer()
        self.max_wait = max_wait
        self.backoff = backoff or RetryPolicy(base=2.0, cap=300.0, rng=random.Random())
        self.paused_until: datetime | None = None  # set when Slack failed as a whole (not a 429)

    def send(self, alerts: Sequence[Alert]) -> list[str]:
        """Queue alerts (one entry per destination); keys already queued or sent are ignored."""
        return self.outbox.enqueue([d for alert in alerts for d in alert.deliveries()])

    def resolve(self, ticket_key: str, how: str, now: datetime) -> bool:
        """Queue an update of the ticket's open messages; False if nothing is open or pending for it."""
        if not self.transport.supports_threads:
            return False
        pending = [e for e in self.outbox.pending() if e.alert.ticket_key == ticket_key]
        if any(e.alert.kind == "resolution" for e in pending):
            return False
        if not pending and not self.outbox.open_threads(ticket_key):
            return False
        return bool(self.outbox.enqueue([Alert.resolution(ticket_key, how, now)]))

    def deliver(self, now: datetime) -> DeliveryReport:
        """Post every due entry in order; failures are recorded with a retry time, never raised."""
        state = _Round(now, self.pacer.clock())
        if self.paused_until is not None and now < self.paused_until:
            # Slack failed as a whole: no request at all until the backoff ends, and then in order.
            state.report.waiting = len(self.outbox.pending())
            state.report.next_attempt_at = self.paused_until
            return state.report
        self.paused_until = None
        for unit in self._plan(state):
            if state.stopped or unit.lane in state.blocked_lanes or (
                    unit.kind == "resolution" and unit.entries[0].alert.ticket_key in state.blocked_tickets):
                state.hold(unit)
                state.report.waiting += len(unit.entries)
                continue
            self._run(unit, state)
        retry_times = [e.retry_at for e in self.outbox.pending() if e.retry_at]
        state.report.next_attempt_at = min(retry_times, default=None)
        return state.report

    def _plan(self, state: _Round) -> list[_Unit]:
        """The round's calls in outbox order, with same-rule bursts folded into digests."""
        units: list[_Unit] = []
        for entry in self.outbox.pending():
            alert = entry.alert
            if alert.kind == "resolution":
                unit = _Unit("resolution", [entry], lane=f"ticket:{alert.ticket_key}")
            else:
                unit = _Unit("alert", [entry], lane=lane_of(alert))
            if state.stopped or (entry.retry_at and entry.retry_at > state.now) or unit.lane in state.blocked_lanes \
                    or (unit.kind == "resolution" and alert.ticket_key in state.blocked_tickets):
                state.hold(unit)
                state.report.waiting += 1
                continue
            if unit.kind == "alert":
                try:
                    unit.channel = self.transport.destination(alert)
                except NotifierError as error:
                    self._failed(unit, error, state)
                    continue
                except Exception as error:  # a bug must not escape deliver()
                    self._failed(unit, _unexpected(error, unit, post=False), state)
                    continue
            units.append(unit)
        return self._fold_digests(units, state.now)

    def _fold_digests(self, units: list[_Unit], now: datetime) -> list[_Unit]:
        """Replace bursts of one rule to one channel (more than the threshold, new threads only) by digests."""
        groups: dict[tuple[str, str], list[_Unit]] = {}
        for unit in units:
            alert = unit.entries[0].alert
            if unit.kind == "alert" and self.outbox.thread_for(alert.ticket_key, unit.channel) is None:
                members = groups.setdefault((alert.rule, unit.channel), [])
                if all(m.entries[0].alert.ticket_key != alert.ticket_key for m in members):
                    members.append(unit)  # a second alert on the same ticket becomes a thread reply
        replaced: dict[int, list[_Unit]] = {}
        for members in groups.values():
            if len(members) <= self.digest_threshold:
                continue
            by_key = {m.entries[0].key: m.entries[0] for m in members}
            chunks = digest_chunks([m.entries[0].alert for m in members], now)
            replaced[id(members[0])] = [_Unit("digest", [by_key[a.key] for a in chunk], members[0].channel,
                                              members[0].lane) for chunk in chunks]
            replaced.update({id(m): [] for m in members[1:]})
        return [u for unit in units for u in replaced.get(id(unit), [unit])]

    def _pace(self, channel: str, state: _Round) -> bool:
        """Wait for the channel's pace, unless that would overrun this round's time budget."""
        delay = self.pacer.delay(channel)
        if delay and (self.pacer.clock() - state.started) + delay > self.max_wait:
            return False
        if delay:
            self.pacer.sleep(delay)
        return True

    def _run(self, unit: _Unit, state: _Round) -> None:
        try:
            if unit.kind == "resolution":
                self._resolve(unit, state)
                return
            if not self._pace(unit.channel, state):
                state.hold(unit)
                state.report.waiting += len(unit.entries)
                return
            self.outbox.mark_sending(unit.keys)
            repeat = any(e.ambiguous for e in unit.entries)
            thread = None
            try:
                if unit.kind == "digest":
                    posted = self.transport.post_digest(unit.channel, [e.alert for e in unit.entries],
                                                        now=state.now, repeat=repeat)
                else:
                    alert = unit.entries[0].alert
                    thread = self.outbox.thread_for(alert.ticket_key, unit.channel)
                    posted = self.transport.post_alert(unit.channel, alert, now=state.now,
                                                       thread_ts=thread.ts if thread else None, repeat=repeat)
            finally:
                self.pacer.posted(unit.channel)
        except NotifierError as error:
            self._failed(unit, error, state)
            return
        except Exception as error:  # a bug must not stop delivery for good, nor escape deliver()
            self._failed(unit, _unexpected(error, unit, post=unit.kind != "resolution"), state)
            return
        self._sent(unit, posted, state, opened=thread is None)

    def _sent(self, unit: _Unit, posted: Posted, state: _Round, *, opened: bool) -> None:
        for entry in unit.entries:
            self.outbox.mark_sent(entry.key, posted.channel, posted.ts)
            state.report.sent.append(entry.key)
            if entry.ambiguous:
                state.report.ambiguous.append(entry.key)
            if opened and posted.ts and self.transport.supports_threads:
                self.outbox.set_thread(Thread(entry.alert.ticket_key, posted.channel, posted.ts,
                                              tuple(unit.keys)))
        log.info("posted %s to %s (%s)", unit.kind, posted.channel, ", ".join(unit.keys))

    def _resolve(self, unit: _Unit, state: _Round) -> None:
        entry = unit.entries[0]
        how = entry.alert.reason or "resolved"
        at = entry.alert.created_at or state.now
        for thread in self.outbox.open_threads(entry.alert.ticket_key):
            roots = [e.alert for k in thread.root_keys if (e := self.outbox.get(k)) is not None]
            resolved = {t.ticket_key: Resolved(t.resolved, t.resolved_at)
                        for t in self.outbox.message_threads(thread.channel, thread.ts) if t.resolved}
            resolved[thread.ticket_key] = Resolved(how, at)
            if roots:
                if not self._pace(thread.channel, state):
                    state.hold(unit)
                    state.report.waiting += 1
                    return
                try:
                    self.transport.update(thread.channel, thread.ts, roots, resolved, now=state.now,
                                          digest=len(thread.root_keys) > 1)
                except NotifierError as error:
                    if error.retryable:
                        raise
                    log.warning("could not mark %s resolved in %s: %s", thread.ticket_key, thread.channel, error)
                finally:
                    self.pacer.posted(thread.channel)
            self.outbox.set_thread(replace(thread, resolved=how, resolved_at=at))
        self.outbox.mark_sent(entry.key, None, None)
        state.report.sent.append(entry.key)

    def _failed(self, unit: _Unit, error: NotifierError, state: _Round) -> None:
        retry_at = self._retry_at(unit.entries[0], error, state.now)
        for entry in unit.entries:
            self.outbox.mark_failed(entry.key, str(error), retry_at, ambiguous=error.ambiguous)
            (state.report.retrying if retry_at else state.report.dead).append(entry.key)
        if retry_at is None:
            log.error("giving up on %s: %s", ", ".join(unit.keys), error)
            return  # a dead alert does not hold back the ones behind it
        state.hold(unit)
        log.warning("delivery of %s failed, retrying at %s: %s", ", ".join(unit.keys),
                    retry_at.isoformat(timespec="seconds"), error)
        if not isinstance(error, NotifierRateLimited):
            state.stopped = True  # Slack unreachable or failing: try again later, not 40 times now
            self.paused_until = retry_at

    def _retry_at(self, entry: OutboxEntry, error: NotifierError, now: datetime) -> datetime | None:
        if not error.retryable:
            return None
        if isinstance(error, NotifierRateLimited) and error.retry_after is not None:
            delay = min(float(error.retry_after), MAX_RATE_LIMIT_WAIT)
        else:
            delay = max(1.0, self.backoff.delay(entry.attempts, error))
        return now + timedelta(seconds=delay)


def _unexpected(error: Exception, unit: _Unit, *, post: bool) -> NotifierError:
    """A bug or an answer we did not expect: logged with its traceback, retried with backoff."""
    log.error("unexpected error delivering %s", ", ".join(unit.keys), exc_info=error)
    return NotifierError(f"unexpected {type(error).__name__} (see the log)", retryable=True, ambiguous=post)
