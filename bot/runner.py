"""The always-on loop: every helpdesk polled on its interval, the mirror re-checked, the outbox delivered.

One `Cycle` per helpdesk does read -> mirror -> evaluate -> record -> act; the
`schedule` library runs the polls (settings.poll_interval), the local tick
over the mirror (settings.tick_interval, no API calls), the directory refresh
and housekeeping. Alerts are delivered by a separate thread, so Slack trouble
never holds up tickets. Only the holder of the store's lease acts; a second
runner on the same store stands by. SIGTERM/SIGINT finish the current step and
exit. The rules file is re-read at every cycle (hot reload).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import schedule

from bot.config import Config
from bot.connectors.base import Connector
from bot.errors import StateError
from bot.executor import Executor, LeaseLost
from bot.logging_setup import event, get_logger
from bot.notifiers.base import Alert
from bot.reports.slack import TransportPoster
from bot.reports.source import alert_recurring, run_due_reports
from bot.rules.durations import parse_duration
from bot.runtime.blast import Guard
from bot.runtime.clock import SteadyClock
from bot.runtime.cycle import Cycle, CycleReport, Outage
from bot.runtime.metrics import Metrics
from bot.runtime.reload import Rejected, RulesFile
from bot.state import Mode, StateStore
from bot.state.codec import to_text


def _dead_here(owner: str) -> bool:
    """True when a lease owner (`host:pid:tag`) is a process of this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _wait_holders(connector: Connector) -> list[Any]:
    """Whatever a connector waits through (`sleep` attributes): itself, its retry policy and rate budgets."""
    found: dict[int, Any] = {}
    for owner in (connector, getattr(connector, "http", None)):
        for holder in (owner, getattr(owner, "retry", None), getattr(owner, "budget", None),
                       getattr(owner, "export_budget", None)):
            if holder is not None and callable(vars(holder).get("sleep") if hasattr(holder, "__dict__") else None):
                found[id(holder)] = holder
    return list(found.values())


def utcnow() -> datetime:
    """The real time, tz-aware UTC."""
    return datetime.now(UTC)


