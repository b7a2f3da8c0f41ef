"""``audit verify`` over a large log, and inclusion-proof latency, on PostgreSQL.

    .venv/bin/python tests/bench/bench_audit.py                   # 1,000,000 events
    .venv/bin/python tests/bench/bench_audit.py --events 100000   # smaller

Setup (timed, not the subject): a fresh schema; N stored events bulk-inserted with COPY in the store's own
format (targets registered, then reclassified, tagged, updated: 1 to 4 events per aggregate, with ``_meta``);
the audit projection builds the Merkle tree (``ProjectionRunner`` over ``AuditProjection``, batches of 10,000),
signing checkpoints at 1/4, 1/2 and all of the log.

Measured, in the same run:

- **hash**: SHA-256(0x00 || canonical bytes) of every event, the bytes computed beforehand, page by page:
  hashing alone, no tree, no database (the baseline the goal names).
- **read + canonicalise + hash**: the same leaves computed from the store (pages of 10,000), no tree, no
  comparison: the pipeline without the tree.
- **audit verify**: ``verify_log`` as ``dualrandom audit verify`` runs it (leaves, every stored subtree, every
  checkpoint and signature), and with ``--skip-nodes``.
- **inclusion proof**: 1,000 random positions, p50/p99, through the proof function (one connection from a
  pool, as a handler gets it) and through the real API (``tests/bench/_support.py serve``, one keep-alive
  client, partner token), each proof checked.

RATIO = verify seconds / hash seconds (and / the no-tree pipeline). Goals: verify <= 60 s at 1,000,000 events,
inclusion proof <= 10 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import random
import secrets
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.support
import _support as S

from domain.audit.leaf import envelope, leaf_bytes
from domain.audit.merkle import verify_inclusion
from projections.audit.projection import AuditProjection
from projections.audit.queries import tree_size
from projections.runner import ProjectionRunner
from services.application import DualRandom
from services.audit.checkpoints import checkpoints, create_checkpoint
from services.audit.checkpoints import metadata as checkpoint_metadata
from services.audit.keys import Signer
from services.audit.log import events_table, iter_records
from services.audit.proofs import inclusion, read_connection
from services.audit.verify import verify_log
from services.infra.store import create_engine
from tests.support.accounts import stored_token

NAME = "bench_audit"
NS = uuid.UUID("6f1c2d1e-3b0a-5c8e-9d7f-2a4b6c8d0e1f")
DEPARTMENTS = ("hj-eeb", "hj-amr", "hj-em", "hj-nr", "hj-hc", "hj-ag")


# -- data ---------------------------------------------------------------------------------------------
def stored_events(n: int) -> Iterator[tuple[uuid.UUID, int, str, bytes]]:
    """N events of targets in the store's format: registered, then risk class, tag, details changes."""
    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    i = agg = 0
    while i < n:
        agg += 1
        row = S.target_row(agg)
        oid = uuid.uuid5(NS, f"target:{row['credit_code']}")
        dept = DEPARTMENTS[agg % len(DEPARTMENTS)]
        for version in range(1, 2 + agg % 4):
            if i >= n:
                return
            meta = {"actor": f"{dept}:staff{agg % 97}", "department": dept, "role": "planner",
                    "correlation_id": str(uuid.uuid5(NS, f"req:{agg}:{version}")),
                    "causation_id": str(uuid.uuid5(NS, f"cmd:{agg}:{version}")),
                    "command": "import_target" if version == 1 else "update_target", "aggregate": "target",
                    "owner": "shared"}
            state: dict[str, Any] = {"timestamp": {"_type_": "datetime_iso",
                                                   "_data_": (t0 + dt.timedelta(microseconds=1500 * i)).isoformat()}}
            if version == 1:
                topic = "domain.directory:Target.Registered"
                tags = [t for t in row["tags"].split(";") if t]
                state.update(originator_topic="domain.directory:Target",
                             data={**{k: v for k, v in row.items() if k != "tags"}, "tags": tags, "status": "active"})
            elif version == 2:
                topic = "domain.directory:Target.RiskClassChanged"
                state.update(risk_class="D", previous=row["risk_class"])
            elif version == 3:
                topic = "domain.directory:Target.Tagged"
                state.update(tag="双随机重点")
            else:
                topic = "domain.directory:DirectoryEntry.DetailsUpdated"
                state.update(changes={"address": f"获嘉县城关镇{agg % 300}号", "industry": "食品"})
            state["_meta"] = meta
            yield oid, version, topic, dumps(state).encode("utf-8")
            i += 1


