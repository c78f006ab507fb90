"""The console notifier shows the same alert a supervisor would get in Slack, and ticket text stays text."""

from __future__ import annotations

import io
from datetime import timedelta

from rich.console import Console

from bot.notifiers.base import Alert, Notifier
from bot.notifiers.console import ConsoleNotifier

from .conftest import NOW, make_alert


def console(color: bool = False) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=110, force_terminal=color, color_system="truecolor" if color else None), out


def test_console_alert_shows_the_same_content_as_slack():
    term, out = console()
    notifier = ConsoleNotifier(term)
    assert isinstance(notifier, Notifier)
    notifier.send([make_alert(1042, mention=["@oncall"])])
    notifier.deliver(NOW)
    text = out.getvalue()
    for expected in ("#support-alerts", "🚨 First reply overdue · Critical", "Refund not received for order 1042",
                     "zendesk:1042", "https://acme.zendesk.com/agent/tickets/1042",
                     "*Zoe Park* waits for a first reply on _Refund not received for order 1042_",
                     "Assignee   Ben Okafor", "First reply breached for 2h 05m", "was due Tue 04 Jun 11:55 CEST",
                     "Tags       refund, vip", "Why        priority is urgent; first reply due 2h ago",
                     "cc         @oncall", "deskbot · rule First reply overdue · zendesk:1042"):
        assert expected in text, expected


def test_console_shows_threads_digests_and_resolutions():
    term, out = console()
    notifier = ConsoleNotifier(term, digest_threshold=2)
    notifier.send([make_alert(i) for i in (1, 2, 3)])
    notifier.deliver(NOW)
    notifier.send([make_alert(2, rule="VIP waiting")])
    notifier.resolve("zendesk:3", "solved", NOW)
    notifier.deliver(NOW + timedelta(minutes=1))
    text = " ".join(out.getvalue().split())
    assert "First reply overdue · 3 tickets" in text
    assert "↳ #support-alerts · in the thread of zendesk:2" in text
    assert "✔ #support-alerts · First reply overdue digest: 1 of 3 resolved: zendesk:3 Refund not received for " \
           "order 3 — solved" in text


def test_admin_alert_prints_its_message_lines():
    term, out = console()
    notifier = ConsoleNotifier(term)
    notifier.send([Alert(key="deskbot/admin/x", ticket_key="deskbot:admin", rule="deskbot", channel="#ops",
                         severity="critical", message="rules file rejected:\nrules.yaml:3:1: bad")])
    notifier.deliver(NOW)
    assert "rules file rejected:" in out.getvalue() and "rules.yaml:3:1: bad" in out.getvalue()
    assert "Priority" not in out.getvalue()


HOSTILE = "[bold red]x[/] [link=https://evil.example]Reset[/link] \x1b[2J\x1b]8;;https://evil.example\x07 \u202eexe"


def test_ticket_text_is_never_rich_markup_or_terminal_control():
    for color in (False, True):
        term, out = console(color)
        notifier = ConsoleNotifier(term, digest_threshold=2)
        hostile = {"subject": HOSTILE, "group": HOSTILE, "assignee": HOSTILE, "requester": HOSTILE}
        notifier.send([make_alert(1, ticket=hostile, values={"subject": HOSTILE, "requester": HOSTILE},
                                  reason=HOSTILE)])
        notifier.deliver(NOW)
        notifier.send([make_alert(i, ticket=hostile) for i in (2, 3)])
        notifier.resolve("zendesk:2", HOSTILE, NOW)
        notifier.deliver(NOW)
        text = out.getvalue()
        assert "[bold red]x[/] [link=https://evil.example]Reset[/link]" in text  # printed literally
        assert "\x1b[2J" not in text and "\u202e" not in text
        assert "\x1b]8;;https://evil.example" not in text  # no hyperlink to anything but the ticket
        if color:
            assert "\x1b]8;" in text and "https://acme.zendesk.com/agent/tickets/1" in text
