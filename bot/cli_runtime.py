"""The runtime commands: `run`, `status`, `audit`, `confirm` and `demo` (registered by `bot.cli`).

Errors are printed as the lines that say what to fix, with exit code 2 for a
setup problem (rules file, credentials, state file) and 1 for a failed cycle.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from bot.errors import ConfigError, StateError

DEFAULT_CONFIG = "config/rules.yaml"


def _fail(lines: list[str] | str, code: int = 2) -> None:
    for line in [lines] if isinstance(lines, str) else lines:
        click.echo(f"deskbot: {line}", err=True)
    sys.exit(code)


def _state_path(option: str | None, config: object | None = None) -> str:
    """--state, else DESKBOT_STATE_PATH, else the rules file's settings.state_path, else the default."""
    if option:
        return option
    if os.environ.get("DESKBOT_STATE_PATH"):
        return os.environ["DESKBOT_STATE_PATH"]
    settings = getattr(getattr(config, "spec", None), "settings", None)
    return getattr(settings, "state_path", None) or "deskbot-state/deskbot.sqlite3"


def _open_store(path: str, *, must_exist: bool = True):
    from bot.state.sqlite import SqliteStore

    if must_exist and not Path(path).exists():
        _fail(f"no state store at {path}: has `deskbot run` been started here? (or pass --state PATH)")
    try:
        return SqliteStore(path)
    except StateError as error:
        _fail(str(error))


_config_option = click.option("--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
                              type=click.Path(dir_okay=False), help="The rules file.")
_state_option = click.option("--state", "state_path", default=None, type=click.Path(dir_okay=False),
                             help="The state file (default: $DESKBOT_STATE_PATH or settings.state_path).")


@click.command("run")
@_config_option
@_state_option
@click.option("--once", is_flag=True, help="Poll every helpdesk once, deliver alerts, and exit.")
@click.option("--dry-run", is_flag=True, help="Plan and audit only; change nothing, post nothing.")
@click.option("--confirm", multiple=True, metavar="RULE", help="Confirm a rule held by the blast-radius guard.")
@click.option("--health-port", type=int, default=lambda: int(os.environ.get("DESKBOT_HEALTH_PORT") or 0) or None,
              help="Serve /healthz and /metrics on 127.0.0.1:PORT ($DESKBOT_HEALTH_PORT).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log lines as key=value text or JSON (default: settings.log_format).")
def run_command(config_path: str, state_path: str | None, once: bool, dry_run: bool, confirm: tuple[str, ...],
                health_port: int | None, log_format: str | None) -> None:
    """Watch the helpdesks and apply the rules, until stopped (SIGTERM/SIGINT finish the current step)."""
    from bot.runner import RunOptions
    from bot.runtime.assemble import build_runner

    options = RunOptions(config_path=config_path, dry_run=dry_run, state_path=state_path, health_port=health_port,
                         confirm=confirm)
    try:
        runner, health = build_runner(options, log_format=log_format)
    except ConfigError as error:
        _fail(error.problems)
    except StateError as error:
        _fail(str(error))
    try:
        if once:
            reports = runner.run_once()
            runner.close()
            for report in reports:
                ex = report.execution
                click.echo(f"{report.platform}: {report.fetched} changed, {report.evaluated} evaluated, "
                           f"{report.planned} planned, {len(ex.done)} done, {len(ex.failed)} failed, "
                           f"{len(ex.skipped)} skipped, {report.api_calls} API calls"
                           + (f"; error: {report.error}" if report.error else ""))
            sys.exit(1 if any(r.error for r in reports) or len(reports) < len(runner.connectors) else 0)
        sys.exit(runner.run())
    finally:
        if health is not None:
            health.stop()


@click.command("status")
@_config_option
@_state_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(config_path: str, state_path: str | None, as_json: bool) -> None:
    """What the runner is doing: lease holder, last cycles, queue sizes, held rules, recent failures."""
    from bot.runtime.report import status_data, status_lines

    store = _open_store(_state_path(state_path, _quiet_config(config_path)))
    data = status_data(store, datetime.now(UTC))
    store.close()
    click.echo(json.dumps(data, indent=2, default=str) if as_json else "\n".join(status_lines(data)))


@click.command("audit")
@_config_option
@_state_option
@click.option("--ticket", default=None, help="A ticket id (123) or key (zendesk:123).")
@click.option("--rule", default=None, help="A rule name.")
@click.option("--since", default=None, help="Only this recent, e.g. 1d, 4h, 30m.")
@click.option("--limit", default=200, show_default=True, help="At most this many lines (the newest).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit_command(config_path: str, state_path: str | None, ticket: str | None, rule: str | None,
                  since: str | None, limit: int, as_json: bool) -> None:
    """Every action planned and performed, newest last: time, mode, result, rule, ticket, action, detail."""
    from bot.rules.durations import DurationError, parse_duration
    from bot.runtime.report import audit_entries, audit_line

    try:
        since_at = datetime.now(UTC) - parse_duration(since) if since else None
    except DurationError as error:
        _fail(f"--since: {error}")
    store = _open_store(_state_path(state_path, _quiet_config(config_path)))
    entries = audit_entries(store, ticket=ticket, rule=rule, since=since_at, limit=limit)
    store.close()
    for entry in entries:
        click.echo(json.dumps(entry, default=str) if as_json else audit_line(entry))
    if not entries and not as_json:
        click.echo("no audit entries match", err=True)


@click.command("confirm")
@_config_option
@_state_option
@click.argument("rules", nargs=-1, required=True)
def confirm_command(config_path: str, state_path: str | None, rules: tuple[str, ...]) -> None:
    """Let rules held by the blast-radius guard act (this exact version of each); a running bot picks it up."""
    from bot.config import load_config
    from bot.runtime.blast import fingerprints

    try:
        config = load_config(config_path)
    except ConfigError as error:
        _fail(error.problems)
    prints = fingerprints(config)
    unknown = [r for r in rules if r not in prints]
    if unknown:
        _fail([f"no rule named {name!r} in {config_path} (rules: {', '.join(prints)})" for name in unknown])
    store = _open_store(_state_path(state_path, config), must_exist=False)
    for name in rules:
        store.confirm_rule(name, prints[name], now=datetime.now(UTC))
        click.echo(f"confirmed {name!r} (version {prints[name]})")
    store.close()


@click.command("demo")
@_config_option
@click.option("--duration", default=60.0, show_default=True, help="Real seconds to run.")
@click.option("--speed", default=120.0, show_default=True, help="Simulated seconds per real second.")
@click.option("--tickets", default=300, show_default=True, help="Size of the seeded queue.")
@click.option("--seed", "seed_value", default=7, show_default=True, help="Seed of the generated queue.")
def demo_command(config_path: str, duration: float, speed: float, tickets: int, seed_value: int) -> None:
    """A minute of deskbot on a sandbox Zendesk and Slack: routing, SLA alerts, escalation, digests."""
    from bot.runtime.demo import Demo

    try:
        summary = Demo(config_path, duration=duration, speed=speed, tickets=tickets, seed=seed_value).run()
    except ConfigError as error:
        _fail(error.problems)
    sys.exit(0 if summary.ok else 1)


def _quiet_config(path: str) -> object | None:
    """The rules file if it loads (for settings.state_path); status and audit work without it."""
    from bot.config import load_config

    try:
        return load_config(path)
    except ConfigError:
        return None


COMMANDS = [run_command, status_command, audit_command, confirm_command, demo_command]
