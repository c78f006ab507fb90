"""Property: for any ticket, at any time, with any memory, explain() and plan() tell the same story."""

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import load_config
from bot.model import Firing, Priority, Status, Ticket
from bot.rules.conditions import Leaf, Not
from bot.rules.engine import explain, plan
from tests.factories import make_config

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
EXAMPLE = load_config("config/rules.yaml")
EVERY_OPERATOR = make_config("""\
- name: Text
  when:
    any:
      - subject: {contains: refund}
      - subject: {matches: "^re:|outage", case_sensitive: true}
      - subject: {starts_with: "[vip]"}
      - description: {not_contains: thanks}
      - group: {in: [Billing, technical]}
      - assignee: {is_empty: true}
  then: [{add_tags: t}]
- name: Choices
  when: {all: [{priority: {at_least: high}}, {status: {not_in: [pending, solved]}}, {not: {priority: urgent}}]}
  then: [{add_tags: c}]
  stop: true
- name: Tags
  when: {any: [{tags: {has_all: [a, b]}}, {tags: {has_none: [a, c]}}, {tags: {has_any: [d]}}, {tags: {lacks: e}}]}
  then: [{add_tags: g}]
- name: Ages
  when:
    any:
      - since_created: {over: 2h}
      - hours_since_updated: {lte: 1.5}
      - unanswered_for: {at_least: 30m}
      - since_agent_reply: {under: 1d}
      - custom.seats: {gte: 10}
  then: [{add_tags: a}]
  repeat: 1h
""")

# Enough rules sharing `status`, `group`, `priority` and `type` tests that the batch looks them up in tables
# (bot.rules.batch), nested, with `in` lists, case-sensitive text, `stop`, and time leaves beside them.
ROUTING = make_config("\n".join(
    f"""\
- name: Route {i}
  when:
    all:
      - status: {{in: [{status}]}}
      - {{group: {group}, priority: {priority}}}
      - {time}
  then: [{{add_tags: r{i}}}]
  stop: {"true" if i % 7 == 3 else "false"}
"""
    for i, (status, group, priority, time) in enumerate(itertools.product(
        ["new", "new, open", "pending"], ["billing", "{is_empty: true}", '{eq: TECHNICAL, case_sensitive: true}'],
        ["urgent", "{in: [high, urgent]}"],
        ["type: {in: [incident, question]}", "since_created: {over: 2h}", "{any: [type: incident, tags: {has: a}]}"]))
) + """\
- name: Typed
  when: {all: [{type: incident}, {not: {status: new}}]}
  then: [{add_tags: t}]
- name: Typed late
  when: {all: [{type: {in: [incident, billing]}}, {unanswered_for: {at_least: 30m}}]}
  then: [{add_tags: t2}]
- name: Typed question
  when: {type: question}
  then: [{add_tags: t3}]
- name: Words
  when: {any: [{subject: {contains: refund}}, {subject: {starts_with: "re:"}}, {group: {contains: bill}}]}
  then: [{add_tags: w1}]
- name: No words
  when: {all: [{subject: {not_contains: thanks}}, {description: {contains: OUT, case_sensitive: true}},
               {group: {ne: billing}}, {group: {not_in: [technical]}}]}
  then: [{add_tags: w2}]
- name: Exact words
  when: {any: [{subject: {contains: "RE:", case_sensitive: true}}, {description: {starts_with: "[vip]"}},
               {group: {starts_with: TECH, case_sensitive: true}}]}
  then: [{add_tags: w3}]
""")

words = st.sampled_from(["refund", "RE: hi", "outage", "[VIP] x", "thanks", "", "Billing", "TECHNICAL", "technical",
                         "zz", "OUTAGE", "re: refund"])
moments = st.one_of(st.none(), st.integers(-10_000, 3_000).map(lambda m: NOW - timedelta(minutes=m)))


@st.composite
def tickets(draw):
    return Ticket(
        platform="zendesk",
        id=draw(st.integers(1, 50)),
        subject=draw(words),
        description=draw(words),
        status=draw(st.sampled_from(list(Status))),
        priority=draw(st.sampled_from(list(Priority))),
        group=draw(st.one_of(st.none(), words)),
        assignee=draw(st.one_of(st.none(), st.just("Ana"))),
        assignee_id=draw(st.one_of(st.none(), st.just(5))),
        tags=frozenset(draw(st.sets(st.sampled_from(["a", "b", "c", "d", "e", "vip"])))),
        custom={"seats": draw(st.one_of(st.none(), st.integers(0, 20), st.just("many")))},
        type=draw(st.one_of(st.none(), st.sampled_from(["incident", "billing", "question"]))),
        created_at=draw(moments),
        updated_at=draw(moments),
        last_customer_update_at=draw(moments),
        last_agent_update_at=draw(moments),
        assigned_at=draw(moments),
    )


