"""HTTP create of one target vs the bare eventsourcing library creating the same kind of aggregate.

    .venv/bin/python tests/bench/bench_http_create.py [--database-url URL | --sqlite] [--requests 3000]

Measured, in one run on one database (a fresh PostgreSQL schema, dropped afterwards, or a SQLite file):

- HTTP: the real server (``tests/bench/_support.py serve``: uvicorn[standard] serving ``create_app(runtime)``,
  relay off, one JSON log line per request at INFO) as a subprocess; ``--clients`` (32) keep-alive connections
  each POST ``/api/v1/targets`` back to back with a planner token: authenticate, validate, store one event with
  metadata, wake the projections. Requests/s, p50 and p99 latency, after a warm-up.
- Read models (``--projections``): ``worker`` (default, the production layout the README describes: the API
  process runs with ``DUALRANDOM_PROJECTIONS_IN_PROCESS=false`` and one ``dualrandom projections run`` worker
  process keeps every read model, on the same machine and cores); ``in-process`` (the embedded default: a
  thread of the server); ``none`` (diagnosis only: nothing keeps the read models).
- For diagnosis, the same use case without HTTP: ``DualRandom.register`` called in this process by the
  same number of threads ("command" rows): it separates the application's own cost from the server's.
- Baseline: the eventsourcing library alone, in this process: an ``Application`` with the same persistence
  module and database, saving a trivial ``Aggregate`` whose one created event carries the same fields;
  32 threads sharing the Application (as the server's thread pool does), and one thread.

RATIO = HTTP creates/s / library creates/s (32 threads). Goal >= 0.8. Rounds alternate (library, HTTP,
library, HTTP, ...) and the medians are reported, so drift on the shared machine hits both sides.
The load generator is a minimal asyncio HTTP/1.1 client (no httpx): client and server share the cores,
and a heavy client would charge its own cost to the server. CPU seconds per create of each process (this one,
the server, the projection worker, PostgreSQL's backends) are read from /proc where there is one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.support
import _support as S

from services.application import _with_sqlite_timeout
from tests.support.accounts import stored_token

NAME = "bench_http_create"


# -- the baseline: the library alone ----------------------------------------------------------------
class BareTarget(Aggregate):
    """The same fields as a registered Target, in one created event; no validation, no metadata."""

    class Registered(Aggregate.Created):
        data: dict[str, Any]

    @event(Registered)
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = dict(data)


class BareApp(Application):
    name = "benchbare"  # table benchbare_events, beside dualrandom_events


def bare_app(url: str) -> BareApp:
    return BareApp(env={
        "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
        "SQLALCHEMY_URL": _with_sqlite_timeout(url),
        "CREATE_TABLE": "y",
    })


def validated(n: int) -> dict[str, Any]:
    row = S.target_row(n)
    return {**row, "tags": [t for t in row["tags"].split(";") if t], "status": "active"}


def library_round(app: BareApp, first: int, n: int, threads: int) -> dict[str, Any]:
    return _threaded(lambda i: app.save(BareTarget(data=validated(i))), first, n, threads)


def raw_round(engine: sa.Engine, first: int, n: int, threads: int) -> dict[str, Any]:
    """The honest baseline: one-row transactions on PostgreSQL (the same row as JSON text into a plain table
    with a primary key), by the same number of threads, each its own connection from a pool of that size."""
    table = sa.table("bench_raw_rows", sa.column("credit_code"), sa.column("data"))

    def one(i: int) -> None:
        row = validated(i)
        with engine.begin() as conn:
            conn.execute(table.insert().values(credit_code=row["credit_code"], data=json.dumps(row)))

    return _threaded(one, first, n, threads)


def raw_engine(url: str, threads: int) -> sa.Engine:
    engine = sa.create_engine(url, pool_size=threads, max_overflow=0)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS bench_raw_rows (credit_code text PRIMARY KEY, data text)"))
    return engine


def command_round(app: Any, ctx: Any, first: int, n: int, threads: int) -> dict[str, Any]:
    """The server's use case without HTTP: ``DualRandom.register`` (validation, key check, metadata, save)."""
    return _threaded(lambda i: app.register("target", validated(i), ctx), first, n, threads)


