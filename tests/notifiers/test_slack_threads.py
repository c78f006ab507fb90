"""One message per (rule, ticket, occurrence); later news in its thread; resolution updates it; bursts digest."""

from __future__ import annotations

from datetime import timedelta

from .conftest import NOW, make_alert


def header(message) -> str:
    return message.blocks[0]["text"]["text"]


def test_the_same_alert_is_posted_once_however_often_it_is_sent(make_notifier, slack):
    notifier = make_notifier()
    assert notifier.send([make_alert(1), make_alert(1)]) == [make_alert(1).key]
    notifier.deliver(NOW)
    assert notifier.send([make_alert(1)]) == []
    notifier.deliver(NOW + timedelta(minutes=1))
    assert len(slack.messages) == 1


def test_later_alerts_about_a_ticket_go_into_the_first_messages_thread(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([make_alert(1, rule="First reply overdue")])
    notifier.deliver(NOW)
    notifier.send([make_alert(1, rule="First reply overdue", occurrence=2), make_alert(1, rule="VIP waiting")])
    notifier.deliver(NOW + timedelta(hours=1))
    [root] = slack.posts("support-alerts")
    replies = slack.replies("support-alerts", root.ts)
    assert [header(r) for r in replies] == [":rotating_light: First reply overdue · Critical",
                                            ":rotating_light: VIP waiting · Critical"]
    assert replies[0].payload["blocks"][-1]["elements"][0]["text"].endswith("occurrence 2")


def test_each_channel_keeps_its_own_thread(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([make_alert(1), make_alert(1, rule="Escalated", channel="escalations")])
    notifier.deliver(NOW)
    assert len(slack.posts("support-alerts")) == 1 and len(slack.posts("escalations")) == 1


def test_resolving_updates_the_first_message_and_closes_the_thread(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([make_alert(1), make_alert(2)])
    notifier.deliver(NOW)
    assert notifier.resolve("zendesk:1", "solved", NOW + timedelta(minutes=10)) is True
    assert notifier.resolve("zendesk:1", "solved", NOW + timedelta(minutes=10)) is False  # already queued
    report = notifier.deliver(NOW + timedelta(minutes=10))
    assert report.sent == ["zendesk:1/resolved/20240604T121000000000Z"]
    first, second = slack.posts("support-alerts")
    assert header(first) == ":white_check_mark: Resolved · First reply overdue"
    assert first.blocks[1]["text"]["text"] == ":white_check_mark: *Solved* · Tue 04 Jun 14:10 CEST"
    assert first.text.startswith("[Resolved: Solved] First reply overdue: Refund not received for order 1 ")
    assert header(second).startswith(":rotating_light:")  # the channel still lists what needs attention
    assert notifier.resolve("zendesk:1", "closed", NOW + timedelta(minutes=20)) is False  # nothing open

    notifier.send([make_alert(1, occurrence=2)])  # reopened and late again: a fresh message, not the old thread
    notifier.deliver(NOW + timedelta(hours=2))
    assert len(slack.posts("support-alerts")) == 3


def test_a_ticket_resolved_before_its_alert_went_out_is_posted_then_marked_resolved(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([make_alert(1)])
    assert notifier.resolve("zendesk:1", "solved", NOW) is True
    notifier.deliver(NOW)
    [message] = slack.posts()
    assert len(message.updates) == 1 and header(message).startswith(":white_check_mark:")


def test_resolving_a_ticket_without_messages_does_nothing(make_notifier, slack):
    notifier = make_notifier()
    assert notifier.resolve("zendesk:404", "solved", NOW) is False
    assert notifier.deliver(NOW).sent == []
    assert slack.count("/api/") == 0


def test_a_deleted_message_does_not_block_the_resolution(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([make_alert(1)])
    notifier.deliver(NOW)
    slack.messages.clear()  # someone deleted it in Slack
    notifier.resolve("zendesk:1", "solved", NOW)
    report = notifier.deliver(NOW)
    assert report.sent and not report.retrying
    assert notifier.outbox.open_threads("zendesk:1") == []


def test_a_burst_of_one_rule_above_the_threshold_becomes_one_digest(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([make_alert(i) for i in range(1, 6)])
    notifier.deliver(NOW)
    assert len(slack.posts()) == 5  # up to the threshold (5): one message each
    slack.reset()
    notifier.send([make_alert(i) for i in range(11, 51)])
    report = notifier.deliver(NOW)
    assert len(report.sent) == 40
    [digest] = slack.posts()
    assert header(digest) == ":rotating_light: First reply overdue · 40 tickets"


def test_the_threshold_is_configurable_and_digests_are_per_rule_and_channel(make_notifier, slack):
    notifier = make_notifier(digest_threshold=2)
    notifier.send([make_alert(i) for i in (1, 2, 3)] + [make_alert(i, rule="Unassigned") for i in (4, 5)]
                  + [make_alert(i, channel="escalations") for i in (6, 7)])
    notifier.deliver(NOW)
    assert [header(m) for m in slack.posts("support-alerts")] == [
        ":rotating_light: First reply overdue · 3 tickets",
        ":rotating_light: Unassigned · Critical", ":rotating_light: Unassigned · Critical"]
    assert len(slack.posts("escalations")) == 2


def test_tickets_already_in_a_thread_get_replies_not_a_place_in_the_digest(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([make_alert(1)])
    notifier.deliver(NOW)
    notifier.send([make_alert(i, occurrence=2) for i in range(1, 8)])
    notifier.deliver(NOW + timedelta(hours=1))
    root, digest = slack.posts()
    assert header(digest) == ":rotating_light: First reply overdue · 6 tickets"
    assert "zendesk:1`" not in digest.blocks[1]["text"]["text"]
    assert len(slack.replies("support-alerts", root.ts)) == 1


def test_news_about_a_digested_ticket_goes_to_the_digest_thread_and_resolution_ticks_it_off(make_notifier, slack):
    notifier = make_notifier(digest_threshold=4)
    notifier.send([make_alert(i) for i in range(1, 6)])
    notifier.deliver(NOW)
    [digest] = slack.posts()
    notifier.send([make_alert(3, rule="VIP waiting")])
    notifier.resolve("zendesk:2", "solved", NOW)
    notifier.resolve("zendesk:4", "closed", NOW)
    notifier.deliver(NOW + timedelta(minutes=5))
    assert [header(r) for r in slack.replies("support-alerts", digest.ts)] == [
        ":rotating_light: VIP waiting · Critical"]
    assert header(digest) == ":rotating_light: First reply overdue · 5 tickets, 2 resolved"
    lines = digest.blocks[1]["text"]["text"].split("\n")
    assert [":white_check_mark:" in line for line in lines] == [False, True, False, True, False]
    for ticket in (1, 3, 5):
        notifier.resolve(f"zendesk:{ticket}", "solved", NOW)
    notifier.deliver(NOW + timedelta(minutes=6))
    assert header(digest) == ":white_check_mark: First reply overdue · 5 tickets, 5 resolved"


def test_a_user_gets_a_direct_message_and_a_channel_plus_user_alert_goes_to_both(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([make_alert(1, channel=None, user="ana@example.com"), make_alert(2, user="Ben@Example.com")])
    notifier.deliver(NOW)
    assert [m.channel for m in slack.messages] == ["D0ANALIMA", "C0SUPPORT", "D0BENOKAF"]
    assert slack.count("/api/users.lookupByEmail") == 2 and slack.count("/api/conversations.open") == 2


def test_names_emails_and_groups_are_looked_up_once(make_notifier, slack):
    notifier = make_notifier(digest_threshold=50)
    notifier.send([make_alert(i, mention=["@oncall", "ana@example.com", "@here"]) for i in range(1, 11)])
    notifier.deliver(NOW)
    assert len(slack.posts("support-alerts")) == 10
    assert slack.count("/api/conversations.list") == 1
    assert slack.count("/api/usergroups.list") == 1
    assert slack.count("/api/users.lookupByEmail") == 1
    assert "cc <!subteam^S0ONCALLX> <@U0ANALIMA> <!here>" in str(slack.messages[0].blocks)


def test_unknown_mentions_show_as_text_and_never_block_the_alert(make_notifier, slack, caplog):
    notifier = make_notifier()
    notifier.send([make_alert(1, mention=["@nobody", "ghost@example.com", "U0BENOKAF", "S0LEADSXX"])])
    assert notifier.deliver(NOW).sent
    assert "cc @nobody ghost@example.com <@U0BENOKAF> <!subteam^S0LEADSXX>" in str(slack.messages[0].blocks)
    assert "mention '@nobody' matches no Slack user or user group" in caplog.text


def test_channels_are_found_by_name_with_or_without_hash_or_by_id(make_notifier, slack):
    slack.add_channel("billing-alerts", id="C0BILLING")
    notifier = make_notifier(digest_threshold=50)
    notifier.send([make_alert(1, channel="billing-alerts"), make_alert(2, channel="#billing-alerts"),
                   make_alert(3, channel="C0BILLING"), make_alert(4, channel="leads")])
    notifier.deliver(NOW)
    assert [m.channel for m in slack.messages] == ["C0BILLING"] * 3 + ["G0LEADSXX"]


def test_a_channel_created_later_is_found_once_the_cache_is_stale(make_notifier, slack, clock):
    notifier = make_notifier()
    notifier.transport.api.clock = clock
    notifier.send([make_alert(1)])
    notifier.deliver(NOW)
    slack.add_channel("new-alerts", id="C0NEWALER")
    notifier.send([make_alert(2, channel="new-alerts")])
    assert notifier.deliver(NOW).dead  # unknown and the list is fresh: a config mistake
    notifier.send([make_alert(3, channel="new-alerts")])
    clock.t += 301
    assert notifier.deliver(NOW).sent == [make_alert(3, channel="new-alerts").key]
    assert slack.count("/api/conversations.list") == 2


def test_alerts_without_a_target_go_to_the_default_channel(make_notifier, slack):
    from bot.sandbox.slack import DEFAULT_TOKEN

    env = {"SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_API_URL": slack.api_url, "SLACK_DEFAULT_CHANNEL": "#general"}
    notifier = make_notifier(environ=env)
    notifier.send([make_alert(1, channel=None)])
    notifier.deliver(NOW)
    assert [m.channel for m in slack.messages] == ["C0GENERAL"]


def test_undeliverable_alerts_are_given_up_with_the_fix_and_others_still_go(make_notifier, slack, caplog):
    notifier = make_notifier()
    bad = [make_alert(1, channel="#no-such-channel"), make_alert(2, channel="outsiders"),
           make_alert(3, channel="old-alerts"), make_alert(4, channel=None, user="nobody@example.com"),
           make_alert(5, channel=None)]
    notifier.send([*bad, make_alert(6)])
    report = notifier.deliver(NOW)
    assert report.sent == [make_alert(6).key]
    assert sorted(report.dead) == sorted(a.key for a in bad)
    errors = [notifier.outbox.get(a.key).error for a in bad]
    assert errors[0] == ("Slack channel '#no-such-channel' not found: check the channel name or id in the rules "
                         "file; private channels need the bot invited")
    assert errors[1] == ("Slack chat.postMessage: Slack refused it (not_in_channel): invite the bot to the channel "
                         "(/invite @deskbot) or grant it chat:write.public")
    assert "old-alerts" in errors[2] or "is_archived" in errors[2]
    assert errors[3] == "no Slack user has the email 'nobody@example.com' (`user:` in the rules file)"
    assert "give the rule's notify a `channel` or `user`, or set SLACK_DEFAULT_CHANNEL" in errors[4]
    assert "giving up on" in caplog.text


def test_a_given_up_alert_does_not_hold_back_the_next_one_for_that_channel(make_notifier, slack):
    notifier = make_notifier(digest_threshold=50)
    refused = make_alert(1, channel="outsiders")
    notifier.send([refused, make_alert(2, channel="outsiders", rule="Other"), make_alert(3)])
    report = notifier.deliver(NOW)
    assert report.dead == [refused.key, make_alert(2, channel="outsiders", rule="Other").key]
    assert report.sent == [make_alert(3).key] and report.waiting == 0