def bulk_insert(engine: sa.Engine, n: int, chunk: int = 100_000) -> None:
    """COPY the events into dualrandom_events (ids from its sequence, in order)."""
    source = stored_events(n)
    done = 0
    while done < n:
        raw = engine.raw_connection()
        try:
            conn = raw.driver_connection
            with (
                conn.cursor() as cur,  # type: ignore[union-attr]
                cur.copy("COPY dualrandom_events (originator_id, originator_version, topic, state) FROM STDIN") as cp,
            ):
                for _ in range(min(chunk, n - done)):
                    cp.write_row(next(source))
                    done += 1
            conn.commit()  # type: ignore[union-attr]
        finally:
            raw.close()
        print(f"  inserted {done:,} events", flush=True)


# -- baselines ------------------------------------------------------------------------------------------
def no_tree_passes(engine: sa.Engine, table: sa.Table, page: int) -> tuple[float, float, int]:
    """(seconds hashing precomputed canonical bytes, seconds read+canonicalise+hash, events)."""
    hash_s = 0.0
    count = 0
    started = time.perf_counter()
    batch: list[bytes] = []
    sha = hashlib.sha256

    def flush() -> float:
        t = time.perf_counter()
        for b in batch:
            sha(b"\x00" + b).digest()
        return time.perf_counter() - t

    for record in iter_records(engine, table, page=page):
        batch.append(leaf_bytes(envelope(*record)))
        count += 1
        if len(batch) == page:
            hash_s += flush()
            batch.clear()
    hash_s += flush()
    pipeline_s = time.perf_counter() - started - hash_s  # read + canonicalise ...
    # ... plus hashing once more, as the pipeline would: the same hash time
    return hash_s, pipeline_s + hash_s, count


def pipeline_pass(engine: sa.Engine, table: sa.Table, page: int) -> float:
    """read + canonicalise + hash each event, no tree, no comparison (what verify does minus the tree)."""
    from domain.audit.leaf import record_leaf

    started = time.perf_counter()
    for record in iter_records(engine, table, page=page):
        record_leaf(*record)
    return time.perf_counter() - started


# -- proofs -------------------------------------------------------------------------------------------
def proof_function_latency(engine: sa.Engine, positions: list[int], size: int, root: bytes) -> list[float]:
    """What the API handler does, without HTTP: a pooled connection, ``services.audit.proofs.inclusion``."""
    out = []
    for p in positions:
        t = time.perf_counter()
        with read_connection(engine) as conn:
            proof = inclusion(conn, p, size)
        out.append(time.perf_counter() - t)
        if proof is None or not verify_inclusion(
            proof["leaf_index"], size, bytes.fromhex(proof["leaf_hash"]), [bytes.fromhex(h) for h in proof["proof"]], root
        ):
            raise SystemExit(f"the proof of position {p} does not verify")
    return out


@contextlib.contextmanager
def server(url: str, secret: str) -> Iterator[int]:
    with S.running_server(NAME, url, secret, projections=False, timeout=120) as (port, _):
        yield port

