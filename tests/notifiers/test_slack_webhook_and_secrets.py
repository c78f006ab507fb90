"""Webhook mode (one fixed channel, no threads) and credentials that never show up anywhere."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from bot.errors import NotifierError
from bot.notifiers.slack import SlackNotifier, SlackTransport
from bot.sandbox.slack import DEFAULT_TOKEN, WEBHOOK_PATH

from .conftest import NOW, make_alert


@pytest.fixture
def webhook(make_notifier, slack):
    return make_notifier(environ={"SLACK_WEBHOOK_URL": slack.webhook_url})


def test_webhook_mode_posts_the_same_blocks_to_the_webhooks_channel(webhook, slack):
    webhook.send([make_alert(1, channel="#anything", mention=["@oncall", "U0ANALIMA"])])
    assert webhook.deliver(NOW).sent
    [message] = slack.messages
    assert (message.via, message.channel) == ("webhook", slack.webhook_channel)
    assert message.blocks[0]["text"]["text"] == ":rotating_light: First reply overdue · Critical"
    assert message.payload["unfurl_links"] is False
    assert "cc @oncall <@U0ANALIMA>" in str(message.blocks)  # no lookups without a token: ids only


def test_webhook_mode_has_no_threads_and_no_updates(webhook, slack):
    webhook.send([make_alert(1)])
    webhook.deliver(NOW)
    webhook.send([make_alert(1, rule="VIP")])
    webhook.deliver(NOW)
    assert [m.thread_ts for m in slack.messages] == [None, None]
    assert webhook.resolve("zendesk:1", "solved", NOW) is False


def test_webhook_429_and_5xx_are_retried_4xx_is_given_up(webhook, slack):
    webhook.send([make_alert(1)])
    slack.ratelimit("webhook", retry_after=7)
    report = webhook.deliver(NOW)
    assert report.retrying and report.next_attempt_at == NOW + timedelta(seconds=7)
    slack.faults.add(status=500, path=WEBHOOK_PATH)
    report = webhook.deliver(NOW + timedelta(seconds=7))
    assert report.retrying and webhook.outbox.get(make_alert(1).key).ambiguous
    assert webhook.deliver(report.next_attempt_at).sent
    webhook.send([make_alert(2)])
    slack.faults.add(status=400, body="invalid_blocks", content_type="text/plain", path=WEBHOOK_PATH)
    report = webhook.deliver(NOW + timedelta(hours=1))
    assert report.dead == [make_alert(2).key]
    assert webhook.outbox.get(make_alert(2).key).error == (
        "Slack incoming webhook: Slack refused it (400 invalid_blocks)")


def test_a_removed_webhook_says_how_to_fix_it_and_keeps_the_alerts(webhook, slack):
    webhook.send([make_alert(1)])
    slack.faults.add(status=404, body="no_service", content_type="text/plain", path=WEBHOOK_PATH)
    report = webhook.deliver(NOW)
    assert report.retrying
    assert "create one and update SLACK_WEBHOOK_URL" in webhook.outbox.get(make_alert(1).key).error


def test_no_credentials_is_a_clear_error():
    with pytest.raises(NotifierError, match=r"set SLACK_BOT_TOKEN .* or SLACK_WEBHOOK_URL"):
        SlackNotifier.from_env(environ={"SLACK_API_URL": "http://127.0.0.1:9/api/"})


def test_the_bot_token_wins_over_the_webhook(slack):
    notifier = SlackNotifier.from_env(environ={"SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_WEBHOOK_URL": slack.webhook_url,
                                               "SLACK_API_URL": slack.api_url})
    assert notifier.transport.mode == "bot" and notifier.transport.supports_threads


def everything_said(caplog, notifier, errors) -> str:
    return "\n".join([caplog.text, repr(notifier), repr(notifier.transport), str(vars(notifier.transport)),
                      *errors, *(e.error or "" for e in notifier.outbox.all())])


def test_the_token_never_reaches_logs_errors_or_reprs(make_notifier, slack, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "xoxb-9999-very-secret-token"
    slack.token = secret
    notifier = make_notifier(environ={"SLACK_BOT_TOKEN": secret, "SLACK_API_URL": slack.api_url})
    notifier.send([make_alert(1, mention=["@oncall"]), make_alert(2, channel="#nowhere")])
    slack.ratelimit("chat.postMessage", retry_after=0)
    slack.fail_after_handling("chat.postMessage")
    now = NOW
    for _ in range(4):
        now = notifier.deliver(now).next_attempt_at or now + timedelta(minutes=1)
    slack.token = "xoxb-rotated"
    notifier.send([make_alert(3)])
    notifier.deliver(now + timedelta(minutes=5))
    errors = []
    try:
        notifier.upload("#nowhere", "report.csv", "a,b\n")
    except NotifierError as error:
        errors.append(str(error))
    said = everything_said(caplog, notifier, errors)
    assert "Sending a request" in said and "invalid_auth" in said and "channel '#nowhere' not found" in said
    assert secret not in said and "very-secret" not in said


def test_the_webhook_url_never_reaches_logs_errors_or_reprs(make_notifier, slack, caplog):
    caplog.set_level(logging.DEBUG)
    notifier = make_notifier(environ={"SLACK_WEBHOOK_URL": slack.webhook_url})
    notifier.send([make_alert(1), make_alert(2)])
    slack.faults.add(status=403, body=f"invalid_token for {slack.webhook_url}", content_type="text/plain",
                     path=WEBHOOK_PATH)
    now = NOW
    for _ in range(3):
        now = notifier.deliver(now).next_attempt_at or now + timedelta(minutes=1)
    said = everything_said(caplog, notifier, [])
    assert "Sending a request" in said and "webhook" in said
    assert WEBHOOK_PATH not in said and "sandbox-webhook-secret" not in said
    assert "webhook_url=[redacted]" in repr(SlackTransport(webhook_url=slack.webhook_url))
