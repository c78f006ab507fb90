"""`deskbot report daily|weekly`: queue health from the state store, in the terminal, as a file, or in Slack.

Reads only the state file (mirror, ticket history, audit log): never a helpdesk
API. Exit code 2 for a setup problem (rules file, state file, Slack settings),
1 when the Slack post fails.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console

from bot.errors import ConfigError, NotifierError, StateError
from bot.reports.render import FORMATS, RENDERERS, print_report

DEFAULT_CONFIG = "config/rules.yaml"


def _fail(lines: list[str] | str, code: int = 2) -> None:
    for line in [lines] if isinstance(lines, str) else lines:
        click.echo(f"deskbot: {line}", err=True)
    sys.exit(code)


@click.command("report")
@click.argument("kind", type=click.Choice(["daily", "weekly"]))
@click.option("--team", default=None, help="One team (a name under `teams:`); default: every team and overall.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text: tables for a terminal; markdown, csv or json for files and other tools.")
@click.option("--slack", "channel", default=None, metavar="CHANNEL",
              help="Also post the summary and chart to this Slack channel (needs SLACK_BOT_TOKEN).")
@click.option("--config", "config_path", default=DEFAULT_CONFIG, show_default=True, type=click.Path(dir_okay=False),
              help="The rules file.")
@click.option("--state", "state_path", default=None, type=click.Path(dir_okay=False),
              help="The state file (default: $DESKBOT_STATE_PATH or settings.state_path).")
@click.option("--at", "at_text", default=None, help="Report as of this time (ISO 8601, UTC if no zone); default: now.")
@click.option("--calendar", default=None, help="Measure ages in this calendar (a name under `calendars:`).")
@click.option("--output", "-o", "output", default=None, type=click.Path(dir_okay=False),
              help="Write the report to this file instead of the terminal.")
def report(kind: str, team: str | None, fmt: str, channel: str | None, config_path: str, state_path: str | None,
           at_text: str | None, calendar: str | None, output: str | None) -> None:
    """Queue health for the last day or week: flow, backlog against its normal, aging, SLA, load, repeats, tags."""
    from bot.config import load_config
    from bot.reports.source import make_report
    from bot.state.sqlite import SqliteStore

    try:
        config = load_config(config_path)
    except ConfigError as error:
        _fail([*error.problems, f"{config_path}: fix the rules file first (deskbot check)"])
    now = _time(at_text)
    path = state_path or os.environ.get("DESKBOT_STATE_PATH") or config.spec.settings.state_path
    if not Path(path).exists():
        _fail(f"no state store at {path}: has `deskbot run` been started here? (or pass --state PATH)")
    poster = None
    if channel:
        from bot.reports.slack import TransportPoster

        try:
            poster = TransportPoster.from_env()
        except NotifierError as error:
            _fail(str(error))
    try:
        store = SqliteStore(path)
        try:
            built = make_report(store, config, kind, now, team=team, calendar=calendar)  # type: ignore[arg-type]
        finally:
            store.close()
    except StateError as error:
        _fail(str(error))
    except ValueError as error:  # unknown team or calendar
        _fail(str(error))
    if output:
        Path(output).write_text(RENDERERS[fmt](built), encoding="utf-8")
        click.echo(f"wrote {built.title} to {output}", err=True)
    elif fmt == "text":
        print_report(built, Console(highlight=False))
    else:
        click.echo(RENDERERS[fmt](built), nl=False)
    if poster is not None and channel:
        from bot.reports.slack import post_report

        try:
            posted = post_report(poster, built, channel)
        except NotifierError as error:
            _fail(str(error), code=1)
        extra = "" if posted.chart else f" (chart not posted: {posted.chart_error})"
        click.echo(f"posted to {channel} (message {posted.ts}){extra}", err=True)


def _time(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        _fail(f"--at: '{text}' is not an ISO 8601 time (e.g. 2026-03-02T08:30:00Z)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


COMMANDS = [report]
