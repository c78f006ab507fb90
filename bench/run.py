"""Rule-evaluation throughput of deskbot against peer engines, as ratios measured side by side in one run.

    pip install -e '.[bench]'          # once: rule-engine, business-rules, json-logic-qubit, pyinstrument
    python -m bench                    # 10,000 and 100,000 tickets x 50 rules
    python -m bench --tickets 10000 --procs 3

Runs the shared harness (../shared/bench/peers_rule_eval.py, located, not
vendored) with deskbot as its `--candidate`; every implementation evaluates the
same generated queue in its own process, and the harness exits non-zero when
any of them disagrees with the reference on a single (ticket, rule) match.
Absolute times are noisy on shared machines; the ratios are what holds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, HarnessMissing, shared_dir

CANDIDATE = "bench.deskbot_candidate:evaluate"  # the planner's path: all conditions in one generated function
PER_RULE = "bench.deskbot_candidate:evaluate_per_rule"  # one generated function per rule, the harness's loop
PEERS = ("rule-engine", "business-rules", "json-logic")
MODULES = {"rule-engine": "rule_engine", "business-rules": "business_rules", "json-logic": "json_logic"}
#: rule-engine is ~8x slower than the other peers; at 100k tickets it alone would take a quarter of an hour.
SLOW_PEER_LIMIT = 20_000
TARGET_VS_PEER = 10.0
TARGET_VS_LAMBDA = 0.8


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--tickets", default="10000,100000", help="comma list of queue sizes (default 10000,100000)")
    ap.add_argument("--rules", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3, help="timed passes per process (best kept)")
    ap.add_argument("--procs", type=int, default=1, help="processes per implementation (best kept)")
    ap.add_argument("--all-peers", action="store_true",
                    help=f"run rule-engine above {SLOW_PEER_LIMIT:,} tickets too (slow)")
    ap.add_argument("--nulls", type=float, default=0.0, help="fraction of tickets with a null field (semantics probe)")
    ap.add_argument("--json", help="write every size's harness results here (a JSON list)")
    ap.add_argument("--enforce", action="store_true", help="exit 1 when a throughput target is missed")
    ap.add_argument("--show-rules", action="store_true", help="print the translated deskbot rules file and exit")
    ap.add_argument("--no-per-rule", action="store_true",
                    help="skip the second run that times deskbot's per-rule functions against the lambdas")
    args = ap.parse_args(argv)

    try:
        shared = shared_dir()
    except HarnessMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rules_file = shared / "rules50.yaml"
    if args.show_rules:
        from bench.deskbot_candidate import translated_yaml

        print(translated_yaml(rules_file.read_text(encoding="utf-8")), end="")
        return 0
    missing = [pkg for pkg, mod in MODULES.items() if importlib.util.find_spec(mod) is None]
    if missing:
        print(f"error: peer libraries not installed: {', '.join(missing)}. Install them with\n"
              f"    {sys.executable} -m pip install -e '{ROOT}[bench]'", file=sys.stderr)
        return 2

    print(f"# deskbot rule-evaluation benchmark: {os.cpu_count()} cores ({_cpu()}), "
          f"Python {platform.python_version()}, harness {shared}")
    print(f"# the full text loader (YAML with line marks + compile) takes {_text_load_ms(rules_file):.0f} ms "
          f"on this file; the timed candidate parses with libyaml and compiles the same way")
    status, summaries, dumps = 0, [], []
    for size in [int(n) for n in args.tickets.split(",") if n.strip()]:
        impls = ["python-lambda", "closures", *(p for p in PEERS if size <= SLOW_PEER_LIMIT or args.all_peers
                                                 or p != "rule-engine")]
        code, results = _run_harness(shared, size, impls, args, CANDIDATE)
        status = status or code
        if results is None:
            continue
        dumps.append(results)
        summaries.append(_summary(size, results, "planner (one function per file)"))
        if not args.no_per_rule:
            code, results = _run_harness(shared, size, ["python-lambda"], args, PER_RULE)
            status = status or code
            if results is not None:
                dumps.append(results)
                summaries.append(_summary(size, results, "per rule (Condition.test)", summaries[-1]["peers"]))
    print()
    print(render(summaries))
    missed = [s for s in summaries if not s["ok"]]
    if args.json:
        Path(args.json).write_text(json.dumps(dumps, indent=2, default=str), encoding="utf-8")
    if status:
        print("FAILED: the harness reported a disagreement or an error (see above)")
        return 1
    if missed and args.enforce:
        return 1
    return 0


def _run_harness(shared: Path, size: int, impls: list[str], args: argparse.Namespace,
                 candidate: str) -> tuple[int, dict | None]:
    with tempfile.TemporaryDirectory(prefix="deskbot_bench_") as tmp:
        out = Path(tmp) / "results.json"
        cmd = [sys.executable, str(shared / "peers_rule_eval.py"), "--tickets", str(size), "--rules", str(args.rules),
               "--repeat", str(args.repeat), "--procs", str(args.procs), "--impls", ",".join(impls),
               "--candidate", candidate, "--json", str(out)]
        if args.nulls:
            cmd += ["--nulls", str(args.nulls)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        print(f"\n$ {' '.join(cmd[1:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        print(f"# {size:,} tickets: harness took {time.perf_counter() - started:.0f} s", flush=True)
        if not out.exists():
            return code or 1, None
        return code, json.loads(out.read_text(encoding="utf-8"))


def _summary(size: int, data: dict, path: str, peers_of_run: dict | None = None) -> dict:
    """deskbot's rate and ratios in one harness run (peers of an earlier run when this one had none)."""
    results = data["results"]

    def rate(impl: str) -> float | None:
        return results.get(impl, {}).get("evals_per_s")

    ours, lam = rate("candidate"), rate("python-lambda")
    peers = {p: rate(p) for p in PEERS if rate(p)} or dict(peers_of_run or {})
    fastest = max(peers, key=peers.get) if peers else None  # type: ignore[arg-type]
    vs_peer = ours / peers[fastest] if ours and fastest else None
    vs_lambda = ours / lam if ours and lam else None
    agrees = results.get("candidate", {}).get("agrees")
    ok = bool(agrees and vs_peer and vs_lambda and vs_peer >= TARGET_VS_PEER and vs_lambda >= TARGET_VS_LAMBDA)
    return {"tickets": size, "rules": data["meta"]["rules"], "path": path, "deskbot": ours, "lambda": lam,
            "peers": peers,
            "fastest": fastest, "vs_peer": vs_peer, "vs_lambda": vs_lambda, "agrees": agrees, "ok": ok,
            "closures": rate("closures"), "reference": rate("reference")}


