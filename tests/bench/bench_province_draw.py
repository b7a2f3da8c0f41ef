"""A province's draw on PostgreSQL: commit, freeze, draw, the drawn list page by page and the server's
verification, for a county-scoped task and a province-wide one, over the directory of ``province.py``.

    .venv/bin/python tests/bench/bench_province_draw.py                       # 1,000,000 targets (builds the database)
    .venv/bin/python tests/bench/bench_province_draw.py --targets 30000 --inspectors 1000   # a smoke run
    .venv/bin/python tests/bench/bench_province_draw.py --reuse --keep        # an existing database, kept afterwards
    .venv/bin/python tests/bench/bench_province_draw.py --database province --reuse --keep --http --fold-rounds 0

Setup (timed, not the subject): ``province.py`` builds the database ``--database`` (default ``province_draw``,
dropped first; ``--reuse`` takes it as it is) in a subprocess: 100 departments over 30 counties, the inspectors,
the targets (imported as a bureau's imports are, the read models caught up). Then, in this process, the server's
use cases as the API calls them (``Runtime`` on that database, projections in process, no NATS, the checkpoint
gate off), with department ``pv-000``'s planner and one item:

- for each of ``--rounds`` rounds and each kind of task, **county** (scope: one county, ~1/30 of the targets) and
  **province** (no scope: every target), a task of 2024 is opened (5% of each supervision class, the yearly
  exclusion on: the earlier rounds' draws are excluded), then timed: ``commit``, ``freeze`` (the pool as of the
  position: the read models' rows plus the log's later changes, ``services/usecases/draw_pool.py``), ``draw``,
  every page of the drawn list (``GET /tasks/{id}/draw``, 5,000 visits a page: the first, the median and the
  slowest page), and ``verify`` (``GET /tasks/{id}/draw/verification``);
- the first round's verification again after the later rounds (more of the log after its freeze position);
- the baseline, in the same run, after all the above (it leaves its memory behind): the old freeze, the whole
  log folded up to the same freeze position (``DrawPools.pool_by_fold``), ``--fold-rounds`` times per kind, its
  digest asserted equal to the frozen one.

``--http``: the timed steps (commit, freeze, draw, pages, verification) go through the HTTP API of a server
started on the database (``_support.py serve``: read models in process, the collector tuned as ``dualrandom
serve`` tunes it, no relay and so no checkpoint gate), with the planner's stored token; tasks are still opened
in this process; the memory figures are then the server's.

Peak resident memory per step: ``VmHWM`` of this process (``--http``: of the server), reset before each step (``/proc/self/clear_refs``
``5``), so each step's figure is its own high-water mark (the process's baseline included). Medians of the rounds,
the load average beside. Results in tests/bench/results/bench_province_draw.json. ``--profile`` also prints the
top of a cProfile of the province-wide draw, pages and verification (one more round, not timed). The database
is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.support
import _support as S
import province as P

from domain.access import Actor
from domain.draw.sampler import pool_digest
from domain.tasks.overlap import OverlapError
from services.application import CommandContext
from services.infra.settings import Settings
from services.runtime import Runtime
from tests.support.accounts import stored_token

LEAD = "pv-000"
PLANNER = CommandContext(actor=Actor(f"{LEAD}-planner", LEAD, ("planner",)))
ADMIN = CommandContext(actor=Actor("admin-1", "hj-admin", ("admin",)))
SOURCE = "福彩3D 2024年第059期开奖号码"
RULES = [{"supervision_class": c, "min_ratio": "5%"} for c in ("key", "general", "special")]


PID = "self"  # whose memory is measured: this process, or (--http) the server's


def peak_reset() -> None:
    """Reset the measured process's VmHWM to its current resident size (Linux: clear_refs 5)."""
    with open(f"/proc/{PID}/clear_refs", "w") as f:
        f.write("5")


