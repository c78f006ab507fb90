"""Zendesk failing: 429s, 5xx pages, slow answers, refusals; our RetryPolicy and RateBudget decide, not zenpy."""

from __future__ import annotations

import pytest
import zenpy.lib.api

from bot.connectors.base import TicketChange
from bot.errors import AuthError, PermissionDenied, RateLimited, Unavailable
from bot.model import Priority


@pytest.fixture(autouse=True)
def zenpy_must_not_sleep(monkeypatch):
    """zenpy 2.0.57 sleeps on 429 in 1 s steps; any call to its sleep means backoff escaped bot.retry."""

    def forbidden(seconds):
        raise AssertionError(f"zenpy slept {seconds}s on its own")

    monkeypatch.setattr(zenpy.lib.api, "sleep", forbidden)


def export_ids(connector, cursor=None):
    return [t.id for page in connector.fetch_changes(cursor, backfill_all=True) for t in page.tickets]


def test_a_429_with_a_json_body_waits_retry_after_then_continues(zendesk, zd_sandbox, zd_time):
    expected = export_ids(zendesk(per_page=10))
    zd_sandbox.faults.add(status=429, retry_after=30, path="/api/v2/incremental")
    zd_time.sleeps.clear()
    connector = zendesk(per_page=10)
    assert export_ids(connector) == expected
    assert 30 <= zd_time.sleeps[0] <= 30.25  # Retry-After plus a little jitter
    assert connector.calls.snapshot()["export"] == 5  # 4 pages + the refused one


def test_a_429_with_a_plain_text_body_and_fractional_retry_after_does_not_crash(zendesk, zd_sandbox, zd_time):
    zd_sandbox.faults.add(status=429, retry_after=1.5, body="Rate limit exceeded", content_type="text/plain",
                          path="/api/v2/tickets/show_many")
    [ticket] = zendesk().get_tickets([1])
    assert ticket.id == 1 and 1.5 <= zd_time.sleeps[0] <= 1.75


def test_a_429_mid_export_resumes_on_the_same_page(zendesk, zd_sandbox):
    expected = export_ids(zendesk(per_page=10))
    pages = zendesk(per_page=10).fetch_changes(None, backfill_all=True)
    first = [t.id for t in next(pages).tickets]
    zd_sandbox.faults.add(status=429, retry_after=0, path="/api/v2/incremental", times=2)
    rest = [t.id for page in pages for t in page.tickets]
    assert first + rest == expected
    assert [r.status for r in zd_sandbox.requests if r.path.startswith("/api/v2/incremental")][-5:] == [
        429, 429, 200, 200, 200]


def test_a_429_without_retry_after_backs_off_with_jitter(zendesk, zd_sandbox, zd_time):
    zd_sandbox.faults.add(status=429, path="/api/v2/tickets/show_many", times=2,
                          body='{"error":"APIRateLimitExceeded"}')
    assert zendesk().get_tickets([2])[0].id == 2
    assert len(zd_time.sleeps) == 2 and all(0 <= s <= 1.0 for s in zd_time.sleeps)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_with_html_pages_are_retried(zendesk, zd_sandbox, zd_time, status):
    zd_sandbox.faults.add(status=status, path="/api/v2/users", times=2)
    directory = zendesk().directory()
    assert directory.agents and len(zd_time.sleeps) == 2
    assert [r.status for r in zd_sandbox.requests[:3]] == [status, status, 200]


def test_server_errors_that_persist_end_as_unavailable(zendesk, zd_sandbox, zd_time):
    zd_sandbox.faults.add(status=503, path="/api/v2/tickets/show_many", times=10)
    with pytest.raises(Unavailable, match=r"Zendesk show_many call failed on Zendesk's side \(503\)"):
        zendesk(attempts=3).get_tickets([1])
    assert zd_sandbox.count("/api/v2/tickets/show_many") == 3 and len(zd_time.sleeps) == 2


def test_rate_limits_that_persist_end_as_rate_limited(zendesk, zd_sandbox):
    zd_sandbox.faults.add(status=429, retry_after=2, path="/api/v2/tickets/show_many", times=10)
    with pytest.raises(RateLimited) as caught:
        zendesk(attempts=2).get_tickets([1])
    assert caught.value.retry_after == 2


def test_a_slow_answer_times_out_and_is_retried(zendesk, zd_sandbox):
    zd_sandbox.faults.add(delay=0.4, path="/api/v2/tickets/show_many")
    connector = zendesk(timeout=0.1)
    assert connector.get_tickets([3])[0].id == 3
    assert connector.calls.snapshot() == {"show_many": 2}


def test_rejected_credentials_say_what_to_fix(zendesk):
    with pytest.raises(AuthError) as caught:
        zendesk(token="not-the-token").directory()
    assert str(caught.value) == ("ZENDESK_API_TOKEN was rejected (401): check the token and that token access "
                                 "is enabled and that ZENDESK_EMAIL (deskbot@support.example) owns it")
    assert caught.value.status == 401 and caught.value.platform == "zendesk"


def test_an_agent_without_export_rights_is_told_it_needs_an_admin(zendesk, zd_sandbox):
    zd_sandbox.faults.add(status=403, path="/api/v2/incremental")
    with pytest.raises(PermissionDenied, match="the incremental export needs an admin"):
        export_ids(zendesk())


def test_the_bot_keeps_half_the_accounts_budget_for_humans(zendesk, zd_sandbox, zd_time):
    zd_sandbox.rate_limit = 20  # a tiny account: the bot may use 10 calls a minute
    connector = zendesk()
    for ticket_id in range(1, 31):
        connector.get_tickets([ticket_id])
    statuses = [r.status for r in zd_sandbox.requests]
    assert statuses == [200] * 30  # never ran into the account's limit
    assert connector.budget.limit == 20  # learnt from the headers
    assert sum(zd_time.sleeps) >= 120  # 30 calls at 10 per minute


def test_humans_using_the_account_make_the_bot_slow_down(zendesk, zd_sandbox, zd_time):
    zd_sandbox.rate_limit = 100
    for _ in range(60):  # the agents' own traffic this minute
        zd_sandbox._calls.append(zd_time.now())
    connector = zendesk()
    connector.get_tickets([1])
    assert zd_time.sleeps == []
    connector.get_tickets([2])  # remaining (39) is under the humans' half: wait for the window
    assert zd_time.sleeps and zd_time.sleeps[0] > 30


def test_a_write_refused_with_429_is_retried_by_our_policy(zendesk, zd_sandbox, zd_time):
    zd_sandbox.faults.add(status=429, retry_after=3, path="/api/v2/tickets/update_many")
    results = zendesk().apply([TicketChange(t, priority=Priority.HIGH) for t in (1, 2)])
    assert all(r.ok or "closed" in (r.error or "") for r in results)
    assert zd_sandbox.count("/api/v2/tickets/update_many") == 2 and 3 <= zd_time.sleeps[0] < 3.5
