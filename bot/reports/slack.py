"""Posting a report to Slack: a compact Block Kit summary, then the chart image (files_upload_v2).

Managers would rather look than read: the summary carries the handful of
numbers that matter and the chart shows the trend. The poster reuses the Slack
notifier's transport (`SLACK_BOT_TOKEN`; `SLACK_API_URL` points it at the
sandbox), so errors carry the same hints and the token never appears in
errors or reprs. Helpdesk text (ticket
subjects) is escaped (`&`, `<`, `>`) so it cannot ping or hide links.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.errors import NotifierError
from bot.notifiers.slack import SlackTransport
from bot.reports.chart import render_chart
from bot.reports.render import duration, percent, period_line, versus_normal
from bot.reports.report import Report, ScopeReport

log = logging.getLogger(__name__)


class ReportPoster(Protocol):
    """Where a report goes: one message, then one file beside it."""

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> tuple[str, str]:
        """Post a message; returns (channel id, ts)."""
        ...

    def upload(self, channel_id: str, filename: str, content: bytes, title: str) -> None:
        """Upload a file into a channel."""
        ...


class TransportPoster:
    """`ReportPoster` over the Slack notifier's transport (bot token; channel names resolved and cached)."""

    def __init__(self, transport: SlackTransport):
        if transport.api is None:
            raise NotifierError("Slack reports need SLACK_BOT_TOKEN (a bot token with chat:write and files:write); "
                                "an incoming webhook cannot upload the chart")
        self.transport = transport
        self._api = transport.api

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, timeout: float = 30.0) -> TransportPoster:
        """Build from SLACK_BOT_TOKEN and SLACK_API_URL (the sandbox in tests and the demo)."""
        env = os.environ if environ is None else environ
        return cls(SlackTransport(token=env.get("SLACK_BOT_TOKEN"), api_url=env.get("SLACK_API_URL") or None,
                                  timeout=timeout))

    def __repr__(self) -> str:
        return f"TransportPoster({self.transport!r})"

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> tuple[str, str]:
        """chat.postMessage to a channel name or id; returns (channel id, ts)."""
        channel_id = self._api.channel_id(channel)
        data = self._api.call("chat_postMessage", post=True, channel=channel_id, text=text, blocks=blocks,
                              unfurl_links=False, unfurl_media=False)
        return str(data.get("channel") or channel_id), str(data["ts"])

    def upload(self, channel_id: str, filename: str, content: bytes, title: str) -> None:
        """files_upload_v2 into the channel."""
        self.transport.upload(channel_id, filename, content, title=title)


def escape(text: str, limit: int = 120) -> str:
    """Slack-safe untrusted text: `&`, `<`, `>` escaped, then shortened."""
    safe = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def report_blocks(report: Report) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of the compact summary."""
    main = report.main
    first, resolution = (_target(main, "first_reply"), _target(main, "resolution"))
    fields = [
        ("New", f"{main.created}"), ("Solved", f"{main.solved}"), ("Reopened", f"{main.reopened}"),
        ("Open backlog", f"{main.backlog.open} ({versus_normal(main)})"),
        ("First reply SLA met", first), ("Resolution SLA met", resolution),
        ("Breaches", f"{sum(t.breached for t in main.sla)} · near misses {sum(t.near_misses for t in main.sla)}"),
        ("Unassigned", f"{main.unassigned}" + (f" · no group {main.no_group}" if report.team is None else "")),
        ("Repeat contacts", f"{percent(main.repeats.rate)} ({main.repeats.repeats}/{main.repeats.with_requester})"),
        ("Agent load", _agents(main)),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": report.title[:150]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(
            f"{period_line(report)} · ages in {main.time_basis}", 300)}]},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{escape(value, 200)}"}
                                       for name, value in fields]},
    ]
    if len(report.scopes) > 1:
        lines = [f"• *{escape(s.name, 40)}*: {s.backlog.open} open ({escape(versus_normal(s), 60)}), "
                 f"{s.created} new, {s.solved} solved" for s in report.scopes[1:16]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Teams*\n" + "\n".join(lines)}})
    if main.breaches:
        lines = [f"• {_link(r.url, r.key)} {escape(r.subject, 80)}: {escape(r.detail, 80)}" for r in main.breaches[:3]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Worst breaches*\n" + "\n".join(lines)}})
    did = [a for a in main.activity if a.total]
    if did:
        summary = ", ".join(f"{escape(a.rule, 40)} {a.actions + a.alerts}" for a in did[:5])
        total_actions, total_alerts = sum(a.actions for a in did), sum(a.alerts for a in did)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"deskbot: {total_actions} actions, {total_alerts} alerts ({summary})")[:2900]}]})
    if main.backlog.flagged:
        blocks.insert(2, {"type": "section", "text": {"type": "mrkdwn", "text": (
            f":warning: Backlog is {percent(main.backlog.change, signed=True)} above the normal for a "
            f"{report.period.end.strftime('%A')}.")}})
    text = (f"{report.title}: {main.backlog.open} open ({versus_normal(main)}), {main.created} new, "
            f"{main.solved} solved, first reply SLA {first}")
    return text, blocks


def _target(scope: ScopeReport, target: str) -> str:
    found = next((t for t in scope.sla if t.target == target), None)
    if found is None or found.with_deadline == 0:
        return "no deadlines reached"
    return f"{percent(found.share_met)} (median {duration(found.median)}, p90 {duration(found.p90)})"


def _agents(scope: ScopeReport) -> str:
    unusual = [a for a in scope.agents if a.flag]
    if not unusual:
        return f"{len(scope.agents)} agents, none unusual" if scope.agents else "no assigned tickets"
    return ", ".join(f"{a.agent} {a.open} ({a.flag})" for a in unusual[:4])


def _link(url: str, label: str) -> str:
    if url.startswith(("https://", "http://")) and not any(c in url for c in "<>| "):
        return f"<{url}|{escape(label, 60)}>"
    return escape(label, 60)


@dataclass(frozen=True)
class PostedReport:
    """Where the summary went, and whether the chart followed it."""

    channel: str
    ts: str
    chart: bool
    chart_error: str | None = None


def post_report(poster: ReportPoster, report: Report, channel: str, *, chart: bool = True) -> PostedReport:
    """Post the summary, then upload the chart; a failed chart never un-posts the summary."""
    text, blocks = report_blocks(report)
    channel_id, ts = poster.post(channel, text, blocks)
    if not chart:
        return PostedReport(channel_id, ts, False)
    try:
        image = render_chart(report.main, report.title)
        name = f"{report.period.kind}-report-{report.main.name}-{report.period.end.strftime('%Y%m%d-%H%M')}.png"
        poster.upload(channel_id, name.replace(" ", "_"), image, report.title)
    except NotifierError as error:
        log.warning("report %s posted without its chart: %s", report.title, error)
        return PostedReport(channel_id, ts, False, str(error))
    return PostedReport(channel_id, ts, True)
