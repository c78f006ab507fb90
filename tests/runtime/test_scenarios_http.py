"""The runner's failure scenarios, each proven over real HTTP on virtual time.

The real Zendesk connector talks to the sandbox Zendesk and the real Slack
notifier to the fake Slack, both on 127.0.0.1; the state is a SQLite file;
the runner is the one `deskbot run` drives. Counts come from the sandboxes
themselves: their request logs (with the simulated time of every request),
the audits Zendesk keeps per ticket, and the messages Slack received.
"""

from __future__ import annotations

import itertools
import json
import re
import urllib.error
import urllib.request
from collections import Counter
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest

from bot.sandbox import seed as seeding
from bot.state import IntentState
from tests.runtime.http_world import T0, busiest_minute, disk_full, is_write, open_world, results

ESCALATE = """
  - name: escalate urgent
    when:
      all: [{priority: urgent}, {tags: {lacks: bot_escalated}}, {status: {not_in: [solved, closed]}}]
    then:
      - add_tags: [bot_escalated]
      - add_note: "Escalated by deskbot"
"""
RAISE_NORMAL = """
  - name: raise normal
    when: {all: [{priority: normal}, {status: {not_in: [solved, closed]}}]}
    then: [{set_priority: high}]
"""


@pytest.fixture
def make_world(tmp_path):
    """Open a world with a chosen queue and sandbox options (rate limit, ...); closed after the test."""
    made = itertools.count(1)
    with ExitStack() as stack:
        def make(queue=None, **options):
            home = tmp_path / f"world{next(made)}"
            home.mkdir()
            return stack.enter_context(open_world(home, queue, **options))
        yield make


@pytest.fixture
def world(make_world):
    return make_world()


def open_ids(zendesk, **wanted):
    """Ids of the sandbox's unsolved tickets whose fields have these values."""
    out = []
    for ticket_id in sorted(zendesk.tickets):
        data = zendesk.ticket(ticket_id)
        if data["status"] not in ("solved", "closed") and all(
                (v(data[k]) if callable(v) else data[k] == v) for k, v in wanted.items()):
            out.append(ticket_id)
    return out


# -- 2. a 429/5xx storm on the helpdesk ------------------------------------------------------------------


