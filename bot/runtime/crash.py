"""Named crash points, so tests can kill a real `deskbot run` between any two steps of a cycle.

`DESKBOT_CRASH_AT=after_claim:3` makes the process die (`os._exit`, no
cleanup, like SIGKILL) the third time it passes `after_claim`. Several points
may be given, comma-separated. Unset, a crash point costs one dict lookup.

Points, in cycle order: after_fetch (a page read, mirror not updated),
after_mirror, after_plan (decided, nothing recorded), after_record (intents,
memory and alerts committed), after_claim (claim committed, helpdesk not yet
written), after_apply (helpdesk written, outcome not recorded), after_finish,
before_post (alert marked sending, not posted), after_post (posted, not
recorded as sent).
"""

from __future__ import annotations

import os
import sys

POINTS = ("after_fetch", "after_mirror", "after_plan", "after_record", "after_claim", "after_apply",
          "after_finish", "before_post", "after_post")
EXIT_CODE = 137  # what a shell reports for SIGKILL


def _parse(spec: str) -> dict[str, int]:
    plan: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition(":")
        if name not in POINTS:
            raise ValueError(f"DESKBOT_CRASH_AT: unknown crash point '{name}' (known: {', '.join(POINTS)})")
        plan[name] = int(count or 1)
    return plan


_plan = _parse(os.environ.get("DESKBOT_CRASH_AT", ""))
_seen: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Die here if DESKBOT_CRASH_AT says so (test-only; a no-op otherwise)."""
    if not _plan or name not in _plan:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] == _plan[name]:
        sys.stderr.write(f"deskbot: crash point {name}:{_seen[name]} reached, exiting\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)


def configure(spec: str) -> None:
    """Replace the crash plan (for in-process tests of this module)."""
    global _plan
    _plan = _parse(spec)
    _seen.clear()
