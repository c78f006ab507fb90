"""One rules file, two helpdesks: the same seeded queue read through Zendesk and Freshdesk plans the same.

Both sandboxes load `bot.sandbox.seed.generate(...)`; each connector reads it
over real HTTP; `bot.rules.engine.plan` runs `config/rules.yaml` on both
ticket lists. The plans must agree action for action (ticket, rule, kind,
target, params), modulo what differs by construction: the platform in keys, the
ticket URL, and one documented gap. Freshdesk folds Zendesk's `new` into Open,
so deskbot reads an Open ticket no agent has handled as `new`; a ticket that
Zendesk calls `open` although nobody ever handled it therefore reads as `new`
on Freshdesk. Rules written for both (`status: {in: [new, open]}`) match both;
only the displayed status differs, and the test checks that nothing else does.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_config
from bot.connectors.freshdesk import FreshdeskConnector
from bot.connectors.zendesk import ZendeskConnector
from bot.connectors.zendesk_http import ZendeskConfig
from bot.model import PlannedAction, Status, Ticket
from bot.retry import RateBudget, RetryPolicy
from bot.rules.engine import plan
from bot.sandbox import seed
from bot.sandbox.freshdesk import FreshdeskSandbox
from bot.sandbox.server import serve
from bot.sandbox.zendesk import ZendeskSandbox

RULES = Path(__file__).parent.parent / "config" / "rules.yaml"
QUEUE = seed.generate(7, tickets=120)
NOW = QUEUE.now


def _clock():
    return NOW


def _no_sleep(seconds: float) -> None:
    return None


def _read(connector: Any) -> list[Ticket]:
    return [t for page in connector.fetch_changes(None, backfill_all=True) for t in page.tickets]


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[dict[int, Ticket], dict[int, Ticket]]]:
    """Every ticket of the seeded queue, as each connector maps it (by ticket id)."""
    zendesk_app = ZendeskSandbox(QUEUE, clock=_clock, email="bot@support.example", api_token="zd-token")
    freshdesk_app = FreshdeskSandbox(api_key="fd-key", clock=_clock)
    freshdesk_app.load_queue(QUEUE)
    with serve(zendesk_app) as zendesk_server, serve(freshdesk_app) as freshdesk_server:
        zendesk = ZendeskConnector(
            ZendeskConfig(subdomain="acme", email="bot@support.example", api_token="zd-token",
                          url=zendesk_server.url),
            retry=RetryPolicy(sleep=_no_sleep, rng=random.Random(1)), clock=_clock, sleep=_no_sleep,
            monotonic=lambda: 0.0)
        freshdesk = FreshdeskConnector(
            freshdesk_server.url, "fd-key", retry=RetryPolicy(sleep=_no_sleep, rng=random.Random(1)),
            budget=RateBudget(700, clock=lambda: 0.0, sleep=_no_sleep), clock=lambda: 0.0)
        yield {t.id: t for t in _read(zendesk)}, {t.id: t for t in _read(freshdesk)}


def _folded_new(zendesk: Ticket, freshdesk: Ticket) -> bool:
    """The documented gap: Zendesk `open`, never handled by an agent, which Freshdesk cannot tell from new."""
    return (zendesk.status is Status.OPEN and freshdesk.status is Status.NEW and freshdesk.assignee_id is None
            and freshdesk.first_responded_at is None)


def _comparable(action: PlannedAction, folded: bool) -> tuple:
    """An action without what differs by construction (platform, URL, the folded status's wording)."""

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in sorted(value.items()) if k != "url"}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if folded and isinstance(value, str):
            return value.replace("(is new)", "(is open)") if value != "new" else "open"
        return value

    return (action.ticket_id, action.rule, action.kind, action.target, action.key.replace("freshdesk:", "zendesk:"),
            repr(clean(dict(action.params))))


def test_both_connectors_read_the_same_tickets(both):
    zendesk, freshdesk = both
    open_ids = {t.id for t in QUEUE.tickets if t.status not in ("solved", "closed")}
    assert open_ids <= set(zendesk) & set(freshdesk)
    for ticket_id in sorted(set(zendesk) & set(freshdesk)):
        z, f = zendesk[ticket_id], freshdesk[ticket_id]
        assert (f.subject, f.priority, f.type, f.tags, f.group, f.assignee, f.requester, f.requester_email,
                f.organization, f.created_at, f.updated_at, f.last_customer_update_at,
                f.last_agent_update_at) == (z.subject, z.priority, z.type, z.tags, z.group, z.assignee,
                                            z.requester, z.requester_email, z.organization, z.created_at,
                                            z.updated_at, z.last_customer_update_at, z.last_agent_update_at)
        assert f.status == z.status or _folded_new(z, f), ticket_id


def test_config_rules_plan_the_same_actions_on_both_platforms(both):
    zendesk, freshdesk = both
    config = load_config(RULES)
    shared = sorted(set(zendesk) & set(freshdesk))
    folded = {i for i in shared if _folded_new(zendesk[i], freshdesk[i])}
    z_tickets, f_tickets = [zendesk[i] for i in shared], [freshdesk[i] for i in shared]
    z_memory: Mapping = {}
    f_memory: Mapping = {}
    # now, then 5 hours later remembering the first pass: repeats and escalation ladders must step alike too
    for moment in (NOW, NOW + timedelta(hours=5)):
        z_plan, f_plan = plan(z_tickets, moment, config, z_memory), plan(f_tickets, moment, config, f_memory)
        z_actions = sorted(_comparable(a, a.ticket_id in folded) for a in z_plan.actions)
        f_actions = sorted(_comparable(a, a.ticket_id in folded) for a in f_plan.actions)
        assert len(z_actions) > 20, "the example rules should have plenty to do on the seeded queue"
        assert f_actions == z_actions
        assert sorted((rule, key.split(":")[1]) for rule, key in f_plan.memory) == sorted(
            (rule, key.split(":")[1]) for rule, key in z_plan.memory)
        z_memory, f_memory = {**z_memory, **z_plan.memory}, {**f_memory, **f_plan.memory}
