"""Kill a real `deskbot run` (os._exit, like SIGKILL) between any two steps; the end state must not change.

Each drill starts the sandbox in its own process, adds new tickets, runs
`deskbot run --once` with the crash point set (it must die there), then clean
runs until one finds nothing left to do. The helpdesk must end exactly
as after an uninterrupted run (no write lost, none twice); Slack must show the
same messages, with one duplicate allowed per crash only when the process died
after a post and before recording it (an ambiguous delivery).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.runtime.crash import EXIT_CODE
from tests.runtime.processes import RULES, Sandbox, messages, run_once

pytestmark = pytest.mark.slow

POINTS = ["after_fetch", "after_mirror", "after_plan", "after_record", "after_claim", "after_apply", "after_finish",
          "before_post", "after_post"]


def drill(tmp_path, crash_at: str | None):
    """The workload; the first run dies at `crash_at`, then clean runs until one finds nothing to do."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    sandbox = Sandbox(tmp_path)
    crashed = 0
    try:
        sandbox.control("/add_ticket", subject="Refund not received for order 1")
        sandbox.control("/add_ticket", subject="Invoice shows the wrong address", priority="urgent")
        if crash_at:
            result = run_once(sandbox, rules, DESKBOT_CRASH_AT=f"{crash_at}:1")
            assert result.returncode == EXIT_CODE, result.stdout + result.stderr
            assert f"crash point {crash_at}:1 reached" in result.stderr
            crashed += 1
        for _ in range(5):
            result = run_once(sandbox, rules)
            assert result.returncode == 0, result.stdout + result.stderr
            if " 0 planned, 0 done, 0 failed, 0 skipped" in result.stdout:
                break
        else:
            raise AssertionError("the bot never settled: " + result.stdout)
        return sandbox.snapshot(), crashed
    finally:
        sandbox.stop()


@pytest.fixture(scope="module")
def drills(tmp_path_factory):
    """Every drill, run a few at a time (they mostly wait on child processes)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {point: pool.submit(drill, tmp_path_factory.mktemp(point or "reference"), point)
                   for point in [None, *POINTS]}
        return {point: future.result() for point, future in futures.items()}


def test_the_uninterrupted_workload_routes_assigns_escalates_and_alerts(drills):
    reference, _ = drills[None]
    tickets = reference["tickets"].values()
    assert any("bot_routed" in t["tags"] and t["assignee_id"] for t in tickets)
    assert any(t["notes"] for t in tickets) and reference["messages"]


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_any_point_changes_nothing_in_the_end(drills, point):
    reference, _ = drills[None]
    snapshot, crashed = drills[point]
    assert crashed >= 1, f"the workload never reached {point}"
    assert snapshot["tickets"] == reference["tickets"], "every write exactly once"
    got, want = messages(snapshot), messages(reference)
    assert set(got) == set(want), "every alert delivered"
    extra = got - want
    if point == "after_post":
        assert sum(extra.values()) <= crashed, "a duplicate only after an ambiguous post"
    else:
        assert not extra, "no duplicate alert"
