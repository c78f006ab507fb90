"""SLA condition fields: values read from the clocks, load-time mistakes, and when to look again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import bot.rules.sla_fields  # noqa: F401  (registers the `sla.` family)
from bot.config import Config
from bot.model import Status, Ticket
from bot.rules.conditions import Condition, Problem, compile_condition
from bot.rules.engine import CompiledRule, plan
from bot.sla import CalendarSpec, SlaPolicySpec

H = timedelta(hours=1)
MONDAY_9 = datetime(2024, 6, 10, 9, tzinfo=UTC)
RULES_FILE = SimpleNamespace(  # what the fields read from the compiled rules file
    calendars={"office": CalendarSpec(hours={"weekdays": "09:00-17:00"})},
    sla_policies=[
        SlaPolicySpec.model_validate({"name": "vip", "calendar": "office", "applies_to": {"tags": ["vip"]},
                                      "targets": {"first_reply": "4h", "resolution": "2d"}}),
        SlaPolicySpec.model_validate({"name": "standard", "pause_when": ["pending"],
                                      "targets": {"first_reply": {"normal": "4h"}, "next_reply": "2h",
                                                  "resolution": "1d"}}),
    ],
)


def at(hours: float, *, day: int = 0) -> datetime:
    return MONDAY_9 + timedelta(days=day, hours=hours)


def ticket(**fields: Any) -> Ticket:
    fields.setdefault("created_at", MONDAY_9)
    fields.setdefault("status", Status.OPEN)
    return Ticket(platform="zendesk", id=1, **fields)


def when(raw: dict, context: Any = RULES_FILE) -> Condition:
    problems: list[Problem] = []
    condition = compile_condition(raw, ("rules", 0, "when"), problems, context)
    assert not problems, [p.message for p in problems]
    assert condition is not None
    return condition


def problems_of(raw: dict, context: Any = RULES_FILE) -> list[str]:
    problems: list[Problem] = []
    assert compile_condition(raw, ("rules", 0, "when"), problems, context) is None
    return [p.message for p in problems]


def test_remaining_reads_the_clock_and_flips_when_the_threshold_is_crossed() -> None:
    near = when({"sla.first_reply.remaining": {"under": "1h"}})
    assert not near.test(ticket(), at(2))
    assert near.next_change(ticket(), at(2)) == at(3) + timedelta(microseconds=1)  # strictly under after 3h
    assert near.test(ticket(), at(3) + timedelta(microseconds=1))
    assert near.explain(ticket(), at(2)).value == 2 * H


def test_elapsed_is_a_percentage_of_the_target() -> None:
    three_quarters = when({"sla.first_reply.elapsed": {"at_least": 75}})
    assert three_quarters.explain(ticket(), at(1)).value == 25.0
    assert three_quarters.next_change(ticket(), at(1)) == at(3)
    assert three_quarters.test(ticket(), at(3)) and not three_quarters.test(ticket(), at(2.99))


def test_breached_flips_at_the_deadline_and_is_false_without_a_clock() -> None:
    breached = when({"sla.first_reply.breached": True})
    assert not breached.test(ticket(), at(1))
    assert breached.next_change(ticket(), at(1)) == at(4)
    assert breached.test(ticket(), at(4))
    replied = ticket(first_responded_at=at(1))
    assert not breached.test(replied, at(9)) and breached.next_change(replied, at(9)) is None
    assert when({"sla.next_reply.breached": False}).test(ticket(), at(1))  # no next-reply clock yet


def test_breached_for_is_empty_until_the_breach_then_counts_up() -> None:
    long_breach = when({"sla.first_reply.breached_for": {"over": "2h"}})
    assert long_breach.explain(ticket(), at(1)).value is None
    assert long_breach.explain(ticket(), at(5)).value == H
    assert long_breach.next_change(ticket(), at(5)) == at(6) + timedelta(microseconds=1)
    assert long_breach.test(ticket(), at(7))


def test_business_hours_policies_count_only_working_time() -> None:
    vip = ticket(tags=frozenset({"vip"}), created_at=at(6))  # Monday 15:00, office 09:00-17:00
    near = when({"sla.first_reply.remaining": {"at_most": "1h"}})
    assert near.explain(vip, at(8)).value == 2 * H  # Monday 17:00: two hours used of four
    assert near.next_change(vip, at(8)) == at(1, day=1)  # Tuesday 10:00, not Monday 19:00


def test_next_due_names_the_soonest_running_target() -> None:
    waiting = ticket(first_responded_at=at(1), last_agent_update_at=at(1), last_customer_update_at=at(3))
    due = when({"sla.next_due": "next_reply"})
    assert due.test(waiting, at(4))
    assert due.next_change(waiting, at(4)) == at(5)
    assert not due.test(waiting, at(5))  # breached: resolution is next due
    assert when({"sla.next_due": {"is_set": False}}).test(ticket(status=Status.SOLVED, solved_at=at(1)), at(2))


def test_a_paused_clock_announces_no_change() -> None:
    pending = ticket(status=Status.PENDING, status_changed_at=at(1))
    near = when({"sla.first_reply.remaining": {"under": "1h"}})
    assert near.explain(pending, at(10)).value == 3 * H
    assert near.next_change(pending, at(10)) is None


def test_the_deadline_is_there_for_messages_and_not_time_based() -> None:
    deadline = when({"sla.first_reply.deadline": {"is_set": True}})
    assert deadline.explain(ticket(), at(1)).value == at(4)
    assert deadline.time_leaves == ()


def test_misspelt_sla_fields_get_a_suggestion() -> None:
    assert problems_of({"sla.first_reply.remainin": {"under": "1h"}}) == [
        "unknown SLA field 'sla.first_reply.remainin'; did you mean 'sla.first_reply.remaining'?"]


def test_sla_fields_need_a_policy_in_the_rules_file() -> None:
    empty = SimpleNamespace(calendars={}, sla_policies=[])
    assert problems_of({"sla.first_reply.breached": True}, empty) == [
        "SLA fields need a policy: add an `sla_policies:` section (see docs/sla.md)"]


def test_a_policy_naming_a_missing_calendar_cannot_bind() -> None:
    broken = SimpleNamespace(calendars={}, sla_policies=[SlaPolicySpec(name="p", calendar="ofice",
                                                                       targets={"resolution": "1d"})])
    assert problems_of({"sla.resolution.breached": True}, broken) == [
        "SLA fields cannot bind: unknown calendar 'ofice' (known: 24x7)"]


def test_operators_are_checked_against_the_measure_kind() -> None:
    assert problems_of({"sla.first_reply.elapsed": {"over": "1h"}}) == ["'1h' is not a number"]
    assert problems_of({"sla.next_due": "resolved"})[0].startswith("'resolved' is not a sla.next_due")


def test_the_planner_schedules_the_ticket_for_the_crossing_and_fires_then() -> None:
    condition = when({"sla.first_reply.elapsed": {"at_least": 75}})
    rule = CompiledRule("Warn at 75%", "", 0, condition, ())
    config = Config(spec=None, rules=(rule,), active_rules=(rule,))  # type: ignore[arg-type]
    early = plan([ticket()], at(1), config, {})
    assert early.matches == () and early.next_check_at == {"zendesk:1": at(3)}
    due = plan([ticket()], early.next_check_at["zendesk:1"], config, early.memory)
    assert [m.rule for m in due.matches] == ["Warn at 75%"]


def test_the_rule_examples_in_docs_sla_md_compile() -> None:
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).parents[2] / "docs" / "sla.md").read_text(encoding="utf-8")
    rules = [rule for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
             for rule in (yaml.safe_load(block).get("rules") or [])]
    assert len(rules) == 5
    for rule in rules:
        when(rule["when"])
