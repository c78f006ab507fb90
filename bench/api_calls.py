"""(d) API calls per cycle against the Zendesk sandbox over HTTP, compared with the platform's minimum.

The runner is built exactly as `deskbot run` builds it (`build_runner`, the
Zendesk connector on zenpy, a SQLite store), pointed at the sandbox on
127.0.0.1 with the benchmark's 200-rule file in live mode. After the first
sync and a few polls that settle what the first start fired, agents change
100 tickets in the sandbox and the runner polls once. Every request the
sandbox saw during that poll is counted by endpoint and compared with the
minimum Zendesk allows for that work:

    export pages (ceil(changed tickets / 1000), at least one)
    + ceil(tickets written / 100) update_many calls
    + job status polls (the sandbox finishes a job on its `job_polls`-th poll;
      `job_statuses/show_many` polls up to 100 jobs in one call)

Rate limits are set high and waits are skipped: they change when calls
happen, not how many are made.
"""

from __future__ import annotations

import json
import logging
import math
import random
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

SIZE = 1000
CHANGED = 100
_ENDPOINTS = [
    ("export page", "GET", "/api/v2/incremental/tickets/cursor"),
    ("update_many", "PUT", "/api/v2/tickets/update_many"),
    ("job status poll", "GET", "/api/v2/job_statuses"),
    ("show_many (fresh read)", "GET", "/api/v2/tickets/show_many"),
    ("search export", "GET", "/api/v2/search/export"),
    ("tags", "*", "/api/v2/tickets/#/tags"),
    ("single ticket PUT", "PUT", "/api/v2/tickets/#"),
    ("single ticket GET", "GET", "/api/v2/tickets/#"),
    ("comments", "GET", "/api/v2/tickets/#/comments"),
    ("directory", "GET", "/api/v2/users|/api/v2/groups|/api/v2/group_memberships|/api/v2/ticket_fields"),
]


def endpoint(method: str, path: str) -> str:
    """The benchmark's name for a request."""
    parts = path.rstrip("/").removesuffix(".json").split("/")
    shape = "/".join("#" if p.isdigit() else p for p in parts)
    for name, verb, pattern in _ENDPOINTS:
        if verb not in ("*", method):
            continue
        if any(shape == p or (p.endswith("cursor") and shape.startswith(p)) or
               (name == "job status poll" and shape.startswith(p)) for p in pattern.split("|")):
            return name
        if name == "directory" and any(shape.startswith(p) for p in pattern.split("|")):
            return name
    return f"{method} {shape}"


def written_tickets(requests: list[Any]) -> set[int]:
    """Ids of the tickets the requests wrote to (bulk or single, fields, notes or tags)."""
    ids: set[int] = set()
    for r in requests:
        if r.method == "GET":
            continue
        parts = r.path.removesuffix(".json").split("/")
        if parts[-1] == "update_many":
            query = dict(pair.split("=", 1) for pair in r.query.split("&") if "=" in pair)
            ids.update(int(i) for i in unquote(query.get("ids", "")).split(",") if i.strip().isdigit())
            body = json.loads(r.body or b"{}")
            ids.update(int(t["id"]) for t in body.get("tickets") or () if isinstance(t, dict) and "id" in t)
        else:
            ids.update(int(p) for p in parts if p.isdigit())
    return ids


