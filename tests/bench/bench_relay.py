"""Relay benchmarks: throughput against raw ``publish_async``, and latency from commit to a partner consumer.

    .venv/bin/python tests/bench/bench_relay.py              # PostgreSQL ($DUALRANDOM_TEST_DATABASE_URL)
    .venv/bin/python tests/bench/bench_relay.py --sqlite     # a SQLite file
    # options: --events 20000 --rounds 3 --batch 500 --rate 200 --seconds 10

1. **Throughput.** The store holds ``--events`` events (targets imported in one transaction). Each round
   publishes all of them twice, each time into a fresh stream on the same nats-server (from the wheel,
   ``sync_interval: always``): once by the relay (page the log, decode, map to the contract, CloudEvents
   headers, ``publish_async`` a batch, await the acks, record the position), once raw: the same subjects,
   headers and bodies, built beforehand, sent with ``publish_async`` in batches of the same size, acks
   awaited per batch. The ratio relay/raw is the figure (goal >= 0.5).
2. **Latency.** A writer thread registers inspectors of one department at ``--rate`` commands/s (paced on a
   schedule) and wakes the relay after each commit, as the API does. The relay runs in its own thread, and a
   partner consumer (``services/infra/partner.py``, durable pull consumer, explicit acks) in another. Latency =
   the time the consumer got the event minus the time the command returned (committed). p50 and p99 (goal
   p99 <= 100 ms). Everything shares one process and the machine's two cores with PostgreSQL and NATS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import nats

from domain.access import SYSTEM
from services.application import CommandContext, DualRandom
from services.infra.nats_embedded import EmbeddedNats, free_port
from services.infra.partner import Subscription
from services.infra.relay import OutgoingEvent, Relay, event_id, messages_for
from services.infra.store import create_engine
from tests.bench import _support as S

NAME = "bench_relay"
CTX = CommandContext(SYSTEM, correlation_id="bench-relay")


def department() -> dict[str, str]:
    return {"code": "hj-eeb", "name": "新乡市生态环境局获嘉分局", "city": "新乡市", "county": "获嘉县", "kind": "ecology"}


def inspector(n: int) -> dict[str, Any]:
    return {"department": "hj-eeb", "staff_id": f"B{n:07d}", "name": "张伟", "certificate_no": f"C{n:07d}",
            "certificate_expiry": "2030-12-31"}


def fill(app: DualRandom, n: int) -> None:
    app.register("department", department(), CTX)
    rows = [(i + 2, dict(S.target_row(i).items())) for i in range(n - 1)]
    app.import_entries("target", rows, CTX)


def all_messages(app: DualRandom) -> list[OutgoingEvent]:
    out: list[OutgoingEvent] = []
    position = 0
    while batch := app.recorder.select_notifications(position, 1000, inclusive_of_start=False):
        for n in batch:
            out.extend(messages_for(app.mapper.to_domain_event(n), n.id, "bench"))
        position = batch[-1].id
    return out


async def add_stream(url: str, name: str) -> None:
    from nats.js.api import StorageType, StreamConfig

    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(StreamConfig(name=name, subjects=[f"{name.lower()}.>"],
                                                     storage=StorageType.FILE, duplicate_window=120))
    finally:
        await nc.close()


async def delete_stream(url: str, name: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()


async def raw_publish(url: str, stream: str, msgs: list[OutgoingEvent], batch: int) -> float:
    """Seconds to publish the prepared messages with publish_async, acks awaited per batch."""
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=30)
    t0 = time.perf_counter()
    for start in range(0, len(msgs), batch):
        futures = [
            await js.publish_async(m.subject, m.body, headers=dict(m.headers), stream=stream)
            for m in msgs[start:start + batch]
        ]
        await asyncio.gather(*futures)
    elapsed = time.perf_counter() - t0
    await nc.close()
    return elapsed


async def relay_publish(app: DualRandom, engine: Any, url: str, stream: str, batch: int) -> tuple[float, int]:
    relay = Relay(app, engine, url, stream=stream, deployment="bench", batch_size=batch)
    await relay._connection()  # the stream exists before the clock starts, as for the raw run
    t0 = time.perf_counter()
    total = 0
    while n := await relay.run_once():
        total += n
    elapsed = time.perf_counter() - t0
    await relay.close()
    return elapsed, total


def throughput(app: DualRandom, engine: Any, url: str, rounds: int, batch: int) -> dict[str, Any]:
    msgs = all_messages(app)
    rows = []
    for r in range(rounds):
        raw_stream = f"RAW{r}"
        relay_stream = f"RELAY{r}"
        # The raw run uses the same subjects under another prefix stream: same sizes, same headers.
        raw_msgs = [OutgoingEvent(m.position, m.subject.replace("dualrandom.", f"{raw_stream.lower()}.", 1),
                                  m.headers, m.body) for m in msgs]
        asyncio.run(add_stream(url, raw_stream))
        raw_s = asyncio.run(raw_publish(url, raw_stream, raw_msgs, batch))
        asyncio.run(delete_stream(url, raw_stream))
        relay_s, n = asyncio.run(relay_publish(app, engine, url, relay_stream, batch))
        asyncio.run(delete_stream(url, relay_stream))
        rows.append({"round": r, "raw_s": raw_s, "relay_s": relay_s, "events": n, "messages": len(msgs),
                     "raw_per_s": len(msgs) / raw_s, "relay_per_s": n / relay_s, "ratio": raw_s / relay_s})
    return {
        "rounds": rows,
        "raw_per_s": S.median([r["raw_per_s"] for r in rows]),
        "relay_per_s": S.median([r["relay_per_s"] for r in rows]),
        "ratio": S.median([r["ratio"] for r in rows]),
    }


def latency(app: DualRandom, engine: Any, url: str, rate: float, seconds: float) -> dict[str, Any]:
    relay = Relay(app, engine, url, stream="DUALRANDOM", deployment="bench", poll_interval=0.2)
    committed: dict[str, float] = {}
    received: dict[str, float] = {}
    total = int(rate * seconds)
    relay_loop = asyncio.new_event_loop()
    relay_stop = asyncio.Event()
    relay_thread = threading.Thread(target=relay_loop.run_until_complete, args=(relay.run(relay_stop),), daemon=True)
    relay_thread.start()
    while relay.position() < int(app.recorder.max_notification_id() or 0):  # the backlog, before the clock
        time.sleep(0.05)
    done = threading.Event()
    ready = threading.Event()

    def consume() -> None:
        async def run() -> None:
            sub = Subscription(url, "hj-eeb", batch=256)
            await sub.connect()
            ready.set()
            async for event in sub.events():
                received[event["id"]] = time.time()
                await event["_msg"].ack()  # fire-and-forget ack: the consumer's own latency is not measured
                if len(received) >= total + 1:  # the department's event, then every inspector's
                    break
            await sub.close()

        asyncio.run(run())

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    ready.wait(30)
    t0 = time.perf_counter()
    for i in range(total):
        slot = t0 + i / rate
        delay = slot - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        written = app.register("inspector", inspector(i), CTX)
        committed[event_id(written.id, 1)] = time.time()
        relay.wake()
    done.set()
    achieved = total / (time.perf_counter() - t0)
    consumer.join(timeout=60)
    relay_loop.call_soon_threadsafe(relay_stop.set)
    relay_thread.join(timeout=10)
    lat = [(received[k] - committed[k]) * 1000 for k in committed if k in received]
    return {
        "commands": total, "rate_goal": rate, "rate_achieved": achieved, "received": len(lat),
        "p50_ms": S.percentile(lat, 50), "p99_ms": S.percentile(lat, 99), "max_ms": max(lat) if lat else None,
    }


class Server(EmbeddedNats):
    """The embedded server, optionally with JetStream's default fsync interval."""

    def __init__(self, port: int, store_dir: str, sync_always: bool = True) -> None:
        super().__init__(port, store_dir)
        self.sync_always = sync_always

    def write_config(self) -> Path:
        path = super().write_config()
        if not self.sync_always:
            path.write_text(path.read_text("utf-8").replace("  sync_interval: always\n", ""), "utf-8")
        return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--no-sync-always", action="store_true",
                        help="JetStream's default fsync (every 2 min) instead of sync_interval: always")
    args = parser.parse_args()
    db_ctx = S.fresh_sqlite() if args.sqlite else S.fresh_pg_schema(args.database_url or S.default_pg_url())
    with db_ctx as db, tempfile.TemporaryDirectory(prefix="bench-relay-nats-") as tmp, \
            Server(free_port(), tmp, sync_always=not args.no_sync_always) as server:
        app = DualRandom(db)
        engine = create_engine(db)
        try:
            t = time.perf_counter()
            fill(app, args.events)
            print(f"filled {args.events:,} events in {time.perf_counter() - t:.1f} s")
            tp = throughput(app, engine, server.url, args.rounds, args.batch)
            lat = latency(app, engine, server.url, args.rate, args.seconds)
        finally:
            engine.dispose()
            app.close()
    database = "sqlite" if args.sqlite else "postgresql"
    sync = "default fsync" if args.no_sync_always else "sync_interval: always"
    S.print_table(f"{NAME}: {args.events:,} events, batches of {args.batch}, {database}, {sync} "
                  f"(median of {args.rounds})",
                  ["what", "events/s"],
                  [["raw publish_async (same payloads)", f"{tp['raw_per_s']:,.0f}"],
                   ["relay (log -> JetStream, acks, position)", f"{tp['relay_per_s']:,.0f}"],
                   ["ratio relay / raw", f"{tp['ratio']:.2f}"]])
    S.print_table(f"commit -> partner consumer at {args.rate:g} commands/s for {args.seconds:g} s",
                  ["commands", "achieved/s", "p50 ms", "p99 ms", "max ms"],
                  [[lat["commands"], f"{lat['rate_achieved']:.0f}", f"{lat['p50_ms']:.1f}", f"{lat['p99_ms']:.1f}",
                    f"{lat['max_ms']:.1f}"]])
    path = S.write_results(NAME + ("_nosync" if args.no_sync_always else ""), {
                                  "machine": S.machine(), "database": database, "params": vars(args),
                                  "throughput": tp, "latency": lat})
    print(f"results: {path}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
