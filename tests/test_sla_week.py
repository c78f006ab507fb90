"""A simulated week of the example rules: every first-reply breach is warned before it happens.

The queue is driven the way the runner drives it: a ticket is evaluated when it
changes (created, answered) or when the plan said time alone could change a
verdict (`next_check_at`), never otherwise. Business hours, weekends and the
two SLA policies of config/rules.yaml are in play.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.config import load_config
from bot.model import Priority, Status, Ticket
from bot.rules.engine import plan
from bot.sla import build_calendars, ticket_clocks

CONFIG = load_config("config/rules.yaml")
WARN = "First reply running out"
BREACH = "First reply escalation ladder › step 1 (at breach)"
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # Monday
END = START + timedelta(days=7)


def week(seed: int = 11, count: int = 160):
    """Tickets created through the week; about half answered, at a random share of their deadline."""
    rng = random.Random(seed)
    calendars = build_calendars(CONFIG.spec.calendars)
    tickets, replies, deadlines = {}, {}, {}
    for number in range(1, count + 1):
        created = START + timedelta(minutes=rng.randrange(0, 6 * 24 * 60))
        priority = rng.choice(list(Priority))
        ticket = Ticket("zendesk", number, subject=f"question {number}", status=Status.OPEN, priority=priority,
                        created_at=created, updated_at=created, last_customer_update_at=created,
                        group="Billing", assignee="Ana", assignee_id=1)
        deadline = ticket_clocks(ticket, created, CONFIG.spec.sla_policies, calendars)["first_reply"].deadline
        tickets[ticket.key] = ticket
        deadlines[ticket.key] = deadline
        if rng.random() < 0.5:
            replies[ticket.key] = created + (deadline - created) * rng.uniform(0.1, 1.4)
    return tickets, replies, deadlines


def simulate(tickets, replies):
    """Evaluate exactly when the runner would; return when each rule first fired per ticket."""
    events = sorted([(t.created_at, "create", key) for key, t in tickets.items()]
                    + [(at, "reply", key) for key, at in replies.items()])
    mirror, next_check, memory, fired = {}, {}, {}, {}
    evaluations = 0
    while True:
        upcoming = [at for at in [events[0][0] if events else None, min(next_check.values(), default=None)] if at]
        if not upcoming:
            break
        now = min(upcoming)
        if now >= END:
            break
        changed = set()
        while events and events[0][0] == now:
            _, kind, key = events.pop(0)
            ticket = tickets[key]
            if kind == "reply":
                ticket = replace(mirror[key], first_responded_at=now, last_agent_update_at=now, updated_at=now)
            mirror[key] = ticket
            changed.add(key)
        due = changed | {key for key, at in next_check.items() if at <= now}
        for key in due:
            next_check.pop(key, None)
        result = plan([mirror[key] for key in sorted(due)], now, CONFIG, memory)
        evaluations += len(due)
        memory.update(result.memory)
        next_check.update(result.next_check_at)
        for match in result.matches:
            fired.setdefault((match.ticket_key, match.rule), now)
    return fired, evaluations


def test_every_breach_in_a_week_is_warned_before_it_happens_and_alerted_at_the_deadline():
    tickets, replies, deadlines = week()
    fired, evaluations = simulate(tickets, replies)
    breached = [key for key, deadline in deadlines.items()
                if deadline < END and (key not in replies or replies[key] > deadline)]
    met = [key for key in tickets if key in replies and replies[key] <= deadlines[key]]
    assert len(breached) > 30 and len(met) > 30, "the week has both kinds"
    for key in breached:
        warned = fired.get((key, WARN))
        assert warned is not None and warned < deadlines[key], f"{key} breached unwarned"
        assert fired.get((key, BREACH)) == deadlines[key], f"{key}: breach alert not at the deadline"
    for key in met:
        assert (key, BREACH) not in fired, f"{key} was answered in time but alerted as breached"
    # A 10 s tick over the whole mirror would evaluate each ticket ~60,000 times in a week; the plan's
    # next checks bring that to the instants where a verdict can change (thresholds, repeats, ladder steps).
    assert evaluations < 40 * len(tickets), f"{evaluations} evaluations for {len(tickets)} tickets"


def test_an_answer_between_the_warning_and_the_deadline_stops_the_alarm():
    tickets, replies, deadlines = week(seed=3)
    fired, _ = simulate(tickets, replies)
    saved = [key for key in replies if (key, WARN) in fired and fired[(key, WARN)] <= replies[key] <= deadlines[key]]
    assert saved, "some tickets are answered after the warning, in time"
    assert all((key, BREACH) not in fired for key in saved)
