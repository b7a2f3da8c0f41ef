"""The standalone draw verifier (docs/verifier/verify_draws.py) on a county year, as a ratio to reading the export:
target draws, inspector teams and recusal redraws.

    .venv/bin/python tests/bench/bench_verifier.py                    # 600 targets, 40 inspectors, 40 tasks
    .venv/bin/python tests/bench/bench_verifier.py --targets 6000     # larger
    .venv/bin/python tests/bench/bench_verifier.py --province --targets 1000000 --inspectors 10000 --tasks 10
                                                                      # a province (see below)

Setup (timed, not the subject): a fresh SQLite store; two departments, ``--targets`` targets (the four
supervision classes, risk classes A-D), ``--inspectors`` inspectors, ``--tasks`` random tasks of 2024 over the
four quarters (every third one weighted, every fifth one withdrawn and drawn again), each committed, frozen and
drawn through the use cases as the API does, then its inspector teams drawn (every round, withdrawn ones too) and,
every fourth task, the leader of its first visit recused (a redraw); then the audit export, written as
``GET /api/v1/audit/export`` writes it (``export_chunks``).

Measured, median of ``--rounds`` (>= 3) rounds, in this process:

- **read**: reading the export file and parsing every line (``json.loads``): the baseline;
- **verify**: the verifier's ``read_export`` + ``verify`` (every pool rebuilt, every draw re-run, every team and
  redraw re-derived at its recorded position);
- **verify without teams**: the same on the export without its ``InspectorsDrawn`` and ``MemberRedrawn`` lines
  (what the verifier cost before it re-derived teams: the teams' share is the difference);
- **subprocess**: ``python3 -I verify_draws.py export.ndjson`` as an auditor runs it (interpreter start included).

Also reported: the median time of one freeze during the setup (the server folds the log up to the head with
``domain/draw/pool.py``, as the verification does).

``--province``: the directory of ``tests/bench/province.py`` (``--departments`` departments, default 100, over 30
counties; the inspectors spread over them; the targets over the counties), written through
``DualRandom.import_entries`` as a bureau's imports are (not one registration at a time), one item per leading
department; task n is led by department ``pv-{n mod departments}`` and scoped to its county (a province's draws
are county draws: about targets / 30 in scope, 5% per class drawn), its teams drawn from that department's
inspectors. The verifier then runs with the export read twice (``verify(lambda: lines_of(f))``, as its command
line does): no event is kept. Also reported: the peak resident memory of the verifier's subprocess (its
``VmHWM``), and the export's size. The in-process "verify without teams" round is skipped there.

RATIO = verify / read. Results in tests/bench/results/bench_verifier.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as S
import province as P

from domain.access import Actor
from domain.tasks.assignment import assignment_id
from services.application import CommandContext
from services.audit.log import export_chunks
from services.infra.settings import Settings
from services.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
VERIFIER = ROOT / "docs" / "verifier" / "verify_draws.py"
ADMIN = CommandContext(actor=Actor("admin-1", "hj-admin", ("admin",)))
PLANNER = CommandContext(actor=Actor("eeb-planner", "hj-eeb", ("planner",)))
CLASSES = ["key", "general", "general", "special"]
# The verifier run as its command line runs it, then its own peak resident memory: VmHWM of /proc/self/status is the
# high-water mark of this process's memory since exec (ru_maxrss would count the pages of the forking parent too).
PEAK = """import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as stop:
    code = stop.code