def test_a_429_and_5xx_storm_keeps_to_the_budget_and_applies_every_decision_exactly_once(make_world):
    world = make_world(seeding.generate(5, tickets=60, now=T0), rate_limit=40)  # the bot's share: 20 a minute
    world.write_rules(ESCALATE + RAISE_NORMAL)
    urgent = open_ids(world.zendesk, priority="urgent")
    normal = open_ids(world.zendesk, priority=lambda p: p in (None, "normal"))  # no priority reads as normal
    assert len(urgent) >= 5 and len(normal) >= 5
    storm: dict[str, Any] = {"start": None, "n": 0, "puts": 0, "waits": []}

    def weather(at, method, path):
        """From deskbot's first write on, five minutes of 429s, 503s and writes whose answer is lost."""
        if storm["start"] is None and method == "PUT":
            storm["start"] = at
        if storm["start"] is None or at >= storm["start"] + timedelta(minutes=5):
            return None
        if method == "PUT":  # writes are few (bulk): each kind of trouble in turn, then one that goes through
            storm["puts"] += 1
            return [{"status": 503}, {"lost": 502}, None][storm["puts"] % 3 - 1]
        storm["n"] += 1
        kind = storm["n"] % 4
        if kind == 1:
            return {"status": 503}
        if kind in (0, 2):
            wait = 20 if kind == 0 else 7
            storm["waits"].append((len(world.zendesk.timeline), wait))  # this request's place in the log
            return {"status": 429, "retry_after": wait}
        return None

    world.zendesk.storm = weather
    runner = world.runner()
    rounds = 0
    while rounds < 40 and (len(urgent) < 40 or runner.store.open_intents()):
        if storm["start"] is not None and len(urgent) < 40:  # an incident: urgent tickets pour in meanwhile
            urgent += [world.zendesk.add_ticket(f"Checkout down #{n}", priority="urgent") for n in range(4)]
        world.cycle(runner)
        rounds += 1

    start = storm["start"]
    assert start is not None, "the storm began with deskbot's first write"
    times = [at for at, _ in world.zendesk.timeline]
    budget = runner.connectors["zendesk"].budget
    assert budget.limit == 40 and budget.allowed_per_minute == 20
    assert busiest_minute(times) <= 20, "no sliding minute, storm or catch-up, went over the bot's share"
    during = world.zendesk.calls_between(start, start + timedelta(minutes=5))
    assert during <= 5 * 20, "the storm costs no more calls than the budget allows"
    log = world.zendesk.timeline
    for index, wait in storm["waits"]:
        assert log[index + 1][0] - log[index][0] >= timedelta(seconds=wait), "every Retry-After honoured"
    assert rounds <= 25
    lost = [r.path for _, r in log if r.method == "PUT" and r.status == 502]
    recovered = [e for e in runner.store.audit_log(limit=10_000) if e.detail.startswith("recovered")]
    assert lost and recovered, "some writes went through with their answer lost, and were settled by a read"

    assert all("bot_escalated" in world.zendesk.ticket(i)["tags"] for i in urgent)
    assert all(world.zendesk.ticket(i)["priority"] == "high" for i in normal)
    notes = {i: [n for n in world.zendesk.bot_notes(i) if n.startswith("Escalated by deskbot")]
             for i in urgent}
    assert {i: len(n) for i, n in notes.items()} == {i: 1 for i in urgent}, "one note each, none twice"
    changes = {i: len(world.zendesk.bot_changes(i)) for i in urgent + normal}
    assert changes == {i: 1 for i in urgent + normal}, "note and tag, or priority; once"
    touched = {i for i in world.zendesk.tickets if world.zendesk.bot_changes(i)}
    assert touched == set(urgent) | set(normal), "no other ticket was written"
    states = Counter(i.state for i in runner.store.intents())
    assert states == {IntentState.DONE: 2 * len(urgent) + len(normal)}, states


# -- 5. duplicate, overlapping and out-of-order feed items ----------------------------------------------

ROUTE_AND_ESCALATE = """
  - name: route billing
    when: {all: [{subject: {matches: "(?i)refund|invoice"}}, {group: {is_empty: true}}]}
    then: [{set_group: Billing}, {add_tags: [bot_routed]}]
  - name: escalate urgent
    when:
      all: [{priority: urgent}, {tags: {lacks: bot_escalated}}, {status: {not_in: [solved, closed]}}]
    then:
      - add_tags: [bot_escalated]
      - add_note: "Escalated by deskbot"
      - notify: {channel: "#escalations", message: "Urgent #{{ id }}: {{ subject }}"}
"""


class MessyFeed:
    """Rewrites export pages: every ticket twice, an older copy right after the newer one, and stale
    copies of everything that changed before (its first version, with no newer copy beside it)."""

    def __init__(self):
        self.versions: dict[int, list[dict]] = {}

    def __call__(self, body):
        out = []
        for ticket in body["tickets"]:
            history = self.versions.setdefault(ticket["id"], [])
            if not history or history[-1] != ticket:
                history.append(ticket)
            out += [ticket, ticket] + ([history[-2]] if len(history) > 1 else [])
        page = {t["id"] for t in body["tickets"]}
        out += [h[0] for i, h in sorted(self.versions.items()) if len(h) > 1 and i not in page]
        return {**body, "tickets": out}


def run_feed_script(world):
    """The same story on either feed: routing, escalation, then humans solve, delete, escalate, reply."""
    world.write_rules(ROUTE_AND_ESCALATE)
    zd = world.zendesk
    refund = zd.add_ticket("Refund not received for A-1234", priority="normal")
    urgent = zd.add_ticket("Checkout is down", priority="urgent")
    later = zd.add_ticket("Cannot export my data", priority="normal")
    solved = zd.add_ticket("Site unreachable", priority="urgent")
    deleted = zd.add_ticket("Invoice copy please", priority="low")
    world.sim.advance(minutes=2)
    runner = world.runner()
    world.cycle(runner, times=2)
    zd.human_update(later, priority="urgent")
    zd.human_update(solved, status="solved")
    zd.delete_ticket(deleted)
    zd.customer_reply(refund, "Still waiting for my refund")
    world.cycle(runner, times=3)
    zd.customer_reply(urgent, "Any news?")
    fresh = zd.add_ticket("Payments failing for everyone", priority="urgent")
    world.cycle(runner, times=3)
    return runner, [refund, urgent, later, solved, deleted, fresh]


