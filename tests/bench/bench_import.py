"""Import of N targets through ``DualRandom.import_entries`` vs a raw batched INSERT of the same rows.

    .venv/bin/python tests/bench/bench_import.py [--rows 100000] [--database-url URL] [--profile]

Measured, in one run on one fresh PostgreSQL schema (dropped afterwards):

- import: ``DualRandom.import_entries("target", rows, CommandContext(SYSTEM))`` with rows as a CSV/XLSX parse
  gives them (``(rownum, {column: text})``): validate every row, load existing entries, create the aggregates,
  store every event (with metadata) in one transaction. Then the same file again ("re-import": every row
  unchanged, nothing stored), which exercises load_many and the diff.
- raw: the same rows, same columns as text, into a plain table (credit_code primary key) with SQLAlchemy Core
  executemany in batches of 1000, one transaction; run before and after the import, their mean taken.

``--rounds`` (3): each round imports new rows (the log grows) with both baselines on the same rows beside it;
the medians of the rounds are reported, with each round's ratios and the load average after it.

RATIO = import rows/s / raw rows/s. Goal >= 0.3. Also ``raw COPY``: the same rows into the same table by COPY,
since the import stores by COPY too (the honest baseline; RATIO import/COPY, goal >= 0.2).

Phases of the import are timed by wrapping, for the run only: ``Target.validate_new`` (validation),
``Target.id_for`` (ids), ``load_many``, ``Target._create`` (aggregate creation), ``mapper.to_stored_event``
(serialisation), ``recorder.insert_events`` (the recorder's bulk insert), ``record`` (metadata + save, small
imports) and ``_import_streaming`` (an import of more than 5,000 rows: one pass that validates, loads, makes
and serialises chunk k+1 while a worker thread inserts chunk k, so the insert overlaps everything else). ``--profile`` adds one cProfile run (on ``--profile-rows`` rows, a fresh schema)
and prints the top 15 functions by cumulative and by own time.

Experiments (``--variant``, repeatable; they patch this process only, never the project's code) measured what
a change would gain before the project adopted it; the project now does all three itself (services/infra/recorder.py,
``DualRandom.load_many``, ``import_entries``), so they only swap in the bench's own versions:
``unnest-insert`` (typed-array ``INSERT ... SELECT FROM unnest(arrays) RETURNING id`` per 10,000), ``any-load``
(``originator_id = ANY(:uuid[])`` in chunks of 5,000), ``gc-off`` (cyclic garbage collector paused).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import io
import os
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as S

from domain.access import SYSTEM
from domain.directory import Target
from services.application import CommandContext, DualRandom

NAME = "bench_import"
COLUMNS = ["credit_code", "name", "address", "county", "industry", "supervision_class", "risk_class", "tags"]


def make_rows(n: int, first: int = 1) -> list[tuple[int, dict[str, str]]]:
    return [(i + 2, S.target_row(first + i)) for i in range(n)]  # row 1 is the header


# -- raw baseline ------------------------------------------------------------------------------------
def raw_insert(url: str, rows: list[tuple[int, dict[str, str]]], table_name: str, batch: int = 1000) -> float:
    engine = sa.create_engine(url)
    md = sa.MetaData()
    table = sa.Table(
        table_name, md,
        sa.Column("credit_code", sa.Text, primary_key=True),
        *[sa.Column(c, sa.Text) for c in COLUMNS[1:]],
        sa.Column("status", sa.Text),
    )
    md.create_all(engine)
    data = [{**r, "status": "active"} for _, r in rows]
    started = time.perf_counter()
    with engine.begin() as conn:
        for i in range(0, len(data), batch):
            conn.execute(table.insert(), data[i : i + batch])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def raw_copy(url: str, rows: list[tuple[int, dict[str, str]]], table_name: str) -> float:
    """The same rows into the same plain table by ``COPY ... FROM STDIN`` (psycopg's ``write_row``), one
    transaction: the honest baseline, since the import itself stores its events by COPY."""
    engine = sa.create_engine(url)
    md = sa.MetaData()
    sa.Table(table_name, md, sa.Column("credit_code", sa.Text, primary_key=True),
             *[sa.Column(c, sa.Text) for c in COLUMNS[1:]], sa.Column("status", sa.Text))
    md.create_all(engine)
    names = [*COLUMNS, "status"]
    started = time.perf_counter()
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table_name} ({', '.join(names)}) FROM STDIN") as copy:
            for _, r in rows:
                copy.write_row([*(r[c] for c in COLUMNS), "active"])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


# -- phase timing -------------------------------------------------------------------------------------
class Phases:
    """Accumulated wall time and call counts of wrapped callables (same thread: import is synchronous)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t0
                self.calls[name] += 1

        return timed


class instrumented:
    """Wrap the import's phases for the duration of a ``with`` block; restore everything after."""

    def __init__(self, app: DualRandom, phases: Phases) -> None:
        self.app = app
        self.p = phases
        self._saved: list[tuple[Any, str, Any, bool]] = []

    def _patch(self, owner: Any, attr: str, new: Any) -> None:
        had_own = attr in vars(owner) if isinstance(owner, type) else attr in owner.__dict__
        self._saved.append((owner, attr, vars(owner).get(attr) if isinstance(owner, type) else owner.__dict__.get(attr), had_own))
        setattr(owner, attr, new)

    def __enter__(self) -> Phases:
        p, app = self.p, self.app
        validate = Target.validate_new.__func__  # type: ignore[attr-defined]
        id_for = Target.id_for.__func__  # type: ignore[attr-defined]
        create = Target._create.__func__  # type: ignore[attr-defined]
        self._patch(Target, "validate_new", classmethod(p.wrap("validate", validate)))
        self._patch(Target, "id_for", classmethod(p.wrap("ids", id_for)))
        self._patch(Target, "_create", classmethod(p.wrap("create", create)))
        self._patch(app, "_load_many", p.wrap("load_many", app._load_many))
        self._patch(app, "record", p.wrap("store", app.record))
        self._patch(app, "_import_streaming", p.wrap("stream", app._import_streaming))
        self._patch(app.mapper, "to_stored_event", p.wrap("serialise", app.mapper.to_stored_event))
        self._patch(app.recorder, "insert_events", p.wrap("insert_events", app.recorder.insert_events))
        return p

    def __exit__(self, *exc: Any) -> None:
        for owner, attr, old, had_own in reversed(self._saved):
            if had_own:
                setattr(owner, attr, old)
            else:
                delattr(owner, attr)


def timed_import(
    app: DualRandom, rows: list[tuple[int, dict[str, str]]], variants: Sequence[str] = ()
) -> tuple[float, Any, Phases]:
    phases = Phases()
    ctx = CommandContext(SYSTEM, correlation_id="bench-import")
    with instrumented(app, phases):
        if "gc-off" in variants:
            gc.disable()
        try:
            started = time.perf_counter()
            result = app.import_entries("target", rows, ctx)
            elapsed = time.perf_counter() - started
        finally:
            gc.enable()
    return elapsed, result, phases


# -- experiments: what a faster recorder / load_many would gain (this process only) -------------------
VARIANTS = ("unnest-insert", "any-load", "gc-off")


def apply_variants(app: DualRandom, variants: Sequence[str]) -> None:
    if "unnest-insert" in variants:
        _unnest_insert(app)
    if "any-load" in variants:
        _any_load(app)


def _unnest_insert(app: DualRandom) -> None:
    """Events as four arrays in one statement per 10,000: no ORM objects, a short (cached) SQL text."""
    rec: Any = app.recorder
    table = rec.events_record_cls.__table__.name
    stmt = sa.text(
        f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
        "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:versions AS bigint[]), CAST(:topics AS text[]), "
        "CAST(:states AS bytea[])) RETURNING id"
    )

    def _insert_stored_events(session: Any, stored_events: Sequence[Any], **_: Any) -> list[int]:
        rec._lock_table(session)  # same serialisation as the library: positions commit in order
        ids: list[int] = []
        for i in range(0, len(stored_events), 10_000):
            chunk = stored_events[i : i + 10_000]
            result = session.execute(stmt, {
                "ids": [e.originator_id for e in chunk], "versions": [e.originator_version for e in chunk],
                "topics": [e.topic for e in chunk], "states": [e.state for e in chunk],
            })
            # Under the table lock the sequence hands out ascending ids in row order.
            ids.extend(sorted(r[0] for r in result))
        rec._notify_channel(session)
        return ids

    rec._insert_stored_events = _insert_stored_events


def _any_load(app: DualRandom) -> None:
    """load_many with one array parameter per 5,000 ids (short SQL text) and plain rows (no ORM)."""
    from eventsourcing.persistence import StoredEvent

    rec: Any = app.recorder
    table = rec.events_record_cls.__table__.name
    stmt = sa.text(
        f"SELECT originator_id, originator_version, topic, state FROM {table} "
        "WHERE originator_id = ANY(CAST(:ids AS uuid[])) ORDER BY originator_id, originator_version"
    )
    original = app.load_many

    def load_many(cls: Any, ids: Any) -> dict[Any, Any]:
        ids = list(ids)
        found: dict[Any, Any] = {}
        for start in range(0, len(ids), 5000):
            with rec.transaction(commit=False) as session:
                rows = session.execute(stmt, {"ids": ids[start : start + 5000]}).all()
            for oid, version, topic, state in rows:
                ev: Any = app.mapper.to_domain_event(StoredEvent(oid, version, topic, bytes(state)))
                found[ev.originator_id] = ev.mutate(found.get(ev.originator_id))
        if any(not isinstance(a, cls) for a in found.values()):
            return original(cls, ids)  # let the project's version raise its error
        return found

    app.load_many = load_many  # type: ignore[method-assign]


def phase_rows(total: float, ph: Phases) -> list[list[Any]]:
    s = ph.seconds
    if ph.calls["stream"]:  # a large import: one pass, chunk by chunk, the inserts on a worker thread
        main = s["validate"] + s["ids"] + s["load_many"] + s["create"] + s["serialise"]
        out: list[tuple[str, float, int]] = [
            ("one streamed pass (main thread | insert thread)", s["stream"], ph.calls["stream"]),
            ("  validation (validate_new)", s["validate"], ph.calls["validate"]),
            ("  ids (id_for, uuid5)", s["ids"], ph.calls["ids"]),
            ("  load_many (existing, per chunk)", s["load_many"], ph.calls["load_many"]),
            ("  aggregate creation (_create)", s["create"], ph.calls["create"]),
            ("  serialise (to_stored_event)", s["serialise"], ph.calls["serialise"]),
            ("  rest of the main thread (loops, stamping, waits)", s["stream"] - main, 0),
            ("  insert_events (worker thread, overlapped)", s["insert_events"], ph.calls["insert_events"]),
            ("rest of import_entries", total - s["stream"], 0),
            ("total", total, 1),
        ]
        return [[name, secs, f"{100 * secs / total:.1f}%" if total else "-", calls] for name, secs, calls in out]
    inside_store = s["serialise"] + s["insert_events"]
    named = s["validate"] + s["ids"] + s["load_many"] + s["create"] + s["store"]
    rows: list[tuple[str, float, int]] = [
        ("validation (validate_new)", s["validate"], ph.calls["validate"]),
        ("ids (id_for, uuid5)", s["ids"], ph.calls["ids"]),
        ("load_many (existing)", s["load_many"], ph.calls["load_many"]),
        ("aggregate creation (_create)", s["create"], ph.calls["create"]),
        ("record: metadata + save", s["store"], ph.calls["store"]),
        ("  of which serialise (to_stored_event)", s["serialise"], ph.calls["serialise"]),
        ("  of which insert_events (bulk insert)", s["insert_events"], ph.calls["insert_events"]),
        ("  of which the rest of save/record", s["store"] - inside_store, 0),
        ("rest of import_entries (loops, dicts)", total - named, 0),
        ("total", total, 1),
    ]
    return [[name, secs, f"{100 * secs / total:.1f}%" if total else "-", calls] for name, secs, calls in rows]


def profile_import(
    base: str, rows: list[tuple[int, dict[str, str]]], variants: Sequence[str], top: int = 15
) -> tuple[str, list[dict[str, Any]]]:
    with S.fresh_pg_schema(base, prefix="benchprof") as url:
        app = DualRandom(url)
        apply_variants(app, variants)
        ctx = CommandContext(SYSTEM, correlation_id="bench-import-profile")
        prof = cProfile.Profile()
        prof.enable()
        app.import_entries("target", rows, ctx)
        prof.disable()
        app.close()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).sort_stats("cumulative")
    stats.print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative")
    listing = []
    for func in stats.fcn_list[:top]:  # type: ignore[attr-defined]
        _cc, nc, tt, ct, _ = stats.stats[func]  # type: ignore[attr-defined]
        listing.append({"function": f"{func[0]}:{func[1]}({func[2]})", "ncalls": nc, "tottime": round(tt, 3),
                        "cumtime": round(ct, 3)})
    return out.getvalue(), listing


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--database-url", default=None, help=f"PostgreSQL base URL (default ${S.PG_ENV} or {S.PG_DEFAULT})")
    p.add_argument("--rounds", type=int, default=3, help="rounds (new rows each; medians reported)")
    p.add_argument("--no-reimport", action="store_true", help="skip importing the same rows a second time")
    p.add_argument("--profile", action="store_true", help="also run the import once under cProfile")
    p.add_argument("--profile-rows", type=int, default=None, help="rows for the cProfile run (default --rows)")
    p.add_argument("--variant", action="append", choices=VARIANTS, default=[],
                   help="experiment: measure the import with this change applied in-process (repeatable)")
    args = p.parse_args()
    base = args.database_url or S.default_pg_url()

    rounds: list[dict[str, Any]] = []
    reimport = None
    with S.fresh_pg_schema(base) as url:
        app = DualRandom(url)
        apply_variants(app, args.variant)
        for r in range(args.rounds):
            # New rows each round (the log grows as a province's does); the baselines on the same rows, beside.
            rows = make_rows(args.rows, first=1 + r * args.rows)
            raw1 = raw_insert(url, rows, f"raw_targets_{r}_1")
            copy1 = raw_copy(url, rows, f"raw_targets_copy_{r}_1")
            imp_s, imp_result, imp_ph = timed_import(app, rows, args.variant)
            if imp_result.created != args.rows:
                raise SystemExit(f"the import created {imp_result.created} of {args.rows} rows")
            if r == 0 and not args.no_reimport:
                re_s, re_result, re_ph = timed_import(app, rows, args.variant)
                if re_result.unchanged != args.rows or re_result.events:
                    raise SystemExit(f"the re-import was not a no-op: {re_result}")
                reimport = (re_s, re_ph)
            raw2 = raw_insert(url, rows, f"raw_targets_{r}_2")
            copy2 = raw_copy(url, rows, f"raw_targets_copy_{r}_2")
            rounds.append({"raw_s": (raw1 + raw2) / 2, "copy_s": (copy1 + copy2) / 2, "import_s": imp_s,
                           "phases": imp_ph, "load": os.getloadavg()[0], "position": imp_result.position})
            print(f"round {r + 1}: import {args.rows / imp_s:,.0f} rows/s, COPY {args.rows / rounds[-1]['copy_s']:,.0f}"
                  f" rows/s, import/COPY {rounds[-1]['copy_s'] / imp_s:.3f} (load {rounds[-1]['load']:.2f})",
                  file=sys.stderr)
        app.close()
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM dualrandom_events")).scalar()
        engine.dispose()

    raw_s = S.median([r["raw_s"] for r in rounds])
    copy_s = S.median([r["copy_s"] for r in rounds])
    imp_s = S.median([r["import_s"] for r in rounds])
    ratio = raw_s / imp_s
    copy_ratio = copy_s / imp_s
    table = [
        ["raw INSERT, batches of 1000 (mean of 2 a round)", args.rows / raw_s, raw_s],
        ["raw COPY (the import's own way; mean of 2 a round)", args.rows / copy_s, copy_s],
        ["import_entries (new rows)", args.rows / imp_s, imp_s],
    ]
    if reimport:
        table.append(["import_entries again (all unchanged; round 1)", args.rows / reimport[0], reimport[0]])
    label = f" with {', '.join(args.variant)}" if args.variant else ""
    S.print_table(f"{NAME}: {args.rows:,} targets on PostgreSQL{label}, medians of {args.rounds} rounds",
                  ["what", "rows/s", "seconds"], table)
    loads = "; ".join(f"{r['load']:.2f}" for r in rounds)
    print(f"\nRATIO import/raw: {ratio:.3f}  (goal >= 0.3: {'met' if ratio >= 0.3 else 'NOT met'}; rounds "
          + ", ".join(f"{r['raw_s'] / r['import_s']:.3f}" for r in rounds) + ")")
    print(f"RATIO import/COPY: {copy_ratio:.3f}  (goal >= 0.2: {'met' if copy_ratio >= 0.2 else 'NOT met'}; rounds "
          + ", ".join(f"{r['copy_s'] / r['import_s']:.3f}" for r in rounds) + f"; load average after each {loads})")
    print(f"events stored: {stored:,}; position {rounds[-1]['position']}")
    first = rounds[0]
    S.print_table("phases of the import (new rows, round 1)", ["phase", "seconds", "share", "calls"],
                  phase_rows(first["import_s"], first["phases"]))
    if reimport:
        S.print_table("phases of the re-import (unchanged)", ["phase", "seconds", "share", "calls"],
                      phase_rows(reimport[0], reimport[1]))
    results: dict[str, Any] = {"params": vars(args), "goal": 0.3, "copy_goal": 0.2}
    results.update({
        "ratio": ratio,
        "copy_ratio": copy_ratio,
        "rounds": [{k: v for k, v in r.items() if k != "phases"} for r in rounds],
        "raw_rows_per_s": args.rows / raw_s,
        "copy_rows_per_s": args.rows / copy_s,
        "import_rows_per_s": args.rows / imp_s,
        "import_phases": dict(first["phases"].seconds),
        "reimport_seconds": reimport[0] if reimport else None,
        "reimport_phases": dict(reimport[1].seconds) if reimport else None,
        "events_stored": stored,
    })
    if args.profile:
        n = args.profile_rows or args.rows
        text, listing = profile_import(base, rows[:n], args.variant)
        print(f"\ncProfile of one import of {n:,} rows (profiling slows it down), top 15 by cumulative, then own time:")
        print(text)
        results["profile"] = {"rows": n, "top_cumulative": listing}
    path = S.write_results(NAME + "".join(f"_{v}" for v in sorted(args.variant)), results)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
