"""What a poll cycle costs at scale: cold start, steady state, memory and API calls, at 10k/30k/100k tickets.

    python -m bench.cycle                         # 10k, 30k, 100k tickets x 200 rules, then API calls
    python -m bench.cycle --sizes 100000 --no-api
    python -m bench.cycle --sizes 10000 --variants full --cycles 10

Each queue size runs in its own process (so peak memory is that size's): a
helper process plays the helpdesk, mapping the seeded queue into `Ticket`s
exactly as the Zendesk connector does, and the measuring process reads them
back with the state store's codec (as the runner loads its mirror), loads the
generated 200-rule file, and then, timed:

  (a) first start: every ticket evaluated with no memory (everything that matches fires);
      restart / rules reload: every ticket evaluated again with the memory of a running bot;
  (b) steady state: poll cycles 30 s apart, each with 100 changed tickets plus every ticket
      whose next check (Plan.next_check_at) has come; only those are evaluated;
  (c) peak RSS of the process from the moment the mirror is built (VmHWM, reset after setup).

The `nosla` variant runs the same file without its 25 SLA rules, to show the
share of the SLA clocks. (d) API calls per cycle run against the Zendesk
sandbox over HTTP (bench/api_calls.py). Targets: (a) < 5 s, (b) < 50 ms,
(c) < 500 MB, (d) exactly the platform's minimum.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):  # `python bench/cycle.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
POLL = timedelta(seconds=30)
TARGET_COLD_S, TARGET_CYCLE_MS, TARGET_RSS_MB = 5.0, 50.0, 500.0


def _status_kb(field: str) -> int:
    match = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match.group(1)) if match else 0


def _reset_peak() -> bool:
    """Start VmHWM afresh (Linux >= 4.0), so setup does not count toward the bot's peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_size(tickets: int, variant: str, cycles: int, warmup: int, changed: int) -> dict:
    """Everything measured for one queue size, in this process."""
    from bench import steady
    from bot.config import load_config_text

    out: dict = {"tickets": tickets, "variant": variant, "cores": os.cpu_count()}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deskbot_mirror_") as tmp:
        path = Path(tmp) / "mirror.jsonl"
        subprocess.run([sys.executable, "-m", "bench.cycle", "--_dump", f"{tickets}:{variant}:{path}"],
                       cwd=ROOT, check=True)
        now, text, tickets_read = _read_dump(path)
        state = steady.State(tickets_read)
    del tickets_read
    gc.collect()
    # The runner keeps its mirror in SQLite and loads tickets a chunk at a time; this benchmark keeps it
    # in the Python heap, where the cyclic garbage collector would walk its ~3 million objects again on
    # every full collection the runs below trigger. Freezing it (gc.freeze: the collector ignores
    # objects that exist now) leaves the collector the work the runner gives it: what evaluating creates.
    gc.freeze()
    out["setup_s"] = time.perf_counter() - started
    out["rss_mirror_mb"] = _status_kb("VmRSS") / 1024
    out["peak_reset"] = _reset_peak()

    load_started = time.perf_counter()
    config = load_config_text(text, "bench-rules.yaml")
    out["load_s"] = time.perf_counter() - load_started
    out["rules"] = len(config.active_rules)
    out["time_based_rules"] = sum(1 for r in config.active_rules if r.time_based)

    out["first_start_fired"], out["first_start_s"] = steady.cold_start(state, now, config)
    out["converge_passes"] = steady.converge(state, now, config)

    now += POLL
    reload_config = load_config_text(text, "bench-rules.yaml")  # a reload compiles the file anew
    out["reload_fired"], out["reload_s"] = steady.cold_start(state, now, reload_config)
    config = reload_config

    activity = steady.Activity()
    timings = []
    for index in range(warmup + cycles):
        now += POLL
        timing = steady.steady_cycle(state, activity, now, config, changed)
        if index >= warmup:
            timings.append(timing)
    out["cycles"] = [t.__dict__ | {"total_s": t.total_s} for t in timings]
    out["peak_rss_mb"] = _status_kb("VmHWM") / 1024
    out["rss_end_mb"] = _status_kb("VmRSS") / 1024
    return out


def dump(tickets: int, variant: str, path: Path) -> None:
    """Play the helpdesk: the seeded queue as the Zendesk connector maps it, written as the store keeps it.

    Runs in its own process, so the sandbox that generates the queue never
    counts toward the measured bot's memory: the bot reads the mirror back
    with the store's codec, as the runner loads it from SQLite.
    """
    from bench import workload
    from bot.state.codec import ticket_to_json, to_text

    queue = workload.open_queue(tickets)
    text = workload.rules_yaml(queue, 200, without_sla=variant == "nosla")
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"now": to_text(queue.now), "rules": text}) + "\n")
        for ticket in workload.mirror(queue):
            out.write(ticket_to_json(ticket) + "\n")


def _read_dump(path: Path) -> tuple:
    from bot.state.codec import from_text, ticket_from_json

    with path.open(encoding="utf-8") as lines:
        head = json.loads(next(lines))
        tickets = [ticket_from_json(line) for line in lines]
    return from_text(head["now"]), head["rules"], tickets