def outcome(world, runner, ids):
    """Everything a clean and a messy feed must agree on."""
    zd = world.zendesk
    tickets = {i: {k: zd.ticket(i)[k] for k in ("status", "priority", "group_id", "assignee_id", "tags")}
               for i in ids}
    return {
        "tickets": tickets,
        "notes": {i: zd.bot_notes(i) for i in ids},
        "changes": {i: len(zd.bot_changes(i)) for i in ids},
        "intents": sorted((i.rule, i.ticket_key, i.kind, i.state.value) for i in runner.store.intents()),
        "slack": sorted((m.channel, m.text) for m in world.slack.messages),
        "mirror": sorted(runner.store.mirror()),
    }


def test_duplicate_overlapping_and_out_of_order_feed_items_lead_to_the_same_actions_as_a_clean_feed(make_world):
    clean = make_world()
    clean_runner, ids = run_feed_script(clean)
    messy = make_world()
    feed = messy.zendesk.tamper = MessyFeed()
    messy_runner, messy_ids = run_feed_script(messy)
    assert messy_ids == ids
    assert any(len(h) > 2 for h in feed.versions.values()), "stale copies were served"
    expected = outcome(clean, clean_runner, ids)
    assert outcome(messy, messy_runner, ids) == expected
    refund, urgent, later, solved, _deleted, fresh = ids
    assert expected["changes"] == {i: 1 for i in ids}, "an escalation's tag and note go in one write"
    alerted = Counter(int(n) for _, text in expected["slack"] for n in re.findall(r"\(zendesk:(\d+)\)", text))
    assert alerted == {urgent: 1, later: 1, solved: 1, fresh: 1}, "one alert per escalation, the solved one resolved"
    assert expected["mirror"] == [f"zendesk:{i}" for i in (refund, urgent, later, fresh)], "solved, deleted: gone"


# -- 6. a broken rules file on reload; the blast-radius guard on reload ------------------------------------

TAG_OPEN = """
  - name: tag open
    when: {status: {in: [new, open]}}
    then: [{add_tags: [bot_seen]}]
"""


def admin_posts(world, needle):
    """Top-level posts in the admin channel that contain `needle`."""
    return [m for m in world.slack.posts("#general") if needle in m.text.replace("\u200d", "")]


def test_a_broken_rules_file_on_reload_leaves_the_running_rules_untouched(world):
    world.write_rules(ESCALATE, blast_radius=0.25)
    first = world.zendesk.add_ticket("Checkout is down", priority="urgent")
    runner = world.runner()
    world.cycle(runner)
    good = runner.config
    world.write_rules(ESCALATE + TAG_OPEN.replace("add_tags", "add_tagz"), blast_radius=0.25)
    second = world.zendesk.add_ticket("Payments failing", priority="urgent")
    world.cycle(runner, times=3)
    assert runner.config is good, "the last good rules keep running"
    assert {i: len(world.zendesk.bot_changes(i)) for i in (first, second)} == {first: 1, second: 1}
    assert not any("bot_seen" in world.zendesk.ticket(i)["tags"] for i in world.zendesk.tickets)
    assert "unknown action 'add_tagz'" in runner.status()["rules_rejected"][0]
    assert len(admin_posts(world, "rules file rejected")) == 1, "told once, not every cycle"
    assert admin_posts(world, "unknown action 'add_tagz'"), "the admin channel says what is wrong"