@dataclass
class RunOptions:
    """How `deskbot run` was asked to behave; None means "from the rules file's settings"."""

    config_path: str = "config/rules.yaml"
    dry_run: bool = False
    force_live: bool = False
    state_path: str | None = None
    health_port: int | None = None
    confirm: tuple[str, ...] = ()
    poll_interval: float | None = None
    tick_interval: float | None = None
    deliver_interval: float = 2.0
    directory_refresh: float | None = None
    expire_after: timedelta = timedelta(hours=2)
    lease_ttl: timedelta | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Runner:
    """Drives every helpdesk's cycle on a schedule against one state store."""

    def __init__(self, rules: RulesFile, store: StateStore, connectors: Mapping[str, Connector],
                 notifier: Any = None, *, options: RunOptions | None = None,
                 clock: Callable[[], datetime] = utcnow, planner: Callable[..., Any] | None = None,
                 metrics: Metrics | None = None, logger: logging.Logger | None = None):
        from bot.rules.engine import plan as engine_plan

        self.rules = rules
        self.store = store
        self.connectors = dict(connectors)
        self.notifier = notifier
        self.options = options or RunOptions()
        self.clock = SteadyClock(clock, store)  # never runs backwards, even across restarts
        self.metrics = metrics or Metrics()
        self.log = logger or get_logger("runner")
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.config = rules.config or rules.load()
        self.rules.on_rejected = self._rules_rejected
        self.executor = Executor(store, self.connectors, expire_after=self.options.expire_after,
                                 guard=self.holds_lease, logger=get_logger("executor"), config=lambda: self.config)
        self.guard = Guard(store, confirm=self.options.confirm, notify=self.admin_alert)
        settings = self.config.spec.settings
        self.intervals = {
            "poll": self.options.poll_interval or parse_duration(settings.poll_interval).total_seconds(),
            "tick": self.options.tick_interval or parse_duration(settings.tick_interval).total_seconds(),
            "directory": self.options.directory_refresh
            or parse_duration(settings.directory_refresh).total_seconds(),
        }
        self.lease_ttl = self.options.lease_ttl or timedelta(seconds=max(60.0, 3 * self.intervals["poll"]))
        self.cycles = {
            name: Cycle(name, connector, store, self.executor, rules=self.current_rules,
                        planner=planner or engine_plan, guard=self.guard, mode=self.mode, notifier=notifier,
                        metrics=self.metrics)
            for name, connector in self.connectors.items()
        }
        self.outages = {name: Outage(name, timedelta(seconds=self.intervals["poll"]), notify=self.admin_alert)
                        for name in self.connectors}
        self._acting = threading.local()  # `.held`: the job running in this thread took the lease
        for connector in self.connectors.values():
            self._fence(connector)
        self.stop_event = threading.Event()
        self.store_error: str | None = None
        self.standby_reported = False
        self.started_at = clock()
        self.last: dict[str, dict[str, Any]] = {}

    # -- policy ------------------------------------------------------------------
    def current_rules(self) -> Config:
        """The rules in force (hot-reloaded)."""
        self.config = self.rules.current()
        return self.config

    def mode(self, config: Config) -> Mode:
        """Dry run when asked on the command line, live for the demo, else the rules file's mode."""
        if self.options.dry_run:
            return Mode.DRY_RUN
        if self.options.force_live:
            return Mode.LIVE
        return Mode(config.mode)

    def holds_lease(self) -> bool:
        """Take or renew the store's lease; False while another runner holds it."""
        lease = self.store.acquire_lease(self.owner, now=self.clock(), ttl=self.lease_ttl)
        if lease is None:
            other = self.store.lease()
            if other and _dead_here(other.owner):  # a runner on this host that crashed: no need to wait
                lease = self.store.acquire_lease(self.owner, now=self.clock(), ttl=self.lease_ttl,
                                                 steal_from=other.owner)
                if lease is not None:
                    event(self.log, "took over the lease of a crashed runner", previous=other.owner)
                    self._acting.held = True
                    return True
        if lease is None:
            if not self.standby_reported:
                other = self.store.lease()
                event(self.log, "another runner holds the state store; standing by", level=logging.WARNING,
                      owner=other.owner if other else "?", until=to_text(other.expires_at) if other else "")
                self.standby_reported = True
            return False
        if self.standby_reported:
            event(self.log, "lease taken over; acting", owner=self.owner)
            self.standby_reported = False
        self._acting.held = True
        return True

    def _fence(self, connector: Connector) -> None:
        """In a job that took the lease, the connector's waits (rate budget, backoff, job polls) renew it.

        A batch of writes can outlast the lease (a small API budget, a 429 storm). Without this a second
        runner takes over mid-batch and writes what this one is still about to write; and a runner that
        finds the lease taken (it was paused past it) stops with `LeaseLost` before its next call.
        """
        def fenced(sleep: Callable[[float], None]) -> Callable[[float], None]:
            def wait(seconds: float) -> None:
                sleep(seconds)
                if getattr(self._acting, "held", False) and not self.holds_lease():
                    raise LeaseLost("another deskbot runner took the state store's lease while this one waited")
            return wait

        for holder in _wait_holders(connector):
            holder.sleep = fenced(holder.sleep)

    def admin_alert(self, text: str, key: str) -> None:
        """Tell the admin Slack channel (if configured) about the bot's own trouble, once per key."""
        channel = self.config.spec.settings.admin_channel
        send = getattr(self.notifier, "send", None)
        if not channel or send is None:
            return
        with suppress(StateError):  # a failing store is already logged and shown by /healthz
            send([Alert(key=f"deskbot/admin/{key}", ticket_key="deskbot:admin", rule="deskbot", channel=channel,
                        severity="critical", message=text, created_at=self.clock())])

    def _rules_rejected(self, rejected: Rejected) -> None:
        text = "rules file rejected; the last good rules keep running:\n" + "\n".join(rejected.problems)
        self.admin_alert(text, f"rules/{rejected.digest[:16]}")

    # -- jobs ------------------------------------------------------------------------
    def _job(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run one step; store, lease and unexpected errors are logged, never fatal to the loop."""
        self._acting.held = False
        try:
            result = fn()
        except StateError as error:
            self.metrics.set("deskbot_store_writable", 0)
            if self.store_error != str(error):
                self.store_error = str(error)
                event(self.log, "state store cannot record; acting paused", level=logging.ERROR, job=name,
                      error=str(error))
            return None
        except LeaseLost as error:
            event(self.log, "lease lost; standing by", level=logging.WARNING, job=name, error=str(error))
            return None
        except Exception:
            self.log.exception("unexpected error in %s (the loop goes on)", name)
            return None
        finally:
            self._acting.held = False
        if self.store_error is not None:
            event(self.log, "state store writable again", job=name)
            self.store_error = None
        self.metrics.set("deskbot_store_writable", 1)
        return result

    def poll(self, platform: str) -> CycleReport | None:
        """One poll cycle of one helpdesk (skipped while backing off after errors or without the lease)."""
        def step() -> CycleReport | None:
            now = self.clock()
            outage = self.outages[platform]
            if not outage.ready(now) or not self.holds_lease():
                return None
            report = self.cycles[platform].poll(now)
            self._after(platform, report, now)
            return report
        return self._job(f"poll {platform}", step)

    def tick(self) -> list[CycleReport]:
        """Re-evaluate due mirror tickets of every helpdesk (no API calls unless something fires)."""
        def step() -> list[CycleReport]:
            if not self.holds_lease():
                return []
            now = self.clock()
            reports = []
            for platform, cycle in self.cycles.items():
                if not self.outages[platform].ready(now):
                    continue
                report = cycle.evaluate(now)
                if report.evaluated or report.execution.settled or report.error:
                    self._after(platform, report, now, poll=False)
                reports.append(report)
            self._queue_health(now)
            return reports
        return self._job("tick", step) or []

    def _queue_health(self, now: datetime) -> None:
        """Recurring-issue alerts and scheduled reports: from the mirror and history, no helpdesk calls."""
        config = self.config
        alert_recurring(self.store, config, now, self.mode(config))
        transport = getattr(self.notifier, "transport", None)
        if config.spec.reports and transport is not None and getattr(transport, "api", None) is not None:
            run_due_reports(self.store, config, now, TransportPoster(transport))

    def deliver(self) -> Any:
        """Post what the outbox holds (lease holder only); never raises."""
        deliver = getattr(self.notifier, "deliver", None)
        if deliver is None:
            return None

        def step() -> Any:
            if not self.holds_lease():
                return None
            report = deliver(self.clock())
            for result in ("sent", "retrying", "dead", "ambiguous"):
                n = len(getattr(report, result, ()) or ())
                if n:
                    self.metrics.inc("deskbot_alerts_total", n, result=result)
            self.metrics.set("deskbot_outbox_pending", len(self.store.pending()))
            return report
        return self._job("deliver", step)

    def refresh_directories(self) -> None:
        """Re-read agents and groups of every helpdesk (slow interval)."""
        for platform, connector in self.connectors.items():
            def step(connector: Connector = connector) -> None:
                connector.directory(refresh=True)
            self._job(f"directory {platform}", step)

    def prune(self) -> None:
        """Forget finished work older than 30 days."""
        self._job("prune", lambda: self.store.prune(before=self.clock() - timedelta(days=30)))

    def _after(self, platform: str, report: CycleReport, now: datetime, *, poll: bool = True) -> None:
        outage = self.outages[platform]
        if report.error is not None:
            outage.failed(report.error, now)
            self.metrics.inc("deskbot_cycle_errors_total", helpdesk=platform, error=type(report.error).__name__)
        elif poll:
            outage.succeeded(now)
        if poll:
            self.metrics.inc("deskbot_cycles_total", helpdesk=platform)
        last_ok = self.cycles[platform].last_success_at
        self.metrics.set("deskbot_lag_seconds", (now - last_ok).total_seconds() if last_ok else -1, helpdesk=platform)
        self.metrics.set("deskbot_mirror_tickets", self.store.counts()["mirror"].get(platform, 0), helpdesk=platform)
        self.metrics.set("deskbot_rules_held", len(self.guard.held))
        ex = report.execution
        self.last[platform] = {
            "at": to_text(now), "fetched": report.fetched, "evaluated": report.evaluated, "planned": report.planned,
            "done": len(ex.done), "failed": len(ex.failed), "skipped": len(ex.skipped), "expired": len(ex.expired),
            "api_calls": report.api_calls, "error": str(report.error) if report.error else None,
            "last_success_at": to_text(last_ok), "failing_since": to_text(outage.since),
        }
        self.store.set_meta("runner_status", json.dumps(self.status(), default=str))

    # -- status ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What /healthz and `deskbot status` show; healthy unless the store cannot write or polls stalled."""
        now = self.clock()
        stalled = [p for p, c in self.cycles.items()
                   if (now - (c.last_success_at or self.started_at)).total_seconds() > 3 * self.intervals["poll"] + 120
                   and not self.outages[p].failures]
        return {
            "healthy": self.store_error is None and not stalled,
            "store": {"path": self.store.path, "writable": self.store_error is None, "error": self.store_error},
            "owner": self.owner, "started_at": to_text(self.started_at), "updated_at": to_text(now),
            "mode": self.mode(self.config).value, "rules": self.config.summary(),
            "rules_rejected": list(self.rules.rejected.problems) if self.rules.rejected else [],
            "held_rules": {n: i.describe() for n, i in self.guard.held.items()},
            "helpdesks": self.last, "stalled": stalled,
        }

    def status_checked(self) -> dict[str, Any]:
        """`status()` after proving the store can still write (for /healthz)."""
        try:
            self.store.probe_write(self.clock())
        except StateError as error:
            self.store_error = str(error)
            self.metrics.set("deskbot_store_writable", 0)
        return self.status()

    # -- driving --------------------------------------------------------------------------
    def run_once(self) -> list[CycleReport]:
        """One poll of every helpdesk, then one delivery round (`deskbot run --once`)."""
        reports = [r for r in (self.poll(p) for p in self.connectors) if r is not None]
        self.deliver()
        return reports

    def schedule(self) -> schedule.Scheduler:
        """The jobs on their intervals."""
        jobs = schedule.Scheduler()
        for platform in self.connectors:
            jobs.every(self.intervals["poll"]).seconds.do(self.poll, platform)
        jobs.every(self.intervals["tick"]).seconds.do(self.tick)
        jobs.every(self.intervals["directory"]).seconds.do(self.refresh_directories)
        jobs.every(6).hours.do(self.prune)
        return jobs

    def run(self, *, install_signals: bool = True) -> int:
        """Run until SIGTERM/SIGINT or `stop()`; returns the exit code."""
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        event(self.log, "runner started", owner=self.owner, helpdesks=",".join(self.connectors),
              mode=self.mode(self.config).value, store=self.store.path)
        delivery = threading.Thread(target=self._deliver_loop, name="deskbot-delivery", daemon=True)
        delivery.start()
        jobs = self.schedule()
        for platform in self.connectors:
            self.poll(platform)  # at once, not after the first interval
        while not self.stop_event.is_set():
            jobs.run_pending()
            idle = jobs.idle_seconds
            self.stop_event.wait(max(0.05, min(idle if idle is not None else 1.0, 1.0)))
        delivery.join(timeout=30)
        self.close()
        event(self.log, "runner stopped", owner=self.owner)
        return 0

    def _deliver_loop(self) -> None:
        while not self.stop_event.wait(self.options.deliver_interval):
            self.deliver()

    def stop(self) -> None:
        """Finish the current step, then exit the loop."""
        self.stop_event.set()

    def close(self) -> None:
        """Give the lease back and close the store."""
        with suppress(StateError):
            self.store.release_lease(self.owner)
        self.store.close()
