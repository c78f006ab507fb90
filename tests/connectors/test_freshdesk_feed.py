"""The Freshdesk change feed over real HTTP: pagination, the same-second watermark, backfill, the page wall."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from urllib.parse import parse_qs

import pytest

from bot.connectors.base import MemoryCursorStore, sync
from bot.errors import ConnectorError
from bot.model import Status
from tests.connectors.freshdesk_fixtures import NOW, FakeTime, SandboxHost, drain, make_connector, staff


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture(scope="module")
def host():
    host = SandboxHost()
    yield host
    host.stop()


@pytest.fixture
def served(host, time):
    app = host.use(time)
    staff(app)
    return app, host


def list_queries(app) -> list[dict[str, str]]:
    """The query of every list-tickets request the sandbox saw, in order."""
    return [{k: v[0] for k, v in parse_qs(r.query).items()} for r in app.requests if r.path == "/api/v2/tickets"]


def add_spread(app, count: int, start=NOW - timedelta(days=1), step=timedelta(seconds=1), **fields):
    """`count` tickets updated one `step` apart (step 0: all in one second)."""
    return [app.add_ticket(created_at=start, updated_at=start + step * i, **fields)["id"] for i in range(count)]


def test_a_first_run_reads_every_page_in_updated_order_with_the_includes(served, time):
    app, server = served
    ids = add_spread(app, 250)
    connector = make_connector(server.url, time)
    tickets, pages = drain(connector.fetch_changes(None))
    assert [t.id for t in tickets] == ids
    assert [p.end_of_stream for p in pages] == [False, False, True]
    first = list_queries(app)[0]
    assert first == {"updated_since": "2000-01-01T00:00:00Z", "order_by": "updated_at", "order_type": "asc",
                     "per_page": "100", "page": "1", "include": "stats,requester,description,company"}
    assert tickets[0].requester == f"Customer {ids[0]}" and tickets[0].description == f"Ticket {ids[0]}"


def test_pages_restart_from_the_watermark_rather_than_walking_offsets(served, time):
    app, server = served
    add_spread(app, 250)
    drain(make_connector(server.url, time).fetch_changes(None))
    queries = list_queries(app)
    assert [q["page"] for q in queries] == ["1", "1", "1"]
    since = [q["updated_since"] for q in queries]
    assert since == sorted(since) and len(set(since)) == 3


def test_a_ticket_edited_during_the_walk_cannot_shift_another_out_of_sight(served, time):
    app, server = served
    ids = add_spread(app, 30)
    requests_seen = []

    def human_edits_ticket_3_before_the_second_page(request):
        if request.path == "/api/v2/tickets":
            requests_seen.append(request)
            if len(requests_seen) == 2:
                app.human_update(ids[2], subject="edited mid-walk")

    app.before.append(human_edits_ticket_3_before_the_second_page)
    tickets, _ = drain(make_connector(server.url, time, per_page=10).fetch_changes(None))
    counts = Counter(t.id for t in tickets)
    assert set(counts) == set(ids), "a ticket was lost"
    assert counts[ids[2]] == 2 and sum(counts.values()) == 31  # the edit is a new version, nothing else repeats


def test_many_tickets_in_one_second_across_a_page_boundary_are_each_read_once(served, time):
    app, server = served
    early = add_spread(app, 40, start=NOW - timedelta(hours=2))
    burst = add_spread(app, 110, start=NOW - timedelta(hours=1), step=timedelta(0))
    connector = make_connector(server.url, time)
    tickets, pages = drain(connector.fetch_changes(None))
    assert [t.id for t in tickets] == early + burst
    assert [q["page"] for q in list_queries(app)] == ["1", "2"]  # the Link is followed inside the burst

    late = app.add_ticket(created_at=NOW - timedelta(hours=1), updated_at=NOW - timedelta(hours=1))["id"]
    again, _ = drain(connector.fetch_changes(pages[-1].cursor))
    assert [t.id for t in again] == [late], "a ticket updated in the watermark's second after the read"


def test_an_idle_poll_returns_nothing_and_repeats_nothing(served, time):
    app, server = served
    add_spread(app, 5)
    connector = make_connector(server.url, time)
    _, pages = drain(connector.fetch_changes(None))
    for _ in range(3):
        tickets, pages = drain(connector.fetch_changes(pages[-1].cursor))
        assert tickets == [] and pages[-1].end_of_stream


def test_a_later_update_of_a_seen_ticket_comes_through_again(served, time):
    app, server = served
    ids = add_spread(app, 3)
    connector = make_connector(server.url, time)
    _, pages = drain(connector.fetch_changes(None))
    time.advance(seconds=1)
    app.human_update(ids[0], priority=4)
    tickets, _ = drain(connector.fetch_changes(pages[-1].cursor))
    assert [(t.id, t.priority.value) for t in tickets] == [(ids[0], "urgent")]


def test_the_first_run_backfills_unresolved_tickets_of_any_age(served, time):
    app, server = served
    old_open = app.add_ticket(created_at=NOW - timedelta(days=90), updated_at=NOW - timedelta(days=90))["id"]
    solved = app.add_ticket(status=4, updated_at=NOW - timedelta(days=2))["id"]
    pending = app.add_ticket(status=3, updated_at=NOW - timedelta(days=1))["id"]
    tickets, _ = drain(make_connector(server.url, time).fetch_changes(None))
    assert [t.id for t in tickets] == [old_open, pending]

    everything, _ = drain(make_connector(server.url, time).fetch_changes(None, backfill_all=True))
    assert [t.id for t in everything] == [old_open, solved, pending]


def test_after_the_backfill_a_ticket_solved_by_a_human_is_reported(served, time):
    app, server = served
    ticket = app.add_ticket(updated_at=NOW - timedelta(hours=1))["id"]
    connector = make_connector(server.url, time)
    _, pages = drain(connector.fetch_changes(None))
    app.human_update(ticket, status=4)
    tickets, _ = drain(connector.fetch_changes(pages[-1].cursor))
    assert [(t.id, t.status) for t in tickets] == [(ticket, Status.SOLVED)]


def test_a_backfill_interrupted_midway_resumes_and_still_skips_resolved_tickets(served, time):
    app, server = served
    ids = [app.add_ticket(status=4 if i % 2 else 2, updated_at=NOW - timedelta(minutes=60 - i))["id"]
           for i in range(6)]
    connector = make_connector(server.url, time, per_page=2)
    first_page = next(iter(connector.fetch_changes(None)))
    rest, _ = drain(connector.fetch_changes(first_page.cursor))
    assert [t.id for t in first_page.tickets + tuple(rest)] == [ids[0], ids[2], ids[4]]


def test_sync_persists_the_cursor_after_each_page(served, time):
    app, server = served
    add_spread(app, 5)
    store = MemoryCursorStore()
    connector = make_connector(server.url, time, per_page=2)
    pages = sync(connector, store)
    next(pages)
    assert store.get_cursor("freshdesk:tickets") is None  # the first page is not handled yet
    next(pages)
    saved = store.get_cursor("freshdesk:tickets")
    assert saved and saved.startswith("fd1.")


def test_the_walk_never_asks_past_the_page_wall(host, time):
    app = host.use(time, page_wall=3)
    ids = add_spread(app, 12)
    connector = make_connector(host.url, time, per_page=2, page_wall=3)
    tickets, _ = drain(connector.fetch_changes(None))
    assert [t.id for t in tickets] == ids
    pages = [int(q["page"]) for q in list_queries(app)]
    assert max(pages) == 3 and pages.count(1) > 1  # dense pages follow the Link, then restart before the wall
    assert all(r.status == 200 for r in app.requests)


def test_a_burst_larger_than_the_wall_stops_with_an_explanation(host, time):
    app = host.use(time, page_wall=3)
    add_spread(app, 8, step=timedelta(0))
    connector = make_connector(host.url, time, per_page=2, page_wall=3)
    with pytest.raises(ConnectorError, match=r"more than 6 Freshdesk tickets were updated within 1s of"):
        drain(connector.fetch_changes(None))
    assert all(r.status == 200 for r in app.requests)


def test_a_damaged_cursor_says_how_to_start_over(served, time):
    _, server = served
    with pytest.raises(ConnectorError, match="delete the 'freshdesk:tickets' cursor"):
        drain(make_connector(server.url, time).fetch_changes("zd-cursor-123"))
