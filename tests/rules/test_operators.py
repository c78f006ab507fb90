"""Every operator, on the kinds of field it applies to: what holds and what does not.

Each case is checked through both views of a compiled condition (the generated
fast function and the traced explanation), which must agree.
"""

from datetime import timedelta

import pytest
import yaml

from bot.rules.conditions import Problem, compile_condition
from tests.factories import NOW, make_ticket


def holds(condition: str, **ticket) -> bool:
    problems: list[Problem] = []
    compiled = compile_condition(yaml.safe_load(condition), ("when",), problems)
    assert not problems, problems
    t = make_ticket(**ticket)
    fast = compiled.test(t, NOW)
    traced = compiled.explain(t, NOW).held
    assert fast == traced, f"fast path {fast} != explain {traced} for {condition}"
    return fast


CASES = [
    # equality (text ignores case unless asked)
    ("priority: urgent", {"priority": "urgent"}, True),
    ("priority: urgent", {"priority": "high"}, False),
    ("priority: {is: urgent}", {"priority": "urgent"}, True),
    ("group: billing", {"group": "Billing"}, True),
    ("group: {eq: billing, case_sensitive: true}", {"group": "Billing"}, False),
    ("group: billing", {}, False),
    ("status: hold", {"status": "on_hold"}, True),
    ("status: {ne: pending}", {"status": "open"}, True),
    ("status: {is_not: pending}", {"status": "pending"}, False),
    ("assignee: {ne: ana}", {}, True),
    # membership
    ("priority: {in: [high, urgent]}", {"priority": "high"}, True),
    ("priority: [high, urgent]", {"priority": "low"}, False),
    ("status: {not_in: [pending, on_hold]}", {"status": "open"}, True),
    ("status: {not_in: [pending, on_hold]}", {"status": "pending"}, False),
    ("group: {in: [billing, technical]}", {"group": "TECHNICAL"}, True),
    ("group: {not_in: [billing]}", {}, True),
    # tags
    ("tags: vip", {"tags": ["vip", "eu"]}, True),
    ("tags: {has: vip}", {"tags": ["eu"]}, False),
    ("tags: {lacks: bot_routed}", {"tags": ["vip"]}, True),
    ("tags: {lacks: vip}", {"tags": ["vip"]}, False),
    ("tags: {has_any: [vip, enterprise]}", {"tags": ["enterprise"]}, True),
    ("tags: {has_any: [vip, enterprise]}", {"tags": []}, False),
    ("tags: {has_all: [vip, outage]}", {"tags": ["vip", "outage", "x"]}, True),
    ("tags: {has_all: [vip, outage]}", {"tags": ["vip"]}, False),
    ("tags: {has_none: [spam, test]}", {"tags": ["vip"]}, True),
    ("tags: {has_none: [spam, test]}", {"tags": ["test"]}, False),
    ("tags: {is_empty: true}", {"tags": []}, True),
    # text
    ('subject: {contains: "refund"}', {"subject": "REFUND please"}, True),
    ('subject: {contains: "refund", case_sensitive: true}', {"subject": "REFUND please"}, False),
    ('subject: {contains: "refund"}', {}, False),
    ('subject: {not_contains: "test"}', {"subject": "real problem"}, True),
    ('subject: {starts_with: "[outage]"}', {"subject": "[OUTAGE] api down"}, True),
    ('subject: {starts_with: "[outage]"}', {"subject": "re: [outage]"}, False),
    ('subject: {matches: "refund|chargeback"}', {"subject": "Chargeback on card"}, True),
    ('subject: {matches: "^re:", case_sensitive: true}', {"subject": "RE: hello"}, False),
    ('subject: {not_matches: "^re:"}', {"subject": "hello"}, True),
    ('description: {matches: "order #?\\\\d{5}"}', {"description": "about order #12345"}, True),
    ('requester_email: {matches: "@bigcorp\\\\.com$"}', {"requester_email": "x@bigcorp.com"}, True),
    # ordering
    ("priority: {at_least: high}", {"priority": "urgent"}, True),
    ("priority: {gte: high}", {"priority": "normal"}, False),
    ("priority: {gt: normal}", {"priority": "high"}, True),
    ("priority: {lt: high}", {"priority": "low"}, True),
    ("priority: {at_most: normal}", {"priority": "high"}, False),
    ("id: {gt: 1000}", {"id": 1001}, True),
    ("id: {lte: 1000}", {"id": 1001}, False),
    ("custom.seats: {gt: 50}", {"custom": {"seats": 120}}, True),
    ("custom.seats: {gt: 50}", {"custom": {"seats": "lots"}}, False),
    ("custom.seats: {gt: 50}", {}, False),
    ("custom.plan: Enterprise", {"custom": {"plan": "enterprise"}}, True),
    # durations and ages
    ("since_created: {over: 4h}", {"created_at": "5h ago"}, True),
    ("since_created: {over: 4h}", {"created_at": "3h ago"}, False),
    ("since_created: {under: 30m}", {"created_at": "10m ago"}, True),
    ('since_updated: {over: "2 hours"}', {"updated_at": "150m ago"}, True),
    ("since_customer_reply: {over: 1h30m}", {"last_customer_update_at": "2h ago"}, True),
    ("since_agent_reply: {over: 1d}", {}, False),
    ("since_agent_reply: {is_empty: true}", {}, True),
    ("since_assigned: {over: 1h}", {"assignee_id": 5, "assigned_at": "2h ago"}, True),
    ("hours_since_created: {gt: 4}", {"created_at": "5h ago"}, True),
    ("hours_since_created: {gte: 4.5}", {"created_at": "4h ago"}, False),
    ("unanswered_for: {over: 2h}", {"last_customer_update_at": "3h ago", "last_agent_update_at": "4h ago"},
     True),
    ("unanswered_for: {over: 2h}", {"last_customer_update_at": "3h ago", "last_agent_update_at": "1h ago"},
     False),
    # empty / set
    ("assignee: {is_empty: true}", {}, True),
    ("assignee: {is_empty: false}", {"assignee": "Ana"}, True),
    ("group: {is_set: true}", {"group": "Billing"}, True),
    ("group: {is_set: false}", {"group": ""}, True),
    ("custom.order: {is_set: true}", {"custom": {"order": 0}}, True),
    # combinators
    ("{all: [{priority: urgent}, {status: open}]}", {"priority": "urgent", "status": "open"}, True),
    ("{all: [{priority: urgent}, {status: open}]}", {"priority": "urgent", "status": "new"}, False),
    ("{any: [{priority: urgent}, {tags: vip}]}", {"tags": ["vip"]}, True),
    ("{not: {priority: urgent}}", {"priority": "urgent"}, False),
    ("{not: {since_agent_reply: {over: 1h}}}", {}, True),
    ("{priority: urgent, status: open}", {"priority": "urgent", "status": "open"}, True),
    ("{any: [{all: [{priority: high}, {not: {tags: vip}}]}, {group: x}]}", {"priority": "high"}, True),
]


