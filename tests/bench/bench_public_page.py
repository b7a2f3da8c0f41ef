"""The public results page (HTML) vs the JSON endpoint for the same query, in the same run, same server.

    flock /tmp/bench.lock .venv/bin/python tests/bench/bench_public_page.py          # SQLite file, defaults below
    .venv/bin/python tests/bench/bench_public_page.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    # options: --targets 1000000 --results 100000 --clients 200 --duration 10 --rounds 3 --queries first,name
    #          --processes all,1,2 --client auto|wrk|asyncio --log-level WARNING|INFO --log-format console|json

Data: the demo county, then one result published through the HTTP API exactly as the browser tests do
(tests/browser/conftest.py ``seed``); then ``--targets`` enterprises and ``--results`` published results are
copied from that one by INSERT into the read models the two endpoints read (rm_target, rm_public_result), with
new ids, names and credit codes. Nothing else reads those rows: this measures the read path, not the projections.

Servers (``--processes``, a comma-separated list, each measured on the same data): ``all`` is one ``dualrandom
serve`` (API, projections, relay off); ``N`` is N ``dualrandom serve --role api`` processes, each on its own port,
plus one ``dualrandom serve --role worker``. Relay off, no rate limit (``DUALRANDOM_PUBLIC_RATE_PER_MINUTE=0``),
no limit of requests in flight (``DUALRANDOM_MAX_IN_FLIGHT=0`` unless ``--max-in-flight``), ``--log-level`` logs.
Load: ``wrk`` when installed (``--client auto``; one wrk per API process, the connections split between them:
req/s summed, p50 the mean, p99 the highest of theirs), else ``--clients`` keep-alive connections of a minimal
asyncio HTTP/1.1 client (bench_http_create.py's) sending GETs back to back for ``--duration`` seconds. Rounds
alternate JSON and page. Queries: ``first`` (no search: the newest 20) and ``name`` (a name fragment matching ~1
in 10 results).

RATIO = page requests/s / JSON requests/s for the same query (goal >= 0.7); p99 of each (goal <= 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa

import tests.bench._support as S
from tests.bench.bench_http_create import _read_response
from tests.support.serve import stop

BIN = Path(sys.executable).parent / "dualrandom"
ROOT = Path(__file__).resolve().parents[2]


def prepare(url: str, var: Path, secret: str) -> dict[str, Any]:
    """Demo county + one published result through HTTP, in this process."""
    from dataclasses import replace

    from litestar.testing import TestClient

    from domain.access import SYSTEM
    from services.api.app import create_app
    from services.application import CommandContext
    from services.cli.demo import load_demo
    from services.infra.settings import Settings
    from services.runtime import Runtime
    from tests.browser.conftest import seed

    settings = replace(Settings(var_dir=var, relay_enabled=False), database_url=url, secret_key=secret,
                       draw_checkpoint_gate=False)  # no NATS in this process: nothing to publish to
    rt = Runtime(settings).open(with_nats=False)
    try:
        load_demo(rt.app, CommandContext(actor=SYSTEM))
        rt.runner.catch_up()
        with TestClient(create_app(rt)) as client:
            s = seed(client, secret, rt.engine)
        rt.runner.catch_up()
        return {"target_id": s.target["id"], "inspection_id": s.inspection_id}
    finally:
        rt.close()


def bulk(url: str, seeded: dict[str, Any], targets: int, results: int) -> float:
    """Copies of the seeded enterprise and result; returns the seconds it took."""
    from projections.directory.projection import TABLES as DIRECTORY
    from projections.execution.projection import TABLES as EXECUTION

    t0 = time.perf_counter()
    tt, pt = DIRECTORY["target"], EXECUTION["public"]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        target = dict(conn.execute(sa.select(tt).where(tt.c.id == seeded["target_id"])).mappings().one())
        public = dict(conn.execute(sa.select(pt).where(pt.c.inspection_id == seeded["inspection_id"]))
                      .mappings().one())
        top = int(conn.execute(sa.select(sa.func.max(pt.c.position))).scalar_one())
        chunk = 20000
        for start in range(0, targets, chunk):
            rows = []
            for n in range(start, min(targets, start + chunk)):
                row = {**target, "id": str(uuid.UUID(int=n + 1)), "credit_code": S.credit_code(n),
                       "name": f"{'获嘉县测试' if n % 10 == 0 else '新乡市样本'}企业{n:07d}有限公司"}
                rows.append(row)
            conn.execute(tt.insert(), rows)
        step = max(targets // max(results, 1), 1)  # result n: target n * step + n % 10, so 1 in 10 is 获嘉县测试's
        for start in range(0, results, chunk):
            rows = [{**public, "inspection_id": str(uuid.UUID(int=(1 << 64) + n)),
                     "target_id": str(uuid.UUID(int=(n * step + n % min(step, 10)) % targets + 1)),
                     "position": top + 1 + n} for n in range(start, min(results, start + chunk))]
            conn.execute(pt.insert(), rows)
    engine.dispose()
    return time.perf_counter() - t0


async def _load(ports: list[int], path: str, seconds: float, clients: int) -> dict[str, Any]:
    """``clients`` keep-alive connections (spread over ``ports``) sending ``path`` back to back for ``seconds``."""
    latencies: list[float] = []
    errors: list[tuple[int, bytes]] = []
    stop_at = time.perf_counter() + seconds

    async def client(port: int) -> None:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                writer.write(request)
                status, body = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors.append((status, body[:200]))
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(ports[i % len(ports)]) for i in range(clients)))
    elapsed = time.perf_counter() - started
    if errors:
        print(f"  {len(errors)} failed; first: {errors[0][0]} {errors[0][1]!r}", file=sys.stderr)
    return {"n": len(latencies), "seconds": round(elapsed, 3), "per_s": len(latencies) / elapsed,
            "errors": len(errors), "p50_ms": S.percentile(latencies, 50) * 1000,
            "p99_ms": S.percentile(latencies, 99) * 1000}


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    """Requests/s, p50, p99 and non-2xx/3xx answers (plus socket errors) of ``wrk --latency``'s report."""
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    return {"per_s": rate, "p50_ms": p50, "p99_ms": p99, "errors": errors, "n": int(total.group(1)) if total else 0}


