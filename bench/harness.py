"""Finding the shared reference harness, which lives beside the project, never inside it.

The peer-engine harness (`peers_rule_eval.py`, `rules50.yaml`) is shared by
several projects, so it is located, not vendored: `<project root>/../shared/bench`,
or the directory named by `DESKBOT_BENCH_SHARED` when a checkout lives elsewhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = "DESKBOT_BENCH_SHARED"
HARNESS = "peers_rule_eval.py"


class HarnessMissing(RuntimeError):
    """The shared harness is not where the benchmark looks; the message says where to put it."""


def shared_dir() -> Path:
    """The directory holding peers_rule_eval.py and rules50.yaml."""
    override = os.environ.get(ENV)
    where = Path(override).expanduser().resolve() if override else (ROOT.parent / "shared" / "bench").resolve()
    if not (where / HARNESS).is_file():
        how = f"{ENV}={override}" if override else f"the project root's sibling ../shared/bench ({where})"
        raise HarnessMissing(
            f"the shared benchmark harness was not found: {where / HARNESS} does not exist (looked in {how}). "
            f"Place the shared directory next to the project (so that {ROOT.name}/../shared/bench/{HARNESS} "
            f"exists) or set {ENV} to the directory that holds {HARNESS} and rules50.yaml."
        )
    return where


def import_harness():
    """The harness module (for its ticket generator and field kinds)."""
    where = str(shared_dir())
    if where not in sys.path:
        sys.path.insert(0, where)
    import peers_rule_eval

    return peers_rule_eval