def test_a_reloaded_rule_hitting_too_much_of_the_queue_waits_for_deskbot_confirm_then_fires_once(world):
    from click.testing import CliRunner

    from bot.cli_runtime import confirm_command

    world.write_rules(ESCALATE, blast_radius=0.25)
    urgent = world.zendesk.add_ticket("Checkout is down", priority="urgent")
    calm = [world.zendesk.add_ticket(f"Question {n}", priority="normal") for n in range(9)]
    runner = world.runner()
    world.cycle(runner)
    world.write_rules(ESCALATE + TAG_OPEN, blast_radius=0.25)  # matches all 10 open tickets: 100% > 25%
    world.cycle(runner, times=3)
    late = world.zendesk.add_ticket("Payments failing", priority="urgent")
    world.cycle(runner, times=2)
    assert not any("bot_seen" in world.zendesk.ticket(i)["tags"] for i in world.zendesk.tickets), "held"
    assert len(world.zendesk.bot_changes(late)) == 1, "the other rules keep working meanwhile"
    held = runner.status()["held_rules"]["tag open"]
    assert "matches 10 of 10 open tickets (100%); HELD until confirmed" in held
    assert len(admin_posts(world, "HELD until confirmed")) == 1

    result = CliRunner().invoke(confirm_command, ["--config", str(world.rules_path), "--state",
                                                  str(world.state_path), "tag open"])
    assert result.exit_code == 0 and "confirmed 'tag open'" in result.output
    world.cycle(runner, times=4)
    everyone = [urgent, *calm, late]
    assert all("bot_seen" in world.zendesk.ticket(i)["tags"] for i in everyone), "fires once confirmed"
    tagged = Counter(i for i in everyone for a in world.zendesk.bot_changes(i) for e in a["events"]
                     if e.get("field_name") == "tags" and "bot_seen" in e["value"]
                     and "bot_seen" not in (e["previous_value"] or []))
    assert tagged == {i: 1 for i in everyone}, "each ticket tagged exactly once"
    assert runner.status()["held_rules"] == {}
    assert [r for (r, _, result) in results(runner.store, "tag open") if result == "done"] == ["tag open"] * 11


# -- 7. two runners on one state file ----------------------------------------------------------------------


def test_a_second_runner_on_the_same_state_file_stands_by_until_the_lease_lapses_and_changes_happen_once(world):
    world.write_rules(ESCALATE)
    first_batch = [world.zendesk.add_ticket(f"Outage {n}", priority="urgent") for n in range(3)]
    active, standby = world.runner(), world.runner()
    for _ in range(4):  # both scheduled side by side
        active.poll("zendesk")
        standby.poll("zendesk")
        for runner in (active, standby):
            runner.tick()
            runner.deliver()
        world.sim.advance(seconds=30)
        if len(first_batch) == 3:
            first_batch.append(world.zendesk.add_ticket("Outage 3", priority="urgent"))
    assert standby.connectors["zendesk"].calls.total == 0, "the second runner made no API call at all"
    assert {i: len(world.zendesk.bot_changes(i)) for i in first_batch} == {i: 1 for i in first_batch}

    expires = active.store.lease().expires_at  # the active runner stops here, lease kept (killed, paused)
    assert expires == world.sim() - timedelta(seconds=30) + active.lease_ttl
    seen = len(world.zendesk.timeline)
    held_over = world.zendesk.add_ticket("Outage 4", priority="urgent")
    world.cycle(standby, times=5)
    took_over = world.zendesk.timeline[seen][0]  # from here on only the standby runner polls
    assert expires <= took_over < expires + timedelta(seconds=30), "it took over at its first poll after the lapse"
    world.cycle(standby, times=2)
    calls = active.connectors["zendesk"].calls.total
    assert active.poll("zendesk") is None, "the first runner comes back: the lease is no longer its own"
    assert active.connectors["zendesk"].calls.total == calls
    world.cycle(standby, times=2)
    everyone = [*first_batch, held_over]
    assert {i: len(world.zendesk.bot_changes(i)) for i in everyone} == {i: 1 for i in everyone}
    assert {i: len(world.zendesk.bot_notes(i)) for i in everyone} == {i: 1 for i in everyone}
    assert world.zendesk.ticket_writes() == {i: 1 for i in everyone}, "one write (tag and note) per ticket, ever"


