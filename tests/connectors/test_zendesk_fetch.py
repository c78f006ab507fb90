"""Reading Zendesk over real HTTP: the incremental export, resuming, backfill, re-reads, the directory."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs

import pytest

from bot.connectors import CONNECTORS
from bot.connectors.base import ChangePage, Connector, MemoryCursorStore, sync
from bot.connectors.zendesk import ZendeskConnector
from bot.errors import ConnectorError
from bot.model import Priority, Status
from bot.sandbox import seed
from bot.sandbox.zendesk import ZendeskSandbox


def drain(connector: ZendeskConnector, cursor: str | None, **kwargs):
    return list(connector.fetch_changes(cursor, **kwargs))


def ids(pages) -> list[int]:
    return [t.id for page in pages for t in page.tickets]


def test_first_run_loads_only_the_open_tickets(zendesk, zd_sandbox):
    pages = drain(zendesk(), None)
    unsolved = {t.id for t in zd_sandbox.queue.tickets if t.status not in ("solved", "closed")}
    assert set(ids(pages)) == unsolved
    assert all(not t.status.is_resolved for page in pages for t in page.tickets)
    assert pages[-1].end_of_stream and pages[-1].cursor


def test_after_the_backfill_the_export_starts_an_hour_before_it(zendesk, zd_sandbox):
    pages = drain(zendesk(per_page=10), None)
    backfill, export = pages[:-1], pages[-1]
    assert len(backfill) > 2 and all(p.cursor is None for p in backfill)  # a crash here redoes the backfill
    hour_ago = seed.DEFAULT_NOW - timedelta(hours=1)
    recent = {t.id for t in zd_sandbox.queue.tickets if t.updated_at >= hour_ago}
    assert recent and {t.id for t in export.tickets} == recent - set(ids(backfill))
    assert export.cursor.startswith("+/")


def test_with_nothing_new_since_the_start_the_resume_point_is_that_time(zendesk, zd_sandbox):
    overlap = timedelta(minutes=2)
    assert not [t for t in zd_sandbox.queue.tickets if t.updated_at >= seed.DEFAULT_NOW - overlap]
    pages = drain(zendesk(backfill_overlap=overlap), None)
    assert pages[-1].tickets == () and pages[-1].end_of_stream
    assert pages[-1].cursor == f"time:{int((seed.DEFAULT_NOW - overlap).timestamp())}"


def test_backfill_all_exports_the_whole_history(zendesk, zd_sandbox):
    pages = drain(zendesk(per_page=15), None, backfill_all=True)
    assert sorted(ids(pages)) == sorted(t.id for t in zd_sandbox.queue.tickets)
    assert [len(p.tickets) for p in pages] == [15, 15, 10]
    assert [p.end_of_stream for p in pages] == [False, False, True]


def test_tickets_arrive_whole_from_the_sideloads(zendesk, zd_sandbox):
    connector = zendesk()
    tickets = {t.id: t for t in drain(connector, None, backfill_all=True)[0].tickets}
    seeded = next(t for t in zd_sandbox.queue.tickets if t.status == "on_hold" and t.assignee_id)
    ticket = tickets[seeded.id]
    agent = next(a for a in zd_sandbox.queue.agents if a.id == seeded.assignee_id)
    assert ticket.status is Status.ON_HOLD and ticket.assignee == agent.name and ticket.group
    assert ticket.requester and ticket.requester_email
    assert ticket.custom["plan"] == seeded.custom["plan"]
    assert ticket.first_responded_at == seeded.first_responded_at.replace(second=seeded.created_at.second)
    assert ticket.last_customer_update_at == seeded.last_customer_update_at
    assert ticket.url.endswith(f"/agent/tickets/{seeded.id}")


def test_changes_since_a_cursor_include_human_edits(zendesk, zd_sandbox, zd_time):
    connector = zendesk()
    cursor = drain(connector, None, backfill_all=True)[-1].cursor
    zd_time.advance(300)
    zd_sandbox.human_update(4, priority="urgent")
    zd_sandbox.customer_reply(9, "Hello? Anyone?")
    pages = drain(connector, cursor)
    assert sorted(ids(pages)) == [4, 9]
    assert next(t for t in pages[0].tickets if t.id == 4).priority is Priority.URGENT
    assert drain(connector, pages[-1].cursor)[0].tickets == ()  # nothing new since


def test_a_restart_resumes_after_the_last_page_it_finished(zendesk, zd_sandbox):
    store = MemoryCursorStore()
    first = zendesk(per_page=10)
    handled = []
    for page in sync(first, store, backfill_all=True):
        handled.extend(t.id for t in page.tickets)
        if len(handled) == 20:
            break  # crash while handling the second page: only the first page's cursor was saved
    second = zendesk(per_page=10)
    rest = [t.id for page in sync(second, store) for t in page.tickets]
    in_order = [t.id for t in sorted(zd_sandbox.queue.tickets, key=lambda t: (t.updated_at, t.id))]
    assert rest == in_order[10:]  # the unfinished page again, then the rest, nothing skipped


def test_a_ticket_changed_while_paging_comes_again_in_its_newer_version(zendesk, zd_sandbox, zd_time):
    connector = zendesk(per_page=10)
    oldest = min(zd_sandbox.queue.tickets, key=lambda t: (t.updated_at, t.id)).id
    pages = connector.fetch_changes(None, backfill_all=True)
    first = next(pages)
    assert oldest in [t.id for t in first.tickets]
    zd_time.advance(120)
    zd_sandbox.human_update(oldest, priority="low")
    later = [t for page in pages for t in page.tickets if t.id == oldest]
    assert [t.priority for t in later] == [Priority.LOW]


def test_deleted_tickets_come_as_deleted_ids(zendesk, zd_sandbox, zd_time):
    connector = zendesk()
    cursor = drain(connector, None, backfill_all=True)[-1].cursor
    zd_time.advance(120)
    zd_sandbox.delete_ticket(6)
    pages = drain(connector, cursor)
    assert [p.deleted_ids for p in pages] == [(6,)] and ids(pages) == []
    assert connector.get_tickets([6, 7])[0].id == 7


def test_too_recent_start_time_means_no_news_not_an_error(zendesk, zd_sandbox, zd_time):
    connector = zendesk()
    recent = f"time:{int(zd_time.now().timestamp()) - 10}"
    assert drain(connector, recent) == [ChangePage(tickets=(), cursor=recent, end_of_stream=True)]
    assert [r.status for r in zd_sandbox.requests if "incremental" in r.path] == [422]  # and no retry


def test_the_connector_is_a_connector(zendesk):
    connector = zendesk()
    assert isinstance(connector, Connector) and connector.platform == "zendesk"
    assert CONNECTORS["zendesk"] == "bot.connectors.zendesk:ZendeskConnector"


def test_the_last_minute_stays_hidden_until_it_is_a_minute_old(zendesk, zd_queue, zd_time, zd_server):
    sandbox = zd_server.app
    sandbox.hide_recent = sandbox.too_recent
    connector = zendesk()
    cursor = drain(connector, None, backfill_all=True)[-1].cursor
    zd_time.advance(600)
    sandbox.human_update(3, priority="urgent")
    assert ids(drain(connector, cursor)) == []
    zd_time.advance(61)
    assert ids(drain(connector, cursor)) == [3]


def test_the_cursor_is_sent_encoded_even_with_plus_and_slash(zendesk, zd_sandbox):
    connector = zendesk(per_page=10)
    cursor = drain(connector, None, backfill_all=True)[0].cursor
    assert cursor.startswith("+/")  # the sandbox's cursors break if sent unencoded, as Zendesk's do
    before = len(zd_sandbox.requests)
    pages = drain(connector, cursor)
    assert parse_qs(zd_sandbox.requests[before].query)["cursor"] == [cursor]
    assert len(ids(pages)) == 30


def test_export_pages_follow_the_servers_own_after_url(zendesk, zd_sandbox, zd_server):
    drain(zendesk(per_page=10), None, backfill_all=True)
    exports = [r for r in zd_sandbox.requests if r.path.startswith("/api/v2/incremental")]
    assert len(exports) == 4
    assert all(parse_qs(r.query)["per_page"] == ["10"] for r in exports)
    assert all("slas" in parse_qs(r.query)["include"][0] for r in exports)


def test_get_tickets_rereads_in_batches_of_100_with_sideloads(zendesk, zd_time, zd_host):
    queue = seed.generate(5, tickets=250)
    sandbox = ZendeskSandbox(queue, clock=zd_time.now, email="deskbot@support.example",
                             api_token="zd-T0KEN-must-never-be-logged-7f3a")
    zd_host.mount(sandbox)
    connector = zendesk()
    tickets = connector.get_tickets([*range(250, 0, -1), 999_999, 5])
    assert [t.id for t in tickets] == list(range(250, 0, -1))  # asked order, unknown left out, no repeats
    assert connector.calls.snapshot() == {"show_many": 3}
    assert all(t.requester for t in tickets)


def test_the_directory_is_read_once_and_refreshed_after_its_ttl(zendesk, zd_sandbox, zd_time):
    connector = zendesk()
    directory = connector.directory()
    assert [g.name for g in directory.groups] == ["Billing", "Technical", "Accounts", "Escalations"]
    billing = directory.group("Billing")
    assert {a.id for a in directory.members(billing.id)} == {a.id for a in zd_sandbox.queue.members(billing.id)}
    assert all(a.email for a in directory.agents) and not any(a.name == "deskbot" and a.group_ids
                                                             for a in directory.agents)
    connector.directory()
    zd_time.advance(1800)
    connector.directory()
    assert connector.calls.snapshot() == {"users": 1, "groups": 1, "group_memberships": 1, "ticket_fields": 1}
    zd_time.advance(1801)
    connector.directory()
    assert connector.calls.snapshot()["users"] == 2
    connector.directory(refresh=True)
    assert connector.calls.snapshot()["groups"] == 3


def test_2500_changed_tickets_take_3_export_calls(zendesk, zd_time, zd_host):
    sandbox = ZendeskSandbox(seed.generate(11, tickets=2500), clock=zd_time.now, email="deskbot@support.example",
                             api_token="zd-T0KEN-must-never-be-logged-7f3a")
    zd_host.mount(sandbox)
    connector = zendesk()
    pages = drain(connector, None, backfill_all=True)
    assert [len(p.tickets) for p in pages] == [1000, 1000, 500]
    assert connector.calls.snapshot() == {"users": 1, "groups": 1, "group_memberships": 1, "ticket_fields": 1,
                                          "export": 3}


@pytest.mark.parametrize("pages", [12])
def test_the_export_keeps_to_its_own_10_per_minute(zendesk, zd_sandbox, zd_time, pages):
    connector = zendesk(per_page=4)  # 40 tickets -> 10 pages; a second run makes it 12+
    drain(connector, None, backfill_all=True)
    drain(connector, "time:0")
    exports = [r for r in zd_sandbox.requests if r.path.startswith("/api/v2/incremental")]
    assert len(exports) >= pages and all(r.status == 200 for r in exports)
    assert sum(zd_time.sleeps) >= 59  # waited for the minute to roll instead of drawing a 429


def test_after_url_pointing_elsewhere_is_refused(zendesk, zd_sandbox, zd_server):
    zd_sandbox.base_url = "http://198.51.100.7:8080"  # a misbehaving server handing out foreign URLs
    connector = zendesk(per_page=10)
    pages = connector.fetch_changes(None, backfill_all=True)
    next(pages)
    with pytest.raises(ConnectorError, match=r"refused to send Zendesk credentials to http://198\.51\.100\.7:8080"):
        next(pages)
    assert zd_sandbox.count("/api/v2/incremental") == 1  # the foreign URL was never requested
