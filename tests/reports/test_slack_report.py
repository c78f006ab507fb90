"""Posting a report to Slack over real HTTP (the sandbox): a compact summary, then the chart beside it."""

from __future__ import annotations

import json

import pytest

from bot.errors import NotifierError
from bot.reports.chart import HEIGHT, WIDTH, png_size
from bot.reports.slack import TransportPoster, post_report, report_blocks
from bot.sandbox.slack import DEFAULT_TOKEN

from .sample import sample_report


def test_the_summary_is_posted_then_the_chart_uploaded_into_the_same_channel(slack, slack_env) -> None:
    posted = post_report(TransportPoster.from_env(slack_env), sample_report(), "#support-alerts")
    summary, image = slack.posts("support-alerts")
    assert (posted.channel, posted.ts, posted.chart) == ("C0SUPPORT", summary.ts, True)
    assert summary.blocks[0] == {"type": "header", "text": {"type": "plain_text",
                                                            "text": "Daily queue report: all teams"}}
    assert summary.text.startswith("Daily queue report: all teams: 7 open (+27% vs 5.5 (4 wk) ⚠)")
    (file,) = image.files
    assert file["name"] == "daily-report-all_teams-20260302-1000.png"
    assert file["title"] == summary.blocks[0]["text"]["text"]
    data = slack.uploads[file["id"]]["data"]
    assert png_size(data) == (WIDTH, HEIGHT)


def test_the_summary_fits_block_kit_and_says_the_backlog_is_above_normal() -> None:
    _, blocks = report_blocks(sample_report())
    assert len(blocks) <= 50
    fields = next(b for b in blocks if "fields" in b)["fields"]
    assert len(fields) == 10
    names = [f["text"].split("\n")[0] for f in fields]
    assert names == ["*New*", "*Solved*", "*Reopened*", "*Open backlog*", "*First reply SLA met*",
                     "*Resolution SLA met*", "*Breaches*", "*Unassigned*", "*Repeat contacts*", "*Agent load*"]
    assert blocks[2]["text"]["text"] == ":warning: Backlog is +27% above the normal for a Monday."
    teams = next(b for b in blocks if b.get("text", {}).get("text", "").startswith("*Teams*"))
    assert "• *billing*: 5 open (+100% vs 2.5 (4 wk) ⚠), 5 new, 1 solved" in teams["text"]["text"]


def test_ticket_subjects_cannot_ping_or_hide_links() -> None:
    _, blocks = report_blocks(sample_report())
    dumped = json.dumps(blocks)
    assert "<!channel>" not in dumped and "&lt;!channel&gt;" in dumped
    breaches = next(b for b in blocks if b.get("text", {}).get("text", "").startswith("*Worst breaches*"))
    assert "<https://acme.zendesk.com/agent/tickets/202|zendesk:202>" in breaches["text"]["text"]


def test_a_failed_chart_upload_keeps_the_posted_summary(slack, slack_env) -> None:
    slack.faults.add(status=500, path="/api/files.getUploadURLExternal")
    posted = post_report(TransportPoster.from_env(slack_env), sample_report(), "#support-alerts")
    assert posted.chart is False and "Slack answered 500" in (posted.chart_error or "")
    assert len(slack.posts("support-alerts")) == 1


def test_without_a_chart_only_the_summary_is_posted(slack, slack_env) -> None:
    post_report(TransportPoster.from_env(slack_env), sample_report(team="billing"), "support-alerts", chart=False)
    (only,) = slack.posts("support-alerts")
    assert only.files == [] and only.blocks[0]["text"]["text"] == "Daily queue report: billing"


def test_an_unknown_channel_is_refused_with_a_hint_and_nothing_is_posted(slack, slack_env) -> None:
    with pytest.raises(NotifierError, match="#nowhere' not found"):
        post_report(TransportPoster.from_env(slack_env), sample_report(), "#nowhere")
    assert slack.posts() == []


def test_reports_need_a_bot_token_and_never_show_it(slack_env) -> None:
    with pytest.raises(NotifierError, match="SLACK_BOT_TOKEN"):
        TransportPoster.from_env({"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/secret"})
    with pytest.raises(NotifierError, match="SLACK_BOT_TOKEN"):
        TransportPoster.from_env({})
    assert DEFAULT_TOKEN not in repr(TransportPoster.from_env(slack_env))
