"""The runner's cycle: changes in, rules applied once, time-based rules on the local tick, failures contained."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from bot.errors import AuthError, Unavailable
from bot.model import Priority, Status
from bot.runner import Runner, RunOptions
from bot.runtime.reload import RulesFile
from bot.state import IntentState
from bot.state.memory import MemoryStore
from tests.fakes import T0, FakeConnector, make_ticket

HEADER = "version: 1\nmode: live\nsettings: {blast_radius: %s}\nrules:\n"
TAG_URGENT = """
  - name: tag urgent
    when: {priority: urgent}
    then: [{add_tags: [hot]}]
"""
OLD_ALERT = """
  - name: old
    when: {since_created: {over: 1h}}
    then: [{notify: {channel: "#triage", message: "old {{ id }}"}}]
"""


class Clock:
    def __init__(self, at=T0):
        self.at = at

    def __call__(self):
        return self.at

    def advance(self, **kw):
        self.at += timedelta(**kw)


@pytest.fixture
def clock():
    return Clock(T0 + timedelta(minutes=10))


def rules_file(tmp_path, body, radius="1.0"):
    path = tmp_path / "rules.yaml"
    path.write_text(HEADER % radius + body)
    return path


def make_runner(tmp_path, body, connectors, clock, *, store=None, radius="1.0", **options):
    path = rules_file(tmp_path, body, radius)
    store = store or MemoryStore(clock=clock)
    return Runner(RulesFile(str(path)), store, connectors, options=RunOptions(config_path=str(path), **options),
                  clock=clock)


def tickets(platform="zendesk"):
    return [make_ticket(i, platform, priority=Priority.URGENT if i <= 2 else Priority.NORMAL) for i in range(1, 6)]


def test_a_poll_acts_on_matching_tickets_once(tmp_path, clock):
    zd = FakeConnector(tickets())
    runner = make_runner(tmp_path, TAG_URGENT, {"zendesk": zd}, clock)
    report = runner.poll("zendesk")
    assert (report.fetched, report.evaluated, sorted(report.execution.done)) == (
        5, 5, ["tag urgent/zendesk:1/1/0:add_tags", "tag urgent/zendesk:2/1/0:add_tags"])
    assert {i for i, t in zd.store.items() if "hot" in t.tags} == {1, 2}
    clock.advance(minutes=1)
    again = runner.poll("zendesk")
    assert again.execution.done == [] and len(zd.applied) == 2, "our own writes come back in the feed; no repeat"


def test_time_based_alerts_fall_due_on_the_local_tick_and_go_out_with_the_next_poll_at_no_extra_call(tmp_path, clock):
    zd = FakeConnector(tickets())
    runner = make_runner(tmp_path, OLD_ALERT, {"zendesk": zd}, clock)
    runner.poll("zendesk")
    assert runner.store.pending() == []
    calls = zd.calls.total
    clock.advance(minutes=49)
    assert [r.evaluated for r in runner.tick()] == [0], "nothing is due before the hour"
    assert zd.calls.total == calls, "a tick where nothing fires makes no API call"
    clock.advance(minutes=2)
    [report] = runner.tick()
    assert (report.evaluated, report.api_calls, runner.store.pending()) == (5, 0, []), \
        "the mirror is known only up to the last poll, before the hour: the alerts wait"
    clock.advance(seconds=10)
    report = runner.poll("zendesk")
    assert report.api_calls == 1 and zd.calls.by_kind == {"fetch": 2}, "the change feed, nothing else"
    assert sorted(e.alert.ticket_key for e in runner.store.pending()) == [f"zendesk:{i}" for i in range(1, 6)]


def test_solved_tickets_are_evaluated_once_more_then_leave_the_mirror(tmp_path, clock):
    zd = FakeConnector(tickets())
    runner = make_runner(tmp_path, TAG_URGENT, {"zendesk": zd}, clock)
    runner.poll("zendesk")
    zd.change(3, status=Status.SOLVED, priority=Priority.URGENT)
    zd.delete(4)
    clock.advance(minutes=1)
    report = runner.poll("zendesk")
    assert report.planned == 1, "the rule still saw the solved ticket"
    assert sorted(runner.store.mirror()) == ["zendesk:1", "zendesk:2", "zendesk:5"]
    assert runner.store.intent("tag urgent/zendesk:3/1/0:add_tags").state is IntentState.SKIPPED


def test_an_edited_rules_file_takes_effect_at_the_next_cycle(tmp_path, clock):
    zd = FakeConnector(tickets())
    runner = make_runner(tmp_path, TAG_URGENT, {"zendesk": zd}, clock)
    runner.poll("zendesk")
    rules_file(tmp_path, TAG_URGENT + """
  - name: tag normal
    when: {priority: normal}
    then: [{add_tags: [calm]}]