def summarize(result: dict) -> dict:
    """The headline numbers of one size."""
    totals = sorted(c["total_s"] * 1e3 for c in result["cycles"])
    plans = sorted(c["plan_s"] * 1e3 for c in result["cycles"])
    p95 = totals[max(0, round(0.95 * len(totals)) - 1)]
    return {
        "tickets": result["tickets"], "variant": result["variant"], "rules": result["rules"],
        "first_s": result["first_start_s"], "reload_s": result["reload_s"],
        "first_us": result["first_start_s"] / result["tickets"] * 1e6,
        "reload_us": result["reload_s"] / result["tickets"] * 1e6,
        "cycle_median_ms": statistics.median(totals), "cycle_p95_ms": p95, "cycle_max_ms": totals[-1],
        "plan_median_ms": statistics.median(plans),
        "due_mean": statistics.mean(c["due"] for c in result["cycles"]),
        "evaluated_mean": statistics.mean(c["evaluated"] for c in result["cycles"]),
        "peak_rss_mb": result["peak_rss_mb"], "rss_mirror_mb": result["rss_mirror_mb"],
        "load_ms": result["load_s"] * 1e3, "fired_first": result["first_start_fired"],
    }


def render(rows: list[dict]) -> str:
    """One table: every size and variant, with the verdict per target."""
    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    lines = ["| tickets | rules | first start s (us/ticket) | restart/reload s (us/ticket) | steady cycle ms "
             "median / p95 / max (plan) | due per cycle | peak RSS MB (mirror) | rules load ms |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rules = f"{r['rules']}{' (no SLA)' if r['variant'] == 'nosla' else ''}"
        lines.append(
            f"| {r['tickets']:,} | {rules} "
            f"| {r['first_s']:.2f} ({r['first_us']:.0f}) {mark(r['first_s'] < TARGET_COLD_S)} "
            f"| {r['reload_s']:.2f} ({r['reload_us']:.0f}) {mark(r['reload_s'] < TARGET_COLD_S)} "
            f"| {r['cycle_median_ms']:.1f} / {r['cycle_p95_ms']:.1f} / {r['cycle_max_ms']:.1f} "
            f"({r['plan_median_ms']:.1f}) {mark(r['cycle_p95_ms'] < TARGET_CYCLE_MS)} "
            f"| {r['due_mean']:.0f} | {r['peak_rss_mb']:.0f} ({r['rss_mirror_mb']:.0f}) "
            f"{mark(r['peak_rss_mb'] < TARGET_RSS_MB)} | {r['load_ms']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cycle", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,30000,100000", help="comma list of queue sizes")
    ap.add_argument("--variants", default="full,nosla", help="full (200 rules) and/or nosla (without SLA rules)")
    ap.add_argument("--cycles", type=int, default=20, help="steady-state cycles measured per size")
    ap.add_argument("--warmup", type=int, default=5, help="steady-state cycles run before measuring")
    ap.add_argument("--changed", type=int, default=100, help="tickets changed per cycle")
    ap.add_argument("--no-api", action="store_true", help="skip (d), API calls against the Zendesk sandbox")
    ap.add_argument("--json", help="write every measurement here")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    ap.add_argument("--_dump", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._dump:
        size, variant, path = args._dump.split(":", 2)
        dump(int(size), variant, Path(path))
        return 0
    if args._child:
        size, variant, out = args._child.split(":", 2)
        result = run_size(int(size), variant, args.cycles, args.warmup, args.changed)
        Path(out).write_text(json.dumps(result), encoding="utf-8")
        return 0

    print(f"# deskbot cycle benchmark: {os.cpu_count()} cores (each size runs in one process, one core), "
          f"Python {sys.version.split()[0]}", flush=True)
    results, rows = [], []
    with tempfile.TemporaryDirectory(prefix="deskbot_cycle_") as tmp:
        for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
            for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
                out = Path(tmp) / f"{size}-{variant}.json"
                cmd = [sys.executable, "-m", "bench.cycle", "--_child", f"{size}:{variant}:{out}",
                       "--cycles", str(args.cycles), "--warmup", str(args.warmup), "--changed", str(args.changed)]
                started = time.perf_counter()
                code = subprocess.run(cmd, cwd=ROOT).returncode
                if code != 0 or not out.exists():
                    print(f"# {size:,} {variant}: the measuring process failed (exit {code})", flush=True)
                    return 1
                result = json.loads(out.read_text(encoding="utf-8"))
                results.append(result)
                rows.append(summarize(result))
                r = rows[-1]
                print(f"# {size:,} tickets x {r['rules']} rules ({variant}): first start {r['first_s']:.2f} s, "
                      f"reload {r['reload_s']:.2f} s, cycle median {r['cycle_median_ms']:.1f} ms "
                      f"({r['due_mean']:.0f} due), peak RSS {r['peak_rss_mb']:.0f} MB "
                      f"[{time.perf_counter() - started:.0f} s]", flush=True)
    print()
    print(render(rows))
    print()
    print(_flatness(rows))
    api = None
    if not args.no_api:
        from bench import api_calls

        print()
        api = api_calls.main_report()
    if args.json:
        Path(args.json).write_text(json.dumps({"sizes": results, "api": api}, indent=2, default=str),
                                   encoding="utf-8")
    return 0 if api is None or api.get("exact") else 1


def _flatness(rows: list[dict]) -> str:
    """Scaling: cold start per ticket and cycle time should not grow with the queue."""
    lines = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        if len(mine) < 2:
            continue
        small, large = mine[0], mine[-1]
        lines.append(f"scaling {variant}: {small['tickets']:,} -> {large['tickets']:,} tickets: reload per ticket "
                     f"x{large['reload_us'] / small['reload_us']:.2f}, steady cycle median "
                     f"x{large['cycle_median_ms'] / small['cycle_median_ms']:.2f} "
                     f"(due per cycle {small['due_mean']:.0f} -> {large['due_mean']:.0f})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
