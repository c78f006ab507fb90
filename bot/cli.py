"""The `deskbot` command line: check, schema, explain and test rules; the runtime adds run, demo, status, audit."""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from bot.config import DEFAULT_PATH, Config, load_config
from bot.errors import ConfigError
from bot.rules.conditions import Verdict
from bot.rules.engine import RuleExplanation, explain
from bot.rules.schema import json_schema
from bot.rules.templates import format_value
from bot.rules.testing import CaseError, parse_time, run_file, ticket_from_dict

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_PATH,
    show_default=True, help="The rules file.",
)


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as error:
        for line in error.problems:
            click.echo(line, err=True)
        count = len(error.problems)
        click.echo(f"{path}: {count} problem{'s' if count != 1 else ''}; nothing was loaded", err=True)
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deskbot")
def cli() -> None:
    """deskbot watches a Zendesk or Freshdesk queue: routes tickets, catches SLA breaches, alerts in Slack."""


@cli.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@config_option
@click.option("--against-mirror", is_flag=True,
              help="Also count how much of the mirrored queue each rule matches now, and which new rules the "
                   "blast-radius guard would hold (exit 1 if any).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False), help="The state file for --against-mirror "
              "(default: $DESKBOT_STATE_PATH or settings.state_path).")
def check(path: Path | None, config_path: Path, against_mirror: bool, state_path: str | None) -> None:
    """Validate a rules file: every problem with file:line:col, or a one-line summary."""
    config = _load(path or config_path)
    click.echo(config.summary())
    if against_mirror:
        sys.exit(_check_against_mirror(config, state_path))


def _check_against_mirror(config: Config, state_path: str | None) -> int:
    """Print each rule's reach over the mirror; 1 when the blast-radius guard would hold a rule."""
    from bot.cli_runtime import _open_store, _state_path
    from bot.runtime.blast import KNOWN_META, assess

    store = _open_store(_state_path(state_path, config))
    try:
        known = json.loads(store.get_meta(KNOWN_META) or "{}")
        impacts = assess(config, store.mirror().values(), datetime.now(UTC), known=known,
                         confirmed=store.confirmations())
    finally:
        store.close()
    for impact in impacts:
        click.echo(impact.describe())
    held = [i for i in impacts if i.held]
    if held:
        click.echo(f"{len(held)} rule{'s' if len(held) != 1 else ''} would be held until confirmed "
                   f"(limit: {config.spec.settings.blast_radius:.0%} of the queue)")
    return 1 if held else 0


@cli.command()
def schema() -> None:
    """Print the rules file's JSON Schema (for yaml-language-server and editors)."""
    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


@cli.command("explain")
@click.argument("ticket")
@config_option
@click.option("--now", "now_text", help="Evaluate at this time (ISO 8601); default: now.")
@click.option("--platform", type=click.Choice(["zendesk", "freshdesk"]),
              help="Which helpdesk a ticket id belongs to, when several are configured.")
def explain_command(ticket: str, config_path: Path, now_text: str | None, platform: str | None) -> None:
    """Show, rule by rule, every condition with the ticket's actual value and whether it held.

    TICKET is a JSON file with the ticket's fields (as in rule test files), or a
    ticket id read from the helpdesk through its connector (credentials from the
    environment, as for `deskbot run`).
    """
    config = _load(config_path)
    now = parse_time(now_text, datetime.now(UTC)) if now_text else datetime.now(UTC)
    loaded = _ticket_from_argument(ticket, now, config, platform)
    console = Console(highlight=False)
    console.print(f"[bold]{escape(loaded.key)}[/] {escape(loaded.subject)!s}  at {now.isoformat()}")
    _print_clocks(console, loaded, now, config)
    held = _guard_holds(loaded, now, config)
    for item in explain(loaded, now, config):
        console.print(_explanation_tree(item))
        for line in held.get(item.rule.name, ()):
            console.print(f"    [yellow]held back:[/] {escape(line)}")


def _team_timezone(config: Config, ticket) -> str:
    """The time zone of the team whose group the ticket is in (UTC when none)."""
    group = (ticket.group or "").casefold()
    return next((t.timezone for t in config.spec.teams.values() if t.group.casefold() == group), "UTC")


def _print_clocks(console: Console, ticket, now: datetime, config: Config) -> None:
    """Each SLA clock of the ticket, its deadline in the team's time zone, and where it stands."""
    if not config.spec.sla_policies:
        return
    from zoneinfo import ZoneInfo

    from bot.rules.durations import format_duration
    from bot.rules.sla_fields import bind

    clocks = bind(config.spec).clocks(ticket, now)
    zone_name = _team_timezone(config, ticket)
    if not clocks:
        console.print("[dim]no SLA policy applies to this ticket[/]")
        return
    zone = ZoneInfo(zone_name)
    for clock in clocks.values():
        due = clock.deadline.astimezone(zone).strftime("%a %Y-%m-%d %H:%M") if clock.deadline else "none while paused"
        late = format_duration(clock.breached_for)
        if clock.stopped:
            state = f"[red]stopped {late} after its deadline[/]" if clock.breached else "[green]met[/]"
        elif clock.breached:
            state = f"[red]breached for {late}[/]"
        else:
            left = f"{format_duration(clock.remaining)} left ({clock.elapsed_percent:.0f}% used)"
            state = f"paused, {left}" if clock.paused else left
        console.print(f"SLA {clock.target} ({escape(clock.policy)}): due {due} {zone_name}: {state}")


