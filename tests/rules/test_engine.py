"""The planner: rising-edge firing, repeats, stop, stable keys, and when to look again."""

from datetime import timedelta

from bot.model import Firing, Target
from bot.rules.engine import explain, plan
from tests.factories import NOW, make_config, make_ticket

URGENT = """\
- name: Escalate urgent
  when: {priority: urgent, status: open}
  then:
    - add_tags: escalated
    - notify: {channel: "#leads", message: "Urgent: {{ subject }}"}
"""


def test_a_matching_ticket_fires_every_action_once_with_stable_keys():
    config = make_config(URGENT)
    ticket = make_ticket(id=7, priority="urgent", status="open", subject="Down")
    result = plan([ticket], NOW, config, {})
    assert [a.key for a in result.actions] == [
        "Escalate urgent/zendesk:7/1/0:add_tags",
        "Escalate urgent/zendesk:7/1/1:notify",
    ]
    assert [a.target for a in result.actions] == [Target.HELPDESK, Target.NOTIFIER]
    assert result.actions[0].params["tags"] == ["escalated"]
    assert result.actions[1].params["message"] == "Urgent: Down"
    assert result.actions[1].params["channel"] == "#leads"
    assert result.memory == {("Escalate urgent", "zendesk:7"): Firing(True, 1, NOW)}


def test_a_rule_does_not_fire_again_while_its_condition_stays_true():
    config = make_config(URGENT)
    ticket = make_ticket(priority="urgent", status="open")
    first = plan([ticket], NOW, config, {})
    second = plan([ticket], NOW + timedelta(hours=5), config, first.memory)
    assert second.actions == ()
    assert second.memory == {}


def test_it_fires_again_after_the_condition_became_false_then_true():
    config = make_config(URGENT)
    hot = make_ticket(priority="urgent", status="open")
    memory = dict(plan([hot], NOW, config, {}).memory)
    cooled = plan([make_ticket(priority="normal", status="open")], NOW, config, memory)
    assert cooled.actions == ()
    assert cooled.memory == {("Escalate urgent", "zendesk:1"): Firing(False, 1, NOW)}
    memory.update(cooled.memory)
    again = plan([hot], NOW + timedelta(minutes=1), config, memory)
    assert again.actions[0].key == "Escalate urgent/zendesk:1/2/0:add_tags"


def test_repeat_fires_again_after_the_interval_while_true():
    config = make_config("""\
- name: Nag
  when: {status: pending}
  then: [{add_note: "still pending"}]
  repeat: 2d
""")
    ticket = make_ticket(status="pending")
    first = plan([ticket], NOW, config, {})
    assert first.next_check_at == {"zendesk:1": NOW + timedelta(days=2)}
    early = plan([ticket], NOW + timedelta(days=1), config, first.memory)
    assert early.actions == ()
    due = plan([ticket], NOW + timedelta(days=2), config, first.memory)
    assert [a.key for a in due.actions] == ["Nag/zendesk:1/2/0:add_note"]


def test_stop_makes_later_rules_skip_a_ticket_in_the_pass_where_it_acted():
    config = make_config("""\
- name: Route billing
  when: {subject: {contains: invoice}}
  then: [{set_group: Billing}]
  stop: true
- name: Tag everything
  when: {status: {in: [new, open]}}
  then: [{add_tags: seen}]
""")
    ticket = make_ticket(subject="Invoice wrong", status="new")
    first = plan([ticket], NOW, config, {})
    assert [m.rule for m in first.matches] == ["Route billing"]
    second = plan([ticket], NOW, config, first.memory)
    assert [m.rule for m in second.matches] == ["Tag everything"]
    other = plan([make_ticket(id=2, subject="hello", status="new")], NOW, config, {})
    assert [m.rule for m in other.matches] == ["Tag everything"]


def test_rules_run_in_file_order_and_disabled_rules_never_fire():
    config = make_config("""\
- name: Second in file is B
  when: {status: new}
  then: [{add_tags: b}]
  enabled: false
- name: A
  when: {status: new}
  then: [{add_tags: a}]
- name: C
  when: {status: new}
  then: [{add_tags: c}]
""")
    assert [m.rule for m in plan([make_ticket()], NOW, config, {}).matches] == ["A", "C"]


