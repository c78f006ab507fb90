"""Cursors and search for the fake Zendesk: opaque like the real ones, strict about what they accept."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from bot.sandbox.zendesk_state import STATUS_ORDER, ApiError

_CURSOR_MAGIC = b"\xfb\xff"  # makes every cursor start with "+/", so unencoded cursors break as on Zendesk


def encode_cursor(seq: int, timestamp: int) -> str:
    """An opaque export cursor (standard base64, so it holds '+', '/' and '=' like Zendesk's)."""
    return base64.b64encode(_CURSOR_MAGIC + f"{timestamp}.0||{seq}|".encode()).decode()


def decode_cursor(cursor: str) -> int:
    """The change sequence a cursor points after; 400 for anything this server did not hand out."""
    try:
        raw = base64.b64decode(cursor, validate=True)
        if not raw.startswith(_CURSOR_MAGIC):
            raise ValueError(cursor)
        return int(raw[len(_CURSOR_MAGIC):].decode().split("||")[1].rstrip("|"))
    except (ValueError, IndexError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, {"error": "InvalidPaginationParameter", "description": f"invalid cursor {cursor!r}"})


def encode_index(index: int) -> str:
    """An opaque `page[after]` for list endpoints."""
    return base64.urlsafe_b64encode(f"i{index}".encode()).decode()


def decode_index(value: str | None) -> int:
    """The list position a `page[after]` points at (0 without one)."""
    if not value:
        return 0
    try:
        return int(base64.urlsafe_b64decode(value.encode()).decode()[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, {"error": "InvalidPaginationParameter", "description": "invalid page[after]"})


_TERM = re.compile(r"(-?)(\w+)(<=|>=|:|<|>)(\S+)")


def search_matches(ticket: Mapping[str, Any], query: str) -> bool:
    """The search subset deskbot uses: `type:ticket`, `status<solved` (and :,<,>,<=,>=), `tags:x`, `-tags:x`."""
    for negate, name, operator, value in _TERM.findall(query):
        if name == "type":
            ok = value == "ticket"
        elif name == "status":
            mine, theirs = STATUS_ORDER.index(ticket["status"]), STATUS_ORDER.index(value)
            ok = {":": mine == theirs, "<": mine < theirs, ">": mine > theirs, "<=": mine <= theirs,
                  ">=": mine >= theirs}[operator]
        elif name in ("tags", "tag"):
            ok = value in ticket.get("tags", ())
        elif name in ("group_id", "assignee_id", "requester_id"):
            ok = str(ticket.get(name)) == value
        else:
            ok = True  # unknown terms do not narrow the sandbox's search
        if ok == bool(negate):
            return False
    return True
