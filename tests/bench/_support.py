"""Shared by the benchmarks, and the server launcher they start as a subprocess.

Launcher: ``python tests/bench/_support.py serve --database-url URL --port P`` builds Settings (relay off,
projections in process), ``Runtime(settings).open(with_nats=False)`` and serves ``create_app(runtime)`` with
uvicorn (httptools + uvloop) and the collector tuned, like ``dualrandom serve`` (``--no-checkpoint-gate``: draws
do not wait for a published checkpoint, which needs the relay and NATS). The signing key comes from the environment variable
``DUALRANDOM_BENCH_SECRET`` so it never shows in a process listing.

Helpers: a fresh PostgreSQL schema (dropped afterwards), valid credit codes, target rows, a machine
description, and the table/JSON output every benchmark writes to ``tests/bench/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from domain.credit_code import ALPHABET, check_character

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PG_ENV = "DUALRANDOM_TEST_DATABASE_URL"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET_ENV = "DUALRANDOM_BENCH_SECRET"


# -- databases --------------------------------------------------------------------------------------
def default_pg_url() -> str:
    return os.environ.get(PG_ENV) or PG_DEFAULT


@contextlib.contextmanager
def fresh_pg_schema(base: str, prefix: str = "bench") -> Iterator[str]:
    """A new schema, as the search_path of every connection of the yielded URL; dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@contextlib.contextmanager
def fresh_sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="dualrandom-bench-") as tmp:
        yield f"sqlite:///{tmp}/bench.db"


# -- data -------------------------------------------------------------------------------------------
def credit_code(n: int) -> str:
    """A valid unified social credit code: '91410724' + 9 characters (n in base 31) + check character."""
    body = ""
    for _ in range(9):
        n, r = divmod(n, 31)
        body = ALPHABET[r] + body
    first17 = "91410724" + body
    return first17 + check_character(first17)


def target_row(n: int) -> dict[str, str]:
    """One target as a CSV/XLSX import gives it: every value text."""
    return {
        "credit_code": credit_code(n),
        "name": f"获嘉县示例企业{n}有限公司",
        "address": f"获嘉县亢村镇工业园{n % 500}号",
        "county": "获嘉县",
        "industry": ("化工", "造纸", "食品", "建材")[n % 4],
        "supervision_class": ("general", "key", "special")[n % 3],
        "risk_class": "ABCD"[n % 4],
        "tags": "重点排污单位;涉VOCs" if n % 5 == 0 else "",
    }


# -- output -----------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load] if load else None,
    }


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in header]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(cells[0], widths)))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print("  ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(r, widths)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("-", "").isdigit()


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"benchmark": name, "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
               "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return path


def free_port(lo: int = 18000, hi: int = 18999) -> int:
    """A free port below the ephemeral range (32768 and above is the kernel's ephemeral range: a port there may be in TIME_WAIT)."""
    for port in random.sample(range(lo, hi), hi - lo):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {lo}-{hi}")


# -- the server launcher ----------------------------------------------------------------------------

@contextlib.contextmanager
def running_server(
    name: str, url: str, secret: str, *, log_level: str = "WARNING", projections: bool = True, timeout: float = 60,
    checkpoint_gate: bool = True, account_keep_seconds: int | None = None,
) -> Iterator[tuple[int, Any]]:
    """This file's ``serve`` as a subprocess on a free port, up once /health answers; yields (port, process)."""
    import signal
    import subprocess
    import time

    import httpx

    port = free_port()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS_DIR / f"{name}.server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "_support.py"), "serve", "--database-url", url,
             "--port", str(port), "--log-level", log_level, *([] if projections else ["--no-projections"]),
             *([] if checkpoint_gate else ["--no-checkpoint-gate"]),
             *([] if account_keep_seconds is None else ["--account-keep-seconds", str(account_keep_seconds)])],
            env={**os.environ, SECRET_ENV: secret}, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {proc.returncode}; see {log_path}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not answer /health within {timeout:.0f} s; see {log_path}")
                time.sleep(0.2)
            yield port, proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

def serve(argv: Sequence[str]) -> None:
    import uvicorn

    from services.api.app import create_app
    from services.cli.serve import tune_gc
    from services.infra.logging import configure_logging
    from services.infra.settings import Settings
    from services.runtime import Runtime

    parser = argparse.ArgumentParser(prog="_support.py serve")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--var-dir", default=None)
    parser.add_argument("--log-level", default="INFO", help="INFO (production default: one JSON line per request)")
    parser.add_argument("--no-projections", action="store_true", help="diagnosis: no read-model thread in process")
    parser.add_argument("--no-checkpoint-gate", action="store_true",
                        help="draws do not wait for a published checkpoint (no relay, no NATS here)")
    parser.add_argument("--account-keep-seconds", type=int, default=None,
                        help="DUALRANDOM_ACCOUNT_KEEP_SECONDS (default: the setting's default); 0: every request reads")
    args = parser.parse_args(argv)
    secret = os.environ.get(SECRET_ENV, "")
    if len(secret) < 32:
        sys.exit(f"{SECRET_ENV} must hold a signing key of at least 32 characters")
    var_dir = Path(args.var_dir or tempfile.mkdtemp(prefix="dualrandom-bench-var-"))
    settings = Settings(
        var_dir=var_dir, database_url=args.database_url, secret_key=secret, port=args.port,
        relay_enabled=False, projections_in_process=not args.no_projections, log_format="json", log_level=args.log_level,
        draw_checkpoint_gate=not args.no_checkpoint_gate,
    )
    if args.account_keep_seconds is not None:
        settings = dataclasses.replace(settings, account_keep_seconds=args.account_keep_seconds)
    configure_logging(settings.log_format, settings.log_level)
    runtime = Runtime(settings).open(with_nats=False)
    try:
        app = create_app(runtime)
        tune_gc()  # as dualrandom serve does once the application is built
        uvicorn.run(
            app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
            loop="uvloop", http="httptools",
        )
    finally:
        runtime.close()


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "serve":
        sys.exit("usage: python tests/bench/_support.py serve --database-url URL --port PORT")
    serve(sys.argv[2:])
