"""A deterministic, platform-neutral support queue for the sandboxes, the demo and tests.

`generate(seed=7, tickets=120, now=...)` builds groups, agents with group
memberships, organizations, requesters and tickets with realistic subjects,
tags, ages, priorities, statuses, types, channels, comments and custom fields.
The same seed and `now` always give the same queue, so tests can name tickets.
Values use deskbot's neutral vocabulary (`bot.model.Status`/`Priority` values,
lowercase channels and types); each fake helpdesk maps them to its own shapes.
`Queue.to_json()` / `load(path)` round-trip a queue through a JSON file, so a
demo can ship a hand-edited queue.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)

STATUSES = ("new", "open", "pending", "on_hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
TYPES = ("question", "incident", "problem", "task")
CHANNELS = ("email", "web", "chat", "phone", "api")


@dataclass
class SeedGroup:
    """A team queue."""

    id: int
    name: str
    description: str = ""


@dataclass
class SeedAgent:
    """An agent and the groups they belong to (the first is their default group)."""

    id: int
    name: str
    email: str
    group_ids: list[int] = field(default_factory=list)
    active: bool = True
    available: bool = True
    role: str = "agent"


@dataclass
class SeedOrganization:
    """A customer company."""

    id: int
    name: str
    domain: str
    tags: list[str] = field(default_factory=list)


@dataclass
class SeedRequester:
    """A customer who writes in."""

    id: int
    name: str
    email: str
    organization_id: int | None = None


@dataclass
class SeedCustomField:
    """A ticket field the account added; `key` is the neutral name, `title` what humans see."""

    id: int
    key: str
    title: str
    type: str  # text | dropdown | checkbox | integer
    options: list[str] = field(default_factory=list)


@dataclass
class SeedComment:
    """One message on a ticket; `author` is `customer` or `agent`."""

    author: str
    author_id: int
    body: str
    created_at: datetime
    public: bool = True


@dataclass
class SeedTicket:
    """A ticket in neutral vocabulary; `custom` is keyed by `SeedCustomField.key`."""

    id: int
    subject: str
    description: str
    status: str
    priority: str | None
    type: str | None
    channel: str
    requester_id: int
    created_at: datetime
    updated_at: datetime
    group_id: int | None = None
    assignee_id: int | None = None
    organization_id: int | None = None
    tags: list[str] = field(default_factory=list)
    custom: dict[str, Any] = field(default_factory=dict)
    comments: list[SeedComment] = field(default_factory=list)
    assigned_at: datetime | None = None
    first_responded_at: datetime | None = None
    last_customer_update_at: datetime | None = None
    last_agent_update_at: datetime | None = None
    status_changed_at: datetime | None = None
    solved_at: datetime | None = None


@dataclass
class Queue:
    """Everything a fake helpdesk needs to look like a busy account."""

    now: datetime
    groups: list[SeedGroup] = field(default_factory=list)
    agents: list[SeedAgent] = field(default_factory=list)
    organizations: list[SeedOrganization] = field(default_factory=list)
    requesters: list[SeedRequester] = field(default_factory=list)
    custom_fields: list[SeedCustomField] = field(default_factory=list)
    tickets: list[SeedTicket] = field(default_factory=list)

    def to_json(self) -> str:
        """The queue as JSON (ISO 8601 UTC timestamps), loadable with `from_json`."""
        return json.dumps(asdict(self), default=_encode, indent=1)

    def dump(self, path: str | Path) -> None:
        """Write the queue to a JSON file."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_json(cls, text: str) -> Queue:
        """Parse a queue written by `to_json` (or by hand; missing keys take defaults)."""
        data = json.loads(text)
        return cls(
            now=_parse_time(data.get("now")) or DEFAULT_NOW,
            groups=[_build(SeedGroup, g) for g in data.get("groups", [])],
            agents=[_build(SeedAgent, a) for a in data.get("agents", [])],
            organizations=[_build(SeedOrganization, o) for o in data.get("organizations", [])],
            requesters=[_build(SeedRequester, r) for r in data.get("requesters", [])],
            custom_fields=[_build(SeedCustomField, f) for f in data.get("custom_fields", [])],
            tickets=[_build_ticket(t) for t in data.get("tickets", [])],
        )

    def group_named(self, name: str) -> SeedGroup:
        """The group with this name (KeyError if absent)."""
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(name)

    def members(self, group_id: int) -> list[SeedAgent]:
        """Active agents of a group."""
        return [a for a in self.agents if group_id in a.group_ids and a.active]


