"""Escalation ladders: each step once per run of the clock, in order, stopped by acknowledgement."""

from datetime import timedelta

import pytest

from bot.config import load_config_text
from bot.errors import ConfigError
from bot.rules.engine import plan
from tests.factories import NOW, make_ticket

RULES = """\
version: 1
sla_policies:
  - name: all
    targets: {next_reply: 1h, first_reply: 1h}
rules:
  - name: Next reply
    ladder:
      clock: next_reply
      acknowledged: {tags: {has: ack}}
      steps:
        - at: -15m
          then: [{add_tags: warned}]
        - at: 0
          then: [{set_priority: high}]
        - at: +2h
          then: [{add_note: "still waiting"}]
          repeat: 1h
"""
CONFIG = load_config_text(RULES, "r.yaml")


def waiting_since(minutes_ago: int, **more):
    return make_ticket(created_at="1d ago", first_responded_at="20h ago", last_agent_update_at="20h ago",
                       last_customer_update_at=f"{minutes_ago}m ago", status="open", **more)


def fired(ticket, now, memory):
    result = plan([ticket], now, CONFIG, memory)
    memory.update(result.memory)
    return [m.rule for m in result.matches], result.next_check_at.get(ticket.key)


def test_steps_fire_in_order_each_once_with_the_next_step_scheduled():
    memory: dict = {}
    ticket = waiting_since(0)
    assert fired(ticket, NOW, memory) == ([], NOW + timedelta(minutes=45))
    assert fired(ticket, NOW + timedelta(minutes=45), memory)[0] == ["Next reply › step 1 (15m before)"]
    assert fired(ticket, NOW + timedelta(minutes=50), memory)[0] == []
    assert fired(ticket, NOW + timedelta(hours=1), memory)[0] == ["Next reply › step 2 (at breach)"]
    assert fired(ticket, NOW + timedelta(hours=3), memory)[0] == ["Next reply › step 3 (2h after)"]
    assert fired(ticket, NOW + timedelta(hours=3, minutes=30), memory)[0] == []
    assert fired(ticket, NOW + timedelta(hours=4), memory)[0] == ["Next reply › step 3 (2h after)"]


def test_an_agent_reply_stops_the_ladder_and_a_new_customer_message_starts_a_new_one():
    memory: dict = {}
    breached = waiting_since(70)
    assert fired(breached, NOW, memory)[0] == ["Next reply › step 1 (15m before)", "Next reply › step 2 (at breach)"]
    answered = make_ticket(created_at="1d ago", first_responded_at="20h ago", last_agent_update_at="1m ago",
                           last_customer_update_at="70m ago", status="open")
    assert fired(answered, NOW, memory)[0] == []
    again = waiting_since(70)
    rules, _ = fired(again, NOW + timedelta(minutes=5), memory)
    assert rules == ["Next reply › step 1 (15m before)", "Next reply › step 2 (at breach)"]
    occurrences = {rule: firing.occurrence for (rule, _), firing in memory.items()}
    assert occurrences["Next reply › step 2 (at breach)"] == 2


def test_acknowledgement_stops_every_step():
    memory: dict = {}
    assert fired(waiting_since(200, tags=["ack"]), NOW, memory)[0] == []


def test_a_rule_with_both_then_and_ladder_is_refused():
    bad = RULES.replace("    ladder:", "    then: [{add_tags: x}]\n    ladder:")
    with pytest.raises(ConfigError) as raised:
        load_config_text(bad, "r.yaml")
    assert raised.value.problems == [
        "r.yaml:6:5: rules[0]: give either 'then' or 'ladder', not both (ladder steps have their own 'then')"
    ]


def test_a_bad_acknowledgement_condition_is_reported_at_its_own_line():
    bad = RULES.replace("{tags: {has: ack}}", "{tagz: {has: ack}}")
    with pytest.raises(ConfigError) as raised:
        load_config_text(bad, "r.yaml")
    assert raised.value.problems == [
        "r.yaml:9:22: rules[0].ladder.acknowledged.tagz: unknown field 'tagz'; did you mean 'tags'?"
    ]
