"""The cycle benchmark's workload: a realistic 200-rule rules file and a mirror of open tickets.

`rules_yaml(queue, n)` writes a rules file the way a support team grows one:
routing by keyword (stop: true), auto-tagging, assignment after a wait, alerts
for unowned tickets, SLA warnings and breaches, priority fixes, follow-ups with
`repeat`, escalations and custom-field rules. Every rule uses deskbot's own
conditions and actions, and roughly half are time-based, as in real files.

`open_queue(n)` is `bot.sandbox.seed`'s deterministic queue trimmed to n open
tickets; `mirror(queue)` turns it into `Ticket`s exactly as the Zendesk
connector does (the sandbox's API payloads through `zendesk_mapping.to_ticket`),
so the mirror carries what a running bot carries, raw payloads included.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import yaml

from bot.model import Ticket
from bot.sandbox import seed

TEAMS = {"billing": "Billing", "technical": "Technical", "accounts": "Accounts", "escalations": "Escalations"}
_OPEN = ("new", "open", "pending", "on_hold")


def open_queue(n: int, seed_value: int = 7) -> seed.Queue:
    """A seeded queue of exactly n open (not solved or closed) tickets."""
    queue = seed.generate(seed_value, tickets=int(n / 0.7) + 50)
    open_tickets = [t for t in queue.tickets if t.status in _OPEN]
    if len(open_tickets) < n:  # the status mix is fixed, so this only guards a changed generator
        raise RuntimeError(f"the seeded queue has {len(open_tickets)} open tickets, fewer than {n}")
    queue.tickets = open_tickets[:n]
    return queue


def mirror(queue: seed.Queue) -> list[Ticket]:
    """The queue's tickets as the Zendesk connector maps them (no HTTP: the sandbox's payloads directly)."""
    from bot.connectors.zendesk_mapping import Sideloads, field_keys, to_ticket
    from bot.sandbox.zendesk import ZendeskSandbox

    account = ZendeskSandbox(queue)
    keys = field_keys({f["id"]: f["title"] for f in account.ticket_fields() if f.get("removable")})
    stored = list(account.tickets.values())
    out: list[Ticket] = []
    for start in range(0, len(stored), 1000):  # one export page's worth of sideloads at a time
        page_tickets = stored[start:start + 1000]
        page = account.sideloads(page_tickets, {"users", "groups", "organizations", "metric_sets"})
        side = Sideloads.from_page(page, field_keys=keys, agent_url="https://sandbox.zendesk.com/agent/tickets/")
        out.extend(to_ticket(account.ticket_json(t, slas=True), side) for t in page_tickets)
    return out


# ---- the rules file -------------------------------------------------------------------------------

_ROUTES = {
    "billing": ["refund|chargeback|money back", "invoice|vat|receipt", "charged twice|double charge",
                "credit card|payment method|card declined", "price|pricing|plan cost", "cancel .*subscription"],
    "technical": ["500 error|outage|is down|everything is down", "api|webhook|429|rate limit", "crash|freez",
                  "export|csv|import", "slack|integration", "bug|broken|not working"],
    "accounts": ["password|reset link", "sso|saml|okta", "two-factor|2fa|codes", "admin|access|permission",
                 "gdpr|personal data|delete my"],
}
_TOPICS = ["refund", "invoice", "vat", "credit card", "price", "cancel", "500", "outage", "api", "429",
           "webhook", "crash", "ios", "android", "export", "csv", "slack", "duplicate", "dashboard", "password",
           "reset", "sso", "okta", "two-factor", "admin", "owner", "gdpr", "personal data", "legal",
           "complaint", "urgent", "production", "mobile", "login", "billing", "plan", "subscription",
           "integration", "delete", "access"]
_PRIORITY_CLASSES = [("urgent", ["urgent"], "30m"), ("high", ["high"], "2h"), ("normal", ["low", "normal"], "8h")]


def _notify(team: str, severity: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"notify": {"team": team, "severity": severity, "message": message, **extra}}


def _rules() -> Iterator[dict[str, Any]]:
    """Every rule family, in the order a file would list them (routing first: it stops later rules)."""
    for team, patterns in _ROUTES.items():
        for index, pattern in enumerate(patterns):
            yield {"name": f"Route {team} #{index + 1}", "stop": True,
                   "when": {"all": [{"status": "new"}, {"group": {"is_empty": True}},
                                    {"any": [{"subject": {"matches": pattern}},
                                             {"description": {"matches": pattern}}]}]},
                   "then": [{"set_group": {"team": team}}, {"add_tags": ["bot_routed"]}]}
    for topic in _TOPICS:
        tag = "topic_" + topic.replace(" ", "_").replace("-", "_")
        yield {"name": f"Tag {topic}", "when": {"all": [{"subject": {"contains": topic}}, {"tags": {"lacks": tag}}]},
               "then": [{"add_tags": [tag]}]}
    for (team, group), (wait, strategy) in itertools.product(
            TEAMS.items(), [("15m", "least_loaded"), ("1h", "round_robin"), ("4h", "least_loaded")]):
        yield {"name": f"Assign {team} after {wait}",
               "when": {"all": [{"group": group}, {"assignee": {"is_empty": True}}, {"status": {"in": ["new", "open"]}},
                                {"since_created": {"over": wait}}]},
               "then": [{"assign": {"team": team, "strategy": strategy}}]}
    for (team, group), (label, priorities, wait) in itertools.product(TEAMS.items(), _PRIORITY_CLASSES):
        yield {"name": f"Unowned {label} in {team}",
               "when": {"all": [{"group": group}, {"assignee": {"is_empty": True}}, {"priority": {"in": priorities}},
                                {"status": {"not_in": ["pending", "on_hold"]}}, {"since_created": {"over": wait}}]},
               "then": [_notify(team, "warning", "Nobody owns #{{ id }} ({{ priority }}) after {{ since_created }}: "
                                                 "{{ subject }}")]}
    for wait in ("1h", "4h", "1d"):
        yield {"name": f"Unowned anywhere after {wait}",
               "when": {"all": [{"assignee": {"is_empty": True}}, {"status": {"in": ["new", "open"]}},
                                {"since_created": {"over": wait}}]},
               "then": [_notify("ticket", "warning", "#{{ id }} has no owner after {{ since_created }}",
                                channel="#support-triage")]}
    for target, percent in itertools.product(("first_reply", "next_reply", "resolution"), (50, 75, 90)):
        yield {"name": f"SLA {target} {percent}% used",
               "when": {"all": [{f"sla.{target}.running": True}, {f"sla.{target}.elapsed": {"at_least": percent}},
                                {f"sla.{target}.breached": False}]},
               "then": [_notify("ticket", "warning" if percent < 90 else "critical",
                                f"{target} due in {{{{ sla.{target}.remaining }}}} on #{{{{ id }}}}",
                                channel="#support-triage")]}
    for target, (label, priorities, _) in itertools.product(("first_reply", "next_reply", "resolution"),
                                                            _PRIORITY_CLASSES[:2]):
        yield {"name": f"SLA {target} breached ({label})",
               "when": {"all": [{"priority": {"in": priorities}}, {f"sla.{target}.breached": True}]},
               "then": [{"set_priority": "urgent"},
                        _notify("ticket", "critical", f"{target} breached on #{{{{ id }}}}", channel="#support-triage",
                                supervisors=True)]}
    for target, wait in itertools.product(("first_reply", "resolution"), ("1h", "4h", "1d")):
        yield {"name": f"SLA {target} breached over {wait}", "repeat": "4h",
               "when": {"all": [{f"sla.{target}.breached_for": {"over": wait}},
                                {"tags": {"lacks": "sla_acknowledged"}}]},
               "then": [_notify("escalations", "critical", f"#{{{{ id }}}} is {{{{ sla.{target}.breached_for }}}} "
                                                           f"past its {target} target", supervisors=True)]}
    for team, group in TEAMS.items():
        yield {"name": f"SLA first reply 75% in {team}",
               "when": {"all": [{"group": group}, {"sla.first_reply.elapsed": {"at_least": 75}},
                                {"sla.first_reply.breached": False}]},
               "then": [_notify(team, "warning", "First reply due soon on #{{ id }}")]}
    yield {"name": "VIP tag raises priority", "when": {"all": [{"tags": {"has": "vip"}},
                                                               {"priority": {"in": ["low", "normal"]}}]},
           "then": [{"set_priority": "high"}]}
    yield {"name": "VIP customer field raises priority",
           "when": {"all": [{"custom.vip": True}, {"priority": {"at_most": "normal"}}]},
           "then": [{"set_priority": "high"}]}
    yield {"name": "Outage is urgent",
           "when": {"all": [{"tags": {"has": "outage"}}, {"priority": {"under": "urgent"}}]},
           "then": [{"set_priority": "urgent"}]}
    for plan in ("enterprise", "pro"):
        yield {"name": f"{plan} plan never low",
               "when": {"all": [{"custom.plan": plan}, {"priority": "low"}]},
               "then": [{"set_priority": "normal"}]}
    for word in ("urgent", "asap", "immediately", "production", "down"):
        yield {"name": f"Subject says {word}",
               "when": {"all": [{"subject": {"contains": word}}, {"priority": {"in": ["low", "normal"]}},
                                {"status": {"in": ["new", "open"]}}]},
               "then": [{"set_priority": "high"}]}
    for region, plan in itertools.product(("emea", "amer", "apac"), ("free", "pro")):
        yield {"name": f"{plan} plan urgent in {region} flagged",  # flagged, not downgraded: SLA rules raise it
               "when": {"all": [{"custom.region": region}, {"custom.plan": plan}, {"priority": "urgent"},
                                {"tags": {"lacks": "outage"}}, {"tags": {"lacks": "plan_check"}}]},
               "then": [{"add_tags": ["plan_check"]},
                        {"add_note": "Urgent on the {{ custom.plan }} plan: check the priority."}]}
    for wait in ("2d", "3d", "5d", "7d"):
        yield {"name": f"Pending {wait} reminder", "repeat": "2d",
               "when": {"all": [{"status": "pending"}, {"since_updated": {"over": wait}}]},
               "then": [{"add_note": f"No reply from the customer for {{{{ since_updated }}}} (>{wait})."}]}
    for wait in ("3d", "7d", "14d"):
        yield {"name": f"On hold {wait}",
               "when": {"all": [{"status": "on_hold"}, {"since_status_change": {"over": wait}}]},
               "then": [_notify("ticket", "info", "#{{ id }} on hold for {{ since_status_change }}",
                                channel="#support-triage")]}
    for (team, group), wait in itertools.product(TEAMS.items(), ("1d", "2d")):
        yield {"name": f"No agent reply {wait} in {team}", "repeat": "1d",
               "when": {"all": [{"status": "open"}, {"group": group}, {"since_agent_reply": {"over": wait}}]},
               "then": [_notify(team, "info", "#{{ id }} ({{ assignee }}) waits {{ since_agent_reply }} for a reply")]}
    for (team, group), hours in itertools.product(TEAMS.items(), (8, 24, 72)):
        yield {"name": f"Open in {team} untouched {hours}h",
               "when": {"all": [{"status": "open"}, {"group": group}, {"hours_since_updated": {"gte": hours}},
                                {"hours_since_updated": {"lt": hours * 3}}]},
               "then": [_notify(team, "info", f"#{{{{ id }}}} untouched for {{{{ since_updated }}}} (>{hours}h)")]}
    for hours in (24, 48, 96):
        yield {"name": f"New for {hours}h",
               "when": {"all": [{"status": "new"}, {"hours_since_created": {"gt": hours}}]},
               "then": [_notify("ticket", "warning", f"#{{{{ id }}}} is still new after {hours}h",
                                channel="#support-triage")]}
    yield {"name": "Customer replied, nobody answered 4h",
           "when": {"all": [{"status": "open"}, {"hours_since_customer_reply": {"gt": 4}},
                            {"unanswered_for": {"over": "4h"}}]},
           "then": [_notify("ticket", "warning", "Customer on #{{ id }} waits {{ unanswered_for }}",
                            channel="#support-triage")]}
    for (team, group), (label, priorities, wait) in itertools.product(TEAMS.items(), _PRIORITY_CLASSES):
        yield {"name": f"Escalate {label} waiting in {team}",
               "when": {"all": [{"group": group}, {"priority": {"in": priorities}},
                                {"status": {"not_in": ["pending", "on_hold"]}}, {"unanswered_for": {"over": wait}},
                                {"tags": {"lacks": "bot_escalated"}}]},
               "then": [{"add_tags": ["bot_escalated"]},
                        {"add_note": "deskbot escalated this: the customer has waited {{ unanswered_for }}."},
                        _notify("escalations", "critical", "#{{ id }} from {{ requester }} waits {{ unanswered_for }}",
                                supervisors=True)]}
    for wait in ("15m", "30m", "1h"):
        yield {"name": f"Urgent unanswered {wait}",
               "when": {"all": [{"priority": "urgent"}, {"unanswered_for": {"over": wait}},
                                {"status": {"in": ["new", "open"]}}]},
               "then": [_notify("escalations", "critical", "Urgent #{{ id }} unanswered for {{ unanswered_for }}")]}
    for region, channel in itertools.product(("emea", "amer", "apac"), ("phone", "chat", "email")):
        yield {"name": f"New {channel} from {region}",
               "when": {"all": [{"status": "new"}, {"custom.region": region}, {"channel": channel}]},
               "then": [{"add_tags": [f"region_{region}"]}]}
    for team, group in TEAMS.items():
        yield {"name": f"Order number present in {team}",
               "when": {"all": [{"group": group}, {"custom.order_number": {"is_set": True}},
                                {"tags": {"lacks": "has_order"}}]},
               "then": [{"add_tags": ["has_order"]}]}
    for kind in ("incident", "problem", "question", "task"):
        yield {"name": f"{kind} without a group",
               "when": {"all": [{"type": kind}, {"group": {"is_empty": True}}, {"since_created": {"over": "30m"}}]},
               "then": [_notify("ticket", "info", f"Unrouted {kind} #{{{{ id }}}}", channel="#support-triage")]}
    yield {"name": "Enterprise from a free mailbox",
           "when": {"all": [{"custom.plan": "enterprise"},
                            {"requester_email": {"matches": "@(gmail|yahoo|outlook)\\."}}]},
           "then": [{"add_tags": ["check_identity"]}]}
    yield {"name": "Reply thread still new",
           "when": {"all": [{"status": "new"}, {"subject": {"matches": "^(re|fwd?):"}}]},
           "then": [{"add_tags": ["reply_thread"]}]}
    yield {"name": "Thank-you on open ticket",
           "when": {"all": [{"status": "open"}, {"description": {"contains": "thank"}},
                            {"since_customer_reply": {"over": "2d"}}]},
           "then": [{"set_status": "solved"}]}
    for word in ("lawyer", "legal", "subpoena", "court", "chargeback", "fraud"):
        yield {"name": f"Legal word {word}", "when": {"any": [{"subject": {"contains": word}},
                                                               {"description": {"contains": word}}]},
               "then": [{"add_tags": ["legal_review"]},
                        _notify("escalations", "warning", "Legal wording on #{{ id }}")]}
    for team, group in TEAMS.items():
        yield {"name": f"Complaint in {team}",
               "when": {"all": [{"group": group}, {"tags": {"has_any": ["complaint", "legal"]}},
                                {"tags": {"lacks": "bot_escalated"}}]},
               "then": [{"add_tags": ["bot_escalated"]}, _notify("escalations", "critical", "Complaint #{{ id }}")]}


def uses_sla(rule: dict[str, Any]) -> bool:
    """True for a rule whose condition reads an SLA clock."""
    return "'sla." in repr(rule["when"])


def rules_document(queue: seed.Queue, n: int = 200, *, without_sla: bool = False) -> dict[str, Any]:
    """The rules file as data: settings, calendars, SLA policies, teams from the queue, and n rules.

    `without_sla` drops the SLA rules from the same n (to show what the SLA clocks cost).
    """
    rules = list(itertools.islice(_rules(), n))
    if len(rules) < n:
        raise ValueError(f"the generator knows {len(rules)} rules, fewer than {n}")
    if without_sla:
        rules = [rule for rule in rules if not uses_sla(rule)]
    teams = {}
    for team, group_name in TEAMS.items():
        group = queue.group_named(group_name)
        teams[team] = {"group": group_name, "members": [a.email for a in queue.members(group.id)],
                       "slack_channel": f"#support-{team}", "supervisors": [f"@{team}-leads"],
                       "timezone": "Europe/London"}
    return {
        "version": 1, "mode": "live",
        "calendars": {"london_office": {"timezone": "Europe/London", "hours": {"weekdays": "08:00-18:00"},
                                        "holidays": {"country": "GB", "subdivision": "ENG"}}},
        "sla_policies": [
            {"name": "Urgent and high, around the clock", "applies_to": {"priorities": ["urgent", "high"]},
             "pause_when": ["pending", "on_hold"],
             "targets": {"first_reply": {"urgent": "30m", "high": "2h", "business_hours": False},
                         "next_reply": {"urgent": "1h", "high": "4h", "business_hours": False},
                         "resolution": {"urgent": "8h", "high": "2d", "business_hours": False}}},
            {"name": "Everything else, office hours", "calendar": "london_office", "pause_when": ["pending", "on_hold"],
             "targets": {"first_reply": {"normal": "4h", "low": "8h"}, "next_reply": {"normal": "8h", "low": "1d"},
                         "resolution": {"normal": "3d", "low": "5d"}}},
        ],
        "teams": teams,
        "rules": rules,
    }  # fmt: skip


def rules_yaml(queue: seed.Queue, n: int = 200, *, without_sla: bool = False) -> str:
    """The rules file as YAML text, ready for `load_config_text`."""
    return yaml.safe_dump(rules_document(queue, n, without_sla=without_sla), sort_keys=False, width=120,
                          allow_unicode=True)