print(next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")), file=sys.stderr, end="")
sys.exit(code)
"""


def _verifier() -> Any:
    spec = importlib.util.spec_from_file_location("verify_draws", VERIFIER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(rt: Runtime, targets: int, inspectors: int, tasks: int, freezes: list[float]) -> int:
    app = rt.app
    app.register("department", {"code": "hj-eeb", "name": "新乡市生态环境局获嘉分局", "city": "新乡市",
                                "county": "获嘉县", "kind": "ecology"}, ADMIN)
    items = [app.register("item", {"department": "hj-eeb", "name": f"生态环境检查事项{i}", "code": f"EEB-{i:03d}",
                                   "category": "general", "methods": ["on_site"], "documents": ["排污许可证"]},
                          ADMIN).id for i in range(4)]
    for i in range(inspectors):
        app.register("inspector", {"department": "hj-eeb", "staff_id": f"EEB{i:04d}", "name": "张伟",
                                   "certificate_no": f"豫环执{i:04d}", "certificate_expiry": "2028-12-31",
                                   "specialties": [], "region": "亢村镇"}, ADMIN)
    for i in range(targets):
        row = S.target_row(i)
        app.register("target", {"credit_code": row["credit_code"], "name": f"获嘉县企业{i:05d}",
                                "county": "获嘉县", "industry": "化工", "supervision_class": CLASSES[i % 4],
                                "risk_class": "ABCD"[i % 4]}, ADMIN)
    rt.runner.catch_up()
    drawn = 0
    earlier: dict[tuple[str, int], list[str]] = {}  # (period, item) -> tasks: a later one declares its overlaps
    for n in range(tasks):
        options: dict[str, Any] = {"exclude_inspected_this_year": n % 2 == 0}
        if n % 3 == 0:
            options.update(weighted=True, risk_weights={"A": 8, "B": 4, "C": 2, "D": 1})
        data = {"period": f"2024Q{n % 4 + 1}", "reason": "专项检查", "participants": {"hj-eeb": [items[n % 4]]},
                "scope": {"county": "获嘉县"}, "options": options,
                "rules": [{"supervision_class": c, "min_ratio": "5%"} for c in ("key", "general", "special")]}
        same = earlier.setdefault((f"2024Q{n % 4 + 1}", n % 4), [])
        if same:
            data.update(overlaps=list(same), overlap_reason="专项复查")
        tid = uuid.UUID(rt.task_opening.open_task(PLANNER, data).id)
        same.append(str(tid))
        for again in range(2 if n % 5 == 0 else 1):
            if again:
                rt.target_draws.withdraw(PLANNER, tid, "名录库未及时更新")
            source = f"福彩3D 2024年第{n:03d}期开奖号码"
            rt.target_draws.commit(PLANNER, tid, source)
            t0 = time.perf_counter()
            rt.target_draws.freeze(PLANNER, tid)  # the pool folded from the log up to the head
            freezes.append(time.perf_counter() - t0)
            rt.target_draws.draw_targets(PLANNER, tid, f"{(n * 37) % 1000:03d}", source)
            rt.teams.draw_inspectors(PLANNER, tid, "hj-eeb")
            drawn += 2  # the target draw and the department's teams
        if n % 4 == 0:
            task = rt.task_opening.task(tid)
            aid = assignment_id(tid, task.round, task.selected[0])
            rt.teams.recuse(PLANNER, aid, rt.teams.assignment(aid).teams["hj-eeb"]["members"][0], "亲属关系")
            drawn += 1
    return drawn


def build_province(rt: Runtime, targets: int, inspectors: int, departments: int, tasks: int,
                   freezes: list[float]) -> int:
    """As :func:`build`, on a province's directory imported in bulk, one county draw per task (see the module)."""
    app = rt.app
    app.import_entries("department", P.department_rows(departments), ADMIN)
    app.import_entries("inspector", P.inspector_rows(inspectors, departments), ADMIN)
    app.import_entries("target", P.target_rows(targets), ADMIN)
    leads = sorted({n % departments for n in range(tasks)})
    items = {d: app.register("item", {"department": f"pv-{d:03d}", "name": f"生态环境检查事项{d}", "code": f"PV-{d:03d}",
                                      "category": "general", "methods": ["on_site"], "documents": ["排污许可证"]},
                             ADMIN).id for d in leads}
    rt.runner.catch_up()
    drawn = 0
    for n in range(tasks):
        d = n % departments
        code, county = f"pv-{d:03d}", P.COUNTIES[d % len(P.COUNTIES)]
        planner = CommandContext(actor=Actor(f"{code}-planner", code, ("planner",)))
        options: dict[str, Any] = {"exclude_inspected_this_year": n % 2 == 0}
        if n % 3 == 0:
            options.update(weighted=True, risk_weights={"A": 8, "B": 4, "C": 2, "D": 1})
        data = {"period": f"2024Q{n // departments % 4 + 1}", "reason": "专项检查", "participants": {code: [items[d]]},
                "scope": {"county": county}, "options": options,
                "rules": [{"supervision_class": c, "min_ratio": "5%"} for c in ("key", "general", "special")]}
        tid = uuid.UUID(rt.task_opening.open_task(planner, data).id)
        for again in range(2 if n % 5 == 0 else 1):
            if again:
                rt.target_draws.withdraw(planner, tid, "名录库未及时更新")
            source = f"福彩3D 2024年第{n:03d}期开奖号码"
            rt.target_draws.commit(planner, tid, source)
            t0 = time.perf_counter()
            rt.target_draws.freeze(planner, tid)
            freezes.append(time.perf_counter() - t0)
            rt.target_draws.draw_targets(planner, tid, f"{(n * 37) % 1000:03d}", source)
            rt.teams.draw_inspectors(planner, tid, code)
            drawn += 2
        if n % 4 == 0:
            task = rt.task_opening.task(tid)
            aid = assignment_id(tid, task.round, task.selected[0])
            rt.teams.recuse(planner, aid, rt.teams.assignment(aid).teams[code]["members"][0], "亲属关系")
            drawn += 1
        print(json.dumps({"task": n, "freeze_s": round(freezes[-1], 2)}), flush=True)
    return drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=600)
    parser.add_argument("--inspectors", type=int, default=40)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--province", action="store_true", help="a province's directory, imported in bulk")
    parser.add_argument("--departments", type=int, default=100)
    args = parser.parse_args()
    verifier = _verifier()
    with S.fresh_sqlite() as url:
        tmp = Path(url.removeprefix("sqlite:///")).parent
        settings = replace(Settings(var_dir=tmp / "var", relay_enabled=False, draw_checkpoint_gate=False),
                           database_url=url).with_secret()  # no NATS in this process: nothing to publish to
        rt = Runtime(settings).open(with_nats=False)
        try:
            t0 = time.perf_counter()
            freezes: list[float] = []
            if args.province:
                rounds_drawn = build_province(rt, args.targets, args.inspectors, args.departments, args.tasks,
                                              freezes)
            else:
                rounds_drawn = build(rt, args.targets, args.inspectors, args.tasks, freezes)
            setup = time.perf_counter() - t0
            export = tmp / "export.ndjson"
            with export.open("wb") as f:
                for chunk in export_chunks(rt.app.recorder):
                    f.write(chunk)
        finally:
            rt.close()
        lines = sum(1 for _ in export.open(encoding="utf-8"))
        no_teams = tmp / "export-without-teams.ndjson"
        with export.open(encoding="utf-8") as f, no_teams.open("w", encoding="utf-8") as out:
            out.writelines(line for line in f if '"topic":"domain.tasks.task:Task.InspectorsDrawn"' not in line
                           and '"topic":"domain.tasks.assignment:Assignment.MemberRedrawn"' not in line)
        reads, verifies, subs, bare, peaks = [], [], [], [], []
        for _ in range(max(3, args.rounds)):
            t0 = time.perf_counter()
            parsed = 0
            with export.open(encoding="utf-8") as f:
                for line in f:  # parsed and dropped, as the verifier's passes read it
                    if line.strip():
                        json.loads(line)
                        parsed += 1
            reads.append(time.perf_counter() - t0)
            assert parsed == lines
            t0 = time.perf_counter()
            with export.open(encoding="utf-8") as f:
                results = verifier.verify(lambda: verifier.lines_of(f))
            verifies.append(time.perf_counter() - t0)
            assert len(results) == rounds_drawn and all(d is None for _, _, d in results), results
            if not args.province:
                t0 = time.perf_counter()
                with no_teams.open(encoding="utf-8") as f:
                    without = verifier.verify(lambda: verifier.lines_of(f))
                bare.append(time.perf_counter() - t0)
                assert all(w.startswith("task ") and d is None for w, _, d in without), without
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-I", "-c", PEAK, str(VERIFIER), str(export)], capture_output=True,
                                  text=True, check=False)
            subs.append(time.perf_counter() - t0)
            assert done.returncode == 0, done.stdout + done.stderr
            peaks.append(int(done.stderr.split("VmHWM:")[1].split()[0]) / 1024)
        peak_mib = max(peaks)
        size_mib = export.stat().st_size / 2**20
        read, verify, sub = S.median(reads), S.median(verifies), S.median(subs)
        verify_bare = S.median(bare) if bare else float("nan")
        load = os.getloadavg()
        S.print_table(
            f"draw verifier: {args.targets:,} targets, {args.inspectors} inspectors, {args.tasks} tasks "
            f"({rounds_drawn} checks: draws, teams, redraws), {lines:,} events ({size_mib:.0f} MiB); setup {setup:.1f} s; "
            f"verifier peak RSS {peak_mib:.0f} MiB; load {load[0]:.2f}",
            ["measure", "median s", "ratio to read"],
            [["read + parse export", round(read, 4), 1.0], ["verify (in process)", round(verify, 4),
             round(verify / read, 1)], ["verify without teams", round(verify_bare, 4), round(verify_bare / read, 1)],
             ["verify (subprocess)", round(sub, 4), round(sub / read, 1)],
             ["one freeze (server, median)", round(S.median(freezes), 4), ""]],
        )
        S.write_results("bench_verifier", {"machine": S.machine(), "targets": args.targets,
                                            "inspectors": args.inspectors, "tasks": args.tasks,
                                            "rounds": rounds_drawn, "events": lines, "read_s": read,
                                            "verify_s": verify, "subprocess_s": sub, "ratio": verify / read,
                                            "verify_without_teams_s": verify_bare,
                                            "freeze_s": S.median(freezes), "province": args.province,
                                            "verifier_peak_rss_mib": peak_mib, "export_mib": size_mib,
                                            "loadavg": load})


if __name__ == "__main__":
    main()