def test_a_long_batch_of_writes_keeps_the_lease_and_a_runner_paused_past_it_stops_before_writing_again(
        make_world):
    world = make_world(rate_limit=4)  # the bot's share: 2 calls a minute, so reading and writing take minutes
    world.write_rules(ESCALATE)
    ids = [world.zendesk.add_ticket(f"Outage {n}", priority="urgent") for n in range(40)]
    standby = world.runner()
    waits: list[float] = []
    took_over: list[int] = []

    def budget_wait(seconds):
        """The first runner waits for its budget; meanwhile the second runs its schedule. The 4th wait (for
        its update_many job to finish) is a pause of three minutes (a stopped VM, a long GC) past its lease."""
        waits.append(seconds)
        world.sim.sleep(seconds + (180 if len(waits) == 4 else 0))
        if standby.poll("zendesk") is not None:
            took_over.append(len(waits))
        standby.deliver()

    active = world.runner(connector=world.connector(sleep=budget_wait))
    assert active.poll("zendesk") is None, "the first runner noticed the lost lease and stopped"
    assert len(waits) == 4 and took_over == [4], "the lease held through every wait but the pause"
    calls = active.connectors["zendesk"].calls.snapshot()
    assert calls["update_many"] == 1 and "job_status" not in calls, "it stopped before its next call"
    world.cycle(standby, times=8)
    assert {i: len(world.zendesk.bot_notes(i)) for i in ids} == {i: 1 for i in ids}, "no note twice"
    assert all("bot_escalated" in world.zendesk.ticket(i)["tags"] for i in ids)
    assert world.zendesk.ticket_writes() == {i: 1 for i in ids}, "the queued job ran once; nothing written twice"
    assert "update_many" not in standby.connectors["zendesk"].calls.by_kind
    recovered = [e for e in standby.store.audit_log(limit=1000) if e.detail.startswith("recovered")]
    assert len(recovered) == 2 * len(ids), "the standby settled the first runner's claims by reading"


# -- 8. a rule that its own action keeps (or makes) true, and the bot's own writes coming back -------------

SELF_TRIGGERING = """
  - name: note open
    when: {all: [{tags: {has: loop_a}}, {status: open}]}
    then: [{add_note: "Seen by deskbot"}]
  - name: note recent change
    when: {all: [{tags: {has: loop_b}}, {since_updated: {under: 10m}}]}
    then: [{add_note: "Changed recently"}]
"""


def test_a_rule_its_own_action_keeps_or_makes_true_acts_once_per_occurrence(world):
    world.write_rules(SELF_TRIGGERING)
    zd = world.zendesk
    still = [zd.add_ticket(f"Question {n}", status="open", tags=["loop_a"]) for n in range(3)]
    again = [zd.add_ticket(f"Order {n}", status="open", tags=["loop_b"]) for n in range(3)]
    world.sim.advance(minutes=2)
    runner = world.runner()
    world.cycle(runner, times=20)  # ten minutes: every note changes its ticket, which the feed brings back
    for i in still + again:
        mirrored = runner.store.mirror()[f"zendesk:{i}"]
        assert mirrored.updated_at.isoformat().replace("+00:00", "Z") == zd.ticket(i)["updated_at"], \
            "the bot read its own write back from the feed"
    world.cycle(runner, times=20)  # the "recent change" condition falls ten minutes after the last write
    zd.human_update(again[0], priority="high")  # a human change: a new occurrence for one ticket
    world.cycle(runner, times=20)
    assert {i: len(zd.bot_notes(i)) for i in still} == {i: 1 for i in still}
    assert all(n.startswith("Seen by deskbot") for i in still for n in zd.bot_notes(i))
    assert {i: len(zd.bot_notes(i)) for i in again} == {again[0]: 2, again[1]: 1, again[2]: 1}
    assert all(n.startswith("Changed recently") for i in again for n in zd.bot_notes(i))
    assert zd.ticket_writes() == {**{i: 1 for i in still}, again[0]: 2, again[1]: 1, again[2]: 1}
    memory = runner.store.memory()
    assert memory[("note recent change", f"zendesk:{again[0]}")].occurrence == 2
    assert memory[("note open", f"zendesk:{still[0]}")].occurrence == 1


