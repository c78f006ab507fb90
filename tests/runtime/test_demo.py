"""`deskbot demo` shows the real runner routing, alerting and escalating on the sandbox within seconds."""

from __future__ import annotations

import io

from rich.console import Console

from bot.runtime.demo import Demo


def test_a_short_demo_routes_assigns_alerts_and_escalates_over_real_http():
    out = io.StringIO()
    summary = Demo("config/rules.yaml", duration=4, speed=300, tickets=80, arrivals_every=1.0,
                   console=Console(file=out, width=120)).run()
    assert summary.ok, summary.errors
    assert summary.actions_by_rule["Route technical problems"] + summary.actions_by_rule["Route billing questions"]
    assert summary.actions_by_rule["Escalate waiting urgent tickets"]
    assert summary.alerts_posted >= 1 and summary.posts_by_channel
    assert summary.api_calls["GET incremental/tickets/cursor"] >= 1
    text = out.getvalue()
    assert "of simulated time" in text and "Zendesk API calls:" in text and "Slack:" in text
