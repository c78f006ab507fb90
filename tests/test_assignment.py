"""Smart assignment as a specification: who gets the ticket, who was passed over and why, and what runs instead."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.assignment import (
    AgentSpec,
    AssignmentBatch,
    AssignmentSpec,
    Decision,
    PingPongSpec,
    Roster,
    ShiftSpec,
    SkillsFromSpec,
    choose_assignee,
    ping_pong_guard,
    required_skills,
    with_ticket,
    workload_from,
)
from bot.config import Config, load_config_text
from bot.model import Agent, Directory, Group, Priority, Status, Ticket
from bot.rules import fields
from bot.rules.conditions import Problem, compile_condition
from bot.rules.engine import CompiledRule, plan
from bot.rules.schema import TeamSpec
from bot.shifts import roster_problems
from tests.factories import make_config

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)  # Monday 10:00 UTC
H = timedelta(hours=1)
BILLING, SALES = 10, 20
U, HI, N, L = Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.LOW


class Team(TeamSpec):
    """TeamSpec plus the `shift` key this work proposes for it."""

    shift: str | None = None


def agent(id: int, name: str, *, groups: tuple[int, ...] = (BILLING,), **extra: Any) -> Agent:
    return Agent("zendesk", id, name, f"{name.lower()}@x.com", frozenset(groups), **extra)


ANA, BOB, CY = agent(1, "Ana"), agent(2, "Bob"), agent(3, "Cy")


def directory(*agents: Agent) -> Directory:
    return Directory(agents or (ANA, BOB, CY),
                     (Group("zendesk", BILLING, "Billing"), Group("zendesk", SALES, "Sales")))


def ticket(**fields_: Any) -> Ticket:
    fields_.setdefault("status", Status.OPEN)
    return Ticket(platform="zendesk", id=fields_.pop("id", 1), **fields_)


def params(strategy: str = "round_robin", *, fallback: str = "queue", skills: tuple[str, ...] = (),
           members: tuple[str, ...] = ("ana@x.com", "bob@x.com", "cy@x.com")) -> dict[str, Any]:
    """What the `assign` action plans for `{team: billing, ...}`."""
    return {"team": "billing", "group": "Billing", "strategy": strategy, "fallback": fallback,
            "skills": list(skills), "members": list(members)}


def roster(agents: dict[str, Any] | None = None, *, shifts: dict[str, Any] | None = None,
           assignment: dict[str, Any] | None = None, team_shift: str | None = None) -> Roster:
    return Roster.build(
        {email: AgentSpec.model_validate(spec) for email, spec in (agents or {}).items()},
        {name: ShiftSpec.model_validate(spec) for name, spec in (shifts or {}).items()},
        AssignmentSpec.model_validate(assignment or {}),
        {"billing": Team(group="Billing", members=["ana@x.com", "bob@x.com", "cy@x.com"], shift=team_shift)},
    )


def choose(p: dict[str, Any], t: Ticket | None = None, *, d: Directory | None = None, load: Any = None,
           now: datetime = NOW, r: Roster | None = None, position: str | None = None,
           history: Any = ()) -> Decision:
    return choose_assignee(p, t or ticket(), d or directory(), load or {}, now, r or roster(), position, history)


DAY_SHIFT = {"day": {"timezone": "UTC", "hours": {"weekdays": "09:00-17:00"}}}


# -- the action's parameters -----------------------------------------------------------------------


def test_the_assign_action_plans_parameters_choose_assignee_understands() -> None:
    config = make_config("- name: R\n  when: {priority: urgent}\n  then:\n"
                         "    - assign: {team: billing, strategy: least_loaded, fallback: notify}\n",
                         teams="billing: {group: Billing, members: [ana@x.com, bob@x.com]}\n")
    planned = config.rules[0].actions[0].build(ticket(), NOW, "R")
    decision = choose(planned, load={1: {N: 2}})
    assert (decision.outcome, decision.agent, decision.team, decision.group) == ("assign", BOB, "billing", "Billing")


# -- round robin -----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(size=st.integers(2, 7), count=st.integers(1, 50), cut=st.integers(0, 50),
       start=st.one_of(st.none(), st.integers(-1, 9).map(str)))
def test_round_robin_gives_nobody_a_second_ticket_before_everyone_had_one(size: int, count: int, cut: int,
                                                                           start: str | None) -> None:
    team = tuple(agent(i + 1, f"A{i}") for i in range(size))
    p = params(members=tuple(a.email for a in team))  # type: ignore[misc]
    position, handed = start, []
    for number in range(count):
        if number == cut:  # a restart: new objects, only the stored position survives
            position = str(position) if position is not None else None
        decision = choose(p, ticket(id=number), d=directory(*team), position=position)
        handed.append(decision.agent.id)  # type: ignore[union-attr]
        position = decision.rotation_position
    for length in range(1, count + 1):
        counts = [handed[:length].count(a.id) for a in team]
        assert max(counts) - min(counts) <= 1, handed
    assert handed == [((handed[0] - 1 + k) % size) + 1 for k in range(count)]  # one unbroken cycle


@settings(max_examples=40, deadline=None)
@given(size=st.integers(2, 6), rounds=st.lists(st.sets(st.integers(0, 5)), min_size=1, max_size=30))
def test_round_robin_skips_whoever_is_unavailable_and_starves_nobody(size: int, rounds: list[set[int]]) -> None:
    position: str | None = None
    picks: list[int | None] = []
    for number, away in enumerate(rounds):
        team = tuple(agent(i + 1, f"A{i}", available=False if i in away else None) for i in range(size))
        decision = choose(params(members=tuple(a.email for a in team)),  # type: ignore[arg-type]
                          ticket(id=number), d=directory(*team), position=position)
        present = [a.id for a in team if a.available is not False]
        if not present:
            assert decision.outcome == "queue" and decision.rotation_position == position
            picks.append(None)
            continue
        last = int(position) if position else 0
        expected = next((i for i in present if i > last), present[0])  # the first present one after the last
        assert decision.agent.id == expected  # type: ignore[union-attr]
        position = decision.rotation_position
        picks.append(expected)
    for member in range(1, size + 1):  # present for `size` picks in a row means served within them
        for first in range(len(rounds) - size + 1):
            window = range(first, first + size)
            if all(member - 1 not in rounds[k] for k in window):
                assert member in [picks[k] for k in window]


def test_round_robin_continues_after_a_member_who_left_the_team() -> None:
    decision = choose(params(members=("ana@x.com", "cy@x.com")), position="2")  # Bob (#2) was last, now gone
    assert decision.agent == CY and decision.rotation_position == "3"
    assert "next in rotation after agent #2" in decision.reason


# -- least loaded and priority weights -------------------------------------------------------------


def test_least_loaded_weighs_open_tickets_by_priority() -> None:
    load = {1: {U: 1}, 2: {N: 3}, 3: {HI: 2}}  # weighted 4, 3, 4
    decision = choose(params("least_loaded"), load=load)
    assert decision.agent == BOB and "least loaded: 3" in decision.reason
    assert decision.rotation_position is None  # least loaded leaves the rotation alone
    cheap_urgent = roster(assignment={"priority_weights": {"urgent": 1}})
    assert choose(params("least_loaded"), load=load, r=cheap_urgent).agent == ANA  # 1, 3, 4


def test_least_loaded_breaks_ties_by_fewer_tickets_then_by_id() -> None:
    assert choose(params("least_loaded"), load={1: {N: 2}, 2: {HI: 1}, 3: {N: 2}}).agent == BOB
    assert choose(params("least_loaded"), load={1: {L: 2}, 2: {N: 1}, 3: {L: 2}}).agent == BOB
    assert choose(params("least_loaded"), load={}).agent == ANA


def test_workload_counts_open_tickets_per_assignee_and_priority() -> None:
    mirror = [ticket(id=1, assignee_id=1, priority=U), ticket(id=2, assignee_id=1, priority=U),
              ticket(id=3, assignee_id=1, status=Status.PENDING), ticket(id=4, assignee_id=2, status=Status.SOLVED),
              ticket(id=5), Ticket("freshdesk", 6, status=Status.OPEN, assignee_id=1)]
    assert workload_from(mirror, platform="zendesk") == {1: {U: 2, N: 1}}
    assert workload_from(mirror, statuses=[Status.OPEN]) == {1: {U: 2, N: 1}}
    assert workload_from(mirror, platform="zendesk", statuses=[Status.OPEN]) == {1: {U: 2}}
    assert with_ticket({1: {U: 2}}, 1, U, -1) == {1: {U: 1}} and with_ticket({}, 2, L) == {2: {L: 1}}


# -- skills ----------------------------------------------------------------------------------------


SKILLED = roster({"ana@x.com": {"skills": ["French", "billing"]}, "bob@x.com": {"skills": "billing"}},
                 assignment={"skills_from": {"tags": {"fr": "french"}, "custom": {"plan": {"Enterprise": ["vip"]}}}})


def test_skills_strategy_picks_the_least_loaded_agent_covering_the_tickets_skills() -> None:
    decision = choose(params("skills"), ticket(tags=frozenset({"fr"})), r=SKILLED, load={1: {N: 9}})
    assert decision.agent == ANA and decision.required_skills == ("french",)
    assert "Bob <bob@x.com> (load 0, 0 open): lacks skill french" in decision.reason
    assert "Cy <cy@x.com> (load 0, 0 open): lacks skill french" in decision.reason
    assert choose(params("skills"), ticket(), r=SKILLED, load={1: {N: 9}}).agent == BOB  # nothing required


def test_required_skills_come_from_the_action_tags_and_custom_fields() -> None:
    mapping = SKILLED.settings.skills_from
    vip = ticket(tags=frozenset({"FR"}), custom={"plan": ["enterprise", "addon"]})
    assert required_skills(vip, mapping, ["Billing"]) == ("billing", "french", "vip")
    flagged = SkillsFromSpec.model_validate({"custom": {"beta": {"true": "beta"}}})
    assert required_skills(ticket(custom={"beta": True}), flagged) == ("beta",)
    decision = choose(params("skills"), vip, r=SKILLED)
    assert decision.outcome == "queue" and "Ana <ana@x.com> (load 0, 0 open): lacks skill vip" in decision.reason


def test_other_strategies_honour_the_actions_own_skills_but_not_the_files_mapping() -> None:
    french = ticket(tags=frozenset({"fr"}))
    assert choose(params(), french, r=SKILLED, position="1").agent == BOB  # the mapping is for `skills` only
    assert choose(params(skills=("french",)), french, r=SKILLED, position="1").agent == ANA


# -- eligibility: shifts, absences, capacity, membership --------------------------------------------


def test_only_agents_on_shift_and_in_office_are_eligible() -> None:
    r = roster({"ana@x.com": {"shift": "day"},
                "bob@x.com": {"shift": "day", "out_of_office": [{"from": "2026-03-02", "to": "2026-03-06"}]},
                "cy@x.com": {"shift": "night"}},
               shifts={**DAY_SHIFT, "night": {"timezone": "Asia/Tokyo", "hours": {"daily": "22:00-06:00"}}})
    at_ten = choose(params(), r=r)
    assert at_ten.agent == ANA
    assert "Bob <bob@x.com> (load 0, 0 open): out of office until Sat 2026-03-07 00:00 UTC" in at_ten.reason
    assert "Cy <cy@x.com> (load 0, 0 open): off shift (night; back Mon 2026-03-02 22:00 Asia/Tokyo)" \
        in at_ten.reason
    assert choose(params(), r=r, now=NOW + 8 * H).agent == CY  # 18:00 UTC: 03:00 in Tokyo, Ana went home


def test_the_teams_shift_applies_to_members_without_their_own() -> None:
    r = roster({"cy@x.com": {"shift": "24x7"}}, shifts=DAY_SHIFT, team_shift="day")
    assert choose(params(), r=r, now=NOW + 10 * H).agent == CY


def test_capacity_limits_the_total_and_optionally_each_priority() -> None:
    r = roster({"ana@x.com": {"capacity": {"total": 5, "urgent": 1}}, "bob@x.com": {"capacity": 2}})
    load = {1: {U: 1}, 2: {L: 2}}
    urgent = choose(params(), ticket(priority=U), load=load, r=r)
    assert urgent.agent == CY
    assert "Ana <ana@x.com> (load 4, 1 open): at capacity (urgent 1/1)" in urgent.reason
    assert "Bob <bob@x.com> (load 1, 2 open): at capacity (total 2/2)" in urgent.reason
    assert choose(params(), ticket(priority=N), load=load, r=r).agent == ANA  # no normal limit


def test_inactive_unknown_outside_the_group_and_unavailable_agents_are_passed_over() -> None:
    team = (agent(1, "Ana", active=False), agent(2, "Bob", groups=(SALES,)), agent(3, "Cy", available=False),
            agent(4, "Dee"))
    p = params(members=("ana@x.com", "bob@x.com", "cy@x.com", "zed@x.com", "dee@x.com"))
    decision = choose(p, d=directory(*team))
    assert decision.agent == team[3]
    assert ("Considered: Ana <ana@x.com>: inactive; Bob <bob@x.com>: not in group Billing; Cy <cy@x.com> "
            "(load 0, 0 open): unavailable in the helpdesk; zed@x.com: not an agent in zendesk; "
            "Dee <dee@x.com> (load 0, 0 open): eligible.") in decision.reason
    ignoring = roster(assignment={"respect_availability": False})
    assert choose(p, d=directory(*team), r=ignoring, position="1").agent == team[2]


def test_without_listed_members_the_groups_active_agents_are_the_team() -> None:
    team = (agent(5, "Eve"), agent(6, "Fay", active=False), agent(7, "Gus", groups=(SALES,)))
    decision = choose(params(members=()), d=directory(*team))
    assert decision.agent == team[0] and [c.label for c in decision.candidates] == ["Eve <eve@x.com>"]


def test_the_current_assignee_is_passed_over_but_keeps_the_ticket_when_nobody_else_can_take_it() -> None:
    held = ticket(assignee_id=1, priority=U)
    assert choose(params(), held, position=None).agent == BOB
    r = roster({"ana@x.com": {"capacity": {"urgent": 1}}, "bob@x.com": {"shift": "day"},
                "cy@x.com": {"shift": "day"}}, shifts=DAY_SHIFT)
    kept = choose(params(), held, r=r, load={1: {U: 1}}, now=NOW + 10 * H)  # her own ticket is not extra load
    assert kept.outcome == "keep" and kept.agent == ANA and "stays with Ana <ana@x.com>" in kept.reason


# -- fallbacks -------------------------------------------------------------------------------------


NIGHT = NOW + 10 * H  # 20:00 UTC: the day shift is over
OFF = roster({"ana@x.com": {"shift": "day"}, "bob@x.com": {"shift": "day", "capacity": 1}}, shifts=DAY_SHIFT)
OFF_TEAM = directory(ANA, BOB, agent(3, "Cy", active=False))


def test_queue_fallback_sets_the_group_only() -> None:
    decision = choose(params(), d=OFF_TEAM, r=OFF, now=NIGHT)
    assert (decision.outcome, decision.fallback, decision.group, decision.agent) == ("queue", "queue", "Billing",
                                                                                      None)
    assert decision.reason.startswith("team billing (round_robin): nobody is eligible; queued in group Billing. "
                                      "Considered: Ana <ana@x.com> (load 0, 0 open): off shift (day; back Tue")


def test_notify_fallback_asks_for_the_team_to_be_told() -> None:
    decision = choose(params(fallback="notify"), d=OFF_TEAM, r=OFF, now=NIGHT)
    assert (decision.outcome, decision.fallback, decision.agent) == ("notify", "notify", None)
    assert "nobody is eligible; notifying team billing" in decision.reason


def test_assign_anyway_takes_the_least_loaded_active_member_of_the_group_whatever_their_shift() -> None:
    decision = choose(params(fallback="assign_anyway"), d=OFF_TEAM, r=OFF, now=NIGHT, load={1: {N: 3}, 2: {L: 1}})
    assert (decision.outcome, decision.fallback, decision.agent) == ("assign", "assign_anyway", BOB)
    assert "assigned anyway to Bob <bob@x.com> (least loaded: 0.5)" in decision.reason
    nobody = choose(params(fallback="assign_anyway"), d=directory(agent(3, "Cy", active=False)), r=OFF)
    assert (nobody.outcome, nobody.fallback) == ("queue", "queue")
    mine = choose(params(fallback="assign_anyway"), ticket(assignee_id=2), d=OFF_TEAM, r=OFF, now=NIGHT)
    assert mine.outcome == "keep" and mine.agent == BOB


def test_group_only_queues_and_an_unknown_group_does_nothing() -> None:
    assert choose(params("group_only")).outcome == "queue"
    missing = choose({**params(), "group": "Bil0ing"})
    assert missing.outcome == "none" and "group 'Bil0ing' does not exist in zendesk" in missing.reason


def test_a_named_agent_is_assigned_even_off_shift_with_a_note() -> None:
    decision = choose({"agent": "Bob"}, r=OFF, now=NIGHT)
    assert decision.outcome == "assign" and decision.agent == BOB
    assert "note: off shift (day; back Tue 2026-03-03 09:00 UTC); a named agent is assigned regardless" \
        in decision.reason
    assert choose({"agent": "zed@x.com"}).outcome == "none"
    assert choose({"agent": "cy@x.com"}, d=OFF_TEAM).reason == "Cy <cy@x.com> is inactive in zendesk; nothing assigned"
    assert choose({"agent": "ana@x.com"}, ticket(assignee_id=1)).outcome == "keep"


# -- ping-pong guard -------------------------------------------------------------------------------


def test_the_guard_counts_deskbots_assignments_inside_the_window() -> None:
    policy = PingPongSpec(max=3, within="24h")  # type: ignore[arg-type]
    assert not ping_pong_guard([NOW - 30 * H, NOW - 5 * H, NOW - H], NOW, policy).held
    held = ping_pong_guard([NOW - 20 * H, NOW - 5 * H, SimpleNamespace(at=NOW - H)], NOW, policy)
    assert held.held and held.count == 3 and held.until == NOW + 4 * H
    assert "deskbot assigned this ticket 3 times in the last 24h (max 3)" in held.reason
    assert not ping_pong_guard([NOW - 24 * H, NOW - 5 * H, NOW - H], NOW, policy).held  # the window is open
    many = ping_pong_guard([NOW - k * H for k in (1, 2, 3, 4, 5)], NOW, policy)
    assert many.until == NOW + 21 * H  # two must age out before a third assignment fits
    assert not ping_pong_guard([NOW] * 9, NOW, None).held


def test_a_held_assignment_says_so_and_leaves_the_rotation_where_it_was() -> None:
    history = [NOW - 3 * H, NOW - 2 * H, NOW - H]
    decision = choose(params(), position="1", history=history)
    assert decision.outcome == "held" and decision.agent == BOB and decision.rotation_position == "1"
    assert decision.held_until == NOW + 21 * H
    assert decision.reason.startswith("would assign Bob <bob@x.com>, but held by the ping-pong guard")
    assert choose(params(), d=OFF_TEAM, r=OFF, now=NIGHT, history=history).outcome == "queue"  # nothing to hold
    assert choose({"agent": "bob"}, history=history).outcome == "held"
    relaxed = roster(assignment={"ping_pong": {"max": 5, "within": "2h"}})
    assert choose(params(), r=relaxed, history=history).outcome == "assign"
    assert choose(params(), r=roster(assignment={"ping_pong": None}), history=history * 5).outcome == "assign"


# -- batches ---------------------------------------------------------------------------------------


def test_a_batch_spreads_new_tickets_and_threads_the_rotation() -> None:
    reads: list[str] = []

    def stored(pool: str) -> str | None:
        reads.append(pool)
        return "2"

    batch = AssignmentBatch(directory(), roster(), {}, stored)
    spread = [batch.choose(params("least_loaded"), ticket(id=k), NOW).agent.id for k in range(6)]  # type: ignore
    assert sorted(spread) == [1, 1, 2, 2, 3, 3]
    rotated = [batch.choose(params(), ticket(id=k), NOW).agent.id for k in range(4)]  # type: ignore[union-attr]
    assert rotated == [3, 1, 2, 3] and reads == ["zendesk:billing"] and batch.changed == {"zendesk:billing": "3"}
    moved = batch.choose({"agent": "ana"}, ticket(id=9, assignee_id=3), NOW)
    assert moved.agent == ANA and (batch.workload[3][N], batch.workload[1][N]) == (4 - 1, 3 + 1)  # load moves


# -- the rules-file sections -----------------------------------------------------------------------


def test_section_models_refuse_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        AgentSpec.model_validate({"skils": ["french"]})
    with pytest.raises(ValidationError, match="is not a duration"):
        AssignmentSpec.model_validate({"ping_pong": {"max": 3, "within": "a day"}})
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        AssignmentSpec.model_validate({"ping_pong": {"max": 0}})
    with pytest.raises(ValidationError, match="at least 1 item"):
        AssignmentSpec.model_validate({"open_statuses": []})
    defaults = AssignmentSpec()
    assert defaults.ping_pong == PingPongSpec(max=3, within=timedelta(hours=24))
    assert defaults.priority_weights.load({U: 1, HI: 1, N: 1, L: 1}) == 7.5


# -- the assignee's duty as condition fields -------------------------------------------------------


@pytest.fixture
def duty_fields() -> Iterator[Any]:
    """Register the `assignee.` family for one test, leaving the global registry as it was."""
    saved = dict(fields.PREFIXES)
    module = importlib.import_module("bot.rules.assignment_fields")
    module.register_fields()
    yield module
    fields.PREFIXES.clear()
    fields.PREFIXES.update(saved)


RULES_FILE = SimpleNamespace(
    agents={"ana@x.com": AgentSpec.model_validate({"out_of_office": [{"from": "2026-03-04", "to": "2026-03-04"}]})},
    shifts={"day": ShiftSpec.model_validate({"hours": {"weekdays": "09:00-17:00"}})},
    teams={"billing": Team(group="Billing", members=["ana@x.com"], timezone="America/New_York", shift="day"),
           "london": Team(group="London", members=["ana@x.com"], timezone="Europe/London", shift="day")},
    assignment=AssignmentSpec(),
)
ASSIGNED = ticket(assignee_id=1, assignee_email="ana@x.com", group="Billing", priority=U)


def compiled(raw: dict[str, Any], context: Any = RULES_FILE) -> Any:
    problems: list[Problem] = []
    condition = compile_condition(raw, ("rules", 0, "when"), problems, context)
    assert not problems, [p.message for p in problems]
    return condition


def test_on_shift_follows_the_shift_of_the_team_working_the_tickets_group(duty_fields: Any) -> None:
    off = compiled({"assignee.on_shift": False})
    assert off.test(ASSIGNED, NOW) and off.explain(ASSIGNED, NOW).value is False  # 05:00 in New York
    assert off.next_change(ASSIGNED, NOW) == NOW + 4 * H  # 09:00 EST
    assert not off.test(ASSIGNED, NOW + 4 * H) and off.next_change(ASSIGNED, NOW + 4 * H) == NOW + 12 * H
    in_london = ticket(assignee_id=1, assignee_email="ana@x.com", group="London")
    assert not off.test(in_london, NOW) and off.next_change(in_london, NOW) == NOW + 7 * H


def test_out_of_office_turns_on_shift_false_and_announces_the_return(duty_fields: Any) -> None:
    wednesday = NOW + 2 * 24 * H + 5 * H  # 10:00 EST on Wednesday, the day off
    assert compiled({"assignee.on_shift": False}).test(ASSIGNED, wednesday)
    away = compiled({"assignee.out_of_office": True})
    assert away.test(ASSIGNED, wednesday) and not away.test(ASSIGNED, NOW)
    assert away.next_change(ASSIGNED, NOW) == datetime(2026, 3, 4, 5, tzinfo=UTC)  # midnight in New York
    assert away.next_change(ASSIGNED, wednesday) == datetime(2026, 3, 5, 5, tzinfo=UTC)


def test_an_unassigned_ticket_is_neither_on_nor_off_shift(duty_fields: Any) -> None:
    for value in (True, False):
        condition = compiled({"assignee.on_shift": value})
        assert not condition.test(ticket(group="Billing"), NOW)
        assert condition.next_change(ticket(group="Billing"), NOW) is None
    assert compiled({"assignee.on_shift": {"is_set": False}}).test(ticket(), NOW)


def test_duty_field_mistakes_are_reported_when_the_file_loads(duty_fields: Any) -> None:
    problems: list[Problem] = []
    compile_condition({"assignee.on_shfit": False}, ("when",), problems, RULES_FILE)
    assert [p.message for p in problems] == ["unknown assignee field 'assignee.on_shfit'; did you mean "
                                             "'assignee.on_shift'?"]
    problems.clear()
    compile_condition({"assignee.on_shift": False}, ("when",), problems, SimpleNamespace(teams={}))
    assert "needs working times" in problems[0].message
    problems.clear()
    compile_condition({"assignee.on_shift": "no"}, ("when",), problems, RULES_FILE)
    assert [p.message for p in problems] == ["'no' is not true or false"]
    plain = duty_fields.assignee_field("assignee_on_shift", RULES_FILE)  # the issue's spelling, once bound
    assert plain.getter(ASSIGNED, NOW) is False and plain.next_change(ASSIGNED, NOW, "eq", False) == NOW + 4 * H


def test_the_planner_rechecks_when_the_shift_ends_and_then_fires(duty_fields: Any) -> None:
    condition = compiled({"all": [{"priority": "urgent"}, {"assignee.on_shift": False}]})
    rule = CompiledRule("Follow the shift", "", 0, condition, ())
    config = Config(spec=None, rules=(rule,), active_rules=(rule,))  # type: ignore[arg-type]
    working = plan([ASSIGNED], NOW + 5 * H, config, {})
    assert working.matches == () and working.next_check_at == {"zendesk:1": NOW + 12 * H}  # 17:00 EST
    after = plan([ASSIGNED], working.next_check_at["zendesk:1"], config, working.memory)
    assert [m.rule for m in after.matches] == ["Follow the shift"]


# -- the documentation's examples are valid ----------------------------------------------------------


def test_every_yaml_example_in_docs_assignment_md_is_valid(duty_fields: Any) -> None:
    text = (Path(__file__).parent.parent / "docs" / "assignment.md").read_text(encoding="utf-8")
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)]
    assert len(blocks) == 5
    for block in blocks:
        teams = block.get("teams") or {}
        context = SimpleNamespace(
            agents={k: AgentSpec.model_validate(v or {}) for k, v in (block.get("agents") or {}).items()},
            shifts={k: ShiftSpec.model_validate(v) for k, v in (block.get("shifts") or {}).items()},
            assignment=AssignmentSpec.model_validate(block.get("assignment") or {}),
            teams={k: Team.model_validate(v) for k, v in teams.items()})
        assert roster_problems(context) == []
        for rule in block.get("rules") or []:
            compiled(rule["when"], context)
        if block.get("rules"):  # the actions compile against today's rules file (teams without `shift`)
            today = {name: {k: v for k, v in team.items() if k != "shift"} for name, team in teams.items()}
            rules = [{**rule, "when": {"priority": "urgent"}} for rule in block["rules"]]
            load_config_text(yaml.safe_dump({"version": 1, "teams": today, "rules": rules}), "docs/assignment.md")


def test_a_named_agents_note_uses_the_shift_of_the_team_working_the_tickets_group() -> None:
    decision = choose({"agent": "cy@x.com"}, ticket(group="Billing"), r=roster(shifts=DAY_SHIFT, team_shift="day"),
                      now=NIGHT)
    assert decision.outcome == "assign" and "note: off shift (day; back Tue" in decision.reason
