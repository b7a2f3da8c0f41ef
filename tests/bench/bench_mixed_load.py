"""A province's mixed load: open-loop requests at a fixed rate for minutes, over the database of ``province.py``.

    .venv/bin/python tests/bench/province.py --database province --targets 1000000 --fresh   # the data, once
    .venv/bin/python tests/bench/bench_mixed_load.py --database province --rate 200 --minutes 10
    .venv/bin/python tests/bench/bench_mixed_load.py --database province --rate 50 --minutes 1 --idle 20   # smoke

Starts the real server (``_support.py serve``: uvicorn with httptools and uvloop, the read models in process, no
relay) on the database, ``--api N`` of them for N API processes (the first with the read models, the others
``--no-projections``). A planner's account of department ``pv-001`` and its token are stored first (every actor
is a known account).

Setup (not timed): the targets listing is walked by cursor (``--walk`` pages of 200) for ids, credit codes and
cursors at every depth of the walk.

Baseline, in the same run: each kind of request alone, one at a time, ``--idle`` times (the idle server's p50/p99).

Load: a request is due every 1/rate seconds whether the earlier ones were answered or not (open loop), and its
latency counts from when it was due, so a queue shows. At most ``--in-flight`` requests (default 100) per API
process: a request due while they are all busy is not sent and counted (``not sent``), never queued here. The
mix, 70 % reads and 30 % writes (the issue's): the first page of the targets (10 %), a county's targets (10 %),
a county's targets of one supervision class (5 %), a name part of three characters (10 %), a 17-character credit
code prefix (5 %), a deep page by cursor (10 %), the planner's department's inspectors (5 %), a target by id (15 %), a PATCH
of a target's address (15 %), a new target (10 %), a new inspector (5 %).

Report: per kind and overall p50/p99/max (ms) under load and idle, the ratio of the two p99s, statuses, errors,
requests not sent, p99 per minute (a drift shows), the load average at start and end. ``RESULT: PASS`` when
every request was sent and answered 2xx (a concurrent PATCH's 409 excepted) and the overall p99 is at most
``--goal-ms`` (50). Results in tests/bench/results/bench_mixed_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.support
import _support as S
import province as P

from tests.support.accounts import stored_token
from tests.support.lean_http import LeanClient, TransportError
from tests.support.open_loop import open_loop

DEPARTMENT = "pv-001"
MIX: tuple[tuple[str, int], ...] = (
    ("targets_page1", 10), ("targets_county", 10), ("targets_county_class", 5), ("targets_name", 10),
    ("targets_credit_code", 5), ("targets_deep_page", 10), ("inspectors_department", 5), ("target_get", 15),
    ("target_patch", 15), ("target_create", 10), ("inspector_create", 5),
)
WRITES = {"target_patch", "target_create", "inspector_create"}


@dataclass
class Seen:
    """What the walk found: targets' ids and credit codes, and cursors at every depth."""
    ids: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    cursors: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    kind: str
    due: float
    done: float
    status: int | None
    error: str = ""

    @property
    def ms(self) -> float:
        return (self.done - self.due) * 1000


class Requests:
    """The request of each kind, drawn at random (a seeded generator)."""

    def __init__(self, seen: Seen, rng: random.Random) -> None:
        self.seen = seen
        self.rng = rng
        self.n = 0

    def make(self, kind: str) -> tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]:
        """(method, path, params, json body)."""
        r, s = self.rng, self.seen
        self.n += 1
        if kind == "targets_page1":
            return "GET", "/api/v1/targets", {"limit": 20}, None
        if kind == "targets_county":
            return "GET", "/api/v1/targets", {"limit": 20, "county": r.choice(P.COUNTIES)}, None
        if kind == "targets_county_class":
            return "GET", "/api/v1/targets", {"limit": 20, "county": r.choice(P.COUNTIES),
                                              "supervision_class": r.choice(("general", "key", "special"))}, None
        if kind == "targets_name":
            name = "".join(r.choice(P.WORDS) for _ in range(3))
            return "GET", "/api/v1/targets", {"limit": 20, "name": name}, None
        if kind == "targets_credit_code":
            return "GET", "/api/v1/targets", {"limit": 20, "credit_code": r.choice(s.codes)[:17]}, None
        if kind == "targets_deep_page":
            return "GET", "/api/v1/targets", {"limit": 20, "cursor": r.choice(s.cursors)}, None
        if kind == "inspectors_department":
            return "GET", "/api/v1/inspectors", {"limit": 20, "department": DEPARTMENT}, None
        if kind == "target_get":
            return "GET", f"/api/v1/targets/{r.choice(s.ids)}", None, None
        if kind == "target_patch":
            return "PATCH", f"/api/v1/targets/{r.choice(s.ids)}", None, {"address": f"新乡市工业园{self.n}号"}
        if kind == "target_create":
            county = r.choice(P.COUNTIES)
            return "POST", "/api/v1/targets", None, {
                "credit_code": S.credit_code(r.randrange(10**12, 2 * 10**12)),
                "name": f"{county}{''.join(r.choice(P.WORDS) for _ in range(3))}新材料有限公司{self.n}",
                "address": f"{county}工业园{self.n % 997}号", "county": county, "industry": "化工",
                "supervision_class": "general", "risk_class": "B"}
        if kind == "inspector_create":
            return "POST", "/api/v1/inspectors", None, {
                "department": DEPARTMENT, "staff_id": f"MX{r.randrange(10**10):010d}", "name": "王芳",
                "certificate_no": f"豫执字M{self.n:06d}", "certificate_expiry": "2029-12-31",
                "specialties": ["大气"], "region": "获嘉县"}
        raise ValueError(kind)


