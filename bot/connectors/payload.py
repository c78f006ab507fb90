"""What of a helpdesk payload a `Ticket` keeps beyond its typed fields.

A mirror holds every open ticket for as long as it stays open, so the payload
itself is not kept: whatever a mapping turned into a typed field lives there,
and `Ticket.raw` keeps only the rest, the keys deskbot does not map (a newer
API's additions, brand or form ids), so nothing the platform said is lost.
Keys whose value is null or empty say nothing and are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from types import MappingProxyType
from typing import Any

from bot.model import EMPTY


def unmapped(raw: Mapping[str, Any], mapped: Set[str]) -> Mapping[str, Any]:
    """The payload's keys a mapping did not turn into `Ticket` fields, without empty values (read-only)."""
    rest = {key: value for key, value in raw.items()
            if key not in mapped and value is not None and value != "" and value != [] and value != {}}
    return MappingProxyType(rest) if rest else EMPTY