def _threaded(op: Any, first: int, n: int, threads: int) -> dict[str, Any]:
    latencies: list[float] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        t0 = time.perf_counter()
        op(i)
        dt_ = time.perf_counter() - t0
        with lock:
            latencies.append(dt_)

    started = time.perf_counter()
    if threads == 1:
        for i in range(first, first + n):
            one(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(first, first + n)))
    elapsed = time.perf_counter() - started
    return _stats(n, elapsed, latencies, errors=0)


# -- the HTTP side ----------------------------------------------------------------------------------
async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    length = None
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        key, _, value = line.partition(b":")
        key = key.strip().lower()
        if key == b"content-length":
            length = int(value.strip())
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readline()).strip(), 16)
            if size == 0:
                await reader.readline()
                return status, body
            body += await reader.readexactly(size)
            await reader.readline()
    return status, (await reader.readexactly(length) if length else b"")


async def _http_load(port: int, token: str, first: int, n: int, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[tuple[int, bytes]] = []
    todo = iter(range(first, first + n))
    head = (
        "POST /api/v1/targets HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in todo:
                body = json.dumps(validated(i), ensure_ascii=False).encode()
                request = head.format(port=port, token=token, length=len(body)).encode() + body
                t0 = time.perf_counter()
                writer.write(request)
                status, payload = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if status != 201:
                    errors.append((status, payload[:300]))
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    if errors:
        print(f"  {len(errors)} requests failed; first: {errors[0][0]} {errors[0][1]!r}", file=sys.stderr)
    return _stats(n, elapsed, latencies, errors=len(errors))


def http_round(port: int, token: str, first: int, n: int, clients: int) -> dict[str, Any]:
    import uvloop

    return uvloop.run(_http_load(port, token, first, n, clients))


def _stats(n: int, elapsed: float, latencies: list[float], errors: int) -> dict[str, Any]:
    return {
        "n": n, "seconds": round(elapsed, 3), "per_s": n / elapsed, "errors": errors,
        "p50_ms": S.percentile(latencies, 50) * 1000, "p99_ms": S.percentile(latencies, 99) * 1000,
    }


@contextlib.contextmanager
def server(url: str, secret: str, log_level: str, projections: bool = True, account_keep_seconds: int | None = None) -> Any:
    with S.running_server(NAME, url, secret, log_level=log_level, projections=projections,
                          account_keep_seconds=account_keep_seconds) as running:
        yield running


@contextlib.contextmanager
def projection_worker(url: str, secret: str) -> Any:
    """``dualrandom projections run`` (every read model) as a separate process, as in production."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dualrandom-bench-worker-") as var:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUALRANDOM_")}
        env.update({
            "DUALRANDOM_DATABASE_URL": url, "DUALRANDOM_SECRET_KEY": secret, "DUALRANDOM_VAR_DIR": var,
            "DUALRANDOM_RELAY_ENABLED": "false", "DUALRANDOM_LOG_FORMAT": "json", "DUALRANDOM_LOG_LEVEL": "WARNING",
        })
        log_path = S.RESULTS_DIR / f"{NAME}.worker.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([str(Path(sys.executable).parent / "dualrandom"), "projections", "run"],
                                    env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                time.sleep(1.0)
                if proc.poll() is not None:
                    raise RuntimeError(f"the projection worker exited with {proc.returncode}; see {log_path}")
                yield proc
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()


def caught_up(port: int, timeout: float = 300.0) -> dict[str, Any]:
    """``/ready`` once every read model has applied the whole log (no lag); an error after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        ready: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10).json()
        if all(not p["lag"] for p in ready["projections"].values()):
            return ready
        if time.monotonic() > deadline:
            raise RuntimeError(f"the read models did not catch up within {timeout:.0f} s: {ready['projections']}")
        time.sleep(0.1)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process (Linux /proc; 0 elsewhere)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of each process named postgres (the database's backends; empty without /proc)."""
    out = {}
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().startswith("postgres"):
                out[int(comm.parent.name)] = cpu_seconds(int(comm.parent.name))
        except OSError:
            continue
    return out


class CpuMeter:
    """CPU seconds per create of this process, the server, the worker and PostgreSQL over one round."""

    def __init__(self, server_pid: int | None, worker_pid: int | None) -> None:
        self.pids = {"server": server_pid, "worker": worker_pid}

    def measure(self, run: Any) -> dict[str, Any]:
        before, pg_before = self._now(), postgres_cpu()
        result = run()
        after, pg_after = self._now(), postgres_cpu()
        # backends that exited meanwhile (other connections on a shared machine) are left out
        after["postgres"] = sum(t - pg_before.get(pid, 0.0) for pid, t in pg_after.items())
        before["postgres"] = 0.0
        result["cpu_ms_per_create"] = {k: round((after[k] - before[k]) / result["n"] * 1000, 3) for k in before}
        return result

    def _now(self) -> dict[str, float]:
        return {"bench": time.process_time(), **{k: cpu_seconds(p) for k, p in self.pids.items()}}

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default=None, help=f"PostgreSQL base URL (default ${S.PG_ENV} or {S.PG_DEFAULT})")
    p.add_argument("--sqlite", action="store_true", help="run on a SQLite file instead of PostgreSQL")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=3000, help="measured HTTP requests (and library creates) per round")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--rounds", type=int, default=2, help="alternating library/HTTP rounds; medians reported")
    p.add_argument("--single", type=int, default=500, help="creates with one thread / one client (0: skip)")
    p.add_argument("--log-level", default="INFO", help="server log level (INFO: one JSON line per request)")
    p.add_argument("--no-command", action="store_true", help="skip the in-process DualRandom.register rows")
    p.add_argument("--account-keep-seconds", type=int, default=None,
                   help="the server's DUALRANDOM_ACCOUNT_KEEP_SECONDS (default: the setting's, 5); 0: every request "
                        "reads the account (as before session 19)")
    p.add_argument("--projections", choices=("worker", "in-process", "none"), default="worker",
                   help="who keeps the read models: a separate `dualrandom projections run` process (production "
                   "layout, default), a thread of the server (embedded default), or nobody (diagnosis)")
    p.add_argument("--no-projections", action="store_true", help="the same as --projections none")
    args = p.parse_args()
    if args.no_projections:
        args.projections = "none"

    backend = "sqlite" if args.sqlite else "postgresql"
    db = S.fresh_sqlite() if args.sqlite else S.fresh_pg_schema(args.database_url or S.default_pg_url())
    secret = secrets.token_urlsafe(48)
    lib32: list[dict[str, Any]] = []
    raw32: list[dict[str, Any]] = []
    cmd32: list[dict[str, Any]] = []
    http32: list[dict[str, Any]] = []
    lib1: list[dict[str, Any]] = []
    raw1: list[dict[str, Any]] = []
    cmd1: list[dict[str, Any]] = []
    http1: list[dict[str, Any]] = []
    counter = 1_000_000  # credit code numbers, distinct across every create of the run

    def take(n: int) -> int:
        nonlocal counter
        counter += n
        return counter - n

    with db as url:
        app = bare_app(url)
        raw = raw_engine(url, args.clients)
        raw_round(raw, take(args.warmup), args.warmup, args.clients)  # warm-up
        # One call on one thread first: eventsourcing_sqlalchemy switches a SQLite file to WAL on its first
        # transaction, and that races with other threads' writes ("database is locked") if they start together.
        app.recorder.max_notification_id()
        library_round(app, take(args.warmup), args.warmup, args.clients)  # warm-up, tables
        from domain.access import Actor
        from services.application import CommandContext, DualRandom

        ctx = CommandContext(Actor(subject="bench:planner", department="hj-eeb", roles=("planner",)))
        dual = DualRandom(url)
        dual.recorder.max_notification_id()
        command_round(dual, ctx, take(args.warmup), args.warmup, args.clients)
        token_engine = sa.create_engine(_with_sqlite_timeout(url))
        token = stored_token(token_engine, secret, "hj-eeb", ["planner"], "bench:planner", 3600)  # an account
        token_engine.dispose()
        with contextlib.ExitStack() as stack:
            port, proc = stack.enter_context(server(url, secret, args.log_level, args.projections == "in-process",
                                                    args.account_keep_seconds))
            worker = stack.enter_context(projection_worker(url, secret)) if args.projections == "worker" else None
            meter = CpuMeter(proc.pid, worker.pid if worker is not None else None)
            http_round(port, token, take(args.warmup), args.warmup, args.clients)  # warm-up

            def quiet() -> None:
                """Every read model caught up before the next measure: the worker's backlog from an HTTP round
                would otherwise run during the next one (and slow the baselines most)."""
                if args.projections != "none":
                    caught_up(port)

            def measured(rounds: list[dict[str, Any]], run: Any) -> None:
                quiet()
                rounds.append({**meter.measure(run), "load": os.getloadavg()[0]})

            for r in range(args.rounds):
                measured(lib32, lambda: library_round(app, take(args.requests), args.requests, args.clients))
                measured(raw32, lambda: raw_round(raw, take(args.requests), args.requests, args.clients))
                if not args.no_command:
                    measured(cmd32, lambda: command_round(dual, ctx, take(args.requests), args.requests, args.clients))
                measured(http32, lambda: http_round(port, token, take(args.requests), args.requests, args.clients))
                if args.single:
                    measured(lib1, lambda: library_round(app, take(args.single), args.single, 1))
                    measured(raw1, lambda: raw_round(raw, take(args.single), args.single, 1))
                    if not args.no_command:
                        measured(cmd1, lambda: command_round(dual, ctx, take(args.single), args.single, 1))
                    measured(http1, lambda: http_round(port, token, take(args.single), args.single, 1))
                print(f"round {r + 1}: library {lib32[-1]['per_s']:,.0f}/s, raw {raw32[-1]['per_s']:,.0f}/s, "
                      + (f"command {cmd32[-1]['per_s']:,.0f}/s, " if cmd32 else "")
                      + f"HTTP {http32[-1]['per_s']:,.0f}/s"
                      + (f"; one client: raw {raw1[-1]['per_s']:,.0f}/s, HTTP {http1[-1]['per_s']:,.0f}/s" if http1 else "")
                      + f" (load {os.getloadavg()[0]:.2f})", file=sys.stderr)
            ready = caught_up(port) if args.projections != "none" else {}
        app.close()
        dual.close()
        raw.dispose()
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            stored = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                      for t in ("dualrandom_events", "benchbare_events", "rm_target")}
        engine.dispose()

    def med(rounds: list[dict[str, Any]], key: str) -> float:
        return S.median([r[key] for r in rounds])

    ratio = med(http32, "per_s") / med(lib32, "per_s")
    rows = [[f"library, {args.clients} threads", med(lib32, "per_s"), med(lib32, "p50_ms"), med(lib32, "p99_ms"), 0],
            [f"raw one-row transactions, {args.clients} threads", med(raw32, "per_s"), med(raw32, "p50_ms"),
             med(raw32, "p99_ms"), 0]]
    if cmd32:
        rows.append([f"command, {args.clients} threads", med(cmd32, "per_s"), med(cmd32, "p50_ms"),
                     med(cmd32, "p99_ms"), 0])
    rows.append([f"HTTP, {args.clients} clients", med(http32, "per_s"), med(http32, "p50_ms"), med(http32, "p99_ms"),
                 sum(r["errors"] for r in http32)])
    for rounds, label in ((lib1, "library, 1 thread"), (raw1, "raw one-row transactions, 1 thread"),
                          (cmd1, "command, 1 thread"), (http1, "HTTP, 1 client")):
        if rounds:
            rows.append([label, med(rounds, "per_s"), med(rounds, "p50_ms"), med(rounds, "p99_ms"),
                         sum(r["errors"] for r in rounds)])
    S.print_table(
        f"{NAME} on {backend}: {args.rounds} rounds of {args.requests} ({args.single} with one client), medians",
        ["what", "creates/s", "p50 ms", "p99 ms", "errors"], rows,
    )
    loads = "; ".join(f"{r['load']:.2f}" for r in http32)
    print(f"\nRATIO HTTP/library ({args.clients}): {ratio:.2f}  (goal >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'})")
    raw_ratio = med(http32, "per_s") / med(raw32, "per_s")
    rounds_raw = ", ".join(f"{h['per_s'] / r['per_s']:.2f}" for h, r in zip(http32, raw32, strict=True))
    print(f"RATIO HTTP/raw one-row transactions ({args.clients}): {raw_ratio:.2f}  (goal >= 0.5: "
          f"{'met' if raw_ratio >= 0.5 else 'NOT met'}; rounds {rounds_raw}; load average before the HTTP rounds {loads})")
    single_ratio = None
    if http1 and raw1:
        single_ratio = med(http1, "per_s") / med(raw1, "per_s")
        rounds_1 = ", ".join(f"{h['per_s'] / r['per_s']:.2f}" for h, r in zip(http1, raw1, strict=True))
        print(f"RATIO HTTP/raw with one client: {single_ratio:.2f}  (goal >= 0.5: "
              f"{'met' if single_ratio >= 0.5 else 'NOT met'}; rounds {rounds_1})")
    if cmd32:
        print(f"       command/library: {med(cmd32, 'per_s') / med(lib32, 'per_s'):.2f}, "
              f"HTTP/command: {med(http32, 'per_s') / med(cmd32, 'per_s'):.2f}")
    cpu_rows = [[label, *[S.median([r["cpu_ms_per_create"][k] for r in rounds]) for k in
                          ("bench", "server", "worker", "postgres")]]
                for label, rounds in ((f"library, {args.clients} threads", lib32),
                                      (f"command, {args.clients} threads", cmd32),
                                      (f"HTTP, {args.clients} clients", http32),
                                      ("raw one-row transactions, 1 thread", raw1),
                                      ("HTTP, 1 client", http1)) if rounds]
    S.print_table("CPU ms per create (medians): this process, server, projection worker, PostgreSQL",
                  ["what", "bench", "server", "worker", "postgres"], cpu_rows)
    print(f"\nprojections: {args.projections}; stored events: {stored}; projection after the run: "
          f"{ready.get('projections')}")
    suffix = ("_sqlite" if args.sqlite else "") + {"worker": "", "in-process": "_inproc", "none": "_noproj"}[
        args.projections] + (
        f"_log{args.log_level.upper()}" if args.log_level.upper() != "INFO" else "")
    path = S.write_results(NAME + suffix, {
        "backend": backend,
        "params": vars(args),
        "ratio": ratio,
        "goal": 0.8,
        "library_threads": lib32,
        "raw_threads": raw32,
        "raw_ratio": raw_ratio,
        "command_threads": cmd32,
        "http_clients": http32,
        "raw_ratio_one_client": single_ratio,
        "library_one_thread": lib1,
        "raw_one_thread": raw1,
        "command_one_thread": cmd1,
        "http_one_client": http1,
        "stored": stored,
        "ready": ready,
    })
    print(f"results: {path}")


if __name__ == "__main__":
    main()
