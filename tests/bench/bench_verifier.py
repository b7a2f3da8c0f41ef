"""The standalone draw verifier (docs/verifier/verify_draws.py) on a county year, as a ratio to reading the export:
target draws, inspector teams and recusal redraws.

    .venv/bin/python tests/bench/bench_verifier.py                    # 600 targets, 40 inspectors, 40 tasks
    .venv/bin/python tests/bench/bench_verifier.py --targets 6000     # larger

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=600)
    parser.add_argument("--inspectors", type=int, default=40)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
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
        reads, verifies, subs, bare = [], [], [], []
        for _ in range(max(3, args.rounds)):
            t0 = time.perf_counter()
            with export.open(encoding="utf-8") as f:
                parsed = [json.loads(line) for line in f if line.strip()]
            reads.append(time.perf_counter() - t0)
            assert len(parsed) == lines
            t0 = time.perf_counter()
            with export.open(encoding="utf-8") as f:
                results = verifier.verify(verifier.read_export(f))
            verifies.append(time.perf_counter() - t0)
            assert len(results) == rounds_drawn and all(d is None for _, _, d in results), results
            t0 = time.perf_counter()
            with no_teams.open(encoding="utf-8") as f:
                without = verifier.verify(verifier.read_export(f))
            bare.append(time.perf_counter() - t0)
            assert all(w.startswith("task ") and d is None for w, _, d in without), without
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-I", str(VERIFIER), str(export)], capture_output=True,
                                  text=True, check=False)
            subs.append(time.perf_counter() - t0)
            assert done.returncode == 0, done.stdout + done.stderr
        read, verify, sub, verify_bare = S.median(reads), S.median(verifies), S.median(subs), S.median(bare)
        load = os.getloadavg()
        S.print_table(
            f"draw verifier: {args.targets:,} targets, {args.inspectors} inspectors, {args.tasks} tasks "
            f"({rounds_drawn} checks: draws, teams, redraws), {lines:,} events; setup {setup:.1f} s; "
            f"load {load[0]:.2f}",
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
                                            "freeze_s": S.median(freezes),
                                            "loadavg": load})


if __name__ == "__main__":
    main()