memories = st.dictionaries(
    st.sampled_from(["Text", "Choices", "Tags", "Ages", "Route billing questions", "Escalate waiting urgent tickets",
                     "Route 3", "Route 10", "Route 31", "Typed late"]),
    st.builds(Firing, st.booleans(), st.integers(0, 3), st.one_of(st.none(), moments.filter(bool))),
    max_size=4,
)


configs = st.sampled_from([EXAMPLE, EVERY_OPERATOR, ROUTING])


@settings(max_examples=300, deadline=None)
@given(ticket=tickets(), offset=st.integers(0, 600), remembered=memories, config=configs)
def test_explain_and_plan_agree(ticket, offset, remembered, config):
    now = NOW + timedelta(minutes=offset)
    memory = {(rule, ticket.key): firing for rule, firing in remembered.items()}
    fired = {m.rule for m in plan([ticket], now, config, memory).matches}
    explained = explain(ticket, now, config, memory)
    assert {e.rule.name for e in explained if e.would_fire} == fired
    for item in explained:
        if item.verdict is not None:
            assert item.verdict.held == item.rule.condition.test(ticket, now) == item.matched


@settings(max_examples=200, deadline=None)
@given(ticket=tickets(), offset=st.integers(0, 600))
def test_nothing_changes_before_next_check(ticket, offset):
    """Between now and next_check_at, time alone never flips a rule's verdict."""
    now = NOW + timedelta(minutes=offset)
    for config in (EXAMPLE, EVERY_OPERATOR, ROUTING):
        result = plan([ticket], now, config, {})
        due = result.next_check_at.get(ticket.key)
        horizon = due if due is not None else now + timedelta(days=30)
        for share in (0.001, 0.5, 0.999):
            probe = now + (horizon - now) * share
            if not now < probe < horizon:  # no such instant strictly between (microsecond resolution)
                continue
            for rule in config.active_rules:
                assert rule.condition.test(ticket, probe) == rule.condition.test(ticket, now), rule.name


def possible(node, ticket, now):
    """The values a condition node could take with every time-based leaf free (Kleene, written plainly)."""
    if isinstance(node, Leaf):
        return {True, False} if node.field.time_based else {node.holds(ticket, now)}
    if isinstance(node, Not):
        return {not value for value in possible(node.child, ticket, now)}
    children = [possible(child, ticket, now) for child in node.children]
    combine = all if node.kind == "all" else any
    return {combine(choice) for choice in itertools.product(*children)}


def reference_plan(tickets, now, config, memory):
    """The planner's semantics written plainly: every rule on every ticket, in file order."""
    fired, updates, next_check = [], {}, {}
    for ticket in tickets:
        soonest = None
        for rule in config.active_rules:
            matched = rule.condition.test(ticket, now)
            before = memory.get((rule.name, ticket.key))
            acted = False
            if matched:
                fire = before is None or not before.matching
                if not fire and rule.repeat is not None and before.fired_at is not None:
                    fire = now - before.fired_at >= rule.repeat
                if fire:
                    occurrence = (before.occurrence if before else 0) + 1
                    updates[(rule.name, ticket.key)] = Firing(True, occurrence, now)
                    fired.append((ticket.key, rule.name, occurrence))
                    acted = True
                fired_at = now if fire else before.fired_at
                if rule.repeat is not None and fired_at is not None:
                    soonest = min(filter(None, [soonest, fired_at + rule.repeat]))
            elif before is not None and before.matching:
                updates[(rule.name, ticket.key)] = Firing(False, before.occurrence, before.fired_at)
            open_to_time = possible(rule.condition.root, ticket, now) == {True, False}
            at = rule.condition.next_change(ticket, now) if open_to_time else None
            if at is not None:
                soonest = min(filter(None, [soonest, at]))
            if rule.stop and acted:
                soonest = now + timedelta(microseconds=1)
                break
        if soonest is not None:
            next_check[ticket.key] = soonest
    return fired, updates, next_check


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(tickets(), min_size=1, max_size=6, unique_by=lambda t: t.id),
       offset=st.integers(0, 600), remembered=memories, config=configs)
def test_the_planner_equals_the_plain_reference(batch, offset, remembered, config):
    """The optimised planner (lookup tables, grouped memory, merged thresholds) changes nothing."""
    now = NOW + timedelta(minutes=offset)
    memory = {(rule, t.key): firing for t in batch for rule, firing in remembered.items()}
    result = plan(batch, now, config, memory)
    fired, updates, next_check = reference_plan(batch, now, config, memory)
    assert [(m.ticket_key, m.rule, m.occurrence) for m in result.matches] == fired
    assert dict(result.memory) == updates
    assert dict(result.next_check_at) == next_check
