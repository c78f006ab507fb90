"""What supervisors see: Block Kit snapshots, the SLA clock in the team's zone, limits never exceeded.

Snapshots live in tests/notifiers/snapshots/; after an intended change, rerun with
DESKBOT_UPDATE_SNAPSHOTS=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from bot.notifiers.base import Alert
from bot.notifiers.blocks import (
    BLOCKS_MAX,
    FIELD_MAX,
    HEADER_MAX,
    SECTION_MAX,
    TOTAL_MAX,
    alert_message,
)
from bot.notifiers.mrkdwn import ELLIPSIS, slack_len

from .conftest import NOW, make_alert

SNAPSHOTS = Path(__file__).parent / "snapshots"


def check_snapshot(name: str, payload: dict) -> None:
    path = SNAPSHOTS / f"{name}.json"
    wanted = {"text": payload["text"], "blocks": payload["blocks"]}
    rendered = json.dumps(wanted, indent=2, ensure_ascii=True) + "\n"
    if os.environ.get("DESKBOT_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        path.write_text(rendered)
    assert rendered == path.read_text(), f"{path.name} changed; rerun with DESKBOT_UPDATE_SNAPSHOTS=1 if intended"


def texts(blocks: list[dict]) -> list[tuple[str, str]]:
    """(kind, text) of every text object in the blocks."""
    out = []
    for block in blocks:
        if "text" in block:
            out.append((block["type"], block["text"]["text"]))
        out += [("field", f["text"]) for f in block.get("fields", [])]
        out += [("context", e["text"]) for e in block.get("elements", [])]
    return out


def test_alert_matches_snapshot(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([make_alert(1042, mention=["@oncall", "ana@example.com"])])
    notifier.deliver(NOW)
    [message] = slack.posts("support-alerts")
    assert message.payload["unfurl_links"] is False and message.payload["unfurl_media"] is False
    assert message.payload["metadata"] == {"event_type": "deskbot_alert",
                                           "event_payload": {"key": "First reply overdue/zendesk:1042/notify/1"}}
    check_snapshot("alert", message.payload)


def test_alert_reads_as_a_checklist_for_the_supervisor(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([make_alert(1042, mention=["@oncall", "ana@example.com"])])
    notifier.deliver(NOW)
    [message] = slack.posts("support-alerts")
    shown = texts(message.blocks)
    assert shown[0] == ("header", ":rotating_light: First reply overdue · Critical")
    assert ("section", "*<https://acme.zendesk.com/agent/tickets/1042|Refund not received for order 1042>*"
                       "  `zendesk:1042`") in shown
    assert ("section", "*Zoe Park* waits for a first reply on _Refund not received for order 1042_") in shown
    assert ("field", "*Assignee*\nBen Okafor") in shown and ("field", "*Group*\nBilling") in shown
    assert ("field", "*SLA*\n:red_circle: First reply breached for 2h 05m\nwas due Tue 04 Jun 11:55 CEST") in shown
    assert ("section", "*Why:* priority is urgent; first reply due 2h ago") in shown
    assert ("section", "cc <!subteam^S0ONCALLX> <@U0ANALIMA>") in shown
    assert shown[-1] == ("context", "deskbot · rule *First reply overdue* · zendesk:1042")
    assert message.text.startswith("<!subteam^S0ONCALLX> <@U0ANALIMA> [CRITICAL] First reply overdue: Refund")


def test_digest_and_its_resolved_update_match_snapshots(make_notifier, slack):
    notifier = make_notifier(digest_threshold=4)
    notifier.send([make_alert(i, mention=["@oncall"]) for i in range(1, 6)])
    notifier.deliver(NOW)
    [digest] = slack.posts("support-alerts")
    check_snapshot("digest", digest.payload)
    notifier.resolve("zendesk:3", "solved", NOW + timedelta(minutes=5))
    notifier.deliver(NOW + timedelta(minutes=5))
    check_snapshot("digest_one_resolved", digest.updates[-1])


def test_resolved_alert_matches_snapshot(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([make_alert(1042, mention=["@oncall"])])
    notifier.deliver(NOW)
    notifier.resolve("zendesk:1042", "solved", NOW + timedelta(minutes=30))
    notifier.deliver(NOW + timedelta(minutes=30))
    [message] = slack.posts("support-alerts")
    check_snapshot("alert_resolved", message.updates[-1])
    assert "<!subteam" not in json.dumps(message.updates[-1])  # an update never pings again


def test_sla_clock_counts_down_in_the_teams_time_zone():
    due = make_alert(sla={"target": "next_reply", "deadline": (NOW + timedelta(minutes=90)).isoformat(),
                          "timezone": "America/New_York"})
    field = next(f for _, f in texts(alert_message(due, NOW).blocks) if f.startswith("*SLA*"))
    assert field == "*SLA*\n:large_yellow_circle: Next reply due in 1h 30m\nby Tue 04 Jun 09:30 EDT"
    unknown_zone = make_alert(sla={"target": "resolution", "remaining_seconds": -60, "timezone": "Mars/Olympus"})
    field = next(f for _, f in texts(alert_message(unknown_zone, NOW).blocks) if f.startswith("*SLA*"))
    assert field == "*SLA*\n:red_circle: Resolution breached for 1m"


def test_an_alert_without_sla_has_no_sla_field():
    assert not [f for _, f in texts(alert_message(make_alert(sla=None), NOW).blocks) if f.startswith("*SLA*")]


def test_admin_alert_about_no_ticket_shows_only_its_message():
    alert = Alert(key="deskbot/admin/rules", ticket_key="deskbot:admin", rule="deskbot", channel="#ops",
                  severity="critical", message="rules file rejected:\nrules.yaml:3:1: bad <!here>")
    shown = texts(alert_message(alert, NOW).blocks)
    assert [kind for kind, _ in shown] == ["header", "section", "context"]
    assert shown[1][1] == "rules file rejected:\nrules.yaml:3:1: bad &lt;!here\u200d&gt;"


def test_oversized_alert_is_trimmed_and_slack_accepts_it(make_notifier, slack):
    huge = "&<>*" * 5000
    notifier = make_notifier()
    notifier.send([make_alert(7, rule="R" * 400, ticket={"subject": huge, "group": huge, "assignee": huge,
                                                         "requester": huge, "tags": [huge] * 40},
                              template="{{ subject }} " * 50, values={"subject": huge}, message=huge,
                              reason=huge)])
    report = notifier.deliver(NOW)
    assert report.sent and not report.dead  # the fake enforces Slack's block limits like Slack does
    [message] = slack.posts()
    shown = texts(message.blocks)
    assert len(message.blocks) <= BLOCKS_MAX
    header = shown[0][1]
    assert slack_len(header) <= HEADER_MAX and header.endswith(ELLIPSIS)
    assert all(slack_len(t) <= (FIELD_MAX if kind == "field" else SECTION_MAX) for kind, t in shown)
    assert sum(slack_len(t) for _, t in shown) <= TOTAL_MAX
    assert slack_len(message.text) <= 3000


def test_a_hundred_and_twenty_tickets_fill_several_digests_each_within_limits(make_notifier, slack):
    long_subject = "Payment gateway timeout while charging card " * 4
    notifier = make_notifier()
    notifier.send([make_alert(i, ticket={"subject": f"{long_subject} #{i}"}) for i in range(1, 121)])
    report = notifier.deliver(NOW)
    assert len(report.sent) == 120 and not report.dead
    digests = slack.posts("support-alerts")
    assert len(digests) > 1
    listed = []
    for digest in digests:
        shown = texts(digest.blocks)
        assert sum(slack_len(t) for _, t in shown) <= TOTAL_MAX and len(digest.blocks) <= BLOCKS_MAX
        listed += [line for kind, t in shown if kind == "section" for line in t.split("\n") if "`zendesk:" in line]
    keys = [line.split("`")[1] for line in listed]
    assert sorted(keys) == sorted(f"zendesk:{i}" for i in range(1, 121))  # each ticket exactly once