""")
    clock.advance(minutes=1)
    report = runner.poll("zendesk")
    assert report.evaluated == 5, "a new rule version looks at the whole queue"
    assert {i for i, t in zd.store.items() if "calm" in t.tags} == {3, 4, 5}


def test_a_broken_rules_file_is_refused_and_the_last_good_rules_keep_running(tmp_path, clock, caplog):
    zd = FakeConnector(tickets())
    runner = make_runner(tmp_path, "", {"zendesk": zd}, clock)
    (tmp_path / "rules.yaml").write_text(HEADER % "1.0" + TAG_URGENT)
    runner.poll("zendesk")
    good = runner.config
    (tmp_path / "rules.yaml").write_text(HEADER % "1.0" + TAG_URGENT.replace("add_tags", "add_tagz"))
    with caplog.at_level(logging.ERROR, logger="deskbot"):
        zd.add(make_ticket(9, priority=Priority.URGENT))
        runner.poll("zendesk")
        runner.poll("zendesk")
    assert runner.config is good and "hot" in zd.store[9].tags
    rejected = [r for r in caplog.records if r.getMessage().startswith("rules rejected")]
    assert len(rejected) == 1, "reported once, not every cycle"
    assert "unknown action 'add_tagz'" in rejected[0].fields["problems"]
    assert "unknown action 'add_tagz'" in runner.status()["rules_rejected"][0]


def test_a_rule_matching_too_much_of_the_queue_is_held_until_confirmed(tmp_path, clock):
    zd = FakeConnector([make_ticket(i) for i in range(1, 11)])
    body = """
  - name: close everything
    when: {status: open}
    then: [{add_tags: [mass]}]
