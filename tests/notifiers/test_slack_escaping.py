"""Hostile ticket text reaches Slack inert: no mention, link, channel, date token, quote or styling survives.

Every untrusted field of an alert (subject, names, group, tags, template values,
message, reason, the resolution's "how") carries the hostile text; the payload
is read back as the fake Slack received it. Styling and quoting are checked by
difference: a hostile alert may not contain more unguarded markup characters
than the same alert with harmless text, since the frame's own `*Priority*` and
`ticket-key` are the only markup we write.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from bot.notifiers.blocks import digest_message
from bot.notifiers.mrkdwn import ZWJ

from .conftest import NOW, make_alert, walk_strings

HOSTILE = [
    "<!channel> server is down",
    "<!here|here> urgent",
    "<!everyone>",
    "<@U0ANALIMA> please look",
    "<@U0BENOKAF|ben>",
    "<!subteam^S0ONCALLX> wake up",
    "<!subteam^S0ONCALLX|@oncall>",
    "<#C0GENERAL|general> see channel",
    "<#C0GENERAL>",
    "<https://evil.example/reset|Reset your password>",
    "<http://evil.example>",
    "<mailto:help@evil.example|support@acme.com>",
    "<tel:+15550100|Call support>",
    "<!date^1392734382^{date_short}|Feb 18>",
    "&lt;!channel&gt; pre-escaped",
    "&amp;lt;!here&amp;gt; double escaped",
    "&#60;!channel&#62; numeric entities",
    "*bold* _italic_ ~strike~ `code`",
    "```\ncode block\n```",
    "> quoted reply\n> more quote",
    ">>> everything below is quoted",
    "line one\n<!channel>\nline three",
    "@channel @here @everyone plain",
    "[Reset password](https://evil.example/reset)",
    "https://evil.example/login is a bare url",
    "evil.example/reset?x=<!channel>",
    "\u202eexe.pdf spoofed direction",
    "zero\u200bwidth\u200b*bold*\u2060_it_",
    "\x1b[31mANSI red\x1b[0m and \x00 null \x07 bell",
    "<<!channel>>",
    "<!channel",
    "</div><script>alert(1)</script>",
    ":rotating_light: *URGENT* <!channel> :rotating_light:",
    "*_nested ~styles~_*",
    "user@here.com mailing @here.",
    "🎉 <!here> 👨‍👩‍👧 emoji",
    "A" * 3100 + "<!channel>",
    "<https://evil.example|" + "*" * 4000,
    "Ticket &amp; <b>bold</b> & more",
    "tab\tseparated\r\nCRLF <!here>",
]
BENIGN = "harmless"
TICKET_LINK = re.compile(r"^<https://acme\.zendesk\.com/agent/tickets/\d+\|")


def hostile_alert(ticket_id: int, text: str, **overrides):
    """An alert whose every ticket-derived field is `text`."""
    return make_alert(ticket_id, ticket={"subject": text, "group": text, "assignee": text, "requester": text,
                                         "status": text, "priority": text, "tags": [text, "vip"]},
                      values={"subject": text, "requester": text}, message=text, reason=text, **overrides)


def unguarded_markup(payload: dict) -> dict[str, int]:
    """Counts of markup that Slack could act on, over every string in the payload."""
    counts = {"style": 0, "quote": 0, "lt": 0, "broadcast": 0, "md_link": 0}
    for s in walk_strings(payload):
        for i, char in enumerate(s):
            if char in "*_~`" and not (0 < i < len(s) - 1 and s[i - 1] == ZWJ and s[i + 1] == ZWJ):
                counts["style"] += 1
        counts["quote"] += len(re.findall("(?:^|\\n)\\s*(?:&gt;|>)", s))
        counts["lt"] += s.count("<")
        counts["broadcast"] += len(re.findall(r"(?i)@(?:channel|here|everyone)\b", s))
        counts["md_link"] += s.count("](")
    return counts


def assert_no_more_markup(hostile: dict, benign: dict) -> None:
    """Hostile text adds no markup (truncation may remove some of the frame's, never add)."""
    found, frame = unguarded_markup(hostile), unguarded_markup(benign)
    assert all(found[k] <= frame[k] for k in frame), (found, frame)


def assert_inert(payload: dict) -> None:
    """No Slack control sequence but our own ticket link; entities intact; unfurling off."""
    for s in walk_strings(payload):
        for sequence in re.findall(r"<[^>]*>?", s):
            assert TICKET_LINK.match(sequence), f"control sequence survived: {sequence[:80]!r}"
        for amp in re.finditer("&", s):
            assert re.match(r"&(amp|lt|gt);", s[amp.start():]), f"raw & in {s[:80]!r}"
        assert "\x1b" not in s and "\u202e" not in s and "\x00" not in s
    if "unfurl_links" in payload:
        assert payload["unfurl_links"] is False and payload["unfurl_media"] is False


def test_corpus_is_big_and_varied():
    assert len(HOSTILE) >= 30 and len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_ticket_text_is_inert_in_an_alert(make_notifier, slack, text):
    notifier = make_notifier(digest_threshold=50)
    notifier.send([hostile_alert(1, text), hostile_alert(2, BENIGN)])
    assert len(notifier.deliver(NOW).sent) == 2
    hostile, benign = (m.payload for m in slack.posts("support-alerts"))
    assert_inert(hostile)
    assert_no_more_markup(hostile, benign)


def test_hostile_text_is_inert_in_a_digest_and_its_update(make_notifier, slack):
    notifier = make_notifier(digest_threshold=5)
    notifier.send([hostile_alert(i, text) for i, text in enumerate(HOSTILE, start=1)])
    assert len(notifier.deliver(NOW).sent) == len(HOSTILE)
    posts = slack.posts("support-alerts")
    assert posts and all("tickets" in m.blocks[0]["text"]["text"] for m in posts)
    for message in posts:
        assert_inert(message.payload)
        ids = [int(i) for i in re.findall(r"`zendesk:(\d+)`", json.dumps(message.blocks))]
        twin = digest_message([hostile_alert(i, BENIGN) for i in ids], NOW)
        assert_no_more_markup({"text": message.text, "blocks": message.blocks},
                              {"text": twin.text, "blocks": twin.blocks})

    for i, text in enumerate(HOSTILE[:5], start=1):
        notifier.resolve(f"zendesk:{i}", text, NOW + timedelta(minutes=1))
    notifier.deliver(NOW + timedelta(minutes=2))
    updates = [u for m in posts for u in m.updates]
    assert len(updates) == 5
    for update in updates:
        assert_inert(update)


@pytest.mark.parametrize("text", HOSTILE[:12], ids=range(12))
def test_hostile_resolution_text_is_inert(make_notifier, slack, text):
    notifier = make_notifier()
    notifier.send([hostile_alert(1, BENIGN)])
    notifier.deliver(NOW)
    notifier.resolve("zendesk:1", text, NOW)
    notifier.deliver(NOW)
    [message] = slack.posts("support-alerts")
    assert_inert(message.updates[-1])


def test_mentions_come_only_from_the_rules_file(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([hostile_alert(1, "<!channel> <@U0ANALIMA>", mention=["@oncall"])])
    notifier.deliver(NOW)
    [message] = slack.posts("support-alerts")
    found = re.findall(r"<[!@][^>]*>", json.dumps(message.payload))
    assert set(found) == {"<!subteam^S0ONCALLX>"}
