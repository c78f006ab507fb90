"""The same alerts, threads, digests and resolutions as Slack, printed in a terminal (demo, dry run).

Ticket text is never parsed as rich markup: it goes into `Text` objects (so
`[bold]` or `[link=…]` in a subject prints literally), and terminal control
sequences (ESC, bidi overrides, …) are dropped so a subject cannot repaint
the screen.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.style import Style
from rich.table import Table
from rich.text import Text

from bot.notifiers import content
from bot.notifiers.base import Alert, Outbox
from bot.notifiers.blocks import Resolved
from bot.notifiers.delivery import OutboxNotifier, Pacer, Posted

ICONS = {"info": "ℹ", "warning": "⚠", "critical": "🚨"}
COLORS = {"info": "blue", "warning": "yellow", "critical": "red"}
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_SAFE_URL = re.compile(r"^https?://[^\s<>\"]+$", re.IGNORECASE)


def plain(value: object, *, multiline: bool = False) -> str:
    """Ticket text safe for a terminal: no control or bidi characters; one line unless `multiline`."""
    text = "" if value is None else str(value)
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    else:
        text = " ".join(text.split())
    return _UNSAFE.sub("", text).strip()


def _subject(alert: Alert) -> Text:
    subject = plain(alert.ticket.subject) or "(no subject)"
    url = alert.ticket.url if _SAFE_URL.match(alert.ticket.url or "") else ""
    text = Text(subject, style=Style(bold=True, link=url or None))
    text.append(f"  {alert.ticket_key}", style="dim")
    if url:
        text.append(f"\n{url}", style="dim underline")
    return text


def _details(alert: Alert, now: datetime, mentions: Sequence[str], *, about_ticket: bool) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, value in content.ticket_fields(alert) if about_ticket else ():
        grid.add_row(label, Text(plain(value)))
    if alert.sla is not None:
        clock, when = content.sla_lines(alert.sla, now)
        color = "red" if content.sla_breached(alert.sla, now) else "yellow"
        grid.add_row("SLA", Text(clock, style=color) + Text(f"  ({when})" if when else "", style="dim"))
    if alert.ticket.tags:
        grid.add_row("Tags", Text(", ".join(plain(t) for t in alert.ticket.tags)))
    if alert.reason:
        grid.add_row("Why", Text(plain(alert.reason, multiline=True)))
    if mentions:
        grid.add_row("cc", Text(" ".join(mentions)))
    return grid


class ConsoleTransport:
    """Prints what would be posted; ts values are local counters so threads and updates still work."""

    supports_threads = True

    def __init__(self, console: Console | None = None):
        self.console = console or Console()
        self._ts = itertools.count(1)

    def destination(self, alert: Alert) -> str:
        """The destination as configured (no lookups in a dry run)."""
        if alert.channel:
            return "#" + alert.channel.lstrip("#")
        return f"@{alert.user}" if alert.user else "#default"

    def _next(self, channel: str) -> Posted:
        n = next(self._ts)
        return Posted(channel, f"{n}.{n:06d}")

    def post_alert(self, channel: str, alert: Alert, *, now: datetime, thread_ts: str | None,
                   repeat: bool) -> Posted:
        """Print one alert as a panel (indented when it is a thread reply)."""
        color = COLORS.get(alert.severity, "yellow")
        title = Text(f"{ICONS.get(alert.severity, '⚠')} {alert.rule} · "
                     f"{content.SEVERITY_LABELS.get(alert.severity, 'Warning')}", style=f"bold {color}")
        about_ticket = bool(alert.ticket.subject or alert.ticket.url)
        parts: list = [_subject(alert), Text("")] if about_ticket else []
        message = content.render_template(alert, plain) if alert.template else alert.message
        if message.strip():
            parts += [Text(plain(message, multiline=True)), Text("")]
        parts.append(_details(alert, now, list(alert.mention), about_ticket=about_ticket))
        footer = f"deskbot · rule {alert.rule} · {alert.ticket_key}"
        if repeat:
            footer += " · may repeat an earlier post"
        panel = Panel(Group(*parts), title=title, title_align="left", subtitle=Text(footer, style="dim"),
                      subtitle_align="left", border_style=color)
        if thread_ts:
            self.console.print(Text(f"  ↳ {channel} · in the thread of {alert.ticket_key}", style="dim"))
            self.console.print(Padding(panel, (0, 0, 0, 4)))
        else:
            self.console.print(Text(channel, style="bold"))
            self.console.print(panel)
        return self._next(channel)

    def post_digest(self, channel: str, alerts: Sequence[Alert], *, now: datetime, repeat: bool) -> Posted:
        """Print a digest as one table."""
        first = alerts[0]
        color = COLORS.get(first.severity, "yellow")
        table = Table(box=None, show_edge=False, pad_edge=False)
        for column in ("Ticket", "Subject", "Priority", "Group", "Assignee", "SLA"):
            table.add_column(column, overflow="fold")
        for alert in alerts:
            sla = content.sla_lines(alert.sla, now)[0] if alert.sla else ""
            table.add_row(alert.ticket_key, Text(plain(alert.ticket.subject)), Text(plain(alert.ticket.priority)),
                          Text(plain(alert.ticket.group)), Text(plain(alert.ticket.assignee) or "unassigned"),
                          Text(sla))
        mentions = list(dict.fromkeys(m for a in alerts for m in a.mention))
        body = Group(table, Text(f"cc {' '.join(mentions)}" if mentions else ""))
        title = Text(f"{ICONS.get(first.severity, '⚠')} {first.rule} · {len(alerts)} tickets", style=f"bold {color}")
        self.console.print(Text(channel, style="bold"))
        self.console.print(Panel(body, title=title, title_align="left", border_style=color,
                                 subtitle=Text(f"deskbot · rule {first.rule} · grouped", style="dim"),
                                 subtitle_align="left"))
        return self._next(channel)

    def update(self, channel: str, ts: str, alerts: Sequence[Alert], resolved: Mapping[str, Resolved], *,
               now: datetime, digest: bool) -> None:
        """Print the updated state of an earlier message: which of its tickets are resolved."""
        done = [a for a in alerts if a.ticket_key in resolved]
        line = Text(f"✔ {channel} · ", style="green")
        if digest:
            line.append(f"{alerts[0].rule} digest: {len(done)} of {len(alerts)} resolved: ")
        for i, alert in enumerate(done):
            line.append(", " if i else "")
            line.append(f"{alert.ticket_key} ")
            line.append(Text(plain(alert.ticket.subject)))
            line.append(Text(f" — {plain(resolved[alert.ticket_key].how) or 'resolved'}", style="bold"))
        self.console.print(line)


class ConsoleNotifier(OutboxNotifier):
    """A `Notifier` that prints alerts with rich instead of posting them."""

    def __init__(self, console: Console | None = None, outbox: Outbox | None = None, *, digest_threshold: int = 5,
                 **options: Any):
        options.setdefault("pacer", Pacer(interval=0.0))  # a terminal has no rate limit
        super().__init__(ConsoleTransport(console), outbox, digest_threshold=digest_threshold, **options)
