"""The public results page (HTML) vs the JSON endpoint for the same query, in the same run, same server.

    .venv/bin/python tests/bench/bench_public_page.py                       # SQLite file, defaults below
    .venv/bin/python tests/bench/bench_public_page.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    # options: --targets 1000000 --results 100000 --clients 200 --requests 4000 --name-requests 400 --rounds 2 --queries first,name

Data: the demo county, then one result published through the HTTP API exactly as the browser tests do
(tests/browser/conftest.py ``seed``); then ``--targets`` enterprises and ``--results`` published results are
copied from that one by INSERT into the read models the two endpoints read (rm_target, rm_public_result), with
new ids, names and credit codes. Nothing else reads those rows: this measures the read path, not the projections.

Server: ``dualrandom serve`` (uvicorn, httptools, uvloop) in a subprocess, relay off, no rate limit
(``DUALRANDOM_PUBLIC_RATE_PER_MINUTE=0``), no limit of requests in flight (``DUALRANDOM_MAX_IN_FLIGHT=0``
unless ``--max-in-flight``), WARNING logs. Load: ``--clients`` keep-alive connections of a minimal
asyncio HTTP/1.1 client (bench_http_create.py's) send GETs back to back; rounds alternate JSON and page.
Queries: ``first`` (no search: the newest 20) and ``name`` (a name fragment matching ~1 in 10 results).

RATIO = page requests/s / JSON requests/s for the same query (goal >= 0.7); p99 of each (goal <= 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
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


async def _load(port: int, path: str, n: int, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[tuple[int, bytes]] = []
    todo = iter(range(n))
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in todo:
                t0 = time.perf_counter()
                writer.write(request)
                status, body = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors.append((status, body[:200]))
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    if errors:
        print(f"  {len(errors)} failed; first: {errors[0][0]} {errors[0][1]!r}", file=sys.stderr)
    return {"n": n, "seconds": round(elapsed, 3), "per_s": n / elapsed, "errors": len(errors),
            "p50_ms": S.percentile(latencies, 50) * 1000, "p99_ms": S.percentile(latencies, 99) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument("--targets", type=int, default=1_000_000)
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--name-requests", type=int, default=400, help="for the name search (a scan per request)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--queries", default="first,name", help="which of: first, name")
    parser.add_argument("--max-in-flight", type=int, default=0,
                        help="the server's DUALRANDOM_MAX_IN_FLIGHT (0: no limit; the default 32 refuses most of "
                             "200 clients with 503)")
    args = parser.parse_args()
    import uvloop

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
            port = S.free_port()
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("DUALRANDOM_")},
                   "DUALRANDOM_VAR_DIR": str(var), "DUALRANDOM_DATABASE_URL": url, "DUALRANDOM_SECRET_KEY": secret,
                   "DUALRANDOM_RELAY_ENABLED": "false", "DUALRANDOM_PUBLIC_RATE_PER_MINUTE": "0",
                   "DUALRANDOM_MAX_IN_FLIGHT": str(args.max_in_flight),
                   # this checkout's code, not the one the virtualenv's editable install points at
                   "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
                   "DUALRANDOM_LOG_LEVEL": "WARNING", "DUALRANDOM_NATS_EMBEDDED_PORT": str(S.free_port())}
            S.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            log = open(S.RESULTS_DIR / "public_page.server.log", "wb")  # noqa: SIM115
            proc = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            try:
                import httpx

                deadline = time.monotonic() + 120
                while True:
                    try:
                        if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("the server did not become ready; see public_page.server.log")
                    time.sleep(0.2)
                every = {"first": "", "name": "q=" + quote("获嘉县测试")}
                queries = {k: v for k, v in every.items() if k in args.queries.split(",")}
                rows: list[list[Any]] = []
                raw: dict[str, Any] = {}
                for qname, qs in queries.items():
                    paths = {"json": "/api/v1/public/results?" + qs, "page": "/public/results?" + qs}
                    for path in paths.values():  # warm-up
                        uvloop.run(_load(port, path, 40, 20))
                    got: dict[str, list[dict[str, Any]]] = {"json": [], "page": []}
                    n = args.requests if qname == "first" else args.name_requests
                    for _ in range(args.rounds):
                        for kind, path in paths.items():
                            got[kind].append(uvloop.run(_load(port, path, n, min(args.clients, n))))
                            r = got[kind][-1]
                            print(f"  {qname} {kind}: {r['per_s']:.1f}/s p50 {r['p50_ms']:.0f} ms "
                                  f"p99 {r['p99_ms']:.0f} ms errors {r['errors']}", flush=True)
                    raw[qname] = got
                    med = {k: {m: S.median([r[m] for r in v]) for m in ("per_s", "p50_ms", "p99_ms")}
                           for k, v in got.items()}
                    for kind in ("json", "page"):
                        rows.append([qname, kind, med[kind]["per_s"], med[kind]["p50_ms"], med[kind]["p99_ms"],
                                     sum(r["errors"] for r in got[kind])])
                    rows.append([qname, "RATIO page/json", med["page"]["per_s"] / med["json"]["per_s"],
                                 "", med["page"]["p99_ms"] / med["json"]["p99_ms"], ""])
            finally:
                stop(proc)
                log.close()
    S.print_table(f"public page vs JSON ({args.clients} clients, {args.targets:,} targets, {args.results:,} "
                  f"results, load {os.getloadavg()[0]:.1f})", ["query", "endpoint", "req/s", "p50 ms", "p99 ms",
                                                                 "errors"], rows)
    S.write_results("public_page", {"params": vars(args), "seed_s": t_seed, "bulk_s": t_bulk, "rounds": raw,
                                    "table": rows})


if __name__ == "__main__":
    main()
