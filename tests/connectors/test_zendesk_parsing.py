"""Narrow checks with `responses`: URLs the real zenpy client builds, error shapes, page edge cases."""

from __future__ import annotations

import json
import random
from urllib.parse import unquote

import pytest
import responses

from bot.connectors.base import TicketChange
from bot.connectors.zendesk import ZendeskConnector
from bot.connectors.zendesk_http import ZendeskConfig, call_kind
from bot.errors import (
    ConfigError,
    Conflict,
    ConnectorError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from bot.retry import RetryPolicy

BASE = "https://acme.zendesk.com/api/v2"
ENV = {"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_EMAIL": "bot@acme.example", "ZENDESK_API_TOKEN": "tok"}


def connector(**env: str) -> ZendeskConnector:
    config = ZendeskConfig.from_env({**ENV, **env})
    return ZendeskConnector(config, retry=RetryPolicy(attempts=1, sleep=lambda s: None, rng=random.Random(1)),
                            sleep=lambda s: None)


def export_page(tickets, *, cursor="Y3Vyc29y", end=True, **extra):
    return {"tickets": tickets, "after_cursor": cursor, "end_of_stream": end, "before_url": None,
            "before_cursor": None, "after_url": f"{BASE}/incremental/tickets/cursor.json?cursor={cursor}", **extra}


def mock_directory() -> None:
    for key in ("users", "groups", "group_memberships"):
        responses.get(f"{BASE}/{key}.json", json={key: [], "meta": {"has_more": False}, "links": {}})
    responses.get(f"{BASE}/ticket_fields.json", json={"ticket_fields": [], "next_page": None})


@responses.activate
def test_the_real_account_url_is_built_by_zenpy_and_sent_with_token_auth():
    mock_directory()
    connector().directory()
    first = responses.calls[0].request
    path, _, query = unquote(first.url).partition("?")
    assert path == f"{BASE}/users.json"  # zenpy joins parameters from a set, so their order varies
    assert sorted(query.split("&")) == ["page[size]=100", "role[]=admin", "role[]=agent"]
    assert first.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_zendesk_url_may_carry_a_path_prefix():
    responses.get("https://proxy.example/zendesk/api/v2/tickets/show_many.json", json={"tickets": []})
    assert connector(ZENDESK_URL="https://proxy.example/zendesk/").get_tickets([1]) == []


@responses.activate
def test_an_older_copy_on_a_later_page_is_dropped_and_a_newer_one_kept():
    mock_directory()
    v = lambda i, ts, subject="s": {"id": i, "generated_timestamp": ts, "status": "open", "subject": subject,  # noqa: E731
                                    "updated_at": "2024-06-10T10:00:00Z"}
    responses.get(f"{BASE}/incremental/tickets/cursor.json", json=export_page(
        [v(1, 200, "new"), v(2, 100), v(4, 50, "old"), v(4, 60, "newer")], cursor="p1", end=False))
    responses.get(f"{BASE}/incremental/tickets/cursor.json", json=export_page([v(1, 150, "stale"), v(3, 160)],
                                                                              cursor="p2", end=False))
    responses.get(f"{BASE}/incremental/tickets/cursor.json", json=export_page([v(2, 300, "changed")], cursor="p3"))
    pages = list(connector().fetch_changes("c0"))
    assert [[(t.id, t.subject) for t in p.tickets] for p in pages] == [
        [(1, "new"), (2, "s"), (4, "newer")], [(3, "s")], [(2, "changed")]]
    assert [p.cursor for p in pages] == ["p1", "p2", "p3"]


@responses.activate
def test_the_stream_ends_on_end_of_stream_even_with_an_after_url():
    mock_directory()
    responses.get(f"{BASE}/incremental/tickets/cursor.json", json=export_page([], cursor="last", end=True))
    [page] = list(connector().fetch_changes("first"))
    assert page.cursor == "last" and page.end_of_stream


@responses.activate
def test_a_first_export_without_a_cursor_keeps_its_start_time():
    mock_directory()
    responses.get(f"{BASE}/incremental/tickets/cursor.json", json={"tickets": [], "after_cursor": None,
                                                                   "after_url": None, "end_of_stream": True})
    [page] = list(connector().fetch_changes("time:1718000000"))
    assert page.cursor == "time:1718000000"
    assert "start_time=1718000000" in responses.calls[-1].request.url


@pytest.mark.parametrize(("status", "body", "error", "message"), [
    (400, {"error": {"title": "Invalid attribute", "message": "tags must be a list"}}, InvalidRequest,
     "Zendesk refused the show_many call (400): tags must be a list"),
    (422, {"error": "RecordInvalid", "description": "Record validation errors",
           "details": {"base": [{"description": "Too many comments", "error": "InvalidValue"}]}}, InvalidRequest,
     "Zendesk refused the show_many call (422): Too many comments"),
    (404, {"error": "RecordNotFound", "description": "Not found"}, NotFound,
     "Zendesk show_many call found nothing (404) at /api/v2/tickets/show_many.json; Zendesk said: Not found"),
    (403, {"error": "Forbidden", "description": "Light agents cannot"}, PermissionDenied,
     "Zendesk show_many call was forbidden (403): the agent behind ZENDESK_API_TOKEN needs the right to do this; "
     "Zendesk said: Light agents cannot"),
    (409, {"error": "UpdateConflict"}, Conflict,
     "Zendesk show_many call conflicted (409): the ticket changed since it was read; Zendesk said: UpdateConflict"),
    (502, "<html><body>Bad gateway</body></html>", Unavailable,
     "Zendesk show_many call failed on Zendesk's side (502); it will be retried"),
])
@responses.activate
def test_error_answers_become_typed_errors_that_say_what_happened(status, body, error, message):
    responses.get(f"{BASE}/tickets/show_many.json", status=status,
                  **({"json": body} if isinstance(body, dict) else {"body": body, "content_type": "text/html"}))
    with pytest.raises(error) as caught:
        connector().get_tickets([1])
    assert str(caught.value) == message and caught.value.status == status


@responses.activate
def test_422_keeps_the_platform_details_for_callers():
    details = {"status": [{"description": "Status: closed prevents ticket update", "error": "InvalidValue"}]}
    responses.get(f"{BASE}/tickets/show_many.json", status=422, json={"error": "RecordInvalid", "details": details})
    with pytest.raises(InvalidRequest) as caught:
        connector().get_tickets([1])
    assert caught.value.details == details


@responses.activate
def test_a_fractional_retry_after_is_kept_as_seconds():
    responses.get(f"{BASE}/tickets/show_many.json", status=429, body="Rate limited", headers={"Retry-After": "2.5"})
    with pytest.raises(RateLimited) as caught:
        connector().get_tickets([1])
    assert caught.value.retry_after == 2.5 and "retry after 2.5s" in str(caught.value)


@responses.activate
def test_the_oauth_token_goes_as_a_bearer_header():
    responses.get(f"{BASE}/tickets/show_many.json", json={"tickets": []})
    connector(ZENDESK_OAUTH_TOKEN="oauth-xyz").get_tickets([1])
    assert responses.calls[0].request.headers["Authorization"] == "Bearer oauth-xyz"


def test_zenpy_force_netloc_in_the_environment_cannot_divert_credentials(monkeypatch):
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", "evil.example:443")
    with pytest.raises(ConnectorError, match=r"refused to send Zendesk credentials to https://evil\.example:443, "
                                             r"expected https://acme\.zendesk\.com \(ZENPY_FORCE_NETLOC"):
        connector().directory()


def test_missing_settings_are_all_reported_with_what_to_set():
    with pytest.raises(ConfigError) as caught:
        ZendeskConfig.from_env({"ZENDESK_URL": "ftp://localhost"})
    assert caught.value.problems == [
        "no Zendesk credentials: set ZENDESK_EMAIL and ZENDESK_API_TOKEN (Admin Center > Apps and integrations > "
        "Zendesk API), or ZENDESK_OAUTH_TOKEN",
        "ZENDESK_URL must start with http:// or https://, got 'ftp://localhost'",
    ]
    with pytest.raises(ConfigError, match="ZENDESK_SUBDOMAIN is not set"):
        ZendeskConfig.from_env({"ZENDESK_EMAIL": "a@b.c", "ZENDESK_API_TOKEN": "t"})
    with pytest.raises(ConfigError, match="ZENDESK_EMAIL is not set"):
        ZendeskConfig.from_env({"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_API_TOKEN": "t"})
    with pytest.raises(ConfigError, match=r"use 127\.0\.0\.1, not localhost"):
        ZendeskConfig.from_env({**ENV, "ZENDESK_URL": "http://localhost:8080"})


@pytest.mark.parametrize(("method", "path", "kind"), [
    ("GET", "/api/v2/incremental/tickets/cursor.json", "export"),
    ("GET", "/api/v2/tickets/show_many.json", "show_many"),
    ("PUT", "/api/v2/tickets/update_many.json", "update_many"),
    ("PUT", "/api/v2/tickets/12.json", "update"),
    ("GET", "/api/v2/tickets/12.json", "show"),
    ("DELETE", "/api/v2/tickets/12/tags.json", "tags"),
    ("GET", "/api/v2/job_statuses/V3-abc.json", "job_status"),
    ("GET", "/api/v2/group_memberships.json", "group_memberships"),
    ("GET", "/api/v2/search/export.json", "search_export"),
    ("GET", "/api/v2/brands.json", "other"),
])
def test_calls_are_counted_by_endpoint_kind(method, path, kind):
    assert call_kind(method, path) == kind


@responses.activate
def test_bulk_changes_are_sent_as_one_tickets_list_with_tag_deltas():
    responses.put(f"{BASE}/tickets/update_many.json", json={"job_status": {
        "id": "V3-1", "status": "completed", "results": [{"id": 1, "success": True}, {"id": 2, "success": True}]}})
    change = {"add_tags": frozenset({"b", "a"}), "remove_tags": frozenset({"z"})}
    results = connector().apply([TicketChange(1, key="k1", **change), TicketChange(2, key="k2", **change)])
    assert [r.ok for r in results] == [True, True]
    assert json.loads(responses.calls[0].request.body) == {"tickets": [
        {"id": 1, "additional_tags": ["a", "b"], "remove_tags": ["z"], "metadata": {"deskbot_key": "k1"}},
        {"id": 2, "additional_tags": ["a", "b"], "remove_tags": ["z"], "metadata": {"deskbot_key": "k2"}}]}