def load(path: str | Path) -> Queue:
    """Read a queue from a JSON file written by `Queue.dump` (or by hand)."""
    return Queue.from_json(Path(path).read_text(encoding="utf-8"))


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise TypeError(f"cannot encode {type(value).__name__}")


def _parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _build(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}; known: {sorted(known)}")
    return cls(**data)


_TICKET_TIMES = ("created_at", "updated_at", "assigned_at", "first_responded_at", "last_customer_update_at",
                 "last_agent_update_at", "status_changed_at", "solved_at")


def _build_ticket(data: dict[str, Any]) -> SeedTicket:
    data = dict(data)
    for name in _TICKET_TIMES:
        if name in data:
            data[name] = _parse_time(data[name])
    comments = [
        SeedComment(**{**c, "created_at": _parse_time(c.get("created_at"))}) for c in data.pop("comments", [])
    ]
    ticket = _build(SeedTicket, data)
    ticket.comments = comments
    return ticket


# --- the generator ---------------------------------------------------------------------------------------

_GROUPS = (
    ("Billing", "Invoices, refunds, payment methods", ("billing",)),
    ("Technical", "Bugs, outages, integrations", ("technical",)),
    ("Accounts", "Logins, access, profile changes", ("accounts",)),
    ("Escalations", "Tier 2: VIPs and breached SLAs", ("escalation",)),
)

_SUBJECTS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "Billing": (
        ("Refund not received for order {order}", ("refund",)),
        ("Charged twice this month", ("double_charge", "refund")),
        ("Invoice {invoice} shows the wrong VAT number", ("invoice",)),
        ("Please update our credit card", ("payment_method",)),
        ("Why did my plan price go up?", ("pricing",)),
        ("Cancel my subscription and refund the remainder", ("cancellation", "refund")),
    ),
    "Technical": (
        ("Dashboard shows 500 error since this morning", ("outage", "bug")),
        ("API returns 429 even though we are under the limit", ("api", "rate_limit")),
        ("Webhook deliveries stopped for {company}", ("webhooks", "integration")),
        ("CSV export is missing the last column", ("export", "bug")),
        ("Mobile app crashes on login (iOS 17)", ("mobile", "bug")),
        ("Slack integration posts duplicate messages", ("integration", "slack")),
        ("Everything is down for our whole team!!", ("outage",)),
    ),
    "Accounts": (
        ("Cannot reset my password", ("password_reset",)),
        ("Please add {name} as an admin", ("access",)),
        ("SSO login loops back to the sign-in page", ("sso",)),
        ("Change the account owner email", ("account_change",)),
        ("Two-factor codes are not arriving", ("2fa",)),
        ("Delete my personal data (GDPR request)", ("gdpr", "privacy")),
    ),
    "Escalations": (
        ("URGENT: production outage for {company}", ("outage", "vip")),
        ("Complaint: no answer for three days", ("complaint",)),
        ("Legal hold request for account {order}", ("legal",)),
    ),
}

_FIRST = ("Ana", "Ben", "Chloé", "Dmitri", "Emeka", "Fatima", "Georg", "Hana", "Ivan", "Jun", "Kofi", "Lea",
          "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yara")
_LAST = ("Almeida", "Brooks", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Haddad", "Ito", "Jensen",
         "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Patel", "Rossi", "Schmidt", "Tanaka",
         "Weber")
_COMPANIES = (("Acme Corp", "acme.example"), ("Globex", "globex.example"), ("Initech", "initech.example"),
              ("Umbrella Health", "umbrella.example"), ("Stark Logistics", "stark.example"),
              ("Wayne Retail", "wayne.example"), ("Hooli", "hooli.example"),
              ("Soylent Foods", "soylent.example"))