def measure(size: int = SIZE, changed: int = CHANGED, seed: int = 5) -> dict[str, Any]:
    """Run the scenario; returns the measured cycles with their per-endpoint counts and minimums."""
    from bench import workload
    from bot.retry import RetryPolicy
    from bot.runner import RunOptions
    from bot.runtime.assemble import build_runner
    from bot.sandbox import seed as seeding
    from bot.sandbox.server import serve
    from bot.sandbox.zendesk import ManualClock, ZendeskSandbox

    queue = seeding.generate(seed, tickets=size)
    clock = ManualClock(queue.now)
    text = workload.rules_yaml(queue, 200).replace("version: 1\n", "version: 1\nsettings: {blast_radius: 1.0}\n", 1)
    sandbox = ZendeskSandbox(queue, clock=clock, rate_limit=1_000_000, export_limit=100_000)
    rng = random.Random(seed)
    cycles: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="deskbot_api_") as tmp, serve(sandbox) as server:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(text, encoding="utf-8")
        env = {"ZENDESK_URL": server.url, "ZENDESK_EMAIL": sandbox.email, "ZENDESK_API_TOKEN": sandbox.api_token}
        options = RunOptions(config_path=str(rules), state_path=str(Path(tmp) / "state.sqlite3"), force_live=True)
        no_wait = {"retry": RetryPolicy(sleep=lambda s: None), "sleep": lambda s: None, "clock": clock}
        runner, _ = build_runner(options, environ=env, clock=clock, platforms=["zendesk"],
                                 connector_options=no_wait)
        logging.disable(logging.WARNING)  # one INFO line per action would dominate the run

        def poll(label: str) -> dict[str, Any]:
            clock.advance(timedelta(minutes=2))
            before = len(sandbox.requests)
            started = time.perf_counter()
            report = runner.poll("zendesk")
            seconds = time.perf_counter() - started
            seen = sandbox.requests[before:]
            counts = Counter(endpoint(r.method, r.path) for r in seen)
            written = written_tickets(seen)
            jobs = counts.get("update_many", 0)
            pages_min = max(1, math.ceil((report.fetched if report else 0) / 1000))
            writes_min = math.ceil(len(written) / 100)
            minimum = {"export page": pages_min, "update_many": writes_min,
                       "job status poll": math.ceil(writes_min / 100) * sandbox.job_polls}
            return {"label": label, "seconds": seconds, "fetched": report.fetched if report else 0,
                    "evaluated": report.evaluated if report else 0, "tickets_written": len(written),
                    "calls": sum(counts.values()),
                    "by_endpoint": dict(counts), "minimum": minimum, "minimum_total": sum(minimum.values()),
                    "exact": sum(counts.values()) == sum(minimum.values()) and all(
                        counts.get(k, 0) == v for k, v in minimum.items()), "jobs": jobs}

        first = poll("first start (initial sync)")
        settle = [poll(f"settle {i + 1}") for i in range(5)]
        open_ids = sorted(i for i, t in sandbox.tickets.items()  # a real change for each: not urgent yet
                          if t.data["status"] in ("new", "open", "pending", "hold") and not t.deleted
                          and t.data.get("priority") != "urgent")
        quiet = poll("quiet cycle (nothing changed)")
        for ticket_id in rng.sample(open_ids, min(changed, len(open_ids))):
            sandbox.human_update(ticket_id, priority="urgent")
        cycles.append(poll(f"{changed} tickets changed by agents"))
        cycles.append(poll("next cycle (the bot's own writes come back)"))
        cycles.insert(0, quiet)
        logging.disable(logging.NOTSET)
    return {"size": size, "changed": changed, "job_polls": sandbox.job_polls, "first": first, "settle": settle,
            "cycles": cycles, "exact": all(c["exact"] for c in cycles)}


def render(result: dict[str, Any]) -> str:
    """The per-cycle table: calls by endpoint against the minimum."""
    names = sorted({n for c in result["cycles"] for n in c["by_endpoint"]} |
                   {n for c in result["cycles"] for n in c["minimum"]}, key=_order)
    head = ("| cycle | runner poll s | fetched | tickets written | " + " | ".join(names)
            + " | total | minimum | exact |")
    lines = [head, "|---|---:|---:|---:|" + "---:|" * len(names) + "---:|---:|---|"]
    for c in result["cycles"]:
        cells = []
        for n in names:
            got, least = c["by_endpoint"].get(n, 0), c["minimum"].get(n)
            cells.append(f"{got}" + (f" (min {least})" if least is not None else ""))
        lines.append(f"| {c['label']} | {c['seconds']:.2f} | {c['fetched']} | {c['tickets_written']} | "
                     + " | ".join(cells)
                     + f" | {c['calls']} | {c['minimum_total']} | {'yes' if c['exact'] else 'NO'} |")
    return "\n".join(lines)


def _order(name: str) -> int:
    known = [n for n, _, _ in _ENDPOINTS]
    return known.index(name) if name in known else len(known)


def main_report() -> dict[str, Any]:
    """Measure and print (d); returns the result for --json."""
    print(f"# (d) API calls per cycle, Zendesk sandbox over HTTP ({SIZE:,}-ticket account, 200 rules, live)",
          flush=True)
    result = measure()
    first = result["first"]
    print(f"# first start: {first['seconds']:.1f} s, {first['calls']} calls for {first['fetched']} tickets "
          f"({', '.join(f'{k} {v}' for k, v in sorted(first['by_endpoint'].items(), key=lambda kv: _order(kv[0])))})")
    print(render(result))
    print("API calls per cycle: " + ("EXACTLY the platform minimum" if result["exact"] else
                                     "MORE than the platform minimum (see the table)"))
    return result


if __name__ == "__main__":
    import sys

    sys.exit(0 if main_report()["exact"] else 1)
