"""Block Kit messages for alerts, digests and resolved updates, always within Slack's limits.

Ticket text goes through `mrkdwn.untrusted` before it is placed in a frame
and every text is cut (after escaping) to its limit, so Slack never rejects a
message for its size: header 150, section 3000, 10 fields of 2000, 50 blocks,
about 12k characters in all (we stay under `TOTAL_MAX`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.notifiers import content
from bot.notifiers.base import Alert
from bot.notifiers.mrkdwn import link, slack_len, truncate, trusted, untrusted

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
FIELDS_MAX = 10
CONTEXT_MAX = 10
BLOCKS_MAX = 50
TOTAL_MAX = 11_000
TEXT_MAX = 3000
DIGEST_LINE_MAX = 600

ICONS = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
RESOLVED_ICON = ":white_check_mark:"


@dataclass(frozen=True)
class SlackMessage:
    """What chat.postMessage / chat.update receive: fallback `text` plus `blocks`."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Resolved:
    """How and when a ticket stopped needing attention."""

    how: str
    at: datetime | None = None


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, HEADER_MAX), "emoji": True}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_MAX)}}


def _context(*texts: str) -> dict[str, Any]:
    return {"type": "context",
            "elements": [{"type": "mrkdwn", "text": truncate(t, FIELD_MAX)} for t in texts[:CONTEXT_MAX]]}


def _subject_line(alert: Alert, limit: int = 500) -> str:
    subject = truncate(untrusted(alert.ticket.subject) or "(no subject)", limit)
    return f"*{link(alert.ticket.url, subject)}*  `{trusted(alert.ticket_key)}`"


def _when(resolved: Resolved, timezone: str) -> str:
    return f" · {content.local_time(resolved.at, timezone)}" if resolved.at else ""


def _sla_field(alert: Alert, now: datetime) -> str | None:
    if alert.sla is None:
        return None
    clock, when = content.sla_lines(alert.sla, now)
    icon = ":red_circle:" if content.sla_breached(alert.sla, now) else ":large_yellow_circle:"
    return f"*SLA*\n{icon} {trusted(clock)}" + (f"\n{trusted(when)}" if when else "")


def _fallback(body: str, mentions: Sequence[str]) -> str:
    """The notification text: mentions first so they ping, then the alert in one line."""
    return truncate(" ".join([*mentions, body]).strip(), TEXT_MAX)


def _message(alert: Alert, escape_values: bool = True) -> str:
    """The coordinator's template with escaped values, or the plain message kept multi-line."""
    if alert.template:
        return content.render_template(alert, untrusted if escape_values else (lambda v: v))
    return untrusted(alert.message, multiline=True) if escape_values else alert.message


def _fields(alert: Alert, now: datetime) -> dict[str, Any]:
    fields = [f"*{label}*\n{truncate(untrusted(value), 300)}" for label, value in content.ticket_fields(alert)]
    sla = _sla_field(alert, now)
    if sla:
        fields.append(sla)
    if alert.ticket.tags:
        fields.append("*Tags*\n" + truncate(", ".join(untrusted(t) for t in alert.ticket.tags), 300))
    return {"type": "section",
            "fields": [{"type": "mrkdwn", "text": truncate(f, FIELD_MAX)} for f in fields[:FIELDS_MAX]]}


def _how(resolved: Resolved) -> str:
    how = untrusted(resolved.how) or "resolved"
    return how[:1].upper() + how[1:]


def alert_message(alert: Alert, now: datetime, *, mentions: Sequence[str] = (),
                  resolved: Resolved | None = None, repeat: bool = False) -> SlackMessage:
    """One alert: header, linked subject, the coordinator's message, fields, SLA clock, why, context.

    An alert about no ticket (the bot's own admin alerts) shows only its message.
    """
    severity = content.SEVERITY_LABELS.get(alert.severity, "Warning")
    about_ticket = bool(alert.ticket.subject or alert.ticket.url)
    if resolved:
        header = f"{RESOLVED_ICON} Resolved · {alert.rule}"
    else:
        header = f"{ICONS.get(alert.severity, ICONS['warning'])} {alert.rule} · {severity}"
    blocks = [_header(header)]
    if resolved:
        timezone = alert.sla.timezone if alert.sla else alert.timezone
        blocks.append(_section(f"{RESOLVED_ICON} *{_how(resolved)}*{_when(resolved, timezone)}"))
    if about_ticket:
        blocks.append(_section(_subject_line(alert)))
    message = _message(alert)
    if message.strip():
        blocks.append(_section(message))
    if about_ticket:
        blocks.append(_fields(alert, now))
    if alert.reason:
        blocks.append(_section(f"*Why:* {truncate(untrusted(alert.reason, multiline=True), 1500)}"))
    if mentions and not resolved:
        blocks.append(_section(truncate("cc " + " ".join(mentions), 1000)))
    context = [f"deskbot · rule *{trusted(alert.rule)}* · {trusted(alert.ticket_key)}"
               + (f" · occurrence {alert.occurrence}" if alert.occurrence > 1 else "")]
    if repeat:
        context.append(":grey_question: may repeat an earlier post whose delivery was not confirmed")
    blocks.append(_context(*context))
    status = f"Resolved: {_how(resolved)}" if resolved else severity.upper()
    body = f"[{status}] {trusted(alert.rule)}: "
    body += f"{untrusted(alert.ticket.subject)} ({trusted(alert.ticket_key)})" if about_ticket else ""
    plain = untrusted(_message(alert, escape_values=False))
    if plain and not resolved:
        body += f" — {plain}" if about_ticket else plain
    return SlackMessage(_fallback(body, () if resolved else mentions), fit(blocks))