def render(summaries: list[dict]) -> str:
    """The one table that matters: deskbot's rate and its ratios, per queue size."""
    lines = ["| tickets x rules | deskbot path | deskbot evals/s | vs python-lambda (>= 0.8) "
             "| vs fastest peer (>= 10) | peers evals/s | agrees |", "|---|---|---:|---:|---:|---|---|"]
    for s in summaries:
        peers = ", ".join(f"{name} {rate:,.0f}" for name, rate in s["peers"].items())
        lam = f"{s['vs_lambda']:.2f}x {'ok' if s['vs_lambda'] >= TARGET_VS_LAMBDA else 'MISSED'}" \
            if s["vs_lambda"] else "-"
        peer = f"{s['vs_peer']:.1f}x vs {s['fastest']} {'ok' if s['vs_peer'] >= TARGET_VS_PEER else 'MISSED'}" \
            if s["vs_peer"] else "-"
        ours = f"{s['deskbot']:,.0f}" if s["deskbot"] else "error"
        agree = {True: "yes", False: "NO", None: "-"}[s["agrees"]]
        lines.append(f"| {s['tickets']:,} x {s['rules']} | {s['path']} | {ours} | {lam} | {peer} | {peers} "
                     f"| {agree} |")
    return "\n".join(lines)


def _text_load_ms(rules_file: Path) -> float:
    """What `load_config_text` (line-marked YAML, the product's loader) costs on the translated rules."""
    from bench.deskbot_candidate import translated_yaml
    from bot.config import load_config_text

    text = translated_yaml(rules_file.read_text(encoding="utf-8"))
    started = time.perf_counter()
    load_config_text(text, "rules50-translated.yaml")
    return (time.perf_counter() - started) * 1e3


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


if __name__ == "__main__":
    sys.exit(main())
