"""The target draw as the server makes it, recording included, over a frozen pool of 1,000,000 targets.

    .venv/bin/python tests/bench/bench_draw_recorded.py [--pool 1000000] [--repeat 3] [--sqlite]

A task is frozen over a pool of ``--pool`` targets (lowercase UUID ids, 3 supervision classes x 4 risk classes,
as in bench_draw.py, quotas key 25%, general A 2% / B 5% / C 8% / D 20%, special 100%): the frozen pool is
stored as the server stores it, the seed committed. Timed (each ``--repeat`` times, a fresh task each time):

- ``Tasks.draw_targets``: read the secret seed and the stored frozen pool, draw, record the ``TargetsDrawn``
  event (with every selected id) in the event store, drop the seed and pool;
- ``random.sample`` of the same number of targets from the same pool, in the same run (the baseline:
  RATIO = draw_targets / random.sample).

Goal: draw_targets <= 3 s on this machine. PostgreSQL from DUALRANDOM_TEST_DATABASE_URL (default the local
test database), or a SQLite file with ``--sqlite``. Writes ``tests/bench/results/bench_draw_recorded.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as S

from domain.access import Actor
from domain.draw.sampler import commitment
from domain.tasks.task import Task
from services.application import CommandContext
from services.infra.settings import Settings
from services.runtime import Runtime
from services.usecases.target_draws import draw_seeds, frozen_pools

PLANNER = Actor("bench-planner", "hj-eeb", ("planner",))
QUOTA = {"key": dict.fromkeys("ABCD", 0.25), "general": {"A": 0.02, "B": 0.05, "C": 0.08, "D": 0.20},
         "special": dict.fromkeys("ABCD", 1.0)}


def pool(n: int, seed: int = 1) -> tuple[list[str], list[str], dict[str, int]]:
    rng = random.Random(seed)
    ids = sorted(str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n))
    strata = []
    for _ in ids:
        r = rng.random()
        cls = "general" if r < 0.85 else ("key" if r < 0.97 else "special")
        risk = rng.choices("ABCD", [40, 35, 18, 7])[0]
        strata.append(f"{cls}/{risk}")
    sizes: dict[str, int] = {}
    for s in strata:
        sizes[s] = sizes.get(s, 0) + 1
    quotas = {s: min(size, -(-int(QUOTA[s.split("/")[0]][s.split("/")[1]] * 1000 * size) // 1000))
              for s, size in sizes.items()}
    return ids, strata, quotas


def frozen_task(rt: Runtime, ids: list[str], strata: list[str], quotas: dict[str, int], n: int) -> uuid.UUID:
    seed = bytes(random.Random(n).getrandbits(8) for _ in range(32))
    # One year per run: the runs' draws do not overlap (overlap reporting costs time per overlapping target,
    # which a repeat of the same draw in one quarter would add to every later run).
    task = Task.open(number=f"{2023 + n}-{n:03d}", name="bench", lead="hj-eeb", period=f"{2023 + n}Q1",
                     category="general",
                     origin="ad_hoc", reason="bench", participants={"hj-eeb": ["item"]})
    task.commit_seed(commitment(seed), "bench 熵源")
    sizes = Counter(strata)
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    task.freeze_pool(0, digest, len(ids),
                     {s: {"pool_size": sizes.get(s, 0), "quota": q} for s, q in quotas.items()}, {})
    rt.app.record(CommandContext(actor=PLANNER), "bench", task)
    with rt.engine.begin() as conn:
        conn.execute(draw_seeds.insert().values(task_id=str(task.id), round=1, seed=seed.hex()))
        conn.execute(frozen_pools.insert().values(task_id=str(task.id), round=1, ids="\n".join(ids),
                                                  strata="\n".join(strata), weights="\n".join("1" for _ in ids),
                                                  off_site=""))
    return task.id


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sqlite", action="store_true")
    args = ap.parse_args()
    ids, strata, quotas = pool(args.pool)
    total = sum(quotas.values())
    ctx = S.fresh_sqlite() if args.sqlite else S.fresh_pg_schema(S.default_pg_url(), "drawrec")
    url = ctx.__enter__()
    tmp = Path("/tmp") / f"bench-drawrec-{uuid.uuid4().hex[:8]}"
    # no NATS: no checkpoint is published, so the draw's checkpoint gate is off (as in the test runtime)
    settings = replace(Settings(var_dir=tmp, relay_enabled=False, draw_checkpoint_gate=False),
                       database_url=url).with_secret()
    rt = Runtime(settings).open(with_nats=False)
    rows = []
    try:
        draws, samples = [], []
        for i in range(args.repeat):
            tid = frozen_task(rt, ids, strata, quotas, i + 1)
            rt.runner.catch_up()  # the server's projection thread would have applied the earlier draws by now
            t0 = time.perf_counter()
            done = rt.target_draws.draw_targets(CommandContext(actor=PLANNER), tid, f"bench-{i}", "bench 熵源")
            draws.append(time.perf_counter() - t0)
            assert done.body["selected"] == total, (done.body["selected"], total)
            rng = random.Random(i)
            t0 = time.perf_counter()
            random.Random.sample(rng, ids, total)
            samples.append(time.perf_counter() - t0)
        d, s = S.median(draws), S.median(samples)
        rows.append(["draw_targets (seed + stored pool + draw + record)", f"{d:.3f}", f"{min(draws):.3f}",
                     f"{d / s:.1f}"])
        rows.append(["random.sample (baseline)", f"{s:.3f}", f"{min(samples):.3f}", "1.0"])
        S.print_table(f"target draw over {args.pool:,} targets, {total:,} selected, {'SQLite' if args.sqlite else 'PostgreSQL'}",
                      ["what", "median s", "best s", "ratio to random.sample"], rows)
        print("runs:", ", ".join(f"{t:.2f}" for t in draws))
        print(f"goal draw_targets <= 3 s: {'met' if d <= 3 else 'NOT met'} (median {d:.2f} s)")
        S.write_results("bench_draw_recorded", {"machine": S.machine(), "pool": args.pool, "selected": total,
                                                "draw_targets_s": draws, "random_sample_s": samples,
                                                "ratio": d / s})
    finally:
        rt.close()
        ctx.__exit__(None, None, None)


if __name__ == "__main__":
    main()
