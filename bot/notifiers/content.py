"""What an alert says, independent of where it is shown, so Slack and the console agree.

Values stay raw (untrusted) here; each renderer escapes them for its own
markup (Slack mrkdwn, rich markup) at the last moment.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.notifiers.base import Alert, SlaClock

log = logging.getLogger(__name__)

SEVERITY_LABELS = {"info": "Info", "warning": "Warning", "critical": "Critical"}
_TARGET_LABELS = {"first_reply": "First reply", "next_reply": "Next reply", "resolution": "Resolution",
                  "sla": "SLA"}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_\- ]+)?)\s*\}\}")


def target_label(target: str) -> str:
    """`first_reply` -> "First reply"; unknown targets are humanised."""
    return _TARGET_LABELS.get(target) or target.replace("_", " ").replace(".", " ").strip().capitalize() or "SLA"


def format_duration(seconds: float) -> str:
    """A compact duration a supervisor reads at a glance: 45s, 12m, 2h 05m, 3d 4h."""
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def zone(name: str) -> ZoneInfo:
    """The team's time zone; UTC (with a warning) when the name is unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r in an alert's SLA; showing UTC", name)
        return ZoneInfo("UTC")


def local_time(moment: datetime, timezone: str) -> str:
    """A deadline as the team reads it, e.g. "Tue 04 Jun 14:30 CEST"."""
    return moment.astimezone(zone(timezone)).strftime("%a %d %b %H:%M %Z")


def sla_lines(sla: SlaClock, now: datetime) -> tuple[str, str]:
    """(clock, deadline) lines: ("First reply breached for 2h 05m", "was due Tue 04 Jun 12:10 CEST")."""
    remaining = sla.remaining_at(now)
    label = target_label(sla.target)
    deadline = sla.deadline
    if remaining > 0:
        clock = f"{label} due in {format_duration(remaining)}"
        when = f"by {local_time(deadline, sla.timezone)}" if deadline else ""
    else:
        clock = f"{label} breached for {format_duration(remaining)}"
        when = f"was due {local_time(deadline, sla.timezone)}" if deadline else ""
    return clock, when


def sla_breached(sla: SlaClock, now: datetime) -> bool:
    """True once the clock has run out."""
    return sla.remaining_at(now) <= 0


def ticket_fields(alert: Alert) -> list[tuple[str, str]]:
    """(label, raw value) pairs shown for every alert; empty values become an em dash."""
    t = alert.ticket
    pairs = [("Priority", t.priority), ("Status", t.status), ("Group", t.group),
             ("Assignee", t.assignee or "unassigned"), ("Requester", t.requester)]
    return [(label, value or "—") for label, value in pairs]


def _render_local(template: str, values: Mapping[str, str], escape: Callable[[str], str]) -> str:
    """`{{ field }}` / `{{ custom.name }}` substitution; the template is trusted, values are escaped."""
    return _PLACEHOLDER.sub(lambda m: escape(str(values.get(m.group(1).strip(), ""))), template)


def render_template(alert: Alert, escape: Callable[[str], str]) -> str:
    """The coordinator's message with ticket values escaped by `escape`; falls back to the plain message."""
    if not alert.template:
        return escape(alert.message) if alert.message else ""
    try:
        from bot.rules.templates import render  # the engine's renderer, once it exists
    except ImportError:
        return _render_local(alert.template, alert.values, escape)
    try:
        return render(alert.template, alert.values, escape=escape)
    except Exception as error:  # never lose an alert to a template problem
        log.warning("template of rule %r failed to render (%s); using the plain message", alert.rule,
                    type(error).__name__)
        return escape(alert.message)
