"""A batch of conditions answers as the conditions one by one, and looks shared fields up instead of re-reading them."""

import itertools
from datetime import UTC, datetime

from bot.model import Priority, Status, Ticket
from bot.rules.batch import compile_batch, compile_verdicts
from tests.factories import make_config

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
GROUPS = ["billing", "Technical", "accounts", "escalations"]
ROUTES = make_config("\n".join(
    f"""\
- name: {status} {group} {priority}
  when: {{status: {status}, group: {group}, priority: {{in: [{priority}]}}, tags: {{lacks: done}}}}
  then: [{{add_tags: done}}]
"""
    for status, group, priority in itertools.product(["new", "open", "pending"], GROUPS, ["urgent", "high, urgent"])
) + """\
- name: Not a lookup
  when: {any: [{status: solved}, {group: {is_empty: true}}]}
  then: [{add_tags: other}]
- name: Case matters
  when: {group: {eq: Billing, case_sensitive: true}}
  then: [{add_tags: exact}]
""")


def every_ticket():
    for status, group, priority, tags in itertools.product(
            list(Status), [None, "", "BILLING", "Billing", "technical", "support"], list(Priority),
            [frozenset(), frozenset({"done"})]):
        yield Ticket(platform="zendesk", id=1, subject="s", status=status, group=group, priority=priority, tags=tags)


def one_by_one(ticket):
    return [i for i, rule in enumerate(ROUTES.active_rules) if rule.condition.test(ticket, NOW)]


def test_the_batch_holds_exactly_the_rules_that_hold_one_by_one_in_file_order():
    roots = [(i, rule.condition.root) for i, rule in enumerate(ROUTES.active_rules)]
    batch, verdicts = compile_batch(roots), compile_verdicts(roots)
    held = 0
    for ticket in every_ticket():
        expected = one_by_one(ticket)
        assert batch(ticket, NOW) == expected
        assert verdicts(ticket, NOW) == (expected, [])  # no time-based leaf: nothing is open to time
        held += bool(expected)
    assert held > 100  # the tickets exercise the rules, not only their failure


class Counting:
    """A ticket that counts how often each field is read."""

    def __init__(self, ticket):
        self.ticket, self.reads = ticket, {}

    def __getattr__(self, name):
        self.reads[name] = self.reads.get(name, 0) + 1
        return getattr(self.ticket, name)


def test_a_field_many_rules_test_for_equality_is_read_once_per_ticket():
    verdicts = compile_verdicts([(i, rule.condition.root) for i, rule in enumerate(ROUTES.active_rules)])
    ticket = Counting(Ticket(platform="zendesk", id=1, subject="s", status=Status.OPEN, group="Billing",
                             priority=Priority.URGENT))
    held, _ = verdicts(ticket, NOW)
    assert [ROUTES.active_rules[i].name for i in held] == ["open billing urgent", "open billing high, urgent",
                                                           "Case matters"]
    # 24 rules test status and group; one lookup each, plus the two rules that are not lookups
    assert ticket.reads["status"] <= 2 and ticket.reads["group"] <= 3
