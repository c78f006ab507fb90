"""The fake Zendesk answers like the real one: shapes, auth, limits, paging, update rules, jobs, faults."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bot.sandbox import seed
from bot.sandbox.server import serve
from bot.sandbox.zendesk import ManualClock, ZendeskSandbox

EMAIL, TOKEN = "bot@acme.example", "sandbox-token"
NOW = seed.DEFAULT_NOW


class Host:
    """One server for the module; each test mounts a fresh sandbox (a server stop costs half a second)."""

    def __init__(self) -> None:
        self.app: ZendeskSandbox | None = None
        self.base_url = ""
        self.server = serve(self)  # type: ignore[arg-type]
        self.url = self.server.url

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    host = Host()
    yield host
    host.server.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def zd(host: Host, clock: ManualClock) -> ZendeskSandbox:
    app = ZendeskSandbox(seed.generate(7, tickets=30), clock=clock, email=EMAIL, api_token=TOKEN)
    app.base_url = host.url
    host.app = app
    return app


@pytest.fixture
def api(zd: ZendeskSandbox, host: Host) -> Callable[..., requests.Response]:
    session = requests.Session()
    session.auth = (f"{EMAIL}/token", TOKEN)

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else f"{host.url}/api/v2/{path}"
        return session.request(method, url, timeout=5, **kwargs)

    return call


def first(zd: ZendeskSandbox, status: str) -> int:
    return next(t.id for t in zd.queue.tickets if t.status == status)


# --- auth, limits, faults ------------------------------------------------------------------------------


def test_wrong_or_missing_credentials_get_zendesks_401(host, zd):
    for auth in (None, (f"{EMAIL}/token", "nope"), (EMAIL, TOKEN)):
        response = requests.get(f"{host.url}/api/v2/users/me.json", auth=auth, timeout=5)
        assert (response.status_code, response.json()) == (401, {"error": "Couldn't authenticate you"})


def test_an_oauth_token_is_accepted_as_bearer(host, zd):
    zd.oauth_token = "oauth-1"
    response = requests.get(f"{host.url}/api/v2/users/me", headers={"Authorization": "Bearer oauth-1"}, timeout=5)
    assert response.json()["user"]["role"] == "admin"


def test_every_response_carries_rate_limit_headers_in_every_spelling(api, zd):
    zd.faults.add(status=503, path="/api/v2/groups")
    for response in (api("GET", "users/me"), api("GET", "nowhere"), api("GET", "groups")):
        assert {"X-Rate-Limit", "X-Rate-Limit-Remaining", "ratelimit-limit", "ratelimit-remaining",
                "ratelimit-reset"} <= set(response.headers)
    assert api("GET", "users/me").headers["X-Rate-Limit-Remaining"] == "397"


def test_the_account_limit_answers_429_until_the_minute_rolls(api, zd, clock):
    zd.rate_limit = 2
    api("GET", "groups"), api("GET", "groups")
    refused = api("GET", "groups")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    clock.advance(60)
    assert api("GET", "groups").status_code == 200


def test_the_export_has_its_own_10_per_minute(api, zd):
    statuses = [api("GET", "incremental/tickets/cursor.json", params={"start_time": 0}).status_code
                for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    assert api("GET", "groups").status_code == 200


def test_injected_faults_look_like_zendesks(api, zd):
    zd.faults.add(status=429, retry_after=2, path="/api/v2/groups")
    zd.faults.add(status=429, retry_after=1, body="Rate limit exceeded", content_type="text/plain",
                  path="/api/v2/groups")
    zd.faults.add(status=503, path="/api/v2/groups")
    zd.faults.add(status=409, path="/api/v2/groups")
    json_429, text_429, html_503, conflict = (api("GET", "groups") for _ in range(4))
    assert json_429.json()["error"] == "APIRateLimitExceeded" and json_429.headers["Retry-After"] == "2"
    assert text_429.text == "Rate limit exceeded" and text_429.headers["Retry-After"] == "1"
    assert html_503.headers["Content-Type"].startswith("text/html") and "<html>" in html_503.text
    assert conflict.json()["error"] == "UpdateConflict"


# --- the incremental export -----------------------------------------------------------------------------


def export(api, **params) -> dict[str, Any]:
    response = api("GET", "incremental/tickets/cursor.json", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_export_pages_with_cursors_pointing_back_at_this_server(api, zd, host):
    page = export(api, start_time=0, per_page=12)
    assert (len(page["tickets"]), page["end_of_stream"], page["before_url"], page["before_cursor"]) == (
        12, False, None, None)
    assert page["after_cursor"].startswith("+/")
    assert page["after_url"].startswith(f"{host.url}/api/v2/incremental/tickets/cursor.json?")
    assert parse_qs(urlsplit(page["after_url"]).query)["cursor"] == [page["after_cursor"]]
    second = api("GET", page["after_url"]).json()
    third = api("GET", second["after_url"]).json()
    assert [len(second["tickets"]), len(third["tickets"]), third["end_of_stream"]] == [12, 6, True]
    assert third["after_cursor"]  # still there at the end of the stream


def test_a_cursor_sent_unencoded_is_refused(api, zd, host):
    cursor = export(api, start_time=0, per_page=5)["after_cursor"]
    raw = requests.get(f"{host.url}/api/v2/incremental/tickets/cursor.json?cursor={cursor}",
                       auth=(f"{EMAIL}/token", TOKEN), timeout=5)
    assert raw.status_code == 400 and raw.json()["error"] == "InvalidPaginationParameter"


def test_the_export_filters_on_generated_timestamp_not_updated_at(api, zd, clock):
    start = int(clock().timestamp()) - 100
    clock.advance(600)
    zd.system_update(4)
    [ticket] = export(api, start_time=start)["tickets"]
    assert ticket["id"] == 4 and ticket["generated_timestamp"] > start
    assert ticket["updated_at"] < "2024-06-10T12:00:00Z"


def test_a_too_recent_start_time_is_422_and_an_empty_window_has_no_cursor(api, zd, clock):
    recent = api("GET", "incremental/tickets/cursor.json", params={"start_time": int(clock().timestamp()) - 30})
    assert recent.status_code == 422 and "Too recent start_time" in recent.json()["description"]
    empty = export(api, start_time=int(clock().timestamp()) - 90)
    assert (empty["tickets"], empty["after_cursor"], empty["after_url"], empty["end_of_stream"]) == (
        [], None, None, True)


def test_the_last_minute_can_be_hidden_as_zendesk_does(api, zd, clock):
    zd.hide_recent = timedelta(minutes=1)
    cursor = export(api, start_time=0)["after_cursor"]
    clock.advance(300)
    zd.human_update(2, priority="urgent")
    assert export(api, cursor=cursor)["tickets"] == []
    clock.advance(61)
    assert [t["id"] for t in export(api, cursor=cursor)["tickets"]] == [2]


def test_sideloads_and_slas_arrive_with_the_tickets(api, zd):
    page = export(api, start_time=0, include="users,groups,organizations,metric_sets,slas")
    tickets = {t["id"]: t for t in page["tickets"]}
    user_ids = {u["id"] for u in page["users"]}
    assert all(t["requester_id"] in user_ids for t in tickets.values())
    assert {m["ticket_id"] for m in page["metric_sets"]} == set(tickets)
    on_hold = tickets[first(zd, "on_hold")]
    assert on_hold["status"] == "hold"
    assert {m["stage"] for m in on_hold["slas"]["policy_metrics"]} <= {"achieved", "active", "paused"}
    assert "slas" not in export(api, start_time=0)["tickets"][0]


def test_deleted_tickets_show_as_deleted_unless_excluded(api, zd):
    zd.delete_ticket(3)
    statuses = {t["id"]: t["status"] for t in export(api, start_time=0)["tickets"]}
    assert statuses[3] == "deleted"
    assert 3 not in {t["id"] for t in export(api, start_time=0, exclude_deleted="true")["tickets"]}
    assert api("GET", "tickets/3.json").status_code == 404


# --- reading and writing tickets ------------------------------------------------------------------------


def test_show_many_takes_at_most_100_ids(api, zd):
    page = api("GET", "tickets/show_many.json", params={"ids": "1,2,999", "include": "users"}).json()
    assert [t["id"] for t in page["tickets"]] == [1, 2] and page["users"]
    refused = api("GET", "tickets/show_many.json", params={"ids": ",".join(map(str, range(1, 102)))})
    assert refused.status_code == 400 and refused.json()["max_count"] == 100


def test_an_update_answers_ticket_and_audit_and_moves_both_timestamps(api, zd, clock):
    ticket_id = first(zd, "open")
    before = zd.ticket(ticket_id)
    clock.advance(90)
    body = {"ticket": {"priority": "urgent", "comment": {"body": "Checking", "public": False},
                       "metadata": {"deskbot_key": "k"}, "made_up": 1}}
    response = api("PUT", f"tickets/{ticket_id}.json", json=body)
    ticket, audit = response.json()["ticket"], response.json()["audit"]
    assert ticket["priority"] == "urgent" and ticket["updated_at"] == "2024-06-10T12:01:30Z"
    assert ticket["generated_timestamp"] == int(NOW.timestamp()) + 90 > before["generated_timestamp"]
    assert [e["type"] for e in audit["events"]] == ["Change", "Comment"]
    assert audit["events"][0] | {"id": 0} == {"id": 0, "type": "Change", "field_name": "priority",
                                             "value": "urgent", "previous_value": before["priority"]}
    assert audit["metadata"]["custom"] == {"deskbot_key": "k"}
    assert json.loads(response.headers["x-zendesk-api-warn"]) == {"ignored": ["made_up"]}
    assert zd.private_notes(ticket_id)[-1] == "Checking"


def test_a_stale_safe_update_is_409_and_a_fresh_one_passes(api, zd, clock):
    ticket_id = first(zd, "open")
    stamp = zd.ticket(ticket_id)["updated_at"]
    clock.advance(60)
    zd.human_update(ticket_id, subject="Changed by Ana")
    stale = api("PUT", f"tickets/{ticket_id}", json={"ticket": {"status": "pending", "safe_update": True,
                                                                 "updated_stamp": stamp}})
    assert stale.status_code == 409 and stale.json()["error"] == "UpdateConflict"
    fresh = api("PUT", f"tickets/{ticket_id}", json={"ticket": {"status": "pending", "safe_update": True,
                                                                 "updated_stamp": zd.ticket(ticket_id)["updated_at"]}})
    assert fresh.status_code == 200


def test_closed_tickets_and_foreign_assignees_are_422_with_details(api, zd):
    closed = api("PUT", f"tickets/{first(zd, 'closed')}", json={"ticket": {"priority": "low"}})
    assert closed.status_code == 422
    assert closed.json()["details"]["status"][0]["description"] == "Status: closed prevents ticket update"
    billing = zd.queue.group_named("Billing").id
    outsider = next(a.id for a in zd.queue.agents if billing not in a.group_ids)
    foreign = api("PUT", f"tickets/{first(zd, 'open')}", json={"ticket": {"group_id": billing,
                                                                          "assignee_id": outsider}})
    assert foreign.status_code == 422 and "is not a member of the group Billing" in foreign.text


def test_tags_are_added_replaced_and_removed_by_their_own_endpoints(api, zd):
    ticket_id = first(zd, "open")
    api("POST", f"tickets/{ticket_id}/tags.json", json={"tags": ["a", "b"]})
    assert api("PUT", f"tickets/{ticket_id}/tags.json", json={"tags": ["c"]}).json() == {"tags": ["a", "b", "c"]}
    assert api("DELETE", f"tickets/{ticket_id}/tags.json", json={"tags": ["a"]}).json() == {"tags": ["b", "c"]}


def test_update_many_runs_as_a_job_over_successive_polls(api, zd):
    ids = [t.id for t in zd.queue.tickets if t.status == "open"][:3]
    job = api("PUT", "tickets/update_many.json", params={"ids": ",".join(map(str, ids))},
              json={"ticket": {"priority": "high", "additional_tags": ["bulk"]}}).json()["job_status"]
    assert (job["status"], job["progress"], job["results"]) == ("queued", None, None)
    assert not any("bulk" in zd.ticket(i)["tags"] for i in ids)  # nothing applied while queued
    working = api("GET", f"job_statuses/{job['id']}.json").json()["job_status"]
    done = api("GET", job["url"]).json()["job_status"]
    assert (working["status"], done["status"]) == ("working", "completed")
    assert done["results"] == [{"id": i, "action": "update", "status": "Updated", "success": True} for i in ids]
    assert all(zd.ticket(i)["priority"] == "high" and "bulk" in zd.ticket(i)["tags"] for i in ids)


def test_update_many_reports_failures_per_ticket_and_refuses_over_100(api, zd):
    closed = first(zd, "closed")
    zd.job_polls = 0
    job = api("PUT", "tickets/update_many", json={"tickets": [{"id": closed, "priority": "low"}]}).json()
    [result] = job["job_status"]["results"]
    assert result["success"] is False and result["details"] == "Status: closed prevents ticket update"
    many = api("PUT", "tickets/update_many", json={"tickets": [{"id": i} for i in range(1, 102)]})
    assert many.status_code == 400 and many.json()["error"] == "TooManyValues"


def test_update_many_takes_a_body_per_ticket_with_tags_note_and_safe_update(api, zd, clock):
    one, two, three = [t.id for t in zd.queue.tickets if t.status == "open"][:3]
    zd.human_update(one, tags=["human", "stale"])
    stamps = {i: zd.ticket(i)["updated_at"] for i in (one, two, three)}
    clock.advance(60)
    zd.human_update(three, subject="Edited while the bot decided")
    zd.job_polls = 0
    job = api("PUT", "tickets/update_many", json={"tickets": [
        {"id": one, "priority": "urgent", "additional_tags": ["bot"], "remove_tags": ["stale"],
         "comment": {"body": "Raised by deskbot", "public": False}, "safe_update": True, "updated_stamp": stamps[one]},
        {"id": two, "status": "pending", "safe_update": True, "updated_stamp": stamps[two]},
        {"id": three, "priority": "low", "safe_update": True, "updated_stamp": stamps[three]},
    ]}).json()["job_status"]
    ok, also_ok, conflict = job["results"]
    assert (ok["success"], also_ok["success"], conflict["success"]) == (True, True, False)
    assert (conflict["id"], conflict["error"]) == (three, "UpdateConflict")
    assert zd.ticket(one)["priority"] == "urgent" and zd.ticket(one)["tags"] == ["bot", "human"]
    assert zd.private_notes(one)[-1] == "Raised by deskbot"
    assert zd.ticket(two)["status"] == "pending"
    assert zd.ticket(three)["priority"] != "low", "a refused safe update writes nothing"


def test_a_job_nobody_polls_still_runs_after_job_seconds(api, zd, clock):
    ticket_id = first(zd, "open")
    api("PUT", "tickets/update_many", json={"tickets": [{"id": ticket_id, "priority": "urgent"}]})
    clock.advance(zd.job_seconds - 1)
    assert api("GET", f"tickets/{ticket_id}").json()["ticket"]["priority"] != "urgent"
    clock.advance(1)
    assert api("GET", f"tickets/{ticket_id}").json()["ticket"]["priority"] == "urgent"
    assert zd.job_writes() == {ticket_id: 1}


def test_several_jobs_are_polled_in_one_show_many_call(api, zd):
    ids = [t.id for t in zd.queue.tickets if t.status == "open"][:2]
    jobs = [api("PUT", "tickets/update_many", json={"tickets": [{"id": i, "priority": "high"}]}).json()["job_status"]
            for i in ids]
    both = ",".join(j["id"] for j in jobs)
    working = api("GET", "job_statuses/show_many.json", params={"ids": both}).json()["job_statuses"]
    done = api("GET", "job_statuses/show_many.json", params={"ids": both + ",V3-unknown"}).json()["job_statuses"]
    assert [j["status"] for j in working] == ["working", "working"]
    assert [(j["id"], j["status"]) for j in done] == [(j["id"], "completed") for j in jobs]
    assert all(zd.ticket(i)["priority"] == "high" for i in ids)
    too_many = api("GET", "job_statuses/show_many.json", params={"ids": ",".join(f"V3-{n}" for n in range(101))})
    assert too_many.status_code == 400 and too_many.json()["error"] == "TooManyValues"


# --- people and fields ------------------------------------------------------------------------------------


def test_users_filter_by_role_and_page_by_cursor(api, zd, host):
    page = api("GET", "users.json", params=[("role[]", "agent"), ("role[]", "admin"), ("page[size]", 5)]).json()
    assert page["meta"]["has_more"] and page["links"]["next"].startswith(host.url)
    roles = {u["role"] for u in page["users"]}
    rest = api("GET", page["links"]["next"]).json()
    everyone = page["users"] + rest["users"] + api("GET", rest["links"]["next"]).json()["users"]
    assert roles | {u["role"] for u in everyone} == {"agent", "admin"}
    assert len(everyone) == len(zd.queue.agents) + 1  # the agents and the bot's own admin user


def test_groups_memberships_and_fields_describe_the_seeded_account(api, zd):
    groups = api("GET", "groups.json").json()
    assert [g["name"] for g in groups["groups"]] == ["Billing", "Technical", "Accounts", "Escalations"]
    assert groups["next_page"] is None
    memberships = api("GET", "group_memberships.json").json()["group_memberships"]
    assert len(memberships) == sum(len(a.group_ids) for a in zd.queue.agents)
    titles = {f["title"] for f in api("GET", "ticket_fields.json").json()["ticket_fields"]}
    assert {"Order number", "Plan", "Region", "VIP customer", "Priority"} <= titles


def test_search_export_finds_unsolved_tickets(api, zd):
    page = api("GET", "search/export.json", params={"query": "type:ticket status<solved", "filter[type]": "ticket",
                                                    "page[size]": 100}).json()
    unsolved = {t.id for t in zd.queue.tickets if t.status not in ("solved", "closed")}
    assert {r["id"] for r in page["results"]} == unsolved and not page["meta"]["has_more"]
    assert all(r["result_type"] == "ticket" for r in page["results"])


# --- the humans ---------------------------------------------------------------------------------------------


def test_customer_and_agent_replies_move_the_clocks_and_the_sla(zd, clock):
    ticket_id = zd.add_ticket("Cannot log in", priority="high")
    ticket = zd.ticket(ticket_id)
    assert ticket["status"] == "new"
    stored = zd.tickets[ticket_id]
    [first_reply, resolution] = zd.policy_metrics(stored)
    assert (first_reply["metric"], first_reply["stage"], first_reply["breach_at"]) == (
        "first_reply_time", "active", "2024-06-10T16:00:00Z")
    clock.advance(3600)
    zd.agent_reply(ticket_id, "Try again now?", agent_id=zd.queue.agents[0].id)
    assert zd.ticket(ticket_id)["status"] == "pending"
    assert zd.policy_metrics(stored)[0]["stage"] == "achieved"
    assert zd.metric_set(stored)["reply_time_in_minutes"]["calendar"] == 60
    clock.advance(600)
    zd.customer_reply(ticket_id, "Still broken")
    assert zd.ticket(ticket_id)["status"] == "open"
    assert zd.metric_set(stored)["requester_updated_at"] == "2024-06-10T13:10:00Z"
    next_reply = next(m for m in zd.policy_metrics(stored) if m["metric"] == "next_reply_time")
    assert (next_reply["stage"], next_reply["breach_at"]) == ("active", "2024-06-10T21:10:00Z")
    assert resolution["metric"] == "total_resolution_time"


def test_a_human_update_bypasses_safe_update_and_is_audited_as_an_agent(zd, clock):
    ticket_id = first(zd, "pending")
    clock.advance(30)
    zd.human_update(ticket_id, status="on_hold")
    assert zd.ticket(ticket_id)["status"] == "hold"
    assert zd.audits(ticket_id)[-1]["via"] == {"channel": "web"}
    assert zd.audits(ticket_id)[-1]["author_id"] != 1


def test_the_seed_maps_to_zendesk_words(zd):
    assert zd.ticket(zd.add_ticket("Call me", channel="phone", status="on_hold"))["via"]["channel"] == "voice"
    sample = zd.queue.tickets[0]
    custom = {f["id"]: f["value"] for f in zd.ticket(sample.id)["custom_fields"]}
    assert custom[zd.field_ids["plan"]] == sample.custom["plan"]
