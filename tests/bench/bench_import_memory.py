"""Peak memory of a streamed import: a generated CSV of N targets imported through ``iter_file`` and
``DualRandom.import_entries`` in a child process, whose peak RSS (``VmHWM``) is reported.

    .venv/bin/python tests/bench/bench_import_memory.py [--rows 100000 ...] [--database-url URL | --sqlite]

Each size runs in a fresh process on a fresh database (a PostgreSQL schema dropped afterwards, or a SQLite
file): the peak is the whole process (interpreter, libraries, the window of rows in flight, the set of keys).
``tests/integration/test_import_memory.py`` runs the same measurement with a ceiling.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as S

COLUMNS = ["credit_code", "name", "address", "county", "industry", "supervision_class", "risk_class", "tags"]

CHILD = """
import json, sys, time
from domain.access import SYSTEM
from services.application import CommandContext, DualRandom
from services.infra.imports import iter_file

def hwm_kib():  # this process's peak RSS (ru_maxrss would count a big parent's: Linux keeps it across exec)
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1])

path, url = sys.argv[1], sys.argv[2]
app = DualRandom(url)
app.recorder.max_notification_id()
base = hwm_kib()
done = [0]
started = time.perf_counter()
with open(path, "rb") as source:
    result = app.import_entries("target", iter_file("target", source, path), CommandContext(SYSTEM),
                                progress=lambda n: done.__setitem__(0, done[0] + n))
elapsed = time.perf_counter() - started
app.close()
print(json.dumps({"peak_kib": hwm_kib(), "base_kib": base,
                  "seconds": elapsed, "created": result.created, "events": result.events, "progress": done[0]}))
"""


def write_csv(path: Path, rows: int, first: int = 1) -> Path:
    """A targets CSV (UTF-8, English headers) of ``rows`` generated rows."""
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for n in range(first, first + rows):
            r = S.target_row(n)
            w.writerow([r[c] for c in COLUMNS])
    return path


def measure(path: Path, url: str, cwd: Path | None = None) -> dict[str, Any]:
    """Import ``path`` into ``url`` in a child process; its peak RSS and what it stored."""
    root = cwd or Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), url], cwd=root, capture_output=True, text=True,
                         check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, action="append", help="rows (repeatable; default 50,000 and 200,000)")
    p.add_argument("--database-url", default=None, help=f"PostgreSQL base URL (default ${S.PG_ENV} or {S.PG_DEFAULT})")
    p.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    args = p.parse_args()
    sizes = args.rows or [50_000, 200_000]
    table = []
    results: dict[str, Any] = {"params": vars(args), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = write_csv(Path(tmp) / f"targets-{n}.csv", n)
            if args.sqlite:
                url = f"sqlite:///{Path(tmp) / f'events-{n}.db'}"
                run = measure(path, url)
            else:
                with S.fresh_pg_schema(args.database_url or S.default_pg_url()) as url:
                    run = measure(path, url)
            run.update(rows=n, csv_bytes=path.stat().st_size, load=Path("/proc/loadavg").read_text().split()[0])
            results["runs"].append(run)
            table.append([n, run["csv_bytes"] / 2**20, run["base_kib"] / 1024, run["peak_kib"] / 1024,
                          n / run["seconds"], run["seconds"]])
            path.unlink()
    S.print_table(f"peak RSS of a streamed import ({'SQLite' if args.sqlite else 'PostgreSQL'})",
                  ["rows", "CSV MiB", "RSS before MiB", "peak RSS MiB", "rows/s", "seconds"], table)
    print(f"results: {S.write_results('bench_import_memory' + ('_sqlite' if args.sqlite else ''), results)}")


if __name__ == "__main__":
    started = time.time()
    main()