"""
    runner = make_runner(tmp_path, body, {"zendesk": zd}, clock, radius="0.25")
    report = runner.poll("zendesk")
    assert report.planned == 0 and zd.applied == []
    assert "matches 10 of 10 open tickets (100%); HELD" in runner.status()["held_rules"]["close everything"]
    runner.store.release_lease(runner.owner)  # restarted with --confirm
    confirmed = make_runner(tmp_path, body, {"zendesk": zd}, clock, radius="0.25", store=runner.store,
                            confirm=("close everything",))
    clock.advance(minutes=1)
    report = confirmed.poll("zendesk")
    assert report.planned == 10 and all("mass" in t.tags for t in zd.store.values())


def test_one_failing_helpdesk_never_stops_another_and_is_reported_once_then_recovery(tmp_path, clock, caplog):
    zd, fd = FakeConnector(tickets()), FakeConnector(tickets("freshdesk"), platform="freshdesk")
    runner = make_runner(tmp_path, TAG_URGENT, {"zendesk": zd, "freshdesk": fd}, clock)
    with caplog.at_level(logging.INFO, logger="deskbot"):
        for _ in range(4):
            fd.fail_next = [AuthError("401: check FRESHDESK_API_KEY", status=401)]
            runner.poll("freshdesk")
            runner.poll("zendesk")
            clock.advance(minutes=10)
        runner.poll("freshdesk")
    assert {i for i, t in zd.store.items() if "hot" in t.tags} == {1, 2}
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("helpdesk error") == 1 and messages.count("helpdesk recovered") == 1
    assert {i for i, t in fd.store.items() if "hot" in t.tags} == {1, 2}


def test_a_failing_helpdesk_is_polled_with_backoff_not_in_a_busy_loop(tmp_path, clock):
    zd = FakeConnector(tickets())
    runner = make_runner(tmp_path, TAG_URGENT, {"zendesk": zd}, clock, poll_interval=30)
    attempts = 0
    for _ in range(40):  # 20 minutes of 30 s polls during an outage
        zd.fail_next = [Unavailable("503")]
        before = zd.calls.total
        runner.poll("zendesk")
        attempts += zd.calls.total > before
        clock.advance(seconds=30)
    assert attempts <= 9, "30s, 1m, 2m, 4m, 5m, 5m... between attempts"


def test_two_runners_on_one_store_never_both_act(tmp_path, clock):
    zd = FakeConnector(tickets())
    store = MemoryStore(clock=clock)
    first = make_runner(tmp_path, TAG_URGENT, {"zendesk": zd}, clock, store=store)
    second = make_runner(tmp_path, TAG_URGENT, {"zendesk": zd}, clock, store=store)
    assert first.poll("zendesk") is not None
    assert second.poll("zendesk") is None and second.tick() == []
    clock.advance(minutes=5)  # the first runner died without releasing its lease
    assert second.poll("zendesk") is not None
    assert first.poll("zendesk") is None
    assert len(zd.applied) == 2


def test_when_the_store_cannot_write_nothing_is_changed_and_health_is_red(tmp_path, clock):
    zd = FakeConnector([make_ticket(i, priority=Priority.URGENT, description="x" * 3000) for i in range(1, 40)])
    runner = make_runner(tmp_path, TAG_URGENT, {"zendesk": zd}, clock)
    conn = runner.store._conn
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0] + 2}")
    assert runner.poll("zendesk") is None
    assert zd.applied == [] and runner.status()["healthy"] is False
    assert "cannot" in runner.status()["store"]["error"]
    conn.execute("PRAGMA max_page_count = 1000000")
    clock.advance(minutes=1)
    runner.poll("zendesk")
    assert runner.status()["healthy"] is True and len(zd.applied) == 39


def test_dry_run_plans_and_audits_but_changes_nothing(tmp_path, clock):
    zd = FakeConnector(tickets())
    runner = make_runner(tmp_path, TAG_URGENT, {"zendesk": zd}, clock, dry_run=True)
    runner.poll("zendesk")
    assert zd.applied == [] and [e.result for e in runner.store.audit_log()] == ["dry_run", "dry_run"]


def test_healthz_turns_red_when_the_store_cannot_write_and_metrics_are_served(tmp_path, clock):
    import json
    import urllib.error
    import urllib.request

    from bot.health import serve_health

    zd = FakeConnector(tickets())
    runner = make_runner(tmp_path, TAG_URGENT, {"zendesk": zd}, clock)
    runner.poll("zendesk")
    with serve_health(runner.status_checked, runner.metrics, port=0) as server:
        with urllib.request.urlopen(server.url + "/healthz") as response:
            assert response.status == 200 and json.loads(response.read())["healthy"] is True
        with urllib.request.urlopen(server.url + "/metrics") as response:
            body = response.read().decode()
        assert 'deskbot_actions_total{helpdesk="zendesk",result="done"} 2' in body
        assert 'deskbot_cycles_total{helpdesk="zendesk"} 1' in body
        runner.store._conn.execute("PRAGMA query_only = ON")  # the disk stops accepting writes
        try:
            urllib.request.urlopen(server.url + "/healthz")
            raise AssertionError("expected 503")
        except urllib.error.HTTPError as error:
            assert error.code == 503 and json.loads(error.read())["store"]["writable"] is False
