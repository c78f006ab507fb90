"""A throwaway state store for tests and one-shot commands (`deskbot explain`, `check --against-mirror`).

It is the SQLite store on a private in-memory database, so it behaves exactly
like the default store (same transactions, same intent rules) and nothing
touches the disk; it is gone when the process ends.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.state.sqlite import SqliteStore


class MemoryStore(SqliteStore):
    """`StateStore` that lives only as long as the object."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(":memory:", clock=clock)
