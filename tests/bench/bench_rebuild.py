"""Rebuild of every read model over a long log vs reading and deserialising the same log, on PostgreSQL.

    .venv/bin/python tests/bench/bench_rebuild.py                     # 1,000,000 events
    .venv/bin/python tests/bench/bench_rebuild.py --events 100000     # smaller
    # options: --batch-size 10000, --rounds N, --processes 1|2, --also-in-process, --per-projection, --profile

Setup (timed, not the subject): a fresh schema; N stored events COPYed into ``dualrandom_events`` in the store's own
format (``bench_audit.stored_events``: targets registered, then risk class changed, tagged, details updated: 1 to 4
events per aggregate, each with ``_meta``); the live read models created empty; ``VACUUM ANALYZE``.

Measured, in the same run, on the same database:

- **read + deserialise (baseline)**: the whole log read in pages of ``--batch-size`` through the runner's own reader
  (plain rows from the events table, the next page fetched in a thread while the current one is decoded, as the
  rebuild does) and every event decoded to its domain event (``mapper.to_domain_event``): no projection work.
- **rebuild**: ``ProjectionRunner.rebuild()`` of every read model of ``all_projections()`` (what ``dualrandom
  projections rebuild`` runs): copies built from position 0 reading the log once for all of them, then each swapped
  in. Split into building the copies and the swaps.
- **per read model** (diagnosis): ``build_copies([name])`` of each alone, and the copy dropped.

RATIO = baseline seconds / rebuild seconds (1.0: a rebuild costs no more than reading the log). Goal >= 0.5.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as S
import bench_audit as A

from projections.runner import Projection, ProjectionRunner, _Prefetch
from services.application import DualRandom
from services.cli.projections import rebuild as rebuild_all
from services.infra.store import create_engine
from services.runtime import all_projections

NAME = "bench_rebuild"


def read_and_decode(runner: ProjectionRunner, batch_size: int) -> tuple[float, int]:
    """The baseline: every event read and decoded, nothing applied."""
    decode = runner.app.mapper.to_domain_event
    started = time.perf_counter()
    reader = _Prefetch(runner, batch_size)
    position = count = 0
    try:
        while batch := reader.next(position):
            for n in batch:
                decode(n)
            count += len(batch)
            position = batch[-1].id
    finally:
        reader.close()
    return time.perf_counter() - started, count


def rebuild(runner: ProjectionRunner, url: str, batch_size: int, processes: int) -> dict[str, float]:
    """What ``dualrandom projections rebuild`` runs; the swaps (final catch-up + rename) are timed apart."""
    swaps: list[float] = []
    swap = runner.swap

    def timed_swap(copy: Projection, batch_size: int | None = None) -> int:
        t = time.perf_counter()
        try:
            return swap(copy, batch_size=batch_size)
        finally:
            swaps.append(time.perf_counter() - t)

    runner.swap = timed_swap  # type: ignore[method-assign]  # timed for this run, deleted below
    started = time.perf_counter()
    try:
        rebuild_all(runner, url, batch_size=batch_size, processes=processes)
    finally:
        del runner.swap
    total = time.perf_counter() - started
    return {"build_s": total - sum(swaps), "swap_s": sum(swaps), "total_s": total}


def one_alone(runner: ProjectionRunner, name: str, batch_size: int) -> float:
    started = time.perf_counter()
    (copy,) = runner.build_copies([name], suffix="__bench", batch_size=batch_size)
    elapsed = time.perf_counter() - started
    runner.drop_copy(copy)
    return elapsed


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in ("dualrandom_events", "rm_target", "audit_leaves")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--database-url", default=None, help=f"PostgreSQL base URL (default ${S.PG_ENV} or {S.PG_DEFAULT})")
    p.add_argument("--batch-size", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=1, help="baseline/rebuild pairs (medians reported)")
    p.add_argument("--processes", type=int, default=2, help="worker processes building the copies (1: in process)")
    p.add_argument("--also-in-process", action="store_true", help="also one rebuild with --processes 1 (diagnosis)")
    p.add_argument("--per-projection", action="store_true", help="also build each read model alone (diagnosis)")
    p.add_argument("--profile", action="store_true", help="one more rebuild under cProfile (top functions)")
    args = p.parse_args()
    base = args.database_url or S.default_pg_url()
    n = args.events
    results: dict[str, Any] = {"params": vars(args), "goal": {"ratio": 0.5}}
    with S.fresh_pg_schema(base) as url:
        app = DualRandom(url)
        engine = create_engine(url, pool_size=4)
        runner = ProjectionRunner(app, engine, all_projections())
        runner.setup()
        print(f"{NAME}: {n:,} events on PostgreSQL, read models {[q.name for q in runner.projections]}", flush=True)
        t = time.perf_counter()
        A.bulk_insert(engine, n)
        insert_s = time.perf_counter() - t
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        baselines: list[float] = []
        rebuilds: list[dict[str, float]] = []
        for r in range(args.rounds):
            seconds, seen = read_and_decode(runner, args.batch_size)
            if seen != n:
                raise SystemExit(f"read {seen} events, not {n}")
            baselines.append(seconds)
            print(f"  round {r + 1}: read + deserialise {seconds:.1f} s ({n / seconds:,.0f} events/s)", flush=True)
            rebuilds.append(rebuild(runner, url, args.batch_size, args.processes))
            print(f"  round {r + 1}: rebuild {rebuilds[-1]['total_s']:.1f} s (build {rebuilds[-1]['build_s']:.1f}, "
                  f"swap {rebuilds[-1]['swap_s']:.1f})", flush=True)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))
        stored = counts(engine)
        if stored["audit_leaves"] != n or stored["dualrandom_events"] != n:
            raise SystemExit(f"wrong counts after the rebuild: {stored}")
        alone: dict[str, float] = {}
        if args.also_in_process:
            alone["all, in one process"] = rebuild(runner, url, args.batch_size, 1)["total_s"]
            print(f"  all read models in one process: {alone['all, in one process']:.1f} s", flush=True)
        if args.per_projection:
            for q in runner.projections:
                alone[f"{q.name} alone"] = one_alone(runner, q.name, args.batch_size)
                print(f"  {q.name} alone: {alone[f'{q.name} alone']:.1f} s", flush=True)
        profile_text = ""
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            rebuild(runner, url, args.batch_size, 1)
            prof.disable()
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            stats.sort_stats("cumulative").print_stats(25)
            stats.sort_stats("tottime").print_stats(20)
            profile_text = out.getvalue()
            print(profile_text)
        engine.dispose()
        app.close()

    baseline_s = S.median(baselines)
    rebuild_s = S.median([r["total_s"] for r in rebuilds])
    ratio = baseline_s / rebuild_s
    rows: list[list[Any]] = [
        ["bulk insert (COPY), setup", n / insert_s, insert_s],
        ["read + deserialise (baseline)", n / baseline_s, baseline_s],
        [f"rebuild all read models ({args.processes} processes)", n / rebuild_s, rebuild_s],
        ["  of which: build the copies", n / S.median([r["build_s"] for r in rebuilds]),
         S.median([r["build_s"] for r in rebuilds])],
        ["  of which: final catch-up + swaps", float("nan"), S.median([r["swap_s"] for r in rebuilds])],
        *[[f"  {k} (diagnosis)", n / v, v] for k, v in alone.items()],
    ]
    S.print_table(f"{NAME}: {n:,} events, batches of {args.batch_size:,}", ["what", "events/s", "s"], rows)
    print(f"\nRATIO baseline / rebuild = {ratio:.2f} (goal >= 0.5); rows after: {stored}")
    results.update(insert_s=insert_s, baselines_s=baselines, rebuilds=rebuilds, alone_s=alone, counts=stored,
                   ratio=ratio, profile=profile_text[:20000])
    print(f"results: {S.write_results(NAME, results)}")


if __name__ == "__main__":
    main()