@pytest.mark.parametrize(("condition", "ticket", "expected"), CASES, ids=[c[0] for c in CASES])
def test_operator(condition, ticket, expected):
    assert holds(condition, **ticket) is expected


def test_every_registered_operator_is_exercised():
    from bot.rules.operators import ALIASES, OPERATORS

    used = set()
    for condition, _, _ in CASES:
        for word in [*OPERATORS, *ALIASES]:
            if f"{word}:" in condition:
                used.add(ALIASES.get(word, word))
    assert set(OPERATORS) - used == set()


def test_ages_use_the_instant_given_not_the_clock():
    problems: list[Problem] = []
    compiled = compile_condition({"since_created": {"over": "1h"}}, ("when",), problems)
    ticket = make_ticket(created_at=NOW)
    assert not compiled.test(ticket, NOW + timedelta(minutes=59))
    assert compiled.test(ticket, NOW + timedelta(minutes=61))


@pytest.mark.parametrize("value", [None, "", "Ana", 0, 1, 0.0, False, True, [], [1], (), {}, {"a": 1}, frozenset(),
                                   "  "])
def test_emptiness_is_the_same_in_both_paths_for_any_custom_value(value):
    """Only null, "" and empty lists or sets are empty; zero, false and an empty mapping are values."""
    expected = value is None or value == "" or (isinstance(value, list | tuple | frozenset) and not value)
    assert holds("custom.x: {is_empty: true}", custom={"x": value}) is expected
    assert holds("custom.x: {is_set: true}", custom={"x": value}) is not expected