def _digest_line(alert: Alert, now: datetime, resolved: Resolved | None) -> str:
    parts = [link(alert.ticket.url, truncate(untrusted(alert.ticket.subject) or "(no subject)", 150)),
             f"`{trusted(alert.ticket_key)}`"]
    parts += [truncate(untrusted(v), 60) for v in (alert.ticket.priority, alert.ticket.group,
                                                    alert.ticket.assignee or "unassigned") if v]
    if resolved:
        parts.append(f"{RESOLVED_ICON} {truncate(_how(resolved), 80)}")
    elif alert.sla is not None:
        parts.append(trusted(content.sla_lines(alert.sla, now)[0]))
    return truncate("• " + " · ".join(parts), DIGEST_LINE_MAX)


def digest_message(alerts: Sequence[Alert], now: datetime, *, mentions: Sequence[str] = (),
                   resolved: Mapping[str, Resolved] | None = None) -> SlackMessage:
    """One message listing many alerts of one rule; resolved tickets are ticked off in place."""
    resolved = resolved or {}
    first = alerts[0]
    done = sum(1 for a in alerts if a.ticket_key in resolved)
    icon = RESOLVED_ICON if done == len(alerts) else ICONS.get(first.severity, ICONS["warning"])
    count = f"{len(alerts)} tickets" + (f", {done} resolved" if done else "")
    blocks: list[dict[str, Any]] = [_header(f"{icon} {first.rule} · {count}")]
    sections: list[str] = []
    for alert in alerts:
        line = _digest_line(alert, now, resolved.get(alert.ticket_key))
        if sections and slack_len(sections[-1]) + 1 + slack_len(line) <= SECTION_MAX:
            sections[-1] += "\n" + line
        else:
            sections.append(line)
    blocks += [_section(s) for s in sections]
    if mentions and done < len(alerts):
        blocks.append(_section(truncate("cc " + " ".join(mentions), 1000)))
    severity = content.SEVERITY_LABELS.get(first.severity, "Warning")
    blocks.append(_context(f"deskbot · rule *{trusted(first.rule)}* · {severity} · "
                           f"{len(alerts)} alerts at once, grouped into one message"))
    subjects = ", ".join(untrusted(a.ticket.subject) for a in alerts)
    body = f"[{severity.upper()}] {trusted(first.rule)}: {count}: {subjects}"
    return SlackMessage(_fallback(body, mentions if done < len(alerts) else ()), fit(blocks))


def digest_chunks(alerts: Sequence[Alert], now: datetime) -> list[list[Alert]]:
    """Split a digest so each message stays within block and size limits (no ticket is dropped)."""
    if not alerts:
        return []
    chunks: list[list[Alert]] = [[]]
    size = 0
    overhead = 2500  # header, mentions, context, section joins
    for alert in alerts:
        line = slack_len(_digest_line(alert, now, None)) + 1
        lines_per_block = max(1, SECTION_MAX // DIGEST_LINE_MAX)
        if chunks[-1] and (size + line > TOTAL_MAX - overhead
                           or len(chunks[-1]) >= (BLOCKS_MAX - 5) * lines_per_block):
            chunks.append([])
            size = 0
        chunks[-1].append(alert)
        size += line
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks[-1].insert(0, chunks[-2].pop())  # a digest always lists at least two tickets
    return chunks


def _texts(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every text object inside the blocks (mutable views for the fitter)."""
    found = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"])
        found += block.get("fields", []) + block.get("elements", [])
    return found


def fit(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Enforce the block count and the total-size cap by trimming the longest texts."""
    if len(blocks) > BLOCKS_MAX:
        hidden = len(blocks) - BLOCKS_MAX + 1
        blocks = [*blocks[: BLOCKS_MAX - 2], _context(f"… {hidden} more blocks not shown"), blocks[-1]]
    texts = _texts(blocks)
    total = sum(slack_len(t["text"]) for t in texts)
    while total > TOTAL_MAX:
        longest = max(texts, key=lambda t: slack_len(t["text"]))
        before = slack_len(longest["text"])
        longest["text"] = truncate(longest["text"], max(before - (total - TOTAL_MAX), before // 2, 20))
        after = slack_len(longest["text"])
        if after >= before:
            break
        total -= before - after
    return blocks