# -- 9. a long downtime -------------------------------------------------------------------------------------

SLA = """\
sla_policies:
  - name: standard
    targets: {first_reply: 1h, resolution: 3h}
"""
BREACHES = """
  - name: first reply breached
    when: {sla.first_reply.breached: true}
    then: [{notify: {channel: "#support-alerts", message: "No first reply on #{{ id }}"}}]
  - name: resolution breached
    when: {sla.resolution.breached: true}
    then: [{notify: {channel: "#escalations", message: "Unresolved #{{ id }}"}}]
"""


def test_after_hours_of_downtime_the_bot_catches_up_within_budget_digests_missed_breaches_and_expires_stale_writes(
        make_world):
    world = make_world(rate_limit=20)  # the bot's share: 10 calls a minute
    world.write_rules(BREACHES + ESCALATE, digest_threshold=3, head=SLA)
    zd, sim = world.zendesk, world.sim
    waiting = [zd.add_ticket(f"Cannot log in {n}", priority="normal") for n in range(5)]
    sim.advance(minutes=1)
    runner = world.runner()
    world.cycle(runner, times=2)
    stale = [zd.add_ticket(f"Site down {n}", priority="urgent") for n in range(2)]
    zd.faults.add(status=503, method="PUT", path="/api/v2/tickets", times=1000)
    world.cycle(runner)
    assert len(runner.store.open_intents()) == 4, "escalations decided, their writes not done"
    runner.close()  # deskbot stops for five hours
    zd.faults.clear()

    sim.advance(minutes=28)
    zd.agent_reply(waiting[0])  # answered in time: no first-reply breach for this one
    sim.advance(hours=1, minutes=30)
    arrivals = [zd.add_ticket(f"Payments failing {n}", priority="urgent") for n in range(10)]
    sim.advance(hours=3, minutes=3)
    restarted = sim()
    seen = len(zd.timeline)
    runner = world.runner()
    world.cycle(runner, times=8)

    digests = {channel: world.slack.posts(channel) for channel in ("#support-alerts", "#escalations")}
    assert {c: len(posts) for c, posts in digests.items()} == {"#support-alerts": 1, "#escalations": 1}
    first_reply, resolution = (digests[c][0].text for c in ("#support-alerts", "#escalations"))
    assert "first reply breached: 16 tickets" in first_reply and "resolution breached: 17 tickets" in resolution
    for ticket_id in waiting + stale + arrivals:
        subject = zd.ticket(ticket_id)["subject"]
        assert (subject in first_reply) == (ticket_id != waiting[0]) and subject in resolution

    expired = [e for e in runner.store.audit_log(limit=10_000) if e.result == "expired"]
    assert sorted(e.ticket_key for e in expired) == sorted(f"zendesk:{i}" for i in stale for _ in range(2))
    assert all("too late to act" in e.detail for e in expired)
    assert {i: len(zd.bot_changes(i)) for i in stale} == {i: 0 for i in stale}, "nothing written hours late"
    assert {i: len(zd.bot_changes(i)) for i in arrivals} == {i: 1 for i in arrivals}, "fresh decisions acted on"
    catch_up = [at for at, _ in zd.timeline[seen:]]
    assert len(catch_up) > 10 >= busiest_minute(catch_up), "more calls than a minute allows, spread out"
    assert runner.connectors["zendesk"].budget.waited > 0 and catch_up[0] == restarted


# -- 10. the state store failing to write ------------------------------------------------------------------


