"""The fake Slack answers slack_sdk the way Slack does: auth, bodies, ts, errors, limits, uploads, webhooks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.sandbox.server import serve
from bot.sandbox.slack import DEFAULT_TOKEN, SlackSandbox


@pytest.fixture(scope="module")
def _server() -> Iterator[SlackSandbox]:
    app = SlackSandbox()
    with serve(app):
        yield app


@pytest.fixture
def app(_server: SlackSandbox) -> SlackSandbox:
    _server.reset()
    return _server


@pytest.fixture
def client(app: SlackSandbox) -> WebClient:
    return WebClient(token=DEFAULT_TOKEN, base_url=app.api_url, retry_handlers=[])


def error_of(call) -> tuple[int, str]:
    with pytest.raises(SlackApiError) as caught:
        call()
    return caught.value.response.status_code, caught.value.response["error"]


def test_the_bearer_token_is_checked(app):
    assert error_of(WebClient(base_url=app.api_url).auth_test) == (200, "not_authed")
    assert error_of(WebClient(token="xoxb-nope", base_url=app.api_url).auth_test) == (200, "invalid_auth")
    assert WebClient(token=DEFAULT_TOKEN, base_url=app.api_url).auth_test()["user_id"] == "U0DESKBOT"


def test_post_message_returns_a_string_ts_and_records_json_bodies(client, app):
    response = client.chat_postMessage(channel="#support-alerts", text="hello", blocks=[
        {"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}], unfurl_links=False)
    assert response["channel"] == "C0SUPPORT" and isinstance(response["ts"], str)
    [message] = app.posts("support-alerts")
    assert (message.ts, message.text, message.payload["unfurl_links"]) == (response["ts"], "hello", False)
    reply = client.chat_postMessage(channel="C0SUPPORT", text="reply", thread_ts=response["ts"])
    assert app.replies("support-alerts", response["ts"])[0].ts == reply["ts"]
    assert error_of(lambda: client.chat_postMessage(channel="C0SUPPORT", text="x", thread_ts="1.2")) == (
        200, "thread_not_found")


def test_form_bodies_work_for_every_method(client, app):
    response = client.api_call("chat.postMessage", data={"channel": "C0GENERAL", "text": "form",
                                                         "blocks": '[{"type": "divider"}]'})
    assert response["ok"] and app.messages[-1].blocks == [{"type": "divider"}]
    assert client.users_lookupByEmail(email="ana@example.com")["user"]["id"] == "U0ANALIMA"
    assert app.requests[-1].headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_post_errors_match_slack(client):
    assert error_of(lambda: client.chat_postMessage(channel="#nope", text="x")) == (200, "channel_not_found")
    assert error_of(lambda: client.chat_postMessage(channel="outsiders", text="x")) == (200, "not_in_channel")
    assert error_of(lambda: client.chat_postMessage(channel="old-alerts", text="x")) == (200, "is_archived")
    with pytest.warns(UserWarning, match="`text` argument is missing"):
        assert error_of(lambda: client.chat_postMessage(channel="general")) == (200, "no_text")


@pytest.mark.parametrize("blocks, error, detail", [
    ([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}], "invalid_blocks",
     "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]"),
    ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "invalid_blocks",
     "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
    ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "x"}] * 11}], "invalid_blocks",
     "[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/fields]"),
    ([{"type": "divider"}] * 51, "invalid_blocks", "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"),
    ([{"type": "section", "text": {"type": "mrkdwn", "text": ""}}], "invalid_blocks",
     "[ERROR] must be more than 0 characters [json-pointer:/blocks/0/text/text]"),
    ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2999}}] * 5, "msg_blocks_too_long",
     "14995 characters of block text"),
])
def test_block_kit_limits_are_enforced(client, blocks, error, detail):
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C0SUPPORT", text="x", blocks=blocks)
    assert caught.value.response["error"] == error and caught.value.response["errors"] == [detail]


def test_update_rewrites_a_message_and_keeps_its_history(client, app):
    ts = client.chat_postMessage(channel="C0SUPPORT", text="before")["ts"]
    client.chat_update(channel="C0SUPPORT", ts=ts, text="after")
    [message] = app.messages
    assert message.text == "after" and message.updates[0]["text"] == "after"
    assert error_of(lambda: client.chat_update(channel="C0SUPPORT", ts="1.000000", text="x")) == (
        200, "message_not_found")
    assert error_of(lambda: client.chat_update(channel="support-alerts", ts=ts, text="x")) == (
        200, "channel_not_found")


def test_directory_methods(client, app):
    app.add_user("dee@example.com", "Dee", id="U0DEEDEEX")
    app.add_usergroup("billing", ["U0DEEDEEX"], id="S0BILLING")
    assert client.users_lookupByEmail(email="DEE@example.com")["user"]["id"] == "U0DEEDEEX"
    assert error_of(lambda: client.users_lookupByEmail(email="x@example.com")) == (200, "users_not_found")
    groups = client.usergroups_list(include_users=True)["usergroups"]
    assert {g["handle"]: g["users"] for g in groups}["billing"] == ["U0DEEDEEX"]
    dm = client.conversations_open(users="U0DEEDEEX")["channel"]["id"]
    assert client.chat_postMessage(channel=dm, text="hi")["channel"] == dm == "D0DEEDEEX"


def test_conversations_list_pages_with_cursors(client, app):
    for i in range(7):
        app.add_channel(f"extra-{i}")
    names, cursor, pages = [], None, 0
    while True:
        page = client.conversations_list(types="public_channel,private_channel", exclude_archived=True,
                                         limit=4, cursor=cursor)
        names += [c["name"] for c in page["channels"]]
        pages += 1
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and "old-alerts" not in names and "leads" in names and len(names) == 12
    public = client.conversations_list(limit=100)["channels"]
    assert "leads" not in [c["name"] for c in public]


def test_ratelimit_answers_429_with_retry_after(client, app):
    app.ratelimit("chat.postMessage", times=1, retry_after=3)
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C0SUPPORT", text="x")
    response = caught.value.response
    assert (response.status_code, response["error"], response.headers["Retry-After"]) == (429, "ratelimited", "3")
    assert client.chat_postMessage(channel="C0SUPPORT", text="x")["ok"]


def test_fail_after_handling_posts_but_answers_an_error(client, app):
    app.fail_after_handling("chat.postMessage", status=502)
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C0SUPPORT", text="x")
    assert caught.value.response.status_code == 502 and len(app.messages) == 1


def test_files_upload_v2_makes_its_three_calls(client, app):
    response = client.files_upload_v2(channel="C0SUPPORT", content="a,b\n1,2\n", filename="report.csv",
                                      title="Weekly", initial_comment="This week")
    assert response["file"]["title"] == "Weekly" and response["file"]["size"] == 8
    assert [r.path.split("/")[-1] if r.path.startswith("/api/") else "upload" for r in app.requests] == [
        "files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    [message] = app.posts("support-alerts")
    assert message.text == "This week" and message.files[0]["name"] == "report.csv"


def test_incoming_webhook(app):
    hook = WebhookClient(app.webhook_url, retry_handlers=[])
    response = hook.send(text="hello", blocks=[{"type": "divider"}])
    assert (response.status_code, response.body) == (200, "ok")
    assert app.messages[0].via == "webhook" and app.messages[0].channel == "C0SUPPORT"
    assert (hook.send_dict({"blocks": None}).status_code, hook.send_dict({}).body) == (400, "invalid_payload")
    assert (hook.send_dict({"unfurl_links": False}).body) == "no_text"
    app.ratelimit("webhook", retry_after=2)
    limited = hook.send(text="x")
    assert (limited.status_code, limited.body, limited.headers["Retry-After"]) == (429, "rate_limited", "2")


def test_pace_mode_limits_each_channel_to_one_post_per_second(client, app):
    now = [100.0]
    app.pace, app.clock = 1.0, lambda: now[0]
    client.chat_postMessage(channel="C0SUPPORT", text="1")
    client.chat_postMessage(channel="C0GENERAL", text="other channel")
    assert error_of(lambda: client.chat_postMessage(channel="C0SUPPORT", text="2")) == (429, "ratelimited")
    now[0] += 1.0
    assert client.chat_postMessage(channel="C0SUPPORT", text="2")["ok"]