def test_next_check_is_the_instant_an_age_threshold_is_crossed():
    config = make_config("""\
- name: Old
  when: {since_created: {over: 4h}}
  then: [{add_tags: old}]
- name: Waiting
  when: {unanswered_for: {at_least: 1h}}
  then: [{add_tags: waiting}]
""")
    ticket = make_ticket(created_at="3h ago", last_customer_update_at="50m ago")
    result = plan([ticket], NOW, config, {})
    assert result.actions == ()
    assert result.next_check_at == {"zendesk:1": NOW + timedelta(minutes=10)}
    later = plan([ticket], NOW + timedelta(minutes=10), config, {})
    assert [m.rule for m in later.matches] == ["Waiting"]
    assert later.next_check_at == {"zendesk:1": NOW + timedelta(hours=1, microseconds=1)}


def test_tickets_no_time_rule_can_change_have_no_next_check():
    config = make_config(URGENT)
    assert plan([make_ticket(priority="low")], NOW, config, {}).next_check_at == {}


def test_a_ticket_wakes_only_for_time_rules_its_other_conditions_leave_open():
    config = make_config("""\
- name: Unowned for an hour
  when: {all: [{assignee: {is_empty: true}}, {since_created: {over: 1h}}]}
  then: [{add_tags: unowned}]
- name: Old or VIP
  when: {any: [{tags: {has: vip}}, {since_created: {over: 2h}}]}
  then: [{add_tags: look}]
""")
    fresh = dict(created_at="30m ago")
    # unassigned, no vip tag: both rules can still flip; the first threshold wins
    assert plan([make_ticket(**fresh)], NOW, config, {}).next_check_at == {
        "zendesk:1": NOW + timedelta(minutes=30, microseconds=1)}
    # assigned: the first rule waits for the ticket to change, not for the clock
    assigned = make_ticket(assignee="Ana", assignee_id=5, **fresh)
    assert plan([assigned], NOW, config, {}).next_check_at == {
        "zendesk:1": NOW + timedelta(hours=1, minutes=30, microseconds=1)}
    # assigned and vip: no rule can change with time alone
    settled = make_ticket(assignee="Ana", assignee_id=5, tags=["vip"], **fresh)
    assert plan([settled], NOW, config, {}).next_check_at == {}


def test_plan_is_pure_same_inputs_same_plan():
    config = make_config(URGENT)
    tickets = [make_ticket(id=i, priority="urgent", status="open") for i in range(5)]
    assert plan(tickets, NOW, config, {}) == plan(tickets, NOW, config, {})


def test_reason_names_the_conditions_that_held_with_their_values():
    config = make_config("""\
- name: Waiting VIP
  when:
    all:
      - tags: vip
      - any: [{unanswered_for: {over: 2h}}, {priority: urgent}]
  then: [{add_tags: x}]
""")
    ticket = make_ticket(tags=["vip"], last_customer_update_at="3h ago")
    (match,) = plan([ticket], NOW, config, {}).matches
    assert match.reason == "tags has vip (is vip); unanswered_for over 2h (is 3h)"


def test_explain_shows_each_rule_with_values_and_already_fired_state():
    config = make_config(URGENT)
    ticket = make_ticket(priority="urgent", status="open")
    memory = plan([ticket], NOW, config, {}).memory
    (item,) = explain(ticket, NOW, config, memory)
    assert item.matched and not item.would_fire
    assert item.note == "already fired (occurrence 1)"
    assert [(c.text, c.held) for c in item.verdict.children] == [("priority is urgent", True), ("status is open", True)]


def test_an_emptiness_test_on_an_age_is_not_a_time_threshold():
    config = make_config("""\
- name: Never answered
  when: {since_agent_reply: {is_empty: true}, since_created: {is_empty: false}}
  then: [{add_tags: unanswered}]
""")
    answered = make_ticket(id=2, last_agent_update_at="1h ago")
    result = plan([make_ticket(id=1), answered], NOW, config, {})
    assert [m.ticket_key for m in result.matches] == ["zendesk:1"]
    assert result.next_check_at == {}


def test_a_true_or_false_custom_field_is_not_a_number_in_either_path():
    from bot.rules.engine import explain

    config = make_config("- name: Big\n  when: {custom.seats: {gt: 0}}\n  then: [{add_tags: big}]\n")
    ticket = make_ticket(custom={"seats": True})
    assert plan([ticket], NOW, config, {}).matches == ()
    assert explain(ticket, NOW, config, {})[0].matched is False
