"""Re-import time against history length, with and without aggregate heads (``services/infra/heads.py``).

    .venv/bin/python tests/bench/bench_reimport.py [--rows 20000] [--histories 1,4,8] [--rounds 3] [--sqlite]

One fresh PostgreSQL schema (or SQLite file). N targets are imported, then changed by whole-file imports until
every entry has a history of H events, for each H of ``--histories``. At each H the same file is imported again,
unchanged (nothing stored: every entry reloaded and compared), ``--rounds`` times each way, alternating:

- ``heads``: as the server does it (each entry from its head and the events after it);
- ``replay``: the heads table emptied first, so every entry is replayed from all its events (the path before
  heads). An unchanged re-import writes the heads back, so each ``replay`` round empties the table again.

Reported per H: the median seconds of each, and RATIO = replay / heads. With heads the time should not grow with
H (the goal: re-import time independent of history length); without, it grows about linearly. Load averages
printed at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import _support as S

from domain.access import SYSTEM
from services.application import CommandContext, DualRandom

RISKS = "ABCD"


def _rows(n: int, version: int) -> list[tuple[int, dict[str, str]]]:
    rows = []
    for i in range(n):
        row = S.target_row(i)
        row["risk_class"] = RISKS[version % 4]  # every import of a new version changes every row
        row["name"] = f"{row['name']}（第{version}版）"
        rows.append((i + 2, row))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--histories", default="1,4,8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    histories = sorted(int(h) for h in args.histories.split(","))
    print(f"loadavg at start: {[round(x, 2) for x in os.getloadavg()]}", flush=True)
    db = S.fresh_sqlite() if args.sqlite else S.fresh_pg_schema(args.database_url or S.default_pg_url())
    results = []
    with db as url:
        app = DualRandom(url)
        ctx = CommandContext(SYSTEM)
        version = 0
        for h in histories:
            while version < h:
                version += 1
                app.import_entries("target", _rows(args.rows, version), ctx)
            same = _rows(args.rows, version)
            timings: dict[str, list[float]] = {"heads": [], "replay": []}
            for _ in range(args.rounds):
                for way in ("replay", "heads"):
                    if way == "replay":
                        with app.heads.engine.begin() as conn:
                            conn.execute(app.heads.table.delete())
                    else:
                        app.import_entries("target", same, ctx)  # (writes the heads back after a replay round)
                    started = time.perf_counter()
                    result = app.import_entries("target", same, ctx)
                    timings[way].append(time.perf_counter() - started)
                    assert result.events == 0 and result.unchanged == args.rows, result
            heads, replay = statistics.median(timings["heads"]), statistics.median(timings["replay"])
            results.append((h, heads, replay))
            print(f"history {h}: heads {heads:.2f} s, replay {replay:.2f} s, RATIO {replay / heads:.2f}", flush=True)
        app.close()
    backend = "sqlite" if args.sqlite else "postgresql"
    print(f"{backend}, {args.rows:,} rows, medians of {args.rounds} rounds:")
    base = results[0][1]
    for h, heads, replay in results:
        print(f"  history {h:>2}: heads {heads:6.2f} s ({heads / base:.2f}x history {results[0][0]}), "
              f"replay {replay:6.2f} s, replay/heads {replay / heads:.2f}")
    print(f"loadavg at end: {[round(x, 2) for x in os.getloadavg()]}")


if __name__ == "__main__":
    main()
