"""`deskbot demo`: a minute of the real runner on a sandbox Zendesk and Slack, on an accelerated clock.

Everything is the production path: the Zendesk connector over HTTP to the
sandbox, the SQLite store (in a temporary directory), the rules engine on
config/rules.yaml, the executor, the Slack notifier over HTTP to the fake
Slack. Only the clock is fast (default 1 real second = 2 simulated minutes)
and the mode is forced live (the sandbox is not a real helpdesk). The rules
file's teams are mapped onto the sandbox's agents, and its rules are
pre-confirmed for the blast-radius guard. New tickets keep arriving. With
SLACK_BOT_TOKEN set, every alert is also posted to the real Slack workspace.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from bot.logging_setup import get_logger
from bot.runner import RunOptions
from bot.runtime.assemble import build_runner
from bot.sandbox import seed as seeding
from bot.sandbox.server import serve
from bot.sandbox.slack import DEFAULT_TOKEN, SlackSandbox
from bot.sandbox.zendesk import ZendeskSandbox
from bot.state.sqlite import SqliteStore

ARRIVALS = (
    ("Refund not received for my last order", "normal", None), ("Login error after password reset", "high", None),
    ("Invoice shows the wrong VAT number", "low", None), ("App crashes on startup since the update", "urgent", None),
    ("Charged twice for my subscription", "high", None), ("API returns 500 on every request", "urgent", None),
    ("How do I change my billing email?", "normal", None), ("Outage: dashboard is down for our whole team", "urgent",
                                                             None),
)


class SimClock:
    """Simulated time that runs `speed` times faster than the real clock."""

    def __init__(self, start: datetime, speed: float):
        self.start, self.speed, self._t0 = start, speed, time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)


@dataclass
class DemoSummary:
    """What the demo showed, for the closing table and for tests."""

    actions_by_rule: Counter = field(default_factory=Counter)
    alerts_posted: int = 0
    thread_replies: int = 0
    posts_by_channel: Counter = field(default_factory=Counter)
    api_calls: Counter = field(default_factory=Counter)
    simulated: timedelta = timedelta()
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the runner acted and nothing unexpected went wrong."""
        return bool(self.actions_by_rule) and not self.errors


class _Events(logging.Handler):
    """Keeps the last runner events for the live view."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=12)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", {})
        message = record.getMessage()
        if message == "action":
            self.lines.append(f"{fields.get('result', ''):<8} {fields.get('rule', '')} · {fields.get('ticket', '')}"
                              f" · {fields.get('detail') or fields.get('channel') or fields.get('kind')}")
        elif record.levelno >= logging.WARNING:
            self.lines.append(f"{record.levelname.lower()}: {message} {fields.get('error', '')}")
            if record.levelno >= logging.ERROR:
                self.errors.append(f"{message}: {fields.get('error') or fields.get('problems') or ''}")


def demo_rules(config_path: str, queue: seeding.Queue, directory: str) -> tuple[str, list[str], str]:
    """A copy of the rules file whose teams name the sandbox's agents; returns (path, rule names, text)."""
    text = Path(config_path).read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    for team in (data.get("teams") or {}).values():
        group = next((g for g in queue.groups if g.name.casefold() == str(team.get("group", "")).casefold()), None)
        if group is not None:
            team["members"] = [a.email for a in queue.members(group.id)]
    path = Path(directory) / "rules.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return str(path), [r["name"] for r in data.get("rules") or [] if isinstance(r, dict) and "name" in r], text


