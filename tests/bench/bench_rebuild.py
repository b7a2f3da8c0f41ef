"""Rebuild of every read model over a long log vs reading and deserialising the same log, on PostgreSQL.

    .venv/bin/python tests/bench/bench_rebuild.py                     # 1,000,000 events
    .venv/bin/python tests/bench/bench_rebuild.py --events 100000     # smaller
    .venv/bin/python tests/bench/bench_rebuild.py --database province --rounds 3   # a log made by province.py
    # options: --batch-size 10000, --rounds N, --processes 1|2, --also-in-process, --per-projection, --profile,
    #          --cold-catch-up, --per-event-catch-up

Setup (timed, not the subject): a fresh schema; N stored events COPYed into ``dualrandom_events`` in the store's own
format (``bench_audit.stored_events``: targets registered, then risk class changed, tagged, details updated: 1 to 4
events per aggregate, each with ``_meta``); the live read models created empty; ``VACUUM ANALYZE``.

With ``--database NAME`` the log is the one already in that database (``tests/bench/province.py --no-catch-up``
makes a province's directory log: registrations and update rounds); its read models are dropped and made again in
every round, and nothing else of it is changed.

Measured, in the same run, on the same database:

- **read + decode, same decoders, same cores (the honest baseline)**: the processes of the rebuild (its groups of
  read models, ``services.cli.projections._groups``), each reading the whole log in pages of ``--batch-size``
  through the runner's reader and decoding every event its read models take with the decoders the rebuild uses
  (``_events_for``: the fast decoder, and for ``stored_topics`` the read model's own stored-state decoder); no rows
  are made or written. RATIO2 = its seconds / the rebuild's (goal >= 0.6).
- **read + deserialise (baseline)**: the whole log read in pages of ``--batch-size`` through the runner's own reader
  (plain rows from the events table, the next page fetched in a thread while the current one is decoded, as the
  rebuild does) and every event decoded to its domain event (``mapper.to_domain_event``): no projection work.
- **rebuild**: ``ProjectionRunner.rebuild()`` of every read model of ``all_projections()`` (what ``dualrandom
  projections rebuild`` runs): copies built from position 0 reading the log once for all of them, then each swapped
  in. Split into building the copies and the swaps.
- **per read model** (diagnosis): ``build_copies([name])`` of each alone, and the copy dropped.

- **cold catch-up** (``--cold-catch-up``): the read models dropped (every position 0, as a new replica over a
  restored log) and ``ProjectionRunner.catch_up()`` with ``bulk_lag`` and ``bulk`` as the server sets them
  (``DUALRANDOM_PROJECTIONS_BULK_LAG``, default 100,000; ``services.rebuild.rebuild``): the bulk path. With
  ``--per-event-catch-up`` also once event by event (``bulk_lag=0``, batches of 1,000: what catch-up did before).

RATIO = baseline seconds / rebuild seconds (1.0: a rebuild costs no more than reading the log). Goal >= 0.5.
Peak RSS: this process's and its children's (``getrusage``), in MB. Load averages are printed beside each figure.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import multiprocessing
import os
import pstats
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as S
import bench_audit as A

from projections.runner import Projection, ProjectionRunner, _Prefetch, positions
from services.application import DualRandom
from services.cli.projections import _groups
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


def _stored_decoder(name: str) -> Any:
    """The decoder a read model applies to the events it gets in their stored form (``stored_topics``)."""
    if name == "directory":
        from projections.directory.projection import _DECODERS

        return lambda n: _DECODERS[n.topic](n.state)
    if name == "execution":
        from projections.execution.projection import _READ_NAMED_ONLY

        return lambda n: _READ_NAMED_ONLY(n.state)
    return None


def _decode_group(url: str, names: list[str], batch_size: int) -> None:
    """In a child process: read the whole log and decode what the read models ``names`` take, as their rebuild
    does (``_events_for``, then each stored state with the read model's own decoder); no rows."""
    app = DualRandom(url)
    engine = create_engine(url, pool_size=2)
    projections = [p for p in all_projections() if p.name in names]
    runner = ProjectionRunner(app, engine, projections)
    stored = {p.name: _stored_decoder(p.name) for p in projections}
    from eventsourcing.persistence import Notification

    reader = _Prefetch(runner, batch_size)
    position = 0
    try:
        while batch := reader.next(position):
            decoded: list[Any] = [None] * len(batch)
            for p in projections:
                if getattr(p, "stored_events", False):
                    continue  # the audit tree takes the stored events as read
                decode = stored[p.name]
                for _, ev in runner._events_for(p, batch, decoded):
                    if decode is not None and type(ev) is Notification:
                        decode(ev)
            position = batch[-1].id
    finally:
        reader.close()
        engine.dispose()
        app.close()


def read_and_decode_like_the_rebuild(runner: ProjectionRunner, url: str, batch_size: int, processes: int) -> float:
    """The honest baseline: the rebuild's groups of read models, in as many processes, reading and decoding only."""
    groups = [g for g in _groups(runner.projections) if g] if processes > 1 else [[p.name for p in runner.projections]]
    ctx = multiprocessing.get_context("fork")
    started = time.perf_counter()
    children = [ctx.Process(target=_decode_group, args=(url, g, batch_size)) for g in groups]
    for c in children:
        c.start()
    for c in children:
        c.join()
    if any(c.exitcode != 0 for c in children):
        raise SystemExit("a decoding process failed")
    return time.perf_counter() - started


def forget_read_models(runner: ProjectionRunner) -> None:
    """Every read model dropped and made again empty, every position 0 (a new replica over a restored log)."""
    with runner.engine.begin() as conn:
        for p in runner.projections:
            p.metadata.drop_all(conn)
        conn.execute(positions.delete())
    runner.setup()


def cold_catch_up(runner: ProjectionRunner, url: str, bulk_lag: int, batch_size: int = 1000) -> float:
    """A starting server's catch-up over read models at position 0 (its runner as ``Runtime`` makes it)."""
    forget_read_models(runner)
    with runner.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE dualrandom_events"))
    cold = ProjectionRunner(runner.app, runner.engine, runner.projections, batch_size=batch_size, bulk_lag=bulk_lag)
    cold.bulk = lambda names: rebuild_all(cold, url, names)
    started = time.perf_counter()
    cold.catch_up()
    return time.perf_counter() - started


def peak_rss_mb() -> dict[str, float]:
    return {"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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


@contextlib.contextmanager
def the_log(args: argparse.Namespace) -> Iterator[tuple[str, float]]:
    """The database URL holding the log, and the seconds its setup took (a synthetic log in a fresh schema, or
    ``--database``'s as it is)."""
    base = args.database_url or S.default_pg_url()
    if args.database:
        yield base.rsplit("/", 1)[0] + "/" + args.database, 0.0
        return
    with S.fresh_pg_schema(base) as url:
        engine = create_engine(url, pool_size=2)
        ProjectionRunner(DualRandom(url), engine, all_projections()).setup()
        t = time.perf_counter()
        A.bulk_insert(engine, args.events)
        insert_s = time.perf_counter() - t
        engine.dispose()
        yield url, insert_s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--database", default=None, help="an existing database whose log to use (tests/bench/province.py)")
    p.add_argument("--database-url", default=None, help=f"PostgreSQL base URL (default ${S.PG_ENV} or {S.PG_DEFAULT})")
    p.add_argument("--batch-size", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=3, help="rounds of every measure (medians reported)")
    p.add_argument("--processes", type=int, default=2, help="worker processes building the copies (1: in process)")
    p.add_argument("--cold-catch-up", action="store_true", help="also a cold catch-up (bulk path) in every round")
    p.add_argument("--bulk-lag", type=int, default=100_000, help="the cold catch-up's bulk_lag")
    p.add_argument("--per-event-catch-up", action="store_true", help="also one cold catch-up event by event")
    p.add_argument("--also-in-process", action="store_true", help="also one rebuild with --processes 1 (diagnosis)")
    p.add_argument("--per-projection", action="store_true", help="also build each read model alone (diagnosis)")
    p.add_argument("--profile", action="store_true", help="one more rebuild under cProfile (top functions)")
    args = p.parse_args()
    results: dict[str, Any] = {"params": vars(args), "goal": {"ratio": 0.5, "ratio_same_decoders_and_cores": 0.6}}
    with the_log(args) as (url, insert_s):
        app = DualRandom(url)
        engine = create_engine(url, pool_size=4)
        runner = ProjectionRunner(app, engine, all_projections())
        runner.setup()
        n = runner.head()
        print(f"{NAME}: {n:,} events on PostgreSQL, read models {[q.name for q in runner.projections]}", flush=True)
        forget_read_models(runner)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        measures: dict[str, list[tuple[float, str]]] = {}

        def measured(r: int, what: str, seconds: float) -> None:
            measures.setdefault(what, []).append((seconds, load()))
            print(f"  round {r + 1}: {what} {seconds:.1f} s ({n / seconds:,.0f} events/s; load {load()})", flush=True)

        rebuilds: list[dict[str, float]] = []
        for r in range(args.rounds):
            seconds, seen = read_and_decode(runner, args.batch_size)
            if seen != n:
                raise SystemExit(f"read {seen} events, not {n}")
            measured(r, "read + deserialise (baseline)", seconds)
            measured(r, "read + decode, same decoders and cores",
                     read_and_decode_like_the_rebuild(runner, url, args.batch_size, args.processes))
            rebuilds.append(rebuild(runner, url, args.batch_size, args.processes))
            measured(r, f"rebuild all read models ({args.processes} processes)", rebuilds[-1]["total_s"])
            print(f"    build {rebuilds[-1]['build_s']:.1f} s, swap {rebuilds[-1]['swap_s']:.1f} s", flush=True)
            if args.cold_catch_up:
                measured(r, "cold catch-up, bulk path", cold_catch_up(runner, url, args.bulk_lag))
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))
        if args.per_event_catch_up:
            measured(args.rounds, "cold catch-up, event by event (before)", cold_catch_up(runner, url, 0))
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

    rows: list[list[Any]] = []
    if insert_s:
        rows.append(["bulk insert (COPY), setup", n / insert_s, insert_s, "", ""])
    for what, values in measures.items():
        seconds = S.median([v for v, _ in values])
        rows.append([what, n / seconds, seconds, len(values), "; ".join(f for _, f in values)])
    rows.append(["  rebuild: build the copies (median)", float("nan"), S.median([x["build_s"] for x in rebuilds]), "", ""])
    rows.append(["  rebuild: final catch-up + swaps (median)", float("nan"),
                 S.median([x["swap_s"] for x in rebuilds]), "", ""])
    rows += [[f"  {k} (diagnosis)", n / v, v, 1, ""] for k, v in alone.items()]
    S.print_table(f"{NAME}: {n:,} events, batches of {args.batch_size:,}",
                  ["what", "events/s", "s (median)", "rounds", "load average after each"], rows)
    rebuild_s = S.median([x["total_s"] for x in rebuilds])
    ratio = S.median([v for v, _ in measures["read + deserialise (baseline)"]]) / rebuild_s
    ratio2 = S.median([v for v, _ in measures["read + decode, same decoders and cores"]]) / rebuild_s
    rss = peak_rss_mb()
    print(f"\nRATIO baseline / rebuild = {ratio:.2f} (goal >= 0.5); RATIO2 same decoders and cores / rebuild = "
          f"{ratio2:.2f} (goal >= 0.6); peak RSS MB {rss}; rows after: {stored}")
    results.update(events=n, insert_s=insert_s, measures=measures, rebuilds=rebuilds, alone_s=alone, counts=stored,
                   ratio=ratio, ratio_same_decoders_and_cores=ratio2, peak_rss_mb=rss, profile=profile_text[:20000])
    print(f"results: {S.write_results(NAME, results)}")


if __name__ == "__main__":
    main()
