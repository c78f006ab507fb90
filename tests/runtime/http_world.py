"""A world for runner scenarios over real HTTP, on one virtual clock.

The sandbox Zendesk and the fake Slack are served on 127.0.0.1; the bot side is
the production path: the zenpy-based `ZendeskConnector`, the `SlackNotifier`,
a `SqliteStore` file and the `Runner`. Every clock and every sleep (the
sandbox's server clock, the runner's clock, the rate budget, the retry policy,
the Slack pacer) reads or advances one `SimTime`, so hours pass in
milliseconds and no test ever waits for real time. The sandbox logs the
simulated time of every request, so tests can count calls per simulated
minute against the connector's budget.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from bot.connectors.zendesk import ZendeskConnector
from bot.connectors.zendesk_http import ZendeskConfig
from bot.notifiers.delivery import Pacer
from bot.notifiers.slack import SlackNotifier
from bot.retry import RetryPolicy
from bot.runner import Runner, RunOptions
from bot.runtime.reload import RulesFile
from bot.sandbox import seed as seeding
from bot.sandbox.server import LoggedRequest, RunningServer, json_response, serve
from bot.sandbox.slack import DEFAULT_TOKEN, SlackSandbox
from bot.sandbox.zendesk import ZendeskSandbox
from bot.sandbox.zendesk_state import BOT_USER_ID
from bot.state import IntentState
from bot.state.sqlite import SqliteStore

T0 = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)  # a Monday noon, the seed's default "now"
POLL = timedelta(seconds=30)
_TICKET_WRITE = re.compile(r"^/api/v2/tickets/(\d+)(?:\.json|/tags(?:\.json)?)$")


class SimTime:
    """Virtual time: `sim()` is now, `sleep` and `advance` move it; nothing waits for real."""

    def __init__(self, start: datetime = T0):
        self.start = start
        self.at = start
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.at

    def monotonic(self) -> float:
        """Seconds since the start, for budgets and pacers."""
        with self._lock:
            return (self.at - self.start).total_seconds()

    def sleep(self, seconds: float) -> None:
        """A sleep that costs no real time: the virtual clock jumps."""
        self.slept.append(seconds)
        self.advance(seconds=max(0.0, seconds))

    def advance(self, **delta: float) -> datetime:
        """Move time forward (`advance(minutes=5)`)."""
        with self._lock:
            self.at += timedelta(**delta)
            return self.at


class TimedZendesk(ZendeskSandbox):
    """The sandbox Zendesk that also logs each request's simulated time, with hooks for storms and feeds.

    `storm(at, method, path)` may return fault options (status, retry_after) for
    the request about to be handled, or `{"lost": status}`: the request is
    handled (a write happens) but the answer is that error, as when a proxy
    times out; `tamper(body)` rewrites an export page (duplicates, stale
    copies) before it is sent.
    """

    def __init__(self, queue: seeding.Queue, sim: SimTime, **options: Any):
        super().__init__(queue, clock=sim, **options)
        self.timeline: list[tuple[datetime, LoggedRequest]] = []
        self.storm: Callable[[datetime, str, str], dict[str, Any] | None] | None = None
        self.tamper: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self._timeline_lock = threading.Lock()
        self._lose: int | None = None

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        at = self.clock()
        if self.storm is not None:
            fault = self.storm(at, environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
            if fault and "lost" in fault:
                self._lose = int(fault["lost"])
            elif fault:
                self.faults.add(times=1, **fault)
        result = super().__call__(environ, start_response)
        with self._timeline_lock:
            self.timeline.append((at, self.requests[-1]))
        return result

    def handle(self, request: Request) -> Response:
        """Handle the request; when told to lose its answer, reply with an error page instead."""
        response = super().handle(request)
        status, self._lose = self._lose, None
        if status is None:
            return response
        return Response(f"<html><body><h1>{status} Bad Gateway</h1></body></html>", status=status,
                        content_type="text/html")

    def _export(self, request: Request) -> Response:
        response = super()._export(request)
        if self.tamper is None:
            return response
        return json_response(self.tamper(json.loads(response.get_data())))

    # -- reading the log --------------------------------------------------------------------------
    def ticket_writes(self, since: int = 0) -> Counter:
        """Successful writes per ticket id: single-ticket calls (PUT ticket, tag add/remove) from the request
        log, and each ticket an update_many job (requested at `since` or later) changed."""
        counts: Counter = Counter(self.job_writes(since))
        for request in self.requests[since:]:
            match = _TICKET_WRITE.match(request.path)
            if match and request.method in ("PUT", "POST", "DELETE") and request.status < 300:
                counts[int(match.group(1))] += 1
        return counts

    def bot_changes(self, ticket_id: int) -> list[dict[str, Any]]:
        """The effective changes deskbot made to a ticket (its audits, each with at least one event)."""
        return [a for a in self.audits(ticket_id) if a["author_id"] == BOT_USER_ID]

    def bot_notes(self, ticket_id: int) -> list[str]:
        """Private notes on a ticket (deskbot's), oldest first."""
        return self.private_notes(ticket_id)

    def calls_between(self, start: datetime, end: datetime) -> int:
        """Requests that arrived in [start, end) of simulated time."""
        return sum(1 for at, _ in self.timeline if start <= at < end)


class FailingWrites:
    """Wraps a store's SQLite connection: statements matching `fails` raise "database or disk is full"."""

    def __init__(self, conn: sqlite3.Connection, fails: Callable[[str], bool]):
        self._conn = conn
        self._fails = fails

    def execute(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        """Run the statement, unless it is one the full disk refuses."""
        if self._fails(" ".join(sql.split())):
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def is_write(sql: str) -> bool:
    """Statements that need disk space: data changes and commits (a rollback always works)."""
    return sql.upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE", "COMMIT"))


@contextmanager
def disk_full(store: SqliteStore, fails: Callable[[str], bool] = is_write) -> Iterator[None]:
    """While inside, the store's matching writes fail as on a full disk."""
    real = store._conn
    store._conn = FailingWrites(real, fails)  # type: ignore[assignment]
    try:
        yield
    finally:
        store._conn = real


def busiest_minute(times: list[datetime]) -> int:
    """The most requests in any sliding 60-second window (what a per-minute limit counts)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= timedelta(seconds=60):
            start += 1
        best = max(best, end - start + 1)
    return best


def empty_queue(now: datetime = T0) -> seeding.Queue:
    """Groups, agents and requesters of a seeded account, without tickets (tests add their own)."""
    return seeding.generate(3, tickets=0, now=now)


HEADER = """\
version: 1
mode: live
settings:
  poll_interval: 30s
  blast_radius: {blast_radius}
  digest_threshold: {digest_threshold}
  api_share: {api_share}
  admin_channel: "#general"
"""


@dataclass
class World:
    """The sandboxes, their URLs, the rules and state files, and every runner built on them."""

    sim: SimTime
    zendesk: TimedZendesk
    slack: SlackSandbox
    zendesk_url: str
    tmp: Path
    runners: list[Runner] = field(default_factory=list)

    @property
    def rules_path(self) -> Path:
        """The rules file every runner of this world reads (hot reload included)."""
        return self.tmp / "rules.yaml"

    @property
    def state_path(self) -> Path:
        """The SQLite state file every runner of this world shares."""
        return self.tmp / "state.sqlite3"

    def write_rules(self, body: str, *, blast_radius: float = 1.0, digest_threshold: int = 100,
                    api_share: float = 0.5, head: str = "") -> None:
        """Write the rules file: the common header, extra top-level sections, then `rules:` and `body`."""
        text = HEADER.format(blast_radius=blast_radius, digest_threshold=digest_threshold, api_share=api_share)
        self.rules_path.write_text(text + head + "rules:\n" + body)

    def connector(self, *, clock: Callable[[], datetime] | None = None, share: float = 0.5,
                  sleep: Callable[[float], None] | None = None) -> ZendeskConnector:
        """The real Zendesk connector on this world's virtual time (`sleep`: a hook around its waits)."""
        config = ZendeskConfig(subdomain="", email=self.zendesk.email, api_token=self.zendesk.api_token,
                               url=self.zendesk_url, budget_share=share)
        sleep = sleep or self.sim.sleep
        return ZendeskConnector(config, retry=RetryPolicy(sleep=sleep, rng=random.Random(7)),
                                clock=clock or self.sim, sleep=sleep, monotonic=self.sim.monotonic)

    def runner(self, *, skew: timedelta = timedelta(0), planner: Callable[..., Any] | None = None,
               connector: ZendeskConnector | None = None, **options: Any) -> Runner:
        """A runner wired as `deskbot run` wires one, on this world's files, sandboxes and virtual time."""
        def clock() -> datetime:
            return self.sim() + skew

        rules = RulesFile(str(self.rules_path))
        config = rules.load()
        store = SqliteStore(str(self.state_path), clock=clock)
        connector = connector or self.connector(clock=clock, share=config.spec.settings.api_share)
        notifier = SlackNotifier.from_env(
            store, environ={"SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_API_URL": self.slack.api_url},
            digest_threshold=config.spec.settings.digest_threshold,
            pacer=Pacer(0.0, clock=self.sim.monotonic, sleep=self.sim.sleep))
        runner = Runner(rules, store, {"zendesk": connector}, notifier,
                        options=RunOptions(config_path=str(self.rules_path), state_path=str(self.state_path),
                                           **options),
                        clock=clock, planner=planner)
        self.runners.append(runner)
        return runner

    def cycle(self, runner: Runner, *, times: int = 1, every: timedelta = POLL) -> None:
        """`times` rounds of what `deskbot run` schedules: poll, tick, deliver; then time moves on."""
        for _ in range(times):
            runner.poll("zendesk")
            runner.tick()
            runner.deliver()
            self.sim.advance(seconds=every.total_seconds())

    def until_settled(self, runner: Runner, *, limit: int = 40, every: timedelta = POLL) -> int:
        """Cycle until nothing is open or pending (at most `limit` rounds); returns the rounds taken."""
        for rounds in range(1, limit + 1):
            self.cycle(runner, every=every)
            if not runner.store.open_intents() and not runner.store.pending():
                return rounds
        raise AssertionError(f"still open after {limit} rounds: {runner.store.counts()}")


def results(store: SqliteStore, rule: str | None = None) -> Counter:
    """Audit results (done, skipped, expired, ...) per (rule, ticket key) from the state store."""
    return Counter((e.rule, e.ticket_key, e.result) for e in store.audit_log(rule=rule, limit=100_000))


def done_actions(store: SqliteStore) -> list[tuple[str, str, str]]:
    """(rule, ticket key, kind) of every helpdesk action performed, sorted."""
    return sorted((i.rule, i.ticket_key, i.kind) for i in store.intents(IntentState.DONE))


@contextmanager
def open_world(tmp: Path, queue: seeding.Queue | None = None, *, start: datetime = T0,
               **sandbox: Any) -> Iterator[World]:
    """Serve the sandboxes on loopback for one test; close every runner and server afterwards."""
    sim = SimTime(start)
    zendesk = TimedZendesk(queue or empty_queue(start), sim, **{"job_polls": 1, **sandbox})
    slack = SlackSandbox(clock=sim.monotonic)
    servers: list[RunningServer] = [serve(zendesk), serve(slack)]
    world = World(sim, zendesk, slack, servers[0].url, tmp)
    try:
        yield world
    finally:
        for runner in world.runners:
            with suppress(Exception):  # a test may have closed it already
                runner.close()
        stoppers = [threading.Thread(target=server.stop) for server in servers]  # each waits up to 0.5 s
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
