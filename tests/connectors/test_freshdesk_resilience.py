"""The Freshdesk connector under faults and budgets, its call counts, its directory, and its secrecy."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta

import pytest

from bot.connectors.base import TicketChange
from bot.errors import AuthError, InvalidRequest, Unavailable
from bot.model import Priority
from tests.connectors.freshdesk_fixtures import (
    API_KEY,
    NOW,
    drain,
    make_connector,
    staff,
)

DIRECTORY_CALLS = {"ticket_fields": 1, "agents_list": 1, "groups_list": 1, "group_agents": 2}



def spread(app, count):
    return [app.add_ticket(updated_at=NOW - timedelta(hours=1) + timedelta(seconds=i))["id"] for i in range(count)]


def list_statuses(app):
    return [r.status for r in app.requests if r.path == "/api/v2/tickets"]


def test_429_waits_the_retry_after_then_goes_on(host, app, time):
    spread(app, 3)
    app.faults.add(status=429, retry_after=3, path="/api/v2/tickets", method="GET")
    tickets, _ = drain(make_connector(host.url, time).fetch_changes(None))
    assert len(tickets) == 3 and list_statuses(app) == [429, 200]
    assert len(time.slept) == 1 and 3 <= time.slept[0] < 3.25


def test_humans_spending_the_minute_make_the_bot_wait_for_the_next_one(host, app, time):
    spread(app, 3)
    connector = make_connector(host.url, time)
    connector.directory()
    app._used = app.rate_limit  # the agents in the UI used every credit of this minute
    tickets, _ = drain(connector.fetch_changes(None))
    assert len(tickets) == 3 and list_statuses(app) == [429, 200]
    assert 60 <= time.slept[-1] < 60.25  # the sandbox said Retry-After: 60 at 12:00:00


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_with_jittered_backoff(host, app, time, status):
    spread(app, 3)
    app.faults.add(status=status, path="/api/v2/tickets", times=2)
    connector = make_connector(host.url, time)
    tickets, _ = drain(connector.fetch_changes(None))
    assert len(tickets) == 3 and list_statuses(app) == [status, status, 200]
    assert len(time.slept) == 2 and 0 <= time.slept[0] <= 0.5 and 0 <= time.slept[1] <= 1.0
    assert connector.calls.snapshot()["tickets_list"] == 3


def test_a_lasting_outage_gives_up_after_the_policys_attempts(host, app, time):
    app.faults.add(status=503, path="/api/v2/ticket_fields", times=10)
    connector = make_connector(host.url, time)
    with pytest.raises(Unavailable, match=r"Freshdesk failed on GET /api/v2/ticket_fields \(503\)"):
        connector.directory()
    assert connector.calls.snapshot() == {"ticket_fields": 5}


def test_an_html_error_page_is_still_a_typed_error(host, app, time):
    app.faults.add(status=502, path="/api/v2/ticket_fields", times=10, content_type="text/html",
                   body="<html><body>Bad gateway</body></html>")
    with pytest.raises(Unavailable, match=r"\(502\)"):
        make_connector(host.url, time).directory()


def test_a_slow_answer_times_out_and_is_retried(host, app, time):
    spread(app, 2)
    app.faults.add(delay=0.3, path="/api/v2/tickets")
    connector = make_connector(host.url, time, timeout=(2.0, 0.05))
    tickets, _ = drain(connector.fetch_changes(None))
    assert len(tickets) == 2 and connector.calls.snapshot()["tickets_list"] == 2 and len(time.slept) == 1


def test_the_bot_paces_itself_to_half_the_account_and_never_meets_a_429(host, time):
    app = host.use(time, rate_limit=40)
    staff(app)
    spread(app, 30)
    spent: dict[int, int] = {}

    def count_credits(request):
        minute = int(time.now().timestamp() // 60)
        spent[minute] = spent.get(minute, 0) + 1 + len([i for i in request.args.get("include", "").split(",") if i])

    app.before.append(count_credits)
    connector = make_connector(host.url, time, limit=40, per_page=5)
    tickets, _ = drain(connector.fetch_changes(None))
    assert sorted(t.id for t in tickets) == list(range(1, 31))
    assert all(r.status == 200 for r in app.requests)
    assert connector.http.costs["tickets_list"] == 5  # confirmed by X-Ratelimit-Used-CurrentRequest
    assert len(spent) > 1 and max(spent.values()) <= 20  # half of 40 per minute stays with the humans


def test_a_known_workload_makes_exactly_these_calls(host, app, time):
    spread(app, 250)
    connector = make_connector(host.url, time)
    _, pages = drain(connector.fetch_changes(None))
    drain(connector.fetch_changes(pages[-1].cursor))  # an idle poll
    connector.get_tickets([1, 2, 2, 999])
    connector.apply([
        TicketChange(1, key="tags", add_tags=frozenset({"vip"})),
        TicketChange(2, key="assign", assignee_id=21, priority=Priority.HIGH),
        TicketChange(3, key="note", note="checked"),
        TicketChange(4, key="all", assignee_id=23, add_tags=frozenset({"x"}), note="routed"),
    ])
    assert connector.calls.snapshot() == {**DIRECTORY_CALLS, "tickets_list": 3 + 1, "ticket_show": 3 + 2,
                                          "ticket_update": 3, "note_create": 2}
    assert connector.calls.total == len(app.requests) == 19


def test_the_directory_is_read_once_and_refreshed_after_an_hour(host, app, time):
    connector = make_connector(host.url, time)
    directory = connector.directory()
    assert [(a.name, a.available, sorted(a.group_ids)) for a in directory.agents] == [
        ("Ana Almeida", True, [11]), ("Ben Brooks", False, [11, 12]), ("Chen Ito", True, [12])]
    assert [(g.name, sorted(g.agent_ids)) for g in directory.groups] == [("Billing", [21, 22]),
                                                                         ("Technical", [22, 23])]
    assert [a.name for a in directory.members(12)] == ["Ben Brooks", "Chen Ito"]
    time.advance(minutes=59)
    connector.directory()
    assert connector.calls.total == 5
    time.advance(minutes=1)
    app.add_agent(24, "Dana Okafor", "dana@support.example", group_ids=[12])
    assert connector.directory().agent("dana@support.example") is not None
    assert connector.calls.total == 10
    connector.directory(refresh=True)
    assert connector.calls.total == 15


def test_get_tickets_reads_each_id_once_and_leaves_out_missing_ones(host, app, time):
    first, second = spread(app, 2)
    connector = make_connector(host.url, time)
    tickets = connector.get_tickets([second, first, second, 777])
    assert [t.id for t in tickets] == [second, first]
    assert tickets[0].requester == f"Customer {second}" and tickets[0].description == f"Ticket {second}"
    assert connector.calls.snapshot()["ticket_show"] == 3


def test_the_api_key_never_reaches_logs_errors_or_reprs(host, app, time, caplog):
    secret_forms = (API_KEY, base64.b64encode(f"{API_KEY}:X".encode()).decode())
    caplog.set_level(logging.DEBUG)
    spread(app, 2)
    app.faults.add(status=503, path="/api/v2/tickets")
    connector = make_connector(host.url, time)
    drain(connector.fetch_changes(None))
    connector.apply([TicketChange(1, note="hi")])
    wrong = make_connector(host.url, time, api_key=API_KEY + "-revoked")
    with pytest.raises(AuthError) as caught:
        wrong.directory()
    shown = [caplog.text, str(caught.value), repr(caught.value), repr(connector), repr(connector.http),
             repr(connector.http.session.auth), repr(wrong)]
    assert "Freshdesk GET /api/v2/tickets" in caplog.text  # the logs did record the calls
    for text in shown:
        for secret in secret_forms:
            assert secret not in text
        assert "-revoked" not in text


def test_a_rejected_key_says_what_to_fix(host, app, time):
    with pytest.raises(AuthError) as caught:
        make_connector(host.url, time, api_key="nope").directory()
    assert str(caught.value) == (
        "FRESHDESK_API_KEY was rejected (401): You have to be logged in to perform this action. Copy the key "
        "from Freshdesk (your avatar > Profile settings > View API key) and check that FRESHDESK_DOMAIN names "
        "the same account")
    assert caught.value.status == 401 and caught.value.platform == "freshdesk"


def test_a_server_echoing_the_key_into_an_error_cannot_leak_it(host, app, time):
    echoed = json.dumps({"description": "Validation failed",
                         "errors": [{"field": "api_key", "message": f"bad key {API_KEY}", "code": "invalid_value"}]})
    app.faults.add(status=400, body=echoed, path="/api/v2/ticket_fields")
    with pytest.raises(InvalidRequest) as caught:
        make_connector(host.url, time).directory()
    assert API_KEY not in str(caught.value) and API_KEY not in repr(caught.value.details)
    assert "bad key <redacted>" in str(caught.value)
