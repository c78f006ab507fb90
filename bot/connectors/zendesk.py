"""Zendesk, as the runner sees it: changes in, tickets re-read, directory cached, writes in bulk.

Reads use the cursor-based incremental ticket export with sideloads, so one
call per 1000 changed tickets fills whole `Ticket`s; the cursor is yielded with
every page for the caller to persist. The first run (no cursor) loads the open
tickets only (search export, then `show_many` for the sideloads) and continues
with the export from shortly before it started. Writes live in
`zendesk_writes`, HTTP and credentials in `zendesk_http`, payload mapping in
`zendesk_mapping`. Every call goes through the real zenpy client and our
`ZendeskSession`; `RetryPolicy` alone decides about retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from bot.connectors.base import ApplyResult, CallCounter, ChangePage, TicketChange
from bot.connectors.zendesk_http import (
    PLATFORM,
    ZendeskConfig,
    ZendeskSession,
    build_client,
)
from bot.connectors.zendesk_mapping import Sideloads, field_keys, to_directory, to_ticket
from bot.connectors.zendesk_writes import ZendeskWriter
from bot.errors import ConnectorError, InvalidRequest, PermissionDenied, RateLimited, Unavailable
from bot.model import Directory, Ticket
from bot.retry import RateBudget, RetryPolicy

log = logging.getLogger("bot.connectors.zendesk")

T = TypeVar("T")
SHOW_MANY_LIMIT = 100
TIME_CURSOR = "time:"  # our own resume point when Zendesk gave no cursor yet; base64 never has ':'


class _NotRetryable(Exception):
    """Carries a transient error out of RetryPolicy when repeating the call could duplicate an effect."""

    def __init__(self, error: ConnectorError):
        self.error = error


class ZendeskConnector:
    """The `Connector` for Zendesk Support, built on zenpy 2.0.57."""

    platform = PLATFORM
    # The incremental export hides the last minute of changes, whatever the account (a sandbox may not):
    # a reply in that minute is not in the mirror yet, so alerts wait until the feed covers them.
    feed_lag = timedelta(minutes=1)

    def __init__(
        self,
        config: ZendeskConfig,
        *,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        export_budget: RateBudget | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.calls = CallCounter()
        self.clock = clock
        self.sleep = sleep
        self.retry = retry or RetryPolicy(sleep=sleep)
        self.budget = budget or RateBudget(config.rate_limit_per_minute, config.budget_share, clock=monotonic,
                                           sleep=sleep)
        self.export_budget = export_budget or RateBudget(config.export_per_minute, 1.0, clock=monotonic,
                                                         sleep=sleep)
        self.session = ZendeskSession(config, self.budget, self.export_budget, self.calls.add)
        self.client = build_client(config, self.session)
        self._directory: Directory | None = None
        self._directory_read_at: datetime | None = None
        self._field_keys: dict[int, str] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> ZendeskConnector:
        """A connector configured from ZENDESK_* environment variables."""
        return cls(ZendeskConfig.from_env(env), **kwargs)

    def __repr__(self) -> str:
        auth = "oauth_token" if self.config.oauth_token else f"api_token of {self.config.email}"
        return f"ZendeskConnector({self.config.base_url}, auth={auth})"

    # --- plumbing ------------------------------------------------------------------------------------

    def call(self, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run one zenpy call under the RetryPolicy; a write that could repeat an effect retries only 429s."""

        def attempt() -> T:
            try:
                return fn()
            except Unavailable as error:
                if idempotent or isinstance(error, RateLimited):  # a 429 was refused, so nothing happened
                    raise
                raise _NotRetryable(error) from error

        try:
            return self.retry.call(attempt, on_retry=self._log_retry)
        except _NotRetryable as wrapper:
            raise wrapper.error from None

    def _log_retry(self, attempt: int, error: Exception, wait: float) -> None:
        log.warning("%s; waiting %.2fs before attempt %d of %d", error, wait, attempt + 1, self.retry.attempts)

    def get_json(self, url: str) -> Mapping[str, Any]:
        """GET a URL through zenpy's request path and return the raw JSON (mapping is ours, not zenpy's)."""
        # zenpy's own paginators fetch pages with `api._get(url, raw_response=True)`; we do the same to keep
        # every key of the payload (zenpy objects drop and rename some) without deserialising it twice.
        def fetch() -> Mapping[str, Any]:
            self.client.tickets._get(url, raw_response=True)
            return self.session.last_json or {}  # already decoded once by our session

        return self.call(fetch)

    def api_url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """An absolute API URL with properly encoded parameters (zenpy leaves cursors unencoded)."""
        query = urlencode(params or {}, safe=",[]", quote_via=quote)
        return f"{self.config.base_url}/api/v2/{path}" + (f"?{query}" if query else "")

    def sideloads(self, page: Mapping[str, Any]) -> Sideloads:
        """The page's sideloads plus account facts (custom field names, cached agent/group names)."""
        return Sideloads.from_page(page, field_keys=self._field_keys, agent_url=self.config.agent_url,
                                   directory=self._directory)

    # --- reads -----------------------------------------------------------------------------------------

    def fetch_changes(self, cursor: str | None, *, backfill_all: bool = False) -> Iterator[ChangePage]:
        """Pages of changed tickets since `cursor`; without one, open tickets first (or all with backfill_all)."""
        self.directory()  # names for custom fields and agents, read once per TTL
        seen: dict[int, tuple[int, str]] = {}
        if cursor and not cursor.startswith(TIME_CURSOR):
            yield from self._export(seen, cursor=cursor)
            return
        if cursor:
            yield from self._export(seen, start_time=int(cursor.removeprefix(TIME_CURSOR)))
            return
        if backfill_all:
            yield from self._export(seen, start_time=0)
            return
        started = self.clock()
        yield from self._backfill_open(seen)
        # Search lags behind writes; the export from a little before the backfill catches what it missed.
        yield from self._export(seen, start_time=int((started - self.config.backfill_overlap).timestamp()))

    def _export(self, seen: dict[int, tuple[int, str]], *, cursor: str | None = None,
                start_time: int | None = None) -> Iterator[ChangePage]:
        params: dict[str, Any] = {"per_page": self.config.per_page, "include": ",".join(self.config.include)}
        if cursor:
            params["cursor"] = cursor
        else:
            params["start_time"] = max(0, start_time or 0)
        url = self.api_url("incremental/tickets/cursor.json", params)
        resume = cursor or f"{TIME_CURSOR}{params.get('start_time', 0)}"
        while True:
            try:
                page = self.get_json(url)
            except InvalidRequest as error:
                if "too recent" not in str(error).lower():
                    raise
                # Zendesk's way of saying "nothing newer yet": not an error, and the resume point stands.
                yield ChangePage(tickets=(), cursor=resume, end_of_stream=True)
                return
            tickets, deleted = self._fresh(page, seen)
            resume = page.get("after_cursor") or resume
            end = bool(page.get("end_of_stream")) or not page.get("after_url")
            yield ChangePage(tickets=tickets, cursor=resume, end_of_stream=end, deleted_ids=deleted)
            if end:
                return
            url = str(page["after_url"])

    def _fresh(self, page: Mapping[str, Any], seen: dict[int, tuple[int, str]]
               ) -> tuple[tuple[Ticket, ...], tuple[int, ...]]:
        """The page's tickets not already yielded in a newer version during this fetch, newest per id."""
        newest: dict[int, Mapping[str, Any]] = {}
        for raw in page.get("tickets") or ():
            ticket_id = int(raw["id"])
            if ticket_id not in newest or _version(raw) >= _version(newest[ticket_id]):
                newest[ticket_id] = raw
        side = self.sideloads(page)
        tickets, deleted = [], []
        for ticket_id, raw in newest.items():
            version = _version(raw)
            if ticket_id in seen and seen[ticket_id] >= version:
                continue  # a duplicate, or older than what this fetch already yielded
            seen[ticket_id] = version
            if raw.get("status") == "deleted":
                deleted.append(ticket_id)
            else:
                tickets.append(to_ticket(raw, side))
        return tuple(tickets), tuple(deleted)

    def _backfill_open(self, seen: dict[int, tuple[int, str]]) -> Iterator[ChangePage]:
        """Open (unsolved) tickets via search export, re-read in full through show_many; no cursor yet."""
        url = self.api_url("search/export.json", {"query": "type:ticket status<solved",
                                                   "filter[type]": "ticket",
                                                   "page[size]": min(self.config.per_page, 1000)})
        while True:
            page = self.get_json(url)
            ids = [int(r["id"]) for r in page.get("results") or () if r.get("result_type", "ticket") == "ticket"]
            for start in range(0, len(ids), SHOW_MANY_LIMIT):
                batch = self._show_many(ids[start:start + SHOW_MANY_LIMIT])
                tickets, _ = self._fresh(batch, seen)
                yield ChangePage(tickets=tickets, cursor=None, end_of_stream=False)
            links, meta = page.get("links") or {}, page.get("meta") or {}
            if not meta.get("has_more") or not links.get("next"):
                return
            url = str(links["next"])

    def _show_many(self, ids: Sequence[int]) -> Mapping[str, Any]:
        return self.get_json(self.api_url("tickets/show_many.json", {
            "ids": ",".join(str(i) for i in ids), "include": ",".join(self.config.include)}))

    def get_tickets(self, ids: Sequence[int]) -> list[Ticket]:
        """Fresh copies of these tickets, 100 per call with the export's sideloads; missing ones left out."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        found: dict[int, Ticket] = {}
        for start in range(0, len(wanted), SHOW_MANY_LIMIT):
            page = self._show_many(wanted[start:start + SHOW_MANY_LIMIT])
            side = self.sideloads(page)
            for raw in page.get("tickets") or ():
                if raw.get("status") != "deleted":
                    found[int(raw["id"])] = to_ticket(raw, side)
        return [found[i] for i in wanted if i in found]

    def directory(self, *, refresh: bool = False) -> Directory:
        """Agents, groups, memberships (and custom field names), read once and refreshed every TTL."""
        now = self.clock()
        fresh = self._directory_read_at is not None and now - self._directory_read_at < self.config.directory_ttl
        if self._directory is not None and fresh and not refresh:
            return self._directory
        users = self.call(lambda: [u.to_dict() for u in self.client.users(role=["agent", "admin"])])
        groups = self.call(lambda: [g.to_dict() for g in self.client.groups()])
        memberships = self.call(lambda: [m.to_dict() for m in self.client.group_memberships()])
        try:
            fields = self.call(lambda: [f.to_dict() for f in self.client.ticket_fields()])
            self._field_keys = field_keys({int(f["id"]): str(f.get("title") or "") for f in fields
                                           if f.get("id") is not None})
        except PermissionDenied as error:
            log.warning("custom fields will be named field_<id>: %s", error)
        self._directory = to_directory(users, groups, memberships)
        self._directory_read_at = now
        return self._directory

    # --- writes ----------------------------------------------------------------------------------------

    def apply(self, changes: Sequence[TicketChange]) -> list[ApplyResult]:
        """Perform the changes: per-ticket bodies, 100 per update_many job, safe updates, jobs polled together."""
        return ZendeskWriter(self).apply(changes)


def _version(raw: Mapping[str, Any]) -> tuple[int, str]:
    """Which copy of a ticket is newer: generated_timestamp first, updated_at text (ISO, UTC) second."""
    return int(raw.get("generated_timestamp") or 0), str(raw.get("updated_at") or "")
