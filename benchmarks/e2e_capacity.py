"""End-to-end capacity: the highest sustained msg/s at which p99 stays under 1 s with nothing lost.

Each candidate rate gets a fresh stack (own topics, ports) and a run of ``warm`` (10 s) then
``steady`` (30 s) at that rate; only ``steady`` is judged. A rate passes when, in ``steady``:
p99 < 1 s, nothing lost, no error, no skipped arrival, and replies keep up (answered/s >= 95 % of
the offered rate). Rates are tried in increasing order until one fails, then the gap is bisected
once. Finally the stack runs at half the sustained maximum for 60 s to report the latency the
pipeline adds (end-to-end minus the stub's fixed latency) and the CPU per message.

    .venv/bin/python benchmarks/e2e_capacity.py --rates 50,100,150,200,300,400
    .venv/bin/python benchmarks/e2e_capacity.py --rates 100,150,200 --dataflow-processes 2

Writes ``capacity.json`` (every run's phases and the verdicts) under ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from tgstream.loadtest.results import PhaseResult, RunResult
from tgstream.loadtest.run import LoadTestOptions, run_loadtest
from tgstream.loadtest.schedule import Phase

P99_LIMIT_MS = 1000.0
KEEP_UP = 0.95


def verdict(phase: PhaseResult) -> tuple[bool, str]:
    """Whether a steady phase sustained its rate, and why not."""
    if phase.latency_ms is None:
        return False, "no replies"
    reasons = []
    if phase.latency_ms["p99"] >= P99_LIMIT_MS:
        reasons.append(f"p99 {phase.latency_ms['p99']:.0f} ms")
    if phase.lost or phase.errors or phase.rejected:
        reasons.append(f"lost {phase.lost}, errors {phase.errors + phase.rejected}")
    if phase.skipped:
        reasons.append(f"{phase.skipped} arrivals skipped")
    if phase.answered_rate < KEEP_UP * phase.target_rate:
        reasons.append(f"answered {phase.answered_rate:.0f}/s")
    return not reasons, "; ".join(reasons) or "ok"


def run_rate(rate: float, args: argparse.Namespace, console: Console, seconds: float = 30.0) -> RunResult:
    options = LoadTestOptions(
        phases=(Phase("warm", rate, 10.0), Phase("steady", rate, seconds)),
        stub_latency_ms=args.stub_latency_ms,
        dataflow_processes=args.dataflow_processes,
        gateway_workers=args.gateway_workers,
        out_dir=args.out / f"rate-{rate:g}",
        display=False,
        drain_timeout_s=20.0,
        baseline_s=args.baseline,
    )
    return run_loadtest(options, console=console).result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="50,100,150,200,300,400", help="Ascending msg/s to try.")
    parser.add_argument("--stub-latency-ms", type=float, default=300.0)
    parser.add_argument("--dataflow-processes", type=int, default=1)
    parser.add_argument("--gateway-workers", type=int, default=1)
    parser.add_argument("--baseline", type=float, default=3.0, help="Idle CPU seconds measured per run.")
    parser.add_argument("--no-half", action="store_true", help="Skip the run at half the maximum.")
    parser.add_argument("--out", type=Path, default=Path(".dev/benchmarks") / f"capacity-{int(time.time())}")
    args = parser.parse_args()
    console = Console(width=160)
    rates = [float(r) for r in args.rates.split(",")]
    tried: dict[float, dict[str, Any]] = {}

    def attempt(rate: float) -> bool:
        result = run_rate(rate, args, console)
        steady = result.phases[-1]
        ok, why = verdict(steady)
        tried[rate] = {"ok": ok, "why": why, "steady": steady, "meta": result.meta}
        console.print(f"[bold]{rate:g} msg/s: {'sustained' if ok else 'NOT sustained'}[/] ({why})")
        return ok

    best, failed = None, None
    for rate in rates:
        if attempt(rate):
            best = rate
        else:
            failed = rate
            break
    if best is not None and failed is not None and failed - best > 10:
        middle = round((best + failed) / 2)
        if attempt(middle):
            best = middle
    half = None
    if best is not None and not args.no_half:
        result = run_rate(best / 2, args, console, seconds=60.0)
        half = {"rate": best / 2, "steady": result.phases[-1], "meta": result.meta}
    summary = {"sustained_max": best, "first_failure": failed, "tried": tried, "half": half}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "capacity.json"
    path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    console.print(f"sustained maximum: {best} msg/s (first failure: {failed}); wrote {path}")


if __name__ == "__main__":
    main()
