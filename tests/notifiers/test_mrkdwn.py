"""Escaping and truncation primitives: ticket text can never become Slack markup, cuts never break it."""

from __future__ import annotations

import pytest

from bot.notifiers.content import format_duration
from bot.notifiers.mrkdwn import ELLIPSIS, ZWJ, link, slack_len, truncate, trusted, untrusted


def test_trusted_escapes_only_the_three_control_characters_in_order():
    assert trusted("Tom & Jerry <3 >_<") == "Tom &amp; Jerry &lt;3 &gt;_&lt;"
    assert trusted("&lt;") == "&amp;lt;"


@pytest.mark.parametrize("raw, expected", [
    ("<!channel>", "&lt;!channel&gt;".replace("&gt;", ZWJ + "&gt;")),
    ("*bold*", f"{ZWJ}*{ZWJ}bold{ZWJ}*{ZWJ}"),
    ("> quote", f"{ZWJ}&gt; quote"),
    ("hi @channel and @Here", f"hi @{ZWJ}channel and @{ZWJ}Here"),
    ("[Reset](https://evil.example)", f"[Reset]{ZWJ}(https://evil.example)"),
    ("a\u202eb\u200bc\x1b[0m\x00", "abc[0m"),
    ("  many \n\t spaces  ", "many spaces"),
])
def test_untrusted_neutralises_markup(raw, expected):
    assert untrusted(raw) == expected


def test_untrusted_multiline_keeps_lines_but_guards_each_quote():
    assert untrusted("first\r\n> second\n\n\n\nthird", multiline=True) == f"first\n{ZWJ}&gt; second\n\nthird"


def test_untrusted_of_none_is_empty():
    assert untrusted(None) == ""


def test_truncate_counts_like_slack_and_marks_the_cut():
    assert truncate("short", 10) == "short"
    cut = truncate("x" * 20, 10)
    assert cut == "x" * 9 + ELLIPSIS and slack_len(cut) == 10
    emoji = truncate("🚨" * 10, 7)  # each emoji is two UTF-16 units
    assert slack_len(emoji) <= 7 and emoji.endswith(ELLIPSIS)


@pytest.mark.parametrize("text", ["abc &amp; def", "abc &lt;tag&gt;", f"ab {ZWJ}*{ZWJ}cd",
                                  "see <https://a.example/x|label> now"])
def test_truncate_never_leaves_half_an_entity_a_guard_or_a_link(text):
    for limit in range(2, len(text)):
        cut = truncate(text, limit)
        assert slack_len(cut) <= limit
        body = cut.removesuffix(ELLIPSIS)
        amp = body.rfind("&")
        assert amp == -1 or ";" in body[amp:], cut
        assert body.count("<") == body.count(">"), cut
        assert not body.endswith(("*", ZWJ)), cut


def test_link_accepts_only_plain_http_urls():
    assert link("https://acme.zendesk.com/agent/tickets/1?a=1&b=2", "Subject") == \
        "<https://acme.zendesk.com/agent/tickets/1?a=1&amp;b=2|Subject>"
    assert link("javascript:alert(1)", "Subject") == "Subject"
    assert link("https://evil.example/a|b", "Subject") == "Subject"
    assert link("https://x.example/a b", "S") == "S"
    assert link("", "S") == "S"


@pytest.mark.parametrize("seconds, text", [(30, "30s"), (600, "10m"), (7500, "2h 05m"), (-7500, "2h 05m"),
                                           (86400 * 3 + 3600 * 4, "3d 4h"), (86400, "1d")])
def test_durations_read_at_a_glance(seconds, text):
    assert format_duration(seconds) == text


def test_very_long_ticket_text_is_cut_early_but_visibly():
    escaped = untrusted(" " * 20_000 + "x" * 20_000)
    assert escaped.endswith(ELLIPSIS) and slack_len(escaped) < 4000
    assert truncate(untrusted("y" * 50_000), 3000).endswith(ELLIPSIS)
