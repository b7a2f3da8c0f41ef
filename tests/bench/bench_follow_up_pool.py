"""The follow-up pool fold the server's verification streams the log into (``domain.execution.followup_check``),
as a ratio to the standalone verifier's ``Log.follow_up_pool`` over the same events.

    .venv/bin/python tests/bench/bench_follow_up_pool.py                        # 100 departments, 200000 inspections
    .venv/bin/python tests/bench/bench_follow_up_pool.py --inspections 20000 --rounds 3

Setup (not timed): ``--inspections`` inspections spread over ``--departments`` departments and 50000 targets, each
``Inspection.Opened`` then one or two ``Inspection.FindingsRecorded`` (a re-entry moves the day), days over 2024;
as export items (``topic``, ``aggregate_id``, ``data``) in log order.

Measured, median of ``--rounds`` (>= 3) rounds, in this process:

- **verifier**: ``verify_draws.Log().apply`` on every event, then ``follow_up_pool(department, "2024Q2")``: the
  baseline (it keeps every inspection of every department: it verifies every round in one pass);
- **fold**: ``follow_up_pool(events, department, "2024Q2")`` (keeps the one department's inspections only).

Also reported: the peak Python memory of each (``tracemalloc``, one round), and the pool size (both equal).
RATIO = fold / verifier (time). Results in tests/bench/results/bench_follow_up_pool.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as S

from domain.execution.followup_check import FINDINGS, OPENED, follow_up_pool

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("verify_draws", ROOT / "docs" / "verifier" / "verify_draws.py")
assert _spec is not None and _spec.loader is not None
verifier: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verifier)


def events(inspections: int, departments: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    out: list[dict[str, Any]] = []
    for n in range(inspections):
        oid = f"00000000-0000-4000-8000-{n:012d}"
        out.append({"topic": OPENED, "aggregate_id": oid, "data": {
            "department": f"pv-{n % departments}", "target_id": f"t-{rng.randrange(50000):08d}"}})
        for _ in range(rng.choice((1, 1, 1, 2))):
            out.append({"topic": FINDINGS, "aggregate_id": oid,
                        "data": {"inspected_on": f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"}})
    return out


def run_verifier(items: list[dict[str, Any]], department: str) -> list[str]:
    log = verifier.Log()
    for ev in items:
        log.apply(ev)
    return list(log.follow_up_pool(department, "2024Q2"))


def run_fold(items: list[dict[str, Any]], department: str) -> list[str]:
    return follow_up_pool(((ev["topic"], ev["aggregate_id"], ev["data"]) for ev in items), department, "2024Q2")


def peak(fn: Any, *args: Any) -> int:
    tracemalloc.start()
    fn(*args)
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inspections", type=int, default=200000)
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = max(3, args.rounds)
    items = events(args.inspections, args.departments)
    department = "pv-3"
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {"verifier": [], "fold": []}
    pools = {}
    for _ in range(rounds):
        for name, fn in (("verifier", run_verifier), ("fold", run_fold)):
            start = time.perf_counter()
            pools[name] = fn(items, department)
            times[name].append(time.perf_counter() - start)
    assert pools["verifier"] == pools["fold"]
    memory = {"verifier": peak(run_verifier, items, department), "fold": peak(run_fold, items, department)}
    load_after = os.getloadavg()
    med = {k: S.median(v) for k, v in times.items()}
    S.print_table(
        f"follow-up pool: {args.inspections} inspections, {args.departments} departments, {len(items)} events, "
        f"pool {len(pools['fold'])}; load {load_before[0]:.2f} -> {load_after[0]:.2f}",
        ["", "median s", "peak MiB"],
        [[k, f"{med[k]:.3f}", f"{memory[k] / 2**20:.1f}"] for k in ("verifier", "fold")])
    print(f"RATIO fold / verifier: time {med['fold'] / med['verifier']:.2f}, "
          f"memory {memory['fold'] / memory['verifier']:.3f}")
    S.write_results("bench_follow_up_pool", {
        "machine": S.machine(), "params": vars(args), "events": len(items), "pool": len(pools["fold"]),
        "rounds": times, "median": med, "peak_bytes": memory, "loadavg": [load_before, load_after]})


if __name__ == "__main__":
    main()
