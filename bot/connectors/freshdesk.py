"""The Freshdesk connector: change feed, re-reads, directory and writes over plain `requests`.

    connector = FreshdeskConnector.from_env()        # FRESHDESK_DOMAIN, FRESHDESK_API_KEY[, FRESHDESK_URL]
    for page in connector.fetch_changes(cursor): ...  # ChangePage(tickets, cursor, end_of_stream)

The feed lists tickets `order_by=updated_at&order_type=asc` from the saved
watermark (see `freshdesk_cursor`) with the includes that fill a `Ticket` in
the same call. It is keyset-paginated: after each page that moved the
watermark the window restarts from it (page 1), so a ticket edited during a
long walk cannot shift out of an offset page unseen and the 300-page wall is
never reached; the `Link` header is followed only while a burst of tickets
sharing one second does not fit in a page. Mapping is `freshdesk_mapping`,
writes `freshdesk_apply`, HTTP `freshdesk_http`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from bot.connectors.base import ApplyResult, CallCounter, ChangePage, TicketChange
from bot.connectors.freshdesk_apply import Baselines, FreshdeskWriter
from bot.connectors.freshdesk_cursor import Watermark
from bot.connectors.freshdesk_http import FreshdeskHttp
from bot.connectors.freshdesk_mapping import PLATFORM, TicketFields, format_time, parse_time, to_ticket
from bot.errors import ConnectorError, NotFound
from bot.model import Agent, Directory, Group, Ticket
from bot.retry import RateBudget, RetryPolicy

DEFAULT_INCLUDES = ("stats", "requester", "description", "company")
VIEW_INCLUDES = ("stats", "requester", "company")  # a single view always carries the description
BACKFILL_SINCE = datetime(2000, 1, 1, tzinfo=UTC)
PAGE_WALL = 300  # Freshdesk answers 400 past page 300 of a list
_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def base_url_from_env(environ: Mapping[str, str]) -> str:
    """`FRESHDESK_URL`, else `https://{FRESHDESK_DOMAIN}.freshdesk.com` (the domain may be given in full)."""
    url = (environ.get("FRESHDESK_URL") or "").strip()
    if url:
        if not url.startswith(("http://", "https://")):
            raise ConnectorError(f"FRESHDESK_URL must start with http:// or https://, got {url!r}",
                                 platform=PLATFORM)
        return url.rstrip("/")
    domain = (environ.get("FRESHDESK_DOMAIN") or "").strip().lower()
    domain = domain.removeprefix("https://").removeprefix("http://").rstrip("/").removesuffix(".freshdesk.com")
    if not domain:
        raise ConnectorError("FRESHDESK_DOMAIN is not set: export the account name, e.g. FRESHDESK_DOMAIN=acme "
                             "for https://acme.freshdesk.com", platform=PLATFORM)
    if not _DOMAIN.match(domain):
        raise ConnectorError(f"FRESHDESK_DOMAIN {domain!r} is not a Freshdesk account name: use the part "
                             "before .freshdesk.com (custom domains do not serve the API)", platform=PLATFORM)
    return f"https://{domain}.freshdesk.com"


class FreshdeskConnector:
    """`bot.connectors.base.Connector` for Freshdesk API v2."""

    platform = PLATFORM
    # The list serves every change made before the request; `lookback` re-asks for ties within one second
    # of the watermark (one-second timestamps), which is no horizon: a sync is complete up to its start.
    feed_lag = timedelta(0)

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        per_page: int = 100,
        includes: Sequence[str] = DEFAULT_INCLUDES,
        lookback: timedelta = timedelta(seconds=1),
        backfill_since: datetime = BACKFILL_SINCE,
        page_wall: int = PAGE_WALL,
        directory_ttl: timedelta = timedelta(hours=1),
        human_share: float = 0.5,
        limit_per_minute: int = 50,
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not api_key:
            raise ConnectorError("FRESHDESK_API_KEY is not set: copy it from Freshdesk (your avatar > Profile "
                                 "settings > View API key) and export it", platform=PLATFORM)
        if not 1 <= per_page <= 100:
            raise ValueError("per_page must be between 1 and 100 (Freshdesk's maximum)")
        self.calls = CallCounter()
        budget = budget or RateBudget(limit_per_minute, share=1 - human_share)
        self.http = FreshdeskHttp(base_url, api_key, timeout=timeout, retry=retry, budget=budget,
                                  calls=self.calls, session=session)
        # Each include costs a credit more; start from that until X-Ratelimit-Used-CurrentRequest says otherwise.
        self.http.costs.update({"tickets_list": 1 + len(includes), "ticket_show": 1 + len(VIEW_INCLUDES)})
        self.per_page, self.includes, self.lookback = per_page, tuple(includes), lookback
        self.backfill_since, self.page_wall = backfill_since, page_wall
        self.directory_ttl, self.clock = directory_ttl, clock
        self._directory: Directory | None = None
        self._fields = TicketFields()
        self._loaded_at: float | None = None
        self.baselines = Baselines()
        self.writer = FreshdeskWriter(self.http, lambda: self._fields, self._map, self.baselines,
                                      {"include": ",".join(VIEW_INCLUDES)})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> FreshdeskConnector:
        """Credentials from the environment only: FRESHDESK_DOMAIN (or FRESHDESK_URL) and FRESHDESK_API_KEY."""
        environ = os.environ if environ is None else environ
        return cls(base_url_from_env(environ), (environ.get("FRESHDESK_API_KEY") or "").strip(), **options)

    def __repr__(self) -> str:
        return f"FreshdeskConnector(base_url={self.http.base_url!r}, api_key=<redacted>)"

    @property
    def budget(self) -> RateBudget:
        """The per-minute budget shared by every call of this connector."""
        return self.http.budget

    # -- directory ------------------------------------------------------------------------------------

    def directory(self, *, refresh: bool = False) -> Directory:
        """Agents (with availability), groups with members, and custom statuses; re-read every `directory_ttl`."""
        stale = self._loaded_at is None or self.clock() - self._loaded_at >= self.directory_ttl.total_seconds()
        if refresh or stale or self._directory is None:
            self._directory, self._fields = self._load_directory()
            self._loaded_at = self.clock()
        return self._directory

    def ticket_fields(self) -> TicketFields:
        """The account's custom statuses, loaded with the directory."""
        self.directory()
        return self._fields

    def _load_directory(self) -> tuple[Directory, TicketFields]:
        fields = TicketFields.from_payload(self.http.get_json("ticket_fields", "/api/v2/ticket_fields"))
        agents_raw = self.http.paginate("agents_list", "/api/v2/agents", {"per_page": 100})
        groups_raw = self.http.paginate("groups_list", "/api/v2/groups", {"per_page": 100})
        members: dict[int, set[int]] = {}
        for group in groups_raw:
            if "agent_ids" in group and group["agent_ids"] is not None:
                ids = group["agent_ids"]
            else:  # absent from list answers: ask per group
                ids = self.http.paginate("group_agents", f"/api/v2/admin/groups/{group['id']}/agents",
                                         {"per_page": 100})
            members[int(group["id"])] = {_agent_id(item) for item in ids if _agent_id(item) is not None}
        groups = tuple(Group(PLATFORM, int(g["id"]), str(g.get("name") or g["id"]),
                             frozenset(members[int(g["id"])])) for g in groups_raw)
        agents = []
        for raw in agents_raw:
            contact = raw.get("contact") or {}
            agent_id = int(raw["id"])
            group_ids = {int(i) for i in raw.get("group_ids") or ()}
            group_ids |= {gid for gid, ids in members.items() if agent_id in ids}
            agents.append(Agent(PLATFORM, agent_id, str(contact.get("name") or agent_id), contact.get("email"),
                                frozenset(group_ids), bool(contact.get("active", True)),
                                raw.get("available") if isinstance(raw.get("available"), bool) else None))
        return Directory(tuple(agents), groups), fields

    # -- reads ----------------------------------------------------------------------------------------

    def _map(self, raw: Mapping[str, Any]) -> Ticket:
        return to_ticket(raw, self._directory or Directory(), fields=self._fields, base_url=self.http.base_url)

    def _list_params(self, since: datetime) -> dict[str, Any]:
        params = {"updated_since": format_time(since), "order_by": "updated_at", "order_type": "asc",
                  "per_page": self.per_page, "page": 1}
        if self.includes:
            params["include"] = ",".join(self.includes)
        return params

    def fetch_changes(self, cursor: str | None, *, backfill_all: bool = False) -> Iterator[ChangePage]:
        """Pages of tickets changed since `cursor`; the first run (None) yields unresolved tickets only.

        Every page carries the cursor to persist after handling it; the last
        one has `end_of_stream=True`. A backfill that stops midway resumes
        from its cursor and keeps filtering resolved tickets.
        """
        mark = Watermark.decode(cursor) if cursor else Watermark(open_only=not backfill_all)
        self.directory()
        target, params = "/api/v2/tickets", self._list_params(mark.since(self.lookback) or self.backfill_since)
        page_number = 1
        while True:
            response = self.http.request("tickets_list", "GET", target, params=params)
            items = [raw for raw in response.json() if isinstance(raw, Mapping)]
            fresh, versions = [], []
            for raw in items:
                updated = parse_time(raw.get("updated_at"))
                if updated is None or not mark.is_new(int(raw["id"]), updated, self.lookback):
                    continue
                versions.append((int(raw["id"]), updated))
                self.baselines.seen(raw)
                ticket = self._map(raw)
                if not (mark.open_only and ticket.status.is_resolved):
                    fresh.append(ticket)
            previous_at = mark.at
            mark = mark.advance(versions, self.lookback)
            next_url = self.http.next_link(response)
            if next_url is None:
                yield ChangePage(tuple(fresh), mark.finished_backfill().encode(), True)
                return
            yield ChangePage(tuple(fresh), mark.encode(), False)
            moved = mark.at is not None and (previous_at is None or mark.at > previous_at)
            crowded = len(mark.seen) >= max(1, self.per_page // 2)
            if moved and (not crowded or page_number + 1 > self.page_wall):
                # Keyset restart: cheap when few tickets share the last second, required near the wall.
                target, params = "/api/v2/tickets", self._list_params(mark.since(self.lookback) or self.backfill_since)
                page_number = 1
                continue
            page_number = _page_of(next_url, page_number + 1)
            if page_number > self.page_wall:
                raise ConnectorError(
                    f"more than {self.page_wall * self.per_page} Freshdesk tickets were updated within "
                    f"{self.lookback.total_seconds():g}s of {format_time(mark.at or self.backfill_since)} "
                    f"(a bulk update?) and the list API stops at page {self.page_wall}; re-read those tickets "
                    "by id (get_tickets), or lower `lookback`", platform=PLATFORM)
            target, params = next_url, None

    def get_tickets(self, ids: Sequence[int]) -> list[Ticket]:
        """Fresh copies, one GET per id (Freshdesk has no show_many); missing, deleted or spam ones are left out."""
        self.directory()
        tickets = []
        for ticket_id in dict.fromkeys(ids):
            try:
                raw = self.http.get_json("ticket_show", f"/api/v2/tickets/{int(ticket_id)}",
                                         {"include": ",".join(VIEW_INCLUDES)})
            except NotFound:
                continue
            if raw.get("deleted") or raw.get("spam"):
                continue  # in the trash or the spam folder: gone for deskbot, as the list API hides them
            self.baselines.seen(raw)
            tickets.append(self._map(raw))
        return tickets

    # -- writes ---------------------------------------------------------------------------------------

    def has_note(self, ticket_id: int, key: str) -> bool:
        """Whether the ticket shows the private note of this action key (the executor's crash recovery)."""
        return self.writer.has_note(int(ticket_id), key=key)

    def apply(self, changes: Sequence[TicketChange]) -> list[ApplyResult]:
        """Perform the changes one ticket at a time (see `freshdesk_apply`); one result per change."""
        self.directory()
        return self.writer.apply(changes)


def _agent_id(item: Any) -> int | None:
    """An agent id from a membership listing: a bare id or an agent record."""
    value = item.get("id", item.get("agent_id")) if isinstance(item, Mapping) else item
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _page_of(url: str, default: int) -> int:
    """The `page` number of a Link URL (for the 300-page wall)."""
    try:
        return int(parse_qs(urlsplit(url).query).get("page", [default])[0])
    except ValueError:
        return default
