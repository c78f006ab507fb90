"""The fake Freshdesk answers like the real API v2 (facts sheet, section 2 and the fake-server checklist)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bot.model import Priority, Status
from bot.sandbox import seed
from tests.connectors.freshdesk_fixtures import API_KEY, NOW, drain, make_connector

RATE_HEADERS = ("X-Ratelimit-Total", "X-Ratelimit-Remaining", "X-Ratelimit-Used-CurrentRequest")



@pytest.fixture
def api(host):
    session = requests.Session()
    session.auth = (API_KEY, "X")

    def call(method, path, **kwargs):
        return session.request(method, host.url + path, timeout=5, **kwargs)

    yield call
    session.close()


def ids(response):
    return [t["id"] for t in response.json()]


def test_a_wrong_key_gets_freshdesks_401_body(host, app):
    response = requests.get(f"{host.url}/api/v2/tickets", auth=("wrong", "X"), timeout=5)
    assert response.status_code == 401
    assert response.json() == {"code": "invalid_credentials",
                               "message": "You have to be logged in to perform this action."}
    assert all(name in response.headers for name in RATE_HEADERS)


def test_every_answer_carries_rate_limit_headers_and_includes_cost_credits(api, app):
    app.add_ticket()
    listed = api("GET", "/api/v2/tickets?include=stats,requester")
    missing = api("GET", "/api/v2/tickets/999")
    app.faults.add(status=500, path="/api/v2/groups")
    failed = api("GET", "/api/v2/groups")
    for response in (listed, missing, failed):
        assert all(name in response.headers for name in RATE_HEADERS)
    assert listed.headers["X-Ratelimit-Used-CurrentRequest"] == "3"
    assert (listed.headers["X-Ratelimit-Total"], listed.headers["X-Ratelimit-Remaining"]) == ("700", "697")
    assert missing.status_code == 404 and missing.content == b""


def test_a_spent_minute_answers_429_until_the_next_one(host, time, api):
    host.use(time, rate_limit=3)
    time.advance(seconds=45)
    assert [api("GET", "/api/v2/agents").status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = api("GET", "/api/v2/agents")
    assert refused.headers["Retry-After"] == "15" and refused.headers["X-Ratelimit-Remaining"] == "0"
    time.advance(seconds=15)
    assert api("GET", "/api/v2/agents").status_code == 200


def test_injected_429_carries_retry_after(api, app):
    app.faults.add(status=429, retry_after=2, path="/api/v2/tickets")
    response = api("GET", "/api/v2/tickets")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "2")


def test_without_updated_since_only_the_last_30_days_newest_first(api, app):
    old = app.add_ticket(created_at=NOW - timedelta(days=31))["id"]
    recent = [app.add_ticket(created_at=NOW - timedelta(days=d))["id"] for d in (20, 2)]
    assert ids(api("GET", "/api/v2/tickets")) == recent[::-1]
    since = api("GET", "/api/v2/tickets?updated_since=2024-01-01T00:00:00Z&order_by=updated_at&order_type=asc")
    assert ids(since) == [old, *recent]


def test_updated_since_includes_its_own_second(api, app):
    edge = app.add_ticket(updated_at=NOW - timedelta(minutes=1))["id"]
    app.add_ticket(updated_at=NOW - timedelta(minutes=2))
    assert ids(api("GET", "/api/v2/tickets?updated_since=2024-06-10T11:59:00Z")) == [edge]


def test_link_pagination_uses_the_sandbox_host_and_stops_on_the_last_page(host, api, app):
    for _ in range(5):
        app.add_ticket()
    first = api("GET", "/api/v2/tickets?per_page=2&order_type=asc&include=stats")
    url = first.links["next"]["url"]
    assert url.startswith(host.url + "/api/v2/tickets?")
    assert parse_qs(urlsplit(url).query) == {"per_page": ["2"], "order_type": ["asc"], "include": ["stats"],
                                             "page": ["2"]}
    last = api("GET", "/api/v2/tickets?per_page=2&order_type=asc&page=3")
    assert ids(last) == [5] and "next" not in last.links and "Link" not in last.headers


def test_per_page_defaults_to_30_and_stops_at_100(api, app):
    for _ in range(31):
        app.add_ticket()
    assert len(api("GET", "/api/v2/tickets").json()) == 30
    too_many = api("GET", "/api/v2/tickets?per_page=101")
    assert too_many.status_code == 400 and too_many.json()["errors"][0]["field"] == "per_page"


def test_pages_past_300_are_refused(api, app):
    assert api("GET", "/api/v2/tickets?page=300").json() == []
    refused = api("GET", "/api/v2/tickets?page=301")
    assert refused.status_code == 400
    assert refused.json()["description"] == "Validation failed"
    assert refused.json()["errors"][0]["field"] == "page"


@pytest.mark.parametrize(("query", "field"), [("include=conversations", "include"), ("order_by=priority", "order_by"),
                                              ("updated_since=yesterday", "updated_since")])
def test_bad_list_parameters_are_field_errors(api, app, query, field):
    response = api("GET", f"/api/v2/tickets?{query}")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == field


def test_list_records_carry_includes_only_when_asked(api, app):
    app.companies[7] = {"id": 7, "name": "Acme Corp"}
    contact = app.add_contact("Rosa Rossi", "rosa@example.com", company_id=7)
    app.add_ticket(requester_id=contact["id"], description="Where is my refund?")
    [plain] = api("GET", "/api/v2/tickets").json()
    assert not {"description", "stats", "requester", "company"} & set(plain)
    [full] = api("GET", "/api/v2/tickets?include=description,stats,requester,company").json()
    assert full["description_text"] == "Where is my refund?" and full["stats"]["first_responded_at"] is None
    assert full["requester"]["email"] == "rosa@example.com" and full["company"] == {"id": 7, "name": "Acme Corp"}


def test_a_single_ticket_view_always_has_its_description(api, app):
    ticket = app.add_ticket(description="Hi <there>")["id"]
    shown = api("GET", f"/api/v2/tickets/{ticket}").json()
    assert (shown["description"], shown["description_text"]) == ("<div>Hi &lt;there&gt;</div>", "Hi <there>")


def test_escalation_flags_turn_true_when_targets_pass(api, app, time):
    ticket = app.add_ticket(priority=4)["id"]  # urgent: 1h to first response, 4h to resolution
    time.advance(hours=2)
    shown = api("GET", f"/api/v2/tickets/{ticket}").json()
    assert (shown["fr_escalated"], shown["is_escalated"], shown["nr_escalated"]) == (True, False, False)


def test_an_update_is_a_flat_body_that_bumps_updated_at(api, app, time):
    ticket = app.add_ticket(updated_at=NOW - timedelta(hours=1))["id"]
    time.advance(minutes=3)
    response = api("PUT", f"/api/v2/tickets/{ticket}", json={"responder_id": 21, "status": 3, "tags": ["a"]})
    body = response.json()
    assert response.status_code == 200 and (body["responder_id"], body["status"], body["tags"]) == (21, 3, ["a"])
    assert body["updated_at"] == "2024-06-10T12:03:00Z"
    assert app.tickets[ticket]["stats"]["pending_since"] == "2024-06-10T12:03:00Z"


def test_invalid_updates_name_every_field(api, app):
    ticket = app.add_ticket()["id"]
    response = api("PUT", f"/api/v2/tickets/{ticket}", json={"status": 9, "responder_id": 999, "colour": "red"})
    assert response.status_code == 400
    assert {(e["field"], e["code"]) for e in response.json()["errors"]} == {
        ("colour", "invalid_field"), ("status", "invalid_value"), ("responder_id", "invalid_value")}
    assert "2,3,4,5,6,7" in next(e["message"] for e in response.json()["errors"] if e["field"] == "status")


def test_writes_without_json_are_415_and_wrong_verbs_405(api, app):
    ticket = app.add_ticket()["id"]
    assert api("PUT", f"/api/v2/tickets/{ticket}", data="status=4").status_code == 415
    assert api("DELETE", f"/api/v2/tickets/{ticket}").status_code == 405


def test_a_note_is_created_with_201_and_private_by_default(api, app, time):
    ticket = app.add_ticket(updated_at=NOW - timedelta(hours=1))["id"]
    response = api("POST", f"/api/v2/tickets/{ticket}/notes", json={"body": "<p>checked</p>"})
    note = response.json()
    assert response.status_code == 201 and note["private"] is True and note["body_text"] == "checked"
    assert set(note) >= {"id", "body", "body_text", "private", "incoming", "user_id", "source", "ticket_id",
                         "to_emails", "created_at", "updated_at", "attachments"}
    assert app.tickets[ticket]["updated_at"] == "2024-06-10T12:00:00Z"
    assert api("POST", f"/api/v2/tickets/{ticket}/notes", json={}).status_code == 400


def test_agents_and_groups_look_like_the_recorded_lists(api, app):
    agents = api("GET", "/api/v2/agents").json()
    assert [a["contact"]["name"] for a in agents] == ["Ana Almeida", "Ben Brooks", "Chen Ito"]
    assert "group_ids" not in agents[0] and agents[1]["available"] is False
    groups = api("GET", "/api/v2/groups").json()
    assert [g["name"] for g in groups] == ["Billing", "Technical"] and "agent_ids" not in groups[0]
    assert api("GET", "/api/v2/groups/12").json()["agent_ids"] == [22, 23]
    assert [a["id"] for a in api("GET", "/api/v2/admin/groups/12/agents").json()] == [22, 23]
    assert api("GET", "/api/v2/agents/me").json()["id"] == 21


def test_ticket_fields_list_the_custom_statuses(api, app):
    [status] = [f for f in api("GET", "/api/v2/ticket_fields").json() if f["name"] == "status"]
    assert status["choices"]["6"] == ["Waiting on Customer", "Waiting on Customer"]
    assert status["choices"]["2"] == ["Open", "Being Processed"]


def test_a_customer_reply_reopens_and_starts_the_next_response_clock(app, time):
    ticket = app.add_ticket(priority=3)["id"]
    time.advance(minutes=10)
    app.agent_reply(ticket, status=3)
    stats = app.tickets[ticket]["stats"]
    assert stats["first_responded_at"] == stats["agent_responded_at"] == "2024-06-10T12:10:00Z"
    time.advance(minutes=10)
    app.customer_reply(ticket)
    stored = app.tickets[ticket]
    assert (stored["status"], stored["nr_due_by"]) == (2, "2024-06-10T16:20:00Z")
    assert stored["stats"]["requester_responded_at"] == stored["updated_at"] == "2024-06-10T12:20:00Z"
    assert [c["incoming"] for c in app.conversations[ticket]] == [False, True]


def test_the_seeded_queue_reads_back_through_the_connector_in_neutral_terms(host, time):
    queue = seed.generate(7, tickets=40, now=NOW)
    app = host.use(time)
    app.load_queue(queue)
    tickets, _ = drain(make_connector(host.url, time).fetch_changes(None, backfill_all=True))
    by_id = {t.id: t for t in tickets}
    assert sorted(by_id) == [t.id for t in queue.tickets]
    # Freshdesk names a custom field after its label, as the real account would
    titles = {"order_number": "order_number", "plan": "plan", "region": "region", "vip": "vip_customer"}
    assert {f.key: f.title for f in queue.custom_fields} == {
        "order_number": "Order number", "plan": "Plan", "region": "Region", "vip": "VIP customer"}
    for seeded in queue.tickets:
        ticket = by_id[seeded.id]
        # Freshdesk folds "new" into Open; an Open ticket no agent has handled reads back as new.
        untouched = seeded.status == "open" and seeded.assignee_id is None and not seeded.first_responded_at \
            and seeded.status_changed_at == seeded.created_at
        assert ticket.status == (Status.NEW if untouched else Status(seeded.status))
        assert ticket.priority == Priority(seeded.priority or "normal")
        assert ticket.channel == ("web" if seeded.channel == "api" else seeded.channel)
        assert (ticket.subject, ticket.description, ticket.type) == (seeded.subject, seeded.description,
                                                                    seeded.type)
        assert (ticket.group_id, ticket.assignee_id, ticket.requester_id) == (
            seeded.group_id, seeded.assignee_id, seeded.requester_id)
        assert ticket.tags == set(seeded.tags)
        assert {k: v for k, v in ticket.custom.items() if v is not None and not k.endswith("escalated")} == {
            titles[k]: v for k, v in seeded.custom.items() if v is not None}
        assert (ticket.created_at, ticket.updated_at, ticket.first_responded_at, ticket.last_agent_update_at,
                ticket.last_customer_update_at) == (seeded.created_at, seeded.updated_at, seeded.first_responded_at,
                                                    seeded.last_agent_update_at, seeded.last_customer_update_at)
        assert ticket.organization_id == seeded.organization_id
        assert len(app.conversations[seeded.id]) == len(seeded.comments) - 1