def healthz(url):
    """(HTTP status, body) of the health port."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


FAILURES = {
    "every write": is_write,
    "the claim": lambda sql: sql.startswith("UPDATE intents SET state = 'claimed'"),
    "the outcome": lambda sql: sql.startswith("UPDATE intents SET state = ?,"),
}


@pytest.mark.parametrize("failing", FAILURES)
def test_while_the_store_cannot_record_no_ticket_is_changed_health_is_red_and_work_resumes_after(world, failing):
    from bot.health import serve_health

    world.write_rules(ESCALATE)
    before = world.zendesk.add_ticket("Outage 0", priority="urgent")
    runner = world.runner()
    world.cycle(runner)
    assert len(world.zendesk.bot_changes(before)) == 1
    with serve_health(runner.status_checked, runner.metrics, port=0) as health:
        assert healthz(health.url)[0] == 200
        later = [world.zendesk.add_ticket(f"Outage {n}", priority="urgent") for n in range(1, 4)]
        seen = len(world.zendesk.requests)
        with disk_full(runner.store, FAILURES[failing]):
            world.cycle(runner, times=3)
            if failing == "every write":
                code, body = healthz(health.url)
                assert code == 503 and body["store"]["writable"] is False
                assert "database or disk is full" in body["store"]["error"]
                assert runner.metrics.get("deskbot_store_writable") == 0
        written = world.zendesk.ticket_writes(since=seen)
        if failing == "the outcome":  # claimed first, so written once; the outcome is settled by a read later
            assert written == {i: 1 for i in later}
        else:
            assert written == {}, "no ticket changed that deskbot could not record"
        world.cycle(runner, times=2)
        assert healthz(health.url)[0] == 200 and runner.status()["healthy"] is True
    assert {i: len(world.zendesk.bot_changes(i)) for i in later} == {i: 1 for i in later}, "each once, after"
    assert {i: len(world.zendesk.bot_notes(i)) for i in later} == {i: 1 for i in later}
    assert Counter(i.state for i in runner.store.intents()) == {IntentState.DONE: 8}


# -- 11. a human changes the ticket between evaluation and action ------------------------------------------

TEAMS = """\
teams:
  billing: {group: Billing}
"""
ASSIGN_BILLING = """
  - name: assign billing
    when: {all: [{group: Billing}, {assignee: {is_empty: true}}, {status: {in: [new, open]}}]}
    then: [{assign: {team: billing, strategy: round_robin}}]