def walk(client: httpx.Client, headers: dict[str, str], pages: int) -> Seen:
    seen = Seen()
    cursor: str | None = None
    for _ in range(pages):
        r = client.get("/api/v1/targets", params={"limit": 200, **({"cursor": cursor} if cursor else {})},
                       headers=headers)
        r.raise_for_status()
        page = r.json()
        for item in page["items"]:
            seen.ids.append(item["id"])
            seen.codes.append(item["credit_code"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        seen.cursors.append(cursor)
    if not seen.ids or not seen.cursors:
        raise SystemExit("the walk found no targets: build the database with province.py first")
    return seen


def idle_baseline(client: httpx.Client, headers: dict[str, str], requests: Requests, n: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = defaultdict(list)
    for kind, _ in MIX:
        for _ in range(n):
            method, path, params, body = requests.make(kind)
            started = time.perf_counter()
            r = client.request(method, path, params=params, json=body, headers=headers)
            times[kind].append((time.perf_counter() - started) * 1000)
            if r.status_code >= 300:
                raise SystemExit(f"idle {kind}: {r.status_code} {r.text[:300]}")
    return times


async def load(bases: list[str], headers: dict[str, str], requests: Requests, rate: float, seconds: float,
               in_flight: int, rng: random.Random) -> tuple[list[Outcome], list[float]]:
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    clients = [LeanClient(b, timeout=60, headers=headers) for b in bases]  # O(1) per request, unlike httpx's pool
    outcomes: list[Outcome] = []
    not_sent: list[float] = []
    start = time.monotonic()

    async def one(api: int, due: float) -> None:
        kind = rng.choices(kinds, weights)[0]
        method, path, params, body = requests.make(kind)
        status: int | None = None
        error = ""
        try:
            r = await clients[api].request(method, path, params=params, json=body)
            status = r.status_code
            if status >= 300:
                error = r.text[:200]
        except TransportError as exc:
            error = type(exc).__name__
        outcomes.append(Outcome(kind, due, time.monotonic(), status, error))

    try:
        await open_loop(rate, seconds, len(bases), in_flight, one, lambda due: not_sent.append(due - start),
                        time.monotonic)
    finally:
        for c in clients:
            await c.aclose()
    for o in outcomes:
        o.due -= start
        o.done -= start
    return outcomes, not_sent


def summarize(outcomes: list[Outcome], not_sent: list[float], idle: dict[str, list[float]], goal_ms: float,
              seconds: float) -> dict[str, Any]:
    by_kind: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        by_kind[o.kind].append(o.ms)
    rows = []
    for kind, _ in MIX:
        loaded, quiet = by_kind.get(kind, []), idle.get(kind, [])
        rows.append({"kind": kind, "n": len(loaded), "p50_ms": S.percentile(loaded, 50),
                     "p99_ms": S.percentile(loaded, 99), "max_ms": max(loaded, default=float("nan")),
                     "idle_p50_ms": S.percentile(quiet, 50), "idle_p99_ms": S.percentile(quiet, 99)})
    every = [o.ms for o in outcomes]
    quiet_all = [t for ts in idle.values() for t in ts]
    statuses = Counter(str(o.status) if o.status is not None else "connection" for o in outcomes)
    errors = Counter(f"{o.kind}:{o.status}:{o.error[:80]}" for o in outcomes
                     if o.status is None or (o.status >= 300 and not (o.status == 409 and o.kind == "target_patch")))
    minutes = []
    for m in range(int(seconds // 60) + (1 if seconds % 60 else 0)):
        window = [o.ms for o in outcomes if m * 60 <= o.due < (m + 1) * 60]
        minutes.append({"minute": m + 1, "n": len(window), "p50_ms": S.percentile(window, 50),
                        "p99_ms": S.percentile(window, 99)})
    p99 = S.percentile(every, 99)
    failures = []
    if not_sent:
        failures.append(f"{len(not_sent)} requests not sent (every connection of an API process busy)")
    if errors:
        failures.append(f"{sum(errors.values())} requests failed")
    if not (p99 <= goal_ms):
        failures.append(f"p99 {p99:.1f} ms > {goal_ms:g} ms")
    return {
        "requests": len(outcomes) + len(not_sent), "answered": len(outcomes), "not_sent": len(not_sent),
        "p50_ms": S.percentile(every, 50), "p99_ms": p99, "max_ms": max(every, default=float("nan")),
        "idle_p50_ms": S.percentile(quiet_all, 50), "idle_p99_ms": S.percentile(quiet_all, 99),
        "p99_ratio_loaded_to_idle": p99 / S.percentile(quiet_all, 99) if quiet_all else float("nan"),
        "statuses": dict(statuses), "errors": dict(errors.most_common(20)), "kinds": rows, "per_minute": minutes,
        "failures": failures, "result": "PASS" if not failures else f"FAIL ({len(failures)})",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", default="province")
    ap.add_argument("--server", default=S.default_pg_url(), help="any URL of the PostgreSQL server")
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--api", type=int, default=1, help="API processes (the first runs the read models)")
    ap.add_argument("--in-flight", type=int, default=100, help="most requests in flight per API process")
    ap.add_argument("--walk", type=int, default=250, help="pages of 200 targets walked for ids and cursors")
    ap.add_argument("--idle", type=int, default=50, help="idle requests of each kind (the baseline)")
    ap.add_argument("--goal-ms", type=float, default=50.0)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    url = args.server.rsplit("/", 1)[0] + "/" + args.database
    secret = secrets.token_hex(32)
    engine = sa.create_engine(url)
    try:
        token = stored_token(engine, secret, DEPARTMENT, ["planner"], "bench:mixed-load", 24 * 3600)
    finally:
        engine.dispose()
    headers = {"Authorization": f"Bearer {token}"}
    load_start = os.getloadavg()
    with contextlib.ExitStack() as stack:
        ports = [stack.enter_context(S.running_server(f"bench_mixed_load.{i}", url, secret, timeout=900,
                                                      projections=(i == 0)))[0] for i in range(args.api)]
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        with httpx.Client(base_url=bases[0], timeout=60) as client:
            started = time.perf_counter()
            seen = walk(client, headers, args.walk)
            walked = time.perf_counter() - started
            requests = Requests(seen, rng)
            idle = idle_baseline(client, headers, requests, args.idle)
        seconds = args.minutes * 60
        print(f"seed {seed}; walked {len(seen.ids):,} targets in {walked:.1f} s; idle baseline done; "
              f"{args.rate:g}/s for {seconds:g} s on {args.api} API process(es)", flush=True)
        load_before = os.getloadavg()
        outcomes, not_sent = asyncio.run(load(bases, headers, requests, args.rate, seconds, args.in_flight, rng))
        load_after = os.getloadavg()
    summary = summarize(outcomes, not_sent, idle, args.goal_ms, seconds)
    summary.update({"seed": seed, "database": args.database, "rate": args.rate, "minutes": args.minutes,
                    "api": args.api, "load_average_start": load_start, "load_average_before_load": load_before,
                    "load_average_after_load": load_after})
    S.print_table(f"mixed load over {args.database}: {args.rate:g}/s for {args.minutes:g} min, {args.api} API "
                  f"process(es) (load average {load_before[0]:.2f} -> {load_after[0]:.2f})",
                  ["kind", "n", "p50 ms", "p99 ms", "max ms", "idle p50", "idle p99"],
                  [[k["kind"], k["n"], k["p50_ms"], k["p99_ms"], k["max_ms"], k["idle_p50_ms"], k["idle_p99_ms"]]
                   for k in summary["kinds"]])
    print(f"\nall: {summary['answered']:,} answered, {summary['not_sent']:,} not sent; p50 {summary['p50_ms']:.1f} ms, "
          f"p99 {summary['p99_ms']:.1f} ms, max {summary['max_ms']:.1f} ms; idle p99 {summary['idle_p99_ms']:.1f} ms "
          f"(loaded/idle {summary['p99_ratio_loaded_to_idle']:.2f})")
    print("by status:", summary["statuses"])
    if summary["errors"]:
        print("errors:", summary["errors"])
    print("p99 by minute:", ", ".join(f"{m['minute']}: {m['p99_ms']:.0f} ms" for m in summary["per_minute"]))
    print(f"RESULT: {summary['result']}" + "".join(f"\n  - {f}" for f in summary["failures"]))
    print("results:", S.write_results("bench_mixed_load", summary))
    return 0 if summary["result"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
