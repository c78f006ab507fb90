"""A `Report` as a terminal table (rich), Markdown, CSV or JSON.

All four draw from the same rows, so they never disagree. Ticket subjects are
helpdesk text: the terminal escapes rich markup, Markdown escapes table pipes
and line breaks, CSV and JSON carry them verbatim (csv quotes them).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.reports.report import AGING_LABELS, Report, ScopeReport, TicketRef, seconds, to_dict
from bot.rules.durations import format_duration

FORMATS = ("text", "markdown", "csv", "json")
_DASH = "–"
_WORDS = {"first_reply": "first reply", "resolution": "resolution"}


def percent(value: float | None, signed: bool = False) -> str:
    """0.123 → `12%` (`+12%` when signed); None → a dash."""
    if value is None:
        return _DASH
    return f"{value:+.0%}" if signed else f"{value:.0%}"


def duration(value: timedelta | None) -> str:
    """A short duration (`2h 30m`) or a dash."""
    return _DASH if value is None else format_duration(value)


def versus_normal(scope: ScopeReport) -> str:
    """The backlog against its weekday normal, e.g. `+18% vs 34 (4 wk) ⚠`."""
    backlog = scope.backlog
    if backlog.normal is None:
        return "no normal yet"
    mark = " ⚠" if backlog.flagged else ""
    change = percent(backlog.change, signed=True) if backlog.change is not None else f"{backlog.open} vs 0"
    return f"{change} vs {backlog.normal:g} ({backlog.weeks} wk){mark}"


def period_line(report: Report) -> str:
    """`2026-03-01 10:00 → 2026-03-02 10:00 UTC`."""
    fmt = "%Y-%m-%d %H:%M"
    return f"{report.period.start.strftime(fmt)} → {report.period.end.strftime(fmt)} UTC"


# -- shared rows ---------------------------------------------------------------------------------

Section = tuple[str, list[str], list[list[str]]]  # title, header, rows


def sections(report: Report) -> Iterator[Section]:
    """Every table of the report in display order (the main scope's details after the summary)."""
    yield "Summary", ["Scope", "Created", "Solved", "Reopened", "Backlog", "vs normal", "Unassigned",
                      "Repeat contacts"], [
        [s.name, str(s.created), str(s.solved), str(s.reopened), str(s.backlog.open), versus_normal(s),
         str(s.unassigned), f"{percent(s.repeats.rate)} ({s.repeats.repeats}/{s.repeats.with_requester})"]
        for s in report.scopes]
    main = report.main
    yield f"Aging of open tickets, in {main.time_basis}", list(AGING_LABELS), [[str(n) for n in main.aging]]
    yield "SLA adherence", ["Target", "Reached", "Met", "Median", "90th pct", "Breached", "Near misses"], [
        [_WORDS.get(t.target, t.target), str(t.completed), f"{percent(t.share_met)} ({t.met}/{t.with_deadline})",
         duration(t.median), duration(t.p90), str(t.breached), str(t.near_misses)] for t in main.sla]
    yield "Breaches", ["Ticket", "Subject", "Detail"], _refs(main.breaches)
    yield "Near misses", ["Ticket", "Subject", "Detail"], _refs(main.near_misses)
    yield "Open tickets per agent", ["Agent", "Open", "Robust z", "Unusual"], [
        [a.agent, str(a.open), f"{a.z:+.1f}", a.flag] for a in main.agents]
    yield f"Unassigned ({main.unassigned}), oldest", ["Ticket", "Subject", "Detail"], _refs(main.unassigned_oldest)
    if report.team is None:  # a team's tickets always have a group
        yield f"No group ({main.no_group}), oldest", ["Ticket", "Subject", "Detail"], _refs(main.no_group_oldest)
    yield "Top tags", ["Tag", "New tickets"], [[tag, str(n)] for tag, n in main.top_tags]
    yield "What deskbot did", ["Rule", "Actions", "Alerts", "Dry run", "Failed"], [
        [a.rule, str(a.actions), str(a.alerts), str(a.dry_run), str(a.failed)] for a in main.activity]


def _refs(refs: tuple[TicketRef, ...]) -> list[list[str]]:
    return [[r.key, " ".join(r.subject.split()), r.detail] for r in refs]  # one line per ticket


# -- formats -------------------------------------------------------------------------------------


def render_text(report: Report, width: int = 110) -> str:
    """Readable terminal tables (plain text when not a terminal)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False, emoji=False)
    print_report(report, console)
    return buffer.getvalue()


def print_report(report: Report, console: Console) -> None:
    """Draw the report on a rich console."""
    console.print(f"[bold]{escape(report.title)}[/]")
    console.print(period_line(report))
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    for title, header, rows in sections(report):
        table = Table(title=escape(title), title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
        for index, name in enumerate(header):
            table.add_column(escape(name), justify="left" if index == 0 or name in ("Subject", "Detail") else "right",
                             overflow="fold")
        for row in rows or [[_DASH] + [""] * (len(header) - 1)]:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)


def render_markdown(report: Report) -> str:
    """GitHub-flavoured Markdown with one table per section."""
    out = [f"# {_md(report.title)}", "", period_line(report), ""]
    out += [f"> note: {_md(note)}" for note in report.notes]
    for title, header, rows in sections(report):
        out += ["", f"## {_md(title)}", ""]
        if not rows:
            out.append("_none_")
            continue
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join("---" if i == 0 else "---:" if h not in ("Subject", "Detail") else "---"
                                  for i, h in enumerate(header)) + "|")
        out += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def _md(text: str) -> str:
    """Inert, table-safe Markdown: styling and link characters and pipes escaped, one line, no HTML."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split())).replace("<", "&lt;").replace(">", "&gt;")


def render_csv(report: Report) -> str:
    """Long-format CSV: scope, section, item, metric, value (one number per row, easy to pivot)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["scope", "section", "item", "metric", "value"])
    for scope in report.scopes:
        for row in _csv_rows(scope):
            writer.writerow([scope.name, *row])
    return buffer.getvalue()


def _csv_rows(scope: ScopeReport) -> Iterator[list[object]]:
    def value(v: object) -> object:
        return "" if v is None else v

    yield from (["flow", "", name, n] for name, n in
                (("created", scope.created), ("solved", scope.solved), ("reopened", scope.reopened)))
    b = scope.backlog
    yield from (["backlog", "", name, value(v)] for name, v in (
        ("open", b.open), ("normal", b.normal), ("normal_low", b.low), ("normal_high", b.high),
        ("weeks", b.weeks), ("change", None if b.change is None else round(b.change, 4)),
        ("flagged", int(b.flagged))))
    yield from (["aging", label, "open", n] for label, n in zip(AGING_LABELS, scope.aging, strict=True))
    for t in scope.sla:
        for name, v in (("reached", t.completed), ("with_deadline", t.with_deadline), ("met", t.met),
                        ("share_met", None if t.share_met is None else round(t.share_met, 4)),
                        ("median_seconds", seconds(t.median)), ("p90_seconds", seconds(t.p90)),
                        ("breached", t.breached), ("near_misses", t.near_misses)):
            yield ["sla", t.target, name, value(v)]
    for a in scope.agents:
        yield ["agents", a.agent, "open", a.open]
        if a.flag:
            yield ["agents", a.agent, "unusual", a.flag]
    yield ["queue", "", "unassigned", scope.unassigned]
    yield ["queue", "", "no_group", scope.no_group]
    r = scope.repeats
    yield ["repeat_contacts", "", "repeats", r.repeats]
    yield ["repeat_contacts", "", "with_requester", r.with_requester]
    yield ["repeat_contacts", "", "rate", value(None if r.rate is None else round(r.rate, 4))]
    yield from (["top_tags", tag, "new_tickets", n] for tag, n in scope.top_tags)
    for a in scope.activity:
        for name in ("actions", "alerts", "dry_run", "failed"):
            yield ["activity", a.rule, name, getattr(a, name)]


def render_json(report: Report) -> str:
    """The report as indented JSON (see `bot.reports.report.to_dict`)."""
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {
    "text": render_text, "markdown": render_markdown, "csv": render_csv, "json": render_json,
}
