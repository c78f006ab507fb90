"""Repeat-contact fields in rules: requester.open_tickets and requester.tickets_last_<duration>."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

import pytest

import bot.rules.requester_fields as requester_fields
from bot.config import load_config_text
from bot.errors import ConfigError
from bot.model import Status, Ticket
from bot.rules.engine import explain, plan
from bot.rules.requester_fields import RequesterFacts, facts_of, requester_facts, with_requester_facts

from .helpers import NOW, H, ticket

D = timedelta(days=1)

if "related" in {f.name for f in fields(Ticket)}:
    RelatedTicket = Ticket
else:  # until bot.model.Ticket carries `related`, a subclass stands in for it

    @dataclass(frozen=True, slots=True)
    class RelatedTicket(Ticket):  # type: ignore[no-redef]
        related: Mapping[str, Any] = field(default_factory=dict)


def related_ticket(number: int, **fields_: Any) -> Ticket:
    base = ticket(number, **fields_)
    return RelatedTicket(**{f.name: getattr(base, f.name) for f in fields(Ticket) if f.init})


RULES = """
version: 1
rules:
  - name: Repeat contact
    when:
      all:
        - requester.tickets_last_7d: {gte: 3}
        - requester.open_tickets: {gte: 1}
    then:
      - add_tags: repeat_contact
"""


def test_requester_facts_count_other_open_tickets_and_recent_ones() -> None:
    tickets = [
        ticket(1, requester_id=5, created_at=NOW - 9 * D, status=Status.SOLVED),
        ticket(2, requester_id=5, created_at=NOW - 3 * D, status=Status.SOLVED, subject="Refund not received"),
        ticket(3, requester_id=5, created_at=NOW - 2 * H, subject="Still no refund received"),
        ticket(4, requester_id=5, created_at=NOW - 1 * H, subject="Where is my refund received?"),
        ticket(5, requester_id=6, created_at=NOW - 1 * H),
        ticket(6, created_at=NOW - 1 * H),  # nobody known: no facts
    ]
    facts = requester_facts(tickets, NOW)
    assert set(facts) == {"zendesk:1", "zendesk:2", "zendesk:3", "zendesk:4", "zendesk:5"}
    four = facts["zendesk:4"]
    assert four.open_tickets == 1 and four.similar_open_tickets == 1
    assert four.tickets_since(NOW - 7 * D, NOW) == 3
    assert facts["zendesk:1"].open_tickets == 2, "a solved ticket still sees its requester's open ones"
    assert facts["zendesk:5"] == RequesterFacts(0, 0, (NOW - H,))


def test_a_rule_fires_on_the_third_ticket_in_a_week_while_another_is_open() -> None:
    config = load_config_text(RULES, "rules.yaml")
    history = [ticket(1, requester_email="kim@example.com", created_at=NOW - 6 * D, status=Status.SOLVED)]
    open_one = related_ticket(2, requester_email="kim@example.com", created_at=NOW - 2 * D)
    third = related_ticket(3, requester_email="KIM@example.com", created_at=NOW - H)
    stranger = related_ticket(4, requester_email="lee@example.com", created_at=NOW - H)
    enriched = with_requester_facts([open_one, third, stranger], history, NOW)
    result = plan(enriched, NOW, config, {})
    assert sorted(m.ticket_key for m in result.matches) == ["zendesk:2", "zendesk:3"]
    assert result.matches[0].reason.startswith("requester.tickets_last_7d at least 3 (is 3)")
    # ticket 1 (six days old) leaves the 7-day window in one day: the count drops to 2 then
    assert result.next_check_at["zendesk:3"] == NOW - 6 * D + 7 * D


def test_without_facts_the_fields_are_empty_and_nothing_matches() -> None:
    config = load_config_text(RULES, "rules.yaml")
    bare = ticket(3, requester_email="kim@example.com", created_at=NOW - H)
    assert facts_of(bare) is None
    assert plan([bare], NOW, config, {}).matches == ()
    (explained,) = explain(bare, NOW, config)
    assert not explained.matched


def test_facts_written_as_plain_data_are_read_too() -> None:
    written = RelatedTicket(platform="zendesk", id=9, related={"requester": {
        "open_tickets": 2, "created": ["2026-03-01T09:00:00Z", "2026-03-02T09:00:00+00:00"]}})
    facts = facts_of(written)
    assert facts is not None and facts.open_tickets == 2 and facts.tickets_since(NOW - D, NOW) == 1
    assert facts.tickets_since(NOW - 2 * D, NOW) == 2


@pytest.mark.parametrize(("name", "message"), [
    ("requester.tickets_last_7x", "'requester.tickets_last_7x' needs a duration after 'tickets_last_', e.g. "
                                  "requester.tickets_last_7d or requester.tickets_last_24h"),
    ("requester.open", "unknown field 'requester.open' (requester fields: requester.open_tickets, "
                       "requester.similar_open_tickets, requester.tickets_last_<duration>)"),
])
def test_misspelt_requester_fields_are_refused_with_the_names_that_exist(name: str, message: str) -> None:
    text = RULES.replace("requester.tickets_last_7d", name)
    with pytest.raises(ConfigError) as raised:
        load_config_text(text, "rules.yaml")
    assert raised.value.problems == [f"rules.yaml:7:11: rules[0].when.all[0].{name}: {message}"]


def test_the_longest_window_in_use_sets_how_much_history_the_facts_need() -> None:
    load_config_text(RULES.replace("tickets_last_7d", "tickets_last_30d"), "rules.yaml")
    assert requester_fields.longest_window() >= timedelta(days=30)


def test_facts_computed_once_can_be_attached_chunk_by_chunk() -> None:
    from bot.rules.requester_fields import attach_facts

    first = related_ticket(1, requester_id=3, created_at=NOW - 2 * H)
    second = related_ticket(2, requester_id=3, created_at=NOW - H)
    facts = requester_facts([first, second], NOW)
    (attached,) = attach_facts([second], facts)
    assert facts_of(attached) == facts["zendesk:2"] and facts_of(attached).open_tickets == 1
    if RelatedTicket is not Ticket:  # until bot.model.Ticket carries `related`
        plain = ticket(2, requester_id=3)
        assert attach_facts([plain], facts) == [plain], "a ticket class without `related` is left as it is"