"""


def test_a_ticket_a_human_changed_after_evaluation_is_refused_by_the_safe_update_then_skipped_not_retried(world):
    from bot.rules.engine import plan as engine_plan

    world.write_rules(ESCALATE + RAISE_NORMAL + ASSIGN_BILLING, head=TEAMS)
    zd = world.zendesk
    solved = zd.add_ticket("Site down", priority="urgent")
    deleted = zd.add_ticket("Checkout down", priority="urgent")
    reassigned = zd.add_ticket("Refund please", priority="high", group_id=101)
    repriced = zd.add_ticket("Question about plans", priority="normal")
    retagged = zd.add_ticket("Payments failing", priority="urgent")
    humans = {  # what an agent does in the Zendesk UI right after deskbot decided, before it acts
        solved: lambda: zd.human_update(solved, status="solved"),
        deleted: lambda: zd.delete_ticket(deleted),
        reassigned: lambda: zd.human_update(reassigned, assignee_id=203),
        repriced: lambda: zd.human_update(repriced, priority="low"),
        retagged: lambda: zd.human_update(retagged, tags=["vip"]),  # unrelated to what deskbot writes
    }
    planned: list[int] = []

    def planner(tickets, now, config, memory):
        decided = engine_plan(tickets, now, config, memory)
        for ticket_id in sorted({a.ticket_id for a in decided.actions} & humans.keys() - set(planned)):
            planned.append(ticket_id)
            world.sim.advance(seconds=2)  # seconds later (updated_at has a resolution of one second)
            humans[ticket_id]()
        return decided

    runner = world.runner(planner=planner)
    world.cycle(runner, times=6)
    assert sorted(planned) == sorted(humans), "every human change landed between plan and write"
    skipped = {e.ticket_key: e.detail for e in runner.store.audit_log(limit=1000) if e.result == "skipped"}
    assert skipped == {
        f"zendesk:{solved}": "ticket is solved now",
        f"zendesk:{deleted}": "ticket no longer exists",
        f"zendesk:{reassigned}": "assignee changed by someone else since evaluation (None -> 203)",
        f"zendesk:{repriced}": "priority changed by someone else since evaluation (normal -> low)",
    }
    results_by_ticket = Counter(e.ticket_key for e in runner.store.audit_log(limit=1000) if e.result == "skipped")
    assert results_by_ticket == {f"zendesk:{solved}": 2, f"zendesk:{deleted}": 2, f"zendesk:{reassigned}": 1,
                                 f"zendesk:{repriced}": 1}, "each skipped once, never retried"
    writes = zd.ticket_writes()
    assert set(writes) == {retagged} and len(zd.bot_changes(retagged)) == 1, "only the unrelated edit let it act"
    assert zd.ticket(retagged)["tags"] == ["bot_escalated", "vip"]
    assert (zd.ticket(reassigned)["assignee_id"], zd.ticket(repriced)["priority"]) == (203, "low")
    assert runner.store.open_intents() == []


def test_a_human_change_between_the_sync_and_the_write_is_not_overwritten(world):
    world.write_rules(RAISE_NORMAL)
    zd = world.zendesk
    ticket = zd.add_ticket("Question about plans", priority="normal")
    world.sim.advance(minutes=1)
    connector = world.connector()
    write = connector.apply

    def human_then_write(changes):
        """The executor writes from the copy this poll synced; a second before, an agent lowers the priority."""
        if zd.ticket(ticket)["priority"] == "normal":
            world.sim.advance(seconds=2)
            zd.human_update(ticket, priority="low")
        return write(changes)

    connector.apply = human_then_write
    runner = world.runner(connector=connector)
    world.cycle(runner, times=4)
    refused = [r for job in zd.jobs.values() for r in job["results"] or () if r.get("error") == "UpdateConflict"]
    assert [r["id"] for r in refused] == [ticket], "the safe update caught the human's change"
    assert zd.ticket(ticket)["priority"] == "low", "left as the human set it"
    assert [e.result for e in runner.store.audit_log() if e.result != "planned"] == ["skipped"]
    assert "priority changed by someone else" in runner.store.audit_log()[-1].detail


# -- 4. the bot's clock minutes off the helpdesk's ------------------------------------------------------------

AGED = """
  - name: waiting half an hour
    when: {all: [{since_created: {over: 30m}}, {status: {in: [new, open]}}]}
    then: [{notify: {channel: "#support-alerts", message: "#{{ id }} waits"}}]
"""


@pytest.mark.parametrize("skew", [timedelta(minutes=7), timedelta(minutes=-7)], ids=["ahead", "behind"])
def test_a_bot_clock_minutes_off_the_helpdesk_neither_misses_nor_doubles_a_firing(make_world, skew):
    world = make_world(hide_recent=timedelta(minutes=1))  # Zendesk keeps the last minute out of the export
    world.write_rules(AGED + ESCALATE)
    zd = world.zendesk
    runner = world.runner(skew=skew)
    tickets = []
    for minute in range(90):  # a ticket every 6 minutes for 45 minutes, every third one urgent
        if minute % 6 == 0 and minute < 45:
            tickets.append(zd.add_ticket(f"Request {minute}", priority="urgent" if minute % 18 == 0 else "normal"))
        world.cycle(runner, times=2)
    urgent = [i for i in tickets if zd.ticket(i)["priority"] == "urgent"]
    alerted = Counter(int(n) for m in world.slack.posts("#support-alerts")
                      for n in re.findall(r"\(zendesk:(\d+)\)", m.text))
    assert alerted == {i: 1 for i in tickets}, "every ticket alerted once, none missed, none twice"
    assert {i: len(zd.bot_changes(i)) for i in urgent} == {i: 1 for i in urgent}
    cursor = runner.store.get_cursor("zendesk:tickets")
    assert cursor and not cursor.startswith("time:"), "the feed resumes from Zendesk's own cursor"
    assert not [e for e in runner.store.audit_log(limit=10_000) if e.result in ("expired", "failed", "skipped")]