def _guard_holds(ticket, now: datetime, config: Config) -> dict[str, list[str]]:
    """Recent actions on this ticket that a guard held back (ping-pong, blast radius), from the audit log."""
    from bot.cli_runtime import _state_path

    path = Path(_state_path(None, config))
    if not path.exists():
        return {}
    from bot.state.sqlite import SqliteStore

    store = SqliteStore(str(path))
    try:
        entries = store.audit_log(ticket_key=ticket.key, since=now - timedelta(days=7))
    finally:
        store.close()
    held: dict[str, list[str]] = {}
    for entry in entries:
        if entry.result == "skipped" and ("ping-pong" in entry.detail or "held" in entry.detail):
            held.setdefault(entry.rule, []).append(f"{entry.at:%Y-%m-%d %H:%M} {entry.detail}")
    return held


def _ticket_from_argument(argument: str, now: datetime, config: Config, platform: str | None):
    path = Path(argument)
    if path.suffix == ".json" or path.exists():
        try:
            return ticket_from_dict(json.loads(path.read_text(encoding="utf-8")), now)
        except (OSError, json.JSONDecodeError, CaseError, ValueError) as error:
            raise click.ClickException(f"{argument}: {error}") from None
    if argument.isdigit():
        return _read_ticket(int(argument), config, platform)
    raise click.ClickException(f"{argument}: not a JSON file and not a ticket id")


def _read_ticket(ticket_id: int, config: Config, platform: str | None):
    """One ticket through its helpdesk's connector (one batched read, no writes)."""
    from bot.errors import ConnectorError
    from bot.runtime.helpdesks import build_connectors, choose

    try:
        platforms = [platform] if platform else choose(config)
        if len(platforms) > 1:
            raise click.ClickException(f"several helpdesks are configured ({', '.join(platforms)}): "
                                       "pass --platform")
        connector = build_connectors(platforms, config)[platforms[0]]
        found = connector.get_tickets([ticket_id])
    except ConfigError as error:
        raise click.ClickException("; ".join(error.problems)) from None
    except ConnectorError as error:
        raise click.ClickException(str(error)) from None
    if not found:
        raise click.ClickException(f"{platforms[0]} ticket {ticket_id} was not found")
    return found[0]


def _explanation_tree(item: RuleExplanation) -> Tree:
    rule = item.rule
    if item.verdict is None:
        return Tree(f"[dim]- {escape(rule.name)}: {escape(item.note)}[/]")
    mark = "[green]✔ matches[/]" if item.matched else "[red]✘ no match[/]"
    fire = " → [bold]fires[/]: " + escape(", ".join(a.summary for a in rule.actions)) if item.would_fire else ""
    note = f" [dim]({escape(item.note)})[/]" if item.note else ""
    tree = Tree(f"{mark} [bold]{escape(rule.name)}[/]{fire}{note}")
    _add_verdict(tree, item.verdict)
    return tree


def _add_verdict(parent: Tree, verdict: Verdict) -> None:
    mark = "[green]✔[/]" if verdict.held else "[red]✘[/]"
    if verdict.children:
        branch = parent.add(f"{mark} {verdict.text}")
        for child in verdict.children:
            _add_verdict(branch, child)
    else:
        seen = format_value(verdict.value) or "(empty)"
        parent.add(f"{mark} {escape(verdict.text)}   [dim]actual: {escape(seen)}[/]")


@cli.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@config_option
def test_command(paths: tuple[Path, ...], config_path: Path) -> None:
    """Run rule test files (default: the tests/ folder beside the rules file); exit 1 on failure."""
    config = _load(config_path)
    files: list[Path] = []
    for path in paths or (config_path.parent / "tests",):
        files.extend(sorted(path.glob("*.y*ml")) if path.is_dir() else [path])
    if not files:
        click.echo(f"no rule test files found (looked in {', '.join(map(str, paths)) or config_path.parent / 'tests'})",
                   err=True)
        sys.exit(1)
    passed = failed = 0
    for file in files:
        for result in run_file(file, config):
            if result.passed:
                passed += 1
                click.echo(f"{result.file}::{result.name} " + click.style("PASSED", fg="green"))
            else:
                failed += 1
                click.echo(f"{result.file}::{result.name} " + click.style("FAILED", fg="red"))
                for problem in result.problems:
                    click.echo("    " + problem.replace("\n", "\n    "))
    summary = f"{passed} passed, {failed} failed"
    click.echo(click.style(summary, fg="red" if failed else "green", bold=True))
    sys.exit(1 if failed else 0)


def _register_runtime() -> None:
    """Add run, demo, status, audit and report, which live beside the runtime they drive."""
    from bot import cli_reports, cli_runtime

    for command in [*cli_runtime.COMMANDS, *cli_reports.COMMANDS]:
        cli.add_command(command)


with contextlib.suppress(ImportError):  # only while the runtime package is being built
    _register_runtime()


def main() -> None:
    """Console entry point."""
    cli()