def peak_mib() -> float:
    with open(f"/proc/{PID}/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def timed(step: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(result, seconds, peak MiB)`` of one step."""
    peak_reset()
    t0 = time.perf_counter()
    out = step()
    return out, time.perf_counter() - t0, peak_mib()


class Direct:
    """The steps as the API calls the use cases, in this process."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def commit(self, tid: uuid.UUID) -> Any:
        return self.rt.target_draws.commit(PLANNER, tid, SOURCE)

    def freeze(self, tid: uuid.UUID) -> dict[str, Any]:
        return dict(self.rt.target_draws.freeze(PLANNER, tid).body)

    def draw(self, tid: uuid.UUID) -> dict[str, Any]:
        return dict(self.rt.target_draws.draw_targets(PLANNER, tid, "581", SOURCE).body)

    def page(self, tid: uuid.UUID, cursor: str | None) -> dict[str, Any]:
        page = self.rt.teams.drawn_list(PLANNER.actor, tid, cursor)
        json.dumps(page, ensure_ascii=False)  # what the answer's encoding costs, roughly
        return page

    def verify(self, tid: uuid.UUID) -> dict[str, Any]:
        return self.rt.target_draws.verify_draw(PLANNER.actor, tid)


class Http:
    """The same steps through the HTTP API of a running server (``--http``), the planner's stored token."""

    def __init__(self, client: httpx.Client, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        r = self.client.request(method, f"/api/v1/tasks/{path}", headers=self.headers, **kw)
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return dict(r.json())

    def commit(self, tid: uuid.UUID) -> Any:
        return self._call("POST", f"{tid}/commitment", json={"entropy_source": SOURCE})

    def freeze(self, tid: uuid.UUID) -> dict[str, Any]:
        return self._call("POST", f"{tid}/freeze")

    def draw(self, tid: uuid.UUID) -> dict[str, Any]:
        return self._call("POST", f"{tid}/draw", json={"external_entropy": "581", "entropy_source": SOURCE})

    def page(self, tid: uuid.UUID, cursor: str | None) -> dict[str, Any]:
        return self._call("GET", f"{tid}/draw", params={"cursor": cursor} if cursor else {})

    def verify(self, tid: uuid.UUID) -> dict[str, Any]:
        return self._call("GET", f"{tid}/draw/verification")


def build(args: argparse.Namespace, url: str) -> None:
    if args.reuse:
        return
    cmd = [sys.executable, str(S.BENCH_DIR / "province.py"), "--database", args.database, "--server", args.server,
           "--fresh", "--targets", str(args.targets), "--inspectors", str(args.inspectors),
           "--departments", str(args.departments)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(S.BENCH_DIR.parents[1])})
    print(json.dumps({"setup_s": round(time.perf_counter() - t0, 1)}), flush=True)


def open_task(rt: Runtime, item: str, scope: dict[str, Any]) -> uuid.UUID:
    data = {"period": "2024Q2", "reason": "专项检查", "participants": {LEAD: [item]}, "rules": RULES, "scope": scope,
            "options": {"exclude_inspected_this_year": True}}
    try:
        return uuid.UUID(rt.task_opening.open_task(PLANNER, data).id)
    except OverlapError as exc:
        data = {**data, "overlaps": [f.id for f in exc.undeclared], "overlap_reason": "同一事项再次抽取（基准测试）"}
        return uuid.UUID(rt.task_opening.open_task(PLANNER, data).id)


def one_round(calls: Direct | Http, tid: uuid.UUID) -> dict[str, Any]:
    """Commit, freeze, draw, every page of the drawn list, verify: seconds and peak MiB of each."""
    out: dict[str, Any] = {}
    _, out["commit_s"], out["commit_mib"] = timed(lambda: calls.commit(tid))
    frozen, out["freeze_s"], out["freeze_mib"] = timed(lambda: calls.freeze(tid))
    out["pool"] = frozen["pool_size"]
    out["position"] = frozen["frozen_at"]
    out["digest"] = frozen["pool_digest"]
    drawn, out["draw_s"], out["draw_mib"] = timed(lambda: calls.draw(tid))
    out["selected"] = drawn["selected"]
    pages: list[float] = []
    cursor: str | None = None
    peak_reset()
    visits = 0
    while True:
        t0 = time.perf_counter()
        page = calls.page(tid, cursor)
        pages.append(time.perf_counter() - t0)
        visits += len(page["visits"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    out["pages_mib"] = peak_mib()
    assert visits == out["selected"], (visits, out["selected"])
    out["pages"] = len(pages)
    out["page_first_s"], out["page_median_s"], out["page_max_s"] = pages[0], S.median(pages), max(pages)
    verified, out["verify_s"], out["verify_mib"] = timed(lambda: calls.verify(tid))
    assert verified["match"] is True, verified
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", default="province_draw")
    ap.add_argument("--server", default=S.default_pg_url(), help="a PostgreSQL URL on the server to use")
    ap.add_argument("--targets", type=int, default=1_000_000)
    ap.add_argument("--inspectors", type=int, default=10_000)
    ap.add_argument("--departments", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fold-rounds", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="the database exists: do not build it")
    ap.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    ap.add_argument("--profile", action="store_true", help="profile one more province-wide round")
    ap.add_argument("--http", action="store_true", help="the timed steps through a running server's HTTP API")
    args = ap.parse_args()
    url = args.server.rsplit("/", 1)[0] + "/" + args.database
    build(args, url)
    settings = replace(Settings(var_dir=Path("var/province_draw"), relay_enabled=False, draw_checkpoint_gate=False),
                       database_url=url).with_secret()
    rt = Runtime(settings).open(with_nats=False)
    stack = contextlib.ExitStack()
    calls: Direct | Http = Direct(rt)
    if args.http:
        global PID
        secret = secrets.token_hex(32)
        token = stored_token(rt.engine, secret, LEAD, ["planner"], f"{LEAD}-planner", 24 * 3600)
        port, proc = stack.enter_context(S.running_server("bench_province_draw", url, secret, timeout=900,
                                                          checkpoint_gate=False))
        PID = str(proc.pid)
        calls = Http(stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)), token)
    results: dict[str, list[dict[str, Any]]] = {"county": [], "province": []}
    folds: dict[str, list[tuple[float, float]]] = {"county": [], "province": []}
    try:
        item = rt.app.register("item", {"department": LEAD, "name": "全省生态环境检查事项", "code": f"PV-DRAW-{uuid.uuid4().hex[:8]}",  # a new item per run (--reuse)
                                        "category": "general", "methods": ["on_site"], "documents": ["排污许可证"]},
                               ADMIN).id
        scopes = {"county": {"county": P.COUNTIES[0]}, "province": {}}
        tids: dict[str, list[uuid.UUID]] = {"county": [], "province": []}
        for r in range(args.rounds):
            for kind, scope in scopes.items():
                tid = open_task(rt, item, scope)
                tids[kind].append(tid)
                row = one_round(calls, tid)
                row["load"] = os.getloadavg()[0]
                results[kind].append(row)
                print(json.dumps({"kind": kind, "round": r, **{k: (round(v, 3) if isinstance(v, float) else v)
                                                                 for k, v in row.items() if k != "digest"}}),
                      flush=True)
        late: dict[str, float] = {}
        for kind in ("county", "province"):  # the first round's draw verified again after every later round
            verified, late[kind], _ = timed(lambda: calls.verify(tids[kind][0]))  # noqa: B023
            assert verified["match"] is True, verified
            print(json.dumps({"kind": kind, "late_verify_s": round(late[kind], 3)}), flush=True)
        if args.profile:
            tid = open_task(rt, item, {})
            rt.target_draws.commit(PLANNER, tid, SOURCE)
            rt.target_draws.freeze(PLANNER, tid)
            prof = cProfile.Profile()
            prof.enable()
            rt.target_draws.draw_targets(PLANNER, tid, "581", SOURCE)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            prof = cProfile.Profile()
            prof.enable()
            cursor: str | None = None
            while True:
                page = rt.teams.drawn_list(PLANNER.actor, tid, cursor)
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(20)
            prof = cProfile.Profile()
            prof.enable()
            rt.target_draws.verify_draw(PLANNER.actor, tid)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        # The baseline last: the whole fold leaves its memory to this process.
        for kind in ("county", "province"):
            for r in range(min(args.fold_rounds, len(tids[kind]))):
                task = rt.task_opening.task(tids[kind][r])
                row = results[kind][r]
                pool, seconds, mib = timed(lambda: rt.target_draws.pools.pool_by_fold(task, row["position"]))  # noqa: B023
                assert pool_digest([p.id for p in pool.rows]) == row["digest"], kind
                del pool
                folds[kind].append((seconds, mib))
                print(json.dumps({"kind": kind, "fold_round": r, "fold_s": round(seconds, 2), "fold_mib": round(mib),
                                  "load": os.getloadavg()[0]}), flush=True)
        head = rt.runner.head()
    finally:
        stack.close()
        rt.close()
        if not args.keep:
            admin = sa.create_engine(args.server.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)'))
            admin.dispose()
    load = os.getloadavg()
    table = []
    summary: dict[str, Any] = {}
    for kind in ("county", "province"):
        rows = results[kind]

        def med(key: str, rows: list[dict[str, Any]] = rows) -> float:
            return S.median([float(x[key]) for x in rows])

        fold_s = S.median([s for s, _ in folds[kind]])
        fold_mib = max([m for _, m in folds[kind]], default=float("nan"))
        summary[kind] = {k: med(k) for k in rows[0] if k not in ("digest", "position")}
        summary[kind].update(fold_s=fold_s, fold_mib=fold_mib, late_verify_s=late[kind], loads=[x["load"] for x in rows])
        table += [
            [kind, "pool / selected", f"{int(med('pool')):,} / {int(med('selected')):,}", "", ""],
            [kind, "commit", round(med("commit_s"), 3), round(med("commit_mib")), ""],
            [kind, "freeze (as of the position)", round(med("freeze_s"), 3), round(med("freeze_mib")),
             round(fold_s / med("freeze_s"), 1) if folds[kind] else ""],
            *([[kind, "freeze (old: the whole fold)", round(fold_s, 3), round(fold_mib), 1.0]] if folds[kind] else []),
            [kind, "draw", round(med("draw_s"), 3), round(med("draw_mib")), ""],
            [kind, f"drawn list ({int(med('pages'))} pages): first / median / slowest",
             f"{med('page_first_s'):.3f} / {med('page_median_s'):.3f} / {med('page_max_s'):.3f}",
             round(med("pages_mib")), ""],
            [kind, "verify", round(med("verify_s"), 3), round(med("verify_mib")), ""],
            [kind, "verify the first round again, after the others", round(late[kind], 3), "", ""],
        ]
    S.print_table(f"a province's draw: {args.targets:,} targets, PostgreSQL, head {head:,}, medians of {args.rounds} "
                  f"rounds (fold: {args.fold_rounds}); load {load[0]:.2f}",
                  ["task", "step", "median s", "peak RSS MiB", "fold / new"], table)
    S.write_results("bench_province_draw", {"targets": args.targets, "rounds": args.rounds, "head": head,
                                            "results": results, "folds": folds, "summary": summary, "loadavg": load})


if __name__ == "__main__":
    main()
