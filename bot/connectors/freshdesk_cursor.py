"""The Freshdesk change-feed cursor: a watermark that loses nothing and repeats nothing.

Freshdesk timestamps have one-second resolution and `updated_since` is a plain
time filter, so "everything after the last `updated_at`" either drops tickets
updated later in that same second or re-reads them forever. The cursor
therefore keeps the watermark (`at`, the newest `updated_at` handed out) and
the `(id, updated_at)` pairs already handed out within `lookback` of it; the
next read asks from `at - lookback` and skips exactly those pairs. A later
update of a seen ticket has a newer `updated_at`, so it is new again.

Encoded as an opaque, versioned, URL-safe string (`fd1.<base64 json>`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from bot.connectors.freshdesk_mapping import PLATFORM, format_time, parse_time
from bot.errors import ConnectorError

PREFIX = "fd1."


@dataclass(frozen=True)
class Watermark:
    """Where the feed stands: newest `updated_at` handed out and the pairs seen near it."""

    at: datetime | None = None
    seen: Mapping[int, datetime] = field(default_factory=lambda: MappingProxyType({}))
    open_only: bool = False

    def is_new(self, ticket_id: int, updated_at: datetime, lookback: timedelta) -> bool:
        """True unless this version of the ticket was already handed out."""
        if self.at is None:
            return True
        if updated_at < self.at - lookback:
            return False  # older than the window: handed out in an earlier read (ascending order)
        previous = self.seen.get(ticket_id)
        return previous is None or updated_at > previous

    def advance(self, versions: Iterable[tuple[int, datetime]], lookback: timedelta) -> Watermark:
        """The watermark after handing out these `(id, updated_at)` versions."""
        seen = dict(self.seen)
        at = self.at
        for ticket_id, updated_at in versions:
            if seen.get(ticket_id) is None or updated_at > seen[ticket_id]:
                seen[ticket_id] = updated_at
            at = updated_at if at is None or updated_at > at else at
        if at is not None:
            floor = at - lookback
            seen = {i: t for i, t in seen.items() if t >= floor}
        return Watermark(at, MappingProxyType(seen), self.open_only)

    def finished_backfill(self) -> Watermark:
        """The same watermark, no longer filtering out resolved tickets."""
        return Watermark(self.at, self.seen, False)

    def since(self, lookback: timedelta) -> datetime | None:
        """The `updated_since` to ask from (None before the first ticket)."""
        return None if self.at is None else self.at - lookback

    def encode(self) -> str:
        """The opaque cursor string to persist."""
        payload: dict = {"at": format_time(self.at) if self.at else None,
                         "seen": {str(i): format_time(t) for i, t in sorted(self.seen.items())}}
        if self.open_only:
            payload["open_only"] = True
        text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        return PREFIX + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Watermark:
        """Parse a cursor made by `encode`; a foreign or damaged one is a clear error."""
        try:
            if not cursor.startswith(PREFIX):
                raise ValueError("unknown prefix")
            body = cursor[len(PREFIX):]
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            seen = {int(i): parse_time(t) for i, t in data.get("seen", {}).items()}
            if any(t is None for t in seen.values()):
                raise ValueError("bad timestamp")
            return cls(parse_time(data.get("at")), MappingProxyType(seen), bool(data.get("open_only")))
        except (ValueError, TypeError, AttributeError, binascii.Error) as error:
            shown = cursor if len(cursor) <= 40 else cursor[:40] + "..."
            raise ConnectorError(
                f"the saved Freshdesk cursor {shown!r} is not one deskbot wrote ({error}); delete the "
                "'freshdesk:tickets' cursor from the state store to start over with a backfill",
                platform=PLATFORM,
            ) from None