def prepare_slack(app: SlackSandbox, rules_text: str) -> None:
    """Channels, user groups and people the rules file mentions exist in the fake workspace."""
    for name in sorted(set(re.findall(r"[\"'\s\[]#([a-z0-9][\w-]*)", rules_text))):
        if app.channel(name) is None:
            app.add_channel(name)
    for handle in sorted(set(re.findall(r"[\"'\s\[]@([a-z0-9][\w-]*)", rules_text))):
        if not any(g.handle == handle for g in app.usergroups.values()):
            app.add_usergroup(handle, [])
    for email in sorted(set(re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", rules_text))):
        if not any(u.email == email for u in app.users.values()):
            app.add_user(email)


class Demo:
    """Runs the sandbox, the runner and the live display; `run()` returns the summary."""

    def __init__(self, config_path: str = "config/rules.yaml", *, duration: float = 60.0, speed: float = 120.0,
                 tickets: int = 300, seed: int = 7, console: Console | None = None, arrivals_every: float = 3.0):
        self.config_path, self.duration, self.speed = config_path, duration, speed
        self.tickets, self.seed, self.arrivals_every = tickets, seed, arrivals_every
        self.console = console or Console()

    def run(self) -> DemoSummary:
        """Start everything, show it live for `duration` seconds, stop, and print the summary."""
        clock = SimClock(seeding.DEFAULT_NOW, self.speed)
        queue = seeding.generate(self.seed, tickets=self.tickets, now=clock.start)
        zendesk, slack = ZendeskSandbox(queue, clock=clock), SlackSandbox()
        with tempfile.TemporaryDirectory(prefix="deskbot-demo-") as tmp, serve(zendesk) as zd, serve(slack):
            rules_path, names, text = demo_rules(self.config_path, queue, tmp)
            prepare_slack(slack, text)
            env = {"ZENDESK_URL": zd.url, "ZENDESK_EMAIL": zendesk.email, "ZENDESK_API_TOKEN": zendesk.api_token or "",
                   "SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_API_URL": slack.api_url}
            state = str(Path(tmp) / "deskbot.sqlite3")
            options = RunOptions(config_path=rules_path, force_live=True, state_path=state, poll_interval=1.0,
                                 tick_interval=0.5, deliver_interval=0.5, directory_refresh=3600.0,
                                 confirm=tuple(names))
            runner, _ = build_runner(options, environ=env, clock=clock, connector_options={"clock": clock},
                                     platforms=["zendesk"])
            events = self._capture_logs()
            real = _RealSlack.from_environment()
            worker = threading.Thread(target=runner.run, kwargs={"install_signals": False}, name="deskbot-runner",
                                      daemon=True)
            worker.start()
            self._show(runner, zendesk, slack, clock, events, real)
            runner.stop()
            worker.join(timeout=60)
            summary = self._summary(state, zendesk, slack, clock, events)
        self._print_summary(summary)
        return summary

    def _capture_logs(self) -> _Events:
        logger = get_logger()
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        events = _Events()
        logger.addHandler(events)
        logger.setLevel(logging.INFO)
        return events

    def _show(self, runner: Any, zendesk: ZendeskSandbox, slack: SlackSandbox, clock: SimClock, events: _Events,
              real: _RealSlack | None) -> None:
        started = time.monotonic()
        next_arrival, arrivals = started + self.arrivals_every, 0
        with Live(self._view(runner, zendesk, slack, clock, events), console=self.console, refresh_per_second=4,
                  transient=not self.console.is_terminal) as live:
            while (elapsed := time.monotonic() - started) < self.duration:
                if time.monotonic() >= next_arrival:
                    subject, priority, _ = ARRIVALS[arrivals % len(ARRIVALS)]
                    zendesk.add_ticket(subject, priority=priority)
                    arrivals, next_arrival = arrivals + 1, next_arrival + self.arrivals_every
                if real is not None:
                    real.forward(runner.store, clock())
                live.update(self._view(runner, zendesk, slack, clock, events))
                time.sleep(min(0.25, max(0.0, self.duration - elapsed)))

    def _view(self, runner: Any, zendesk: ZendeskSandbox, slack: SlackSandbox, clock: SimClock,
              events: _Events) -> Panel:
        done = Counter(e.rule for e in runner.store.audit_log(limit=100000) if e.result in ("done", "sent"))
        table = Table.grid(padding=(0, 2))
        table.add_row("simulated time", clock().strftime("%a %H:%M"), "tickets in Zendesk", str(len(zendesk.tickets)))
        table.add_row("API calls", str(len(zendesk.requests)), "Slack posts", str(len(slack.messages)))
        rules = Table("rule", "done", box=None, padding=(0, 1))
        for rule, count in done.most_common(8):
            rules.add_row(rule, str(count))
        log = "\n".join(events.lines) or "waiting for the first cycle..."
        return Panel(Group(table, rules, Panel(log, title="latest", border_style="dim")),
                     title="deskbot demo (sandbox Zendesk + Slack, accelerated clock)")

    def _summary(self, state: str, zendesk: ZendeskSandbox, slack: SlackSandbox, clock: SimClock,
                 events: _Events) -> DemoSummary:
        store = SqliteStore(state)
        summary = DemoSummary(simulated=clock() - clock.start, errors=list(events.errors))
        for entry in store.audit_log(limit=1000000):
            if entry.result in ("done", "sent"):
                summary.actions_by_rule[entry.rule] += 1
        store.close()
        for message in list(slack.messages):
            if message.thread_ts is None:
                summary.alerts_posted += 1
                channel = slack.channels.get(message.channel)
                summary.posts_by_channel["#" + channel.name if channel else message.channel] += 1
            else:
                summary.thread_replies += 1
        for request in list(zendesk.requests):
            summary.api_calls[_endpoint(request.method, request.path)] += 1
        return summary

    def _print_summary(self, summary: DemoSummary) -> None:
        minutes = int(summary.simulated.total_seconds() // 60)
        table = Table(title=f"deskbot demo: {minutes // 60}h{minutes % 60:02d}m of simulated time")
        table.add_column("rule")
        table.add_column("actions and alerts", justify="right")
        for rule, count in summary.actions_by_rule.most_common():
            table.add_row(rule, str(count))
        self.console.print(table)
        channels = ", ".join(f"{c} {n}" for c, n in summary.posts_by_channel.most_common()) or "none"
        self.console.print(f"Slack: {summary.alerts_posted} messages ({channels}), {summary.thread_replies} "
                           "thread replies")
        calls = ", ".join(f"{k} {n}" for k, n in summary.api_calls.most_common())
        self.console.print(f"Zendesk API calls: {sum(summary.api_calls.values())} ({calls})")
        for error in summary.errors:
            self.console.print(f"[red]error:[/red] {error}")


def _endpoint(method: str, path: str) -> str:
    """A short name for an API call, for the summary."""
    name = re.sub(r"/(\d+|V3-\w+)", "/{id}", path.removeprefix("/api/v2/")).removesuffix(".json")
    return f"{method} {name}"


class _RealSlack:
    """With SLACK_BOT_TOKEN set, the demo's alerts also go to the real workspace (own in-memory outbox)."""

    def __init__(self, notifier: Any):
        self.notifier = notifier
        self.forwarded: set[str] = set()

    @classmethod
    def from_environment(cls) -> _RealSlack | None:
        if not os.environ.get("SLACK_BOT_TOKEN"):
            return None
        from bot.notifiers.base import MemoryOutbox
        from bot.notifiers.slack import SlackNotifier

        return cls(SlackNotifier.from_env(MemoryOutbox()))

    def forward(self, store: Any, now: datetime) -> None:
        alerts = [e.alert for e in store.outbox() if e.key not in self.forwarded]
        self.forwarded.update(a.key for a in alerts)
        if alerts:
            self.notifier.send(alerts)
        self.notifier.deliver(now)