def _wrk(ports: list[int], path: str, seconds: float, clients: int) -> dict[str, Any]:
    """One ``wrk`` per port, at the same time, the connections split between them."""
    procs = []
    for i, port in enumerate(ports):
        conns = clients // len(ports) + (1 if i < clients % len(ports) else 0)
        threads = max(1, min(2 // len(ports), conns)) if len(ports) < 2 else 1
        procs.append(subprocess.Popen(
            ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds:g}s", "--latency", "--timeout", "10s",
             f"http://127.0.0.1:{port}{path}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    got = [parse_wrk(p.communicate()[0]) for p in procs]
    return {"per_s": sum(g["per_s"] for g in got), "p50_ms": sum(g["p50_ms"] for g in got) / len(got),
            "p99_ms": max(g["p99_ms"] for g in got), "errors": sum(g["errors"] for g in got),
            "n": sum(g["n"] for g in got), "per_process": got}


def _wait_ready(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not become ready; see {what}")
        time.sleep(0.2)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 1)[0]


def measure(setup: str, env: dict[str, str], args: argparse.Namespace,
            queries: dict[str, str]) -> tuple[list[list[Any]], dict[str, Any]]:
    """Start the servers of ``setup`` ("all" or a number of API processes), load them, stop them."""
    import uvloop

    procs: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    logs = []
    try:
        roles = [["serve"]] if setup == "all" else [["serve", "--role", "api"]] * int(setup)
        if setup != "all":  # the projections in a worker process, as a deployment of several API processes has
            log = open(S.RESULTS_DIR / "public_page.worker.log", "wb")  # noqa: SIM115
            logs.append(log)
            procs.append(subprocess.Popen([str(BIN), "serve", "--role", "worker"], env=env, stdout=log,
                                          stderr=subprocess.STDOUT))
        for i, role in enumerate(roles):
            port = S.free_port()
            log = open(S.RESULTS_DIR / f"public_page.server{i}.log", "wb")  # noqa: SIM115
            logs.append(log)
            proc = subprocess.Popen([str(BIN), *role, "--port", str(port)], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            procs.append(proc)
            ports.append(port)
            _wait_ready(port, proc, f"public_page.server{i}.log")
        wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
        rows: list[list[Any]] = []
        raw: dict[str, Any] = {}
        for qname, qs in queries.items():
            paths = {"json": "/api/v1/public/results?" + qs, "page": "/public/results?" + qs}
            for path in paths.values():  # warm-up: every process has the answer
                uvloop.run(_load(ports, path, 1.0, 2 * len(ports)))
            got: dict[str, list[dict[str, Any]]] = {"json": [], "page": []}
            for _ in range(args.rounds):
                for kind, path in paths.items():
                    before = loadavg()
                    if wrk:
                        r = _wrk(ports, path, args.duration, args.clients)
                    else:
                        r = uvloop.run(_load(ports, path, args.duration, args.clients))
                    r["load"] = f"{before}-{loadavg()}"
                    got[kind].append(r)
                    print(f"  {setup} {qname} {kind}: {r['per_s']:.1f}/s p50 {r['p50_ms']:.1f} ms "
                          f"p99 {r['p99_ms']:.1f} ms errors {r['errors']} load {r['load']}", flush=True)
            raw[qname] = got
            med = {k: {m: S.median([r[m] for r in v]) for m in ("per_s", "p50_ms", "p99_ms")}
                   for k, v in got.items()}
            for kind in ("json", "page"):
                rows.append([setup, qname, kind, med[kind]["per_s"], med[kind]["p50_ms"], med[kind]["p99_ms"],
                             sum(r["errors"] for r in got[kind])])
            rows.append([setup, qname, "RATIO page/json", med["page"]["per_s"] / med["json"]["per_s"], "",
                         med["page"]["p99_ms"] / med["json"]["p99_ms"], ""])
        return rows, raw
    finally:
        for proc in reversed(procs):
            stop(proc)
        for log in logs:
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument("--targets", type=int, default=1_000_000)
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per round and endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", default="first,name", help="which of: first, name")
    parser.add_argument("--processes", default="1,2",
                        help="comma-separated: all (one `serve`), N (N `serve --role api` + one worker)")
    parser.add_argument("--client", default="auto", choices=["auto", "wrk", "asyncio"],
                        help="auto: wrk when installed, else the asyncio client")
    parser.add_argument("--log-format", default="console", choices=["console", "json"],
                        help="the servers' DUALRANDOM_LOG_FORMAT (json: what a deployment that keeps its logs uses)")
    parser.add_argument("--log-level", default="WARNING", help="the servers' DUALRANDOM_LOG_LEVEL (INFO: one JSON "
                        "line per request, as served in production)")
    parser.add_argument("--max-in-flight", type=int, default=0,
                        help="the server's DUALRANDOM_MAX_IN_FLIGHT (0: no limit; the default 32 refuses most of "
                             "200 clients with 503)")
    args = parser.parse_args()

    secret = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="dualrandom-bench-page-") as tmp:
        if args.database_url:
            ctx: Any = S.fresh_pg_schema(args.database_url)
        else:
            ctx = S.fresh_sqlite()
        with ctx as url:
            var = Path(tmp) / "var"
            t0 = time.perf_counter()
            seeded = prepare(url, var, secret)
            t_seed = time.perf_counter() - t0
            t_bulk = bulk(url, seeded, args.targets, args.results)
            print(f"data: seed {t_seed:.1f} s, {args.targets:,} targets + {args.results:,} results {t_bulk:.1f} s",
                  flush=True)
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("DUALRANDOM_")},
                   "DUALRANDOM_VAR_DIR": str(var), "DUALRANDOM_DATABASE_URL": url, "DUALRANDOM_SECRET_KEY": secret,
                   "DUALRANDOM_RELAY_ENABLED": "false", "DUALRANDOM_PUBLIC_RATE_PER_MINUTE": "0",
                   "DUALRANDOM_MAX_IN_FLIGHT": str(args.max_in_flight),
                   # this checkout's code, not the one the virtualenv's editable install points at
                   "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
                   "DUALRANDOM_LOG_LEVEL": args.log_level, "DUALRANDOM_LOG_FORMAT": args.log_format,
                   "DUALRANDOM_NATS_EMBEDDED_PORT": str(S.free_port())}
            S.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            every = {"first": "", "name": "q=" + quote("获嘉县测试")}
            queries = {k: v for k, v in every.items() if k in args.queries.split(",")}
            rows: list[list[Any]] = []
            raw: dict[str, Any] = {}
            for setup in args.processes.split(","):
                got_rows, raw[setup] = measure(setup.strip(), env, args, queries)
                rows.extend(got_rows)
    S.print_table(f"public page vs JSON ({args.clients} clients, {args.targets:,} targets, {args.results:,} "
                  f"results, load {loadavg()})", ["processes", "query", "endpoint", "req/s", "p50 ms", "p99 ms",
                                                  "errors"], rows)
    S.write_results("public_page", {"params": vars(args), "seed_s": t_seed, "bulk_s": t_bulk, "rounds": raw,
                                    "table": rows})


if __name__ == "__main__":
    main()