def _get(sock: socket.socket, reader: Any, path: str, token: str) -> tuple[int, bytes]:
    """One GET on a keep-alive connection (a minimal HTTP/1.1 client: the client shares the cores)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, reader.read(length)


def proof_http_latency(port: int, token: str, positions: list[int], size: int, root: bytes) -> list[float]:
    out = []
    with socket.create_connection(("127.0.0.1", port)) as sock, sock.makefile("rb") as reader:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for p in positions[:20]:  # warm-up
            _get(sock, reader, f"/api/v1/audit/proofs/inclusion?position={p}&tree_size={size}", token)
        for p in positions:
            t = time.perf_counter()
            status, raw = _get(sock, reader, f"/api/v1/audit/proofs/inclusion?position={p}&tree_size={size}", token)
            out.append(time.perf_counter() - t)
            body = json.loads(raw)
            if status != 200 or not verify_inclusion(
                body["leaf_index"], size, bytes.fromhex(body["leaf_hash"]), [bytes.fromhex(x) for x in body["proof"]], root
            ):
                raise SystemExit(f"bad proof for position {p}: {status} {raw[:200]!r}")
    return out


# -- main ---------------------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--database-url", default=None, help=f"PostgreSQL base URL (default ${S.PG_ENV} or {S.PG_DEFAULT})")
    p.add_argument("--requests", type=int, default=1000, help="inclusion proofs measured (function and HTTP)")
    p.add_argument("--page", type=int, default=10_000, help="events read per query")
    p.add_argument("--no-http", action="store_true", help="skip the API latency")
    args = p.parse_args()
    base = args.database_url or S.default_pg_url()
    n = args.events
    results: dict[str, Any] = {"params": vars(args), "goals": {"verify_seconds": 60, "proof_ms": 10}}
    signer = Signer.from_seed("dualrandom/bench", secrets.token_bytes(32))
    with S.fresh_pg_schema(base) as url:
        app = DualRandom(url)  # creates dualrandom_events
        engine = create_engine(url, pool_size=4)
        table = events_table(app)
        print(f"{NAME}: {n:,} events on PostgreSQL")
        t = time.perf_counter()
        bulk_insert(engine, n)
        insert_s = time.perf_counter() - t
        checkpoint_metadata.create_all(engine)
        runner = ProjectionRunner(app, engine, [AuditProjection()], batch_size=10_000)
        runner.setup()
        t = time.perf_counter()
        for stop in (n // 4, n // 2, n):
            runner.catch_up(until=stop)
            create_checkpoint(engine, signer)
            print(f"  audit tree at {stop:,} leaves, checkpoint signed", flush=True)
        build_s = time.perf_counter() - t
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))  # a settled database, as in production (not timed)
        with engine.connect() as conn:
            size = tree_size(conn)
            cp_count = conn.execute(sa.select(sa.func.count()).select_from(checkpoints)).scalar_one()
            latest_root = bytes(conn.execute(sa.select(checkpoints.c.root_hash).where(checkpoints.c.tree_size == size)).scalar_one())
        if size != n:
            raise SystemExit(f"the audit tree has {size} leaves, not {n}")

        print("  baselines ...", flush=True)
        hash_s, _, counted = no_tree_passes(engine, table, args.page)
        pipeline_s = pipeline_pass(engine, table, args.page)
        print("  audit verify ...", flush=True)
        report = verify_log(engine, table, signer.public, page=args.page)
        if not report.ok or report.events != n:
            raise SystemExit("verify failed on an untouched log:\n" + "\n".join(report.lines()))
        verify_s = report.seconds
        report_leaves = verify_log(engine, table, signer.public, page=args.page, check_nodes=False)
        verify_leaves_s = report_leaves.seconds

        rng = random.Random(7)
        positions = [rng.randint(1, n) for _ in range(args.requests)]
        fn = proof_function_latency(engine, positions, size, latest_root)
        http: list[float] = []
        if not args.no_http:
            secret = secrets.token_urlsafe(48)
            token = stored_token(engine, secret, "hj-amr", ["partner"])  # an account the server checks
            with server(url, secret) as port:
                http = proof_http_latency(port, token, positions, size, latest_root)
        engine.dispose()
        app.close()

    rows = [
        ["bulk insert (COPY), setup", n / insert_s, insert_s],
        ["audit projection builds the tree, setup", n / build_s, build_s],
        ["hash only: SHA-256 of canonical bytes (baseline)", counted / hash_s, hash_s],
        ["read + canonicalise + hash, no tree", n / pipeline_s, pipeline_s],
        ["audit verify (leaves, subtrees, checkpoints)", n / verify_s, verify_s],
        ["audit verify --skip-nodes", n / verify_leaves_s, verify_leaves_s],
    ]
    S.print_table(f"{NAME}: {n:,} events, {cp_count} checkpoints", ["what", "events/s", "seconds"], rows)
    lat = [["proof function (pooled connection)", S.percentile(fn, 50) * 1000, S.percentile(fn, 99) * 1000]]
    if http:
        lat.append(["GET /api/v1/audit/proofs/inclusion", S.percentile(http, 50) * 1000, S.percentile(http, 99) * 1000])
    S.print_table(f"inclusion proof at {n:,} events, {args.requests} random positions", ["path", "p50 ms", "p99 ms"], lat)
    ratio = verify_s / hash_s
    print(f"\nRATIO verify / hash only: {ratio:.1f}; verify / no-tree pipeline: {verify_s / pipeline_s:.2f}")
    print(f"verify {verify_s:.1f} s (goal <= 60 s at 1,000,000: {'met' if verify_s <= 60 * n / 1_000_000 else 'NOT met'}"
          f"{'' if n == 1_000_000 else ', scaled to ' + format(n, ',') + ' events'}); proof p99 "
          f"{(S.percentile(http or fn, 99)) * 1000:.1f} ms (goal <= 10 ms)")
    results.update({
        "events": n, "checkpoints": cp_count, "insert_seconds": insert_s, "build_seconds": build_s,
        "hash_seconds": hash_s, "pipeline_seconds": pipeline_s, "verify_seconds": verify_s,
        "verify_skip_nodes_seconds": verify_leaves_s, "ratio_verify_to_hash": ratio,
        "ratio_verify_to_pipeline": verify_s / pipeline_s,
        "proof_function_ms": {"p50": S.percentile(fn, 50) * 1000, "p99": S.percentile(fn, 99) * 1000},
        "proof_http_ms": {"p50": S.percentile(http, 50) * 1000, "p99": S.percentile(http, 99) * 1000} if http else None,
    })
    print(f"results: {S.write_results(NAME, results)}")


if __name__ == "__main__":
    main()
