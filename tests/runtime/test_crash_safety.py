"""Kill a real `deskbot run` (os._exit, like SIGKILL) between any two steps; the end state must not change.

Each drill starts the sandbox in its own process, adds new tickets, then runs
`deskbot run --once` five times: the first two die at the named crash point
(when they reach it), the last three run clean. The helpdesk must end exactly
as after an uninterrupted run (no write lost, none twice); Slack must show the
same messages, with one duplicate allowed per crash only when the process died
after a post and before recording it (an ambiguous delivery).
"""

from __future__ import annotations

import pytest

from bot.runtime.crash import EXIT_CODE
from tests.runtime.processes import RULES, Sandbox, messages, run_once

pytestmark = pytest.mark.slow

POINTS = ["after_fetch", "after_mirror", "after_plan", "after_record", "after_claim", "after_apply", "after_finish",
          "before_post", "after_post"]


def drill(tmp_path, crash_at: str | None):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    sandbox = Sandbox(tmp_path)
    crashed = 0
    try:
        sandbox.control("/add_ticket", subject="Refund not received for order 1")
        sandbox.control("/add_ticket", subject="Invoice shows the wrong address", priority="urgent")
        for attempt in range(5):
            env = {"DESKBOT_CRASH_AT": f"{crash_at}:1"} if crash_at and attempt < 2 else {}
            result = run_once(sandbox, rules, **env)
            if result.returncode == EXIT_CODE:
                crashed += 1
                assert f"crash point {crash_at}:1 reached" in result.stderr
            else:
                assert result.returncode == 0, result.stdout + result.stderr
        return sandbox.snapshot(), crashed
    finally:
        sandbox.stop()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    snapshot, _ = drill(tmp_path_factory.mktemp("reference"), None)
    assert any("bot_routed" in t["tags"] for t in snapshot["tickets"].values()), "the workload routes"
    assert any(t["notes"] for t in snapshot["tickets"].values()) and snapshot["messages"], "and escalates"
    return snapshot


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_any_point_changes_nothing_in_the_end(tmp_path, reference, point):
    snapshot, crashed = drill(tmp_path, point)
    assert crashed >= 1, f"the workload never reached {point}"
    assert snapshot["tickets"] == reference["tickets"], "every write exactly once"
    got, want = messages(snapshot), messages(reference)
    assert set(got) == set(want), "every alert delivered"
    extra = got - want
    if point == "after_post":
        assert sum(extra.values()) <= crashed, "a duplicate only after an ambiguous post"
    else:
        assert not extra, "no duplicate alert"
