"""What `deskbot status` and `deskbot audit` print, read from the state store alone (no API calls)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from bot.state import StateStore
from bot.state.codec import from_text, to_text

PLATFORMS = ("zendesk", "freshdesk")


def status_data(store: StateStore, now: datetime) -> dict[str, Any]:
    """The runner's last published status plus the store's own counts."""
    lease = store.lease()
    runner = json.loads(store.get_meta("runner_status") or "{}")
    failures = [asdict(e) for e in store.audit_log(since=now - timedelta(days=1), limit=2000)
                if e.result in ("failed", "dead", "expired")][-5:]
    return {
        "store": store.path,
        "running": bool(lease and lease.expires_at > now),
        "lease": {"owner": lease.owner, "expires_at": to_text(lease.expires_at)} if lease else None,
        "runner": runner,
        "counts": store.counts(),
        "held_rules": json.loads(store.get_meta("rules_held") or "{}"),
        "recent_failures": failures,
    }


def status_lines(data: dict[str, Any]) -> list[str]:
    """`deskbot status` as text."""
    lease, runner, counts = data["lease"], data["runner"], data["counts"]
    lines = [f"state store: {data['store']}"]
    if data["running"]:
        lines.append(f"runner: running ({lease['owner']}, lease until {lease['expires_at']})")
    else:
        lines.append("runner: not running" + (f" (last: {lease['owner']})" if lease else ""))
    if runner:
        lines.append(f"mode: {runner.get('mode')}   rules: {runner.get('rules')}")
        if not runner.get("healthy", True):
            lines.append(f"UNHEALTHY: store error: {runner.get('store', {}).get('error')}")
        for problem in runner.get("rules_rejected") or []:
            lines.append(f"rules file rejected: {problem}")
        for platform, last in (runner.get("helpdesks") or {}).items():
            state = f"FAILING since {last['failing_since']}: {last['error']}" if last.get("error") else "ok"
            lines.append(f"{platform}: {state}; last cycle {last['at']}: {last['fetched']} changed, "
                         f"{last['evaluated']} evaluated, {last['done']} done, {last['failed']} failed, "
                         f"{last['api_calls']} API calls")
    mirror = ", ".join(f"{p} {n}" for p, n in sorted(counts["mirror"].items())) or "empty"
    lines.append(f"open tickets mirrored: {mirror}")
    lines.append("actions: " + (", ".join(f"{s} {n}" for s, n in sorted(counts["intents"].items())) or "none"))
    lines.append("alerts: " + (", ".join(f"{s} {n}" for s, n in sorted(counts["outbox"].items())) or "none"))
    for name, text in data["held_rules"].items():
        lines.append(f"held rule {name}: {text}")
    for failure in data["recent_failures"]:
        lines.append(f"recent {failure['result']}: {failure['rule']} on {failure['ticket_key']}: {failure['detail']}")
    return lines


def audit_entries(store: StateStore, *, ticket: str | None, rule: str | None, since: datetime | None,
                  limit: int) -> list[dict[str, Any]]:
    """Audit lines as dicts; a bare ticket id matches it on every platform."""
    keys = [ticket] if ticket is None or ":" in ticket else [f"{p}:{ticket}" for p in PLATFORMS]
    entries = []
    for key in keys:
        entries += store.audit_log(ticket_key=key, rule=rule, since=since, limit=limit)
    entries.sort(key=lambda e: e.id)
    return [{**asdict(e), "at": to_text(e.at)} for e in entries[-limit:]]


def audit_line(entry: dict[str, Any]) -> str:
    """One audit entry as a line of text."""
    at = from_text(entry["at"])
    when = at.strftime("%Y-%m-%d %H:%M:%SZ") if at else "?"
    mode = "" if entry["mode"] == "live" else f" [{entry['mode']}]"
    detail = f": {entry['detail']}" if entry["detail"] else ""
    return f"{when} {entry['result']:<8} {entry['rule']} on {entry['ticket_key']} ({entry['kind']}){mode}{detail}"