_VIP_ORGS = 2  # the first organizations are VIP customers

_CUSTOM_FIELDS = (
    ("order_number", "Order number", "text", ()),
    ("plan", "Plan", "dropdown", ("free", "pro", "enterprise")),
    ("region", "Region", "dropdown", ("emea", "amer", "apac")),
    ("vip", "VIP customer", "checkbox", ()),
)

# status mix of a live queue: mostly open work, some waiting, a tail of solved history
_STATUS_WEIGHTS = (("new", 14), ("open", 38), ("pending", 16), ("on_hold", 6), ("solved", 18), ("closed", 8))
_PRIORITY_WEIGHTS = ((None, 10), ("low", 15), ("normal", 45), ("high", 22), ("urgent", 8))
_CHANNEL_WEIGHTS = (("email", 50), ("web", 25), ("chat", 12), ("phone", 8), ("api", 5))
_TYPE_WEIGHTS = ((None, 15), ("question", 45), ("incident", 25), ("problem", 8), ("task", 7))


def generate(
    seed: int = 7,
    *,
    tickets: int = 120,
    now: datetime = DEFAULT_NOW,
    agents_per_group: int = 3,
    max_age: timedelta = timedelta(days=21),
    first_id: int = 1,
) -> Queue:
    """A realistic queue, identical for identical arguments (seeded `random.Random`)."""
    rng = random.Random(seed)
    now = now.astimezone(UTC).replace(microsecond=0)
    queue = Queue(now=now)
    for index, (name, description, _tags) in enumerate(_GROUPS):
        queue.groups.append(SeedGroup(id=100 + index + 1, name=name, description=description))
    _add_agents(queue, rng, agents_per_group)
    for index, (name, domain) in enumerate(_COMPANIES):
        tags = ["vip"] if index < _VIP_ORGS else []
        queue.organizations.append(SeedOrganization(id=500 + index + 1, name=name, domain=domain, tags=tags))
    for index in range(max(8, tickets // 3)):
        org = rng.choice([*queue.organizations, None])  # some customers have no company
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        domain = org.domain if org else "mail.example"
        email = f"{first.lower()}.{last.lower()}{index}@{domain}".encode("ascii", "ignore").decode()
        queue.requesters.append(SeedRequester(id=1000 + index + 1, name=f"{first} {last}", email=email,
                                              organization_id=org.id if org else None))
    for index, (key, title, kind, options) in enumerate(_CUSTOM_FIELDS):
        queue.custom_fields.append(SeedCustomField(id=360000 + index + 1, key=key, title=title, type=kind,
                                                   options=list(options)))
    for number in range(tickets):
        queue.tickets.append(_make_ticket(queue, rng, first_id + number, max_age))
    return queue


def _add_agents(queue: Queue, rng: random.Random, per_group: int) -> None:
    used: set[str] = set()
    next_id = 200
    for group in queue.groups:
        for _ in range(per_group):
            while True:
                name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
                if name not in used:
                    used.add(name)
                    break
            next_id += 1
            email = name.lower().replace(" ", ".").encode("ascii", "ignore").decode() + "@support.example"
            queue.agents.append(SeedAgent(id=next_id, name=name, email=email, group_ids=[group.id]))
    if per_group < 2:
        return  # too few people for the seniors, the holiday and the leaver below
    # Escalations is staffed by senior agents from the other teams, as in real desks.
    escalations = queue.groups[-1].id
    for index in range(len(queue.groups) - 1):
        queue.agents[index * per_group].group_ids.append(escalations)
    queue.agents[1].available = False  # someone is always on holiday
    queue.agents[-1].active = False  # and someone left


def _pick(rng: random.Random, weighted: tuple[tuple[Any, int], ...]) -> Any:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights=weights, k=1)[0]


def _make_ticket(queue: Queue, rng: random.Random, ticket_id: int, max_age: timedelta) -> SeedTicket:
    group = rng.choice(queue.groups)
    template, subject_tags = rng.choice(_SUBJECTS[group.name])
    requester = rng.choice(queue.requesters)
    org = next((o for o in queue.organizations if o.id == requester.organization_id), None)
    subject = template.format(order=f"A-{rng.randint(1000, 9999)}",
                              invoice=f"INV-{rng.randint(10000, 99999)}",
                              company=org.name if org else "our team", name=rng.choice(_FIRST))
    status = _pick(rng, _STATUS_WEIGHTS)
    # ages skew young: most tickets are hours or days old, a few are weeks old
    age = timedelta(seconds=int(max_age.total_seconds() * rng.random() ** 2) + 300)
    created = queue.now - age
    members = queue.members(group.id)
    assignee = None
    if status != "new" and members and rng.random() < 0.8:
        assignee = rng.choice(members)
    tags = sorted(set(subject_tags) | ({"vip"} if org and "vip" in org.tags else set()))
    priority = _pick(rng, _PRIORITY_WEIGHTS)
    if "outage" in tags and priority in (None, "low", "normal"):
        priority = "high"
    ticket = SeedTicket(
        id=ticket_id, subject=subject, description=_description(subject, requester.name), status=status,
        priority=priority, type=_pick(rng, _TYPE_WEIGHTS), channel=_pick(rng, _CHANNEL_WEIGHTS),
        requester_id=requester.id, organization_id=org.id if org else None, created_at=created,
        updated_at=created, group_id=group.id if status != "new" or rng.random() < 0.5 else None,
        assignee_id=assignee.id if assignee else None, tags=tags,
    )
    ticket.custom = _custom_values(rng, org, ticket)
    _add_history(ticket, rng, queue.now, requester, assignee)
    return ticket


def _description(subject: str, requester: str) -> str:
    return f"Hello,\n\n{subject}. Could you please look into this?\n\nThanks,\n{requester}"


def _custom_values(rng: random.Random, org: SeedOrganization | None, ticket: SeedTicket) -> dict[str, Any]:
    vip = bool(org and "vip" in org.tags)
    values: dict[str, Any] = {
        "plan": "enterprise" if vip else rng.choice(("free", "pro", "pro", "enterprise")),
        "region": rng.choice(("emea", "emea", "amer", "apac")),
        "vip": vip,
    }
    if {"refund", "invoice", "double_charge"} & set(ticket.tags):
        values["order_number"] = f"A-{rng.randint(1000, 9999)}"
    return values


def _add_history(ticket: SeedTicket, rng: random.Random, now: datetime, requester: SeedRequester,
                 assignee: SeedAgent | None) -> None:
    """Comments and the derived timestamps, consistent with the status."""
    created = ticket.created_at
    ticket.comments.append(SeedComment("customer", requester.id, ticket.description, created))
    ticket.last_customer_update_at = created
    span = max(60, int((now - created).total_seconds()))
    moment = created
    if assignee:
        moment = created + timedelta(seconds=rng.randint(30, max(31, span // 6)))
        ticket.assigned_at = moment
    answered = ticket.status in ("pending", "on_hold", "solved", "closed") or (
        ticket.status == "open" and rng.random() < 0.5)
    if answered and assignee:
        moment = moment + timedelta(seconds=rng.randint(60, max(61, span // 4)))
        reply = "Thanks for reaching out, we are on it."
        ticket.comments.append(SeedComment("agent", assignee.id, reply, moment))
        ticket.first_responded_at = ticket.last_agent_update_at = moment
        if ticket.status == "open" and rng.random() < 0.6:  # the customer answered back
            moment = moment + timedelta(seconds=rng.randint(60, max(61, span // 4)))
            ticket.comments.append(SeedComment("customer", requester.id, "Any update on this?", moment))
            ticket.last_customer_update_at = moment
        if ticket.status == "on_hold":
            note = SeedComment("agent", assignee.id, "Waiting on engineering.", moment, public=False)
            ticket.comments.append(note)
    elif ticket.status in ("pending", "on_hold", "solved", "closed"):
        ticket.status = "open"  # nobody answered, so it cannot be waiting on the customer
    if ticket.status in ("solved", "closed"):
        moment = moment + timedelta(seconds=rng.randint(60, max(61, span // 4)))
        ticket.solved_at = moment
    ticket.status_changed_at = moment
    ticket.updated_at = min(moment, now)
